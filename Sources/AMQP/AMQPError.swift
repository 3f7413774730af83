/// An error from the AMQP layer.
///
/// `description` names what failed and the broker's reply code, never credentials, exchange or
/// queue names, or the broker's text, so it is safe to log and to wrap; `debugDescription` adds
/// the broker's or rabbitmq-c's own message for operators.
public struct AMQPError: Error, Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible {
    /// What kind of failure this is.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Base: String, Sendable {
            case invalidURL = "invalid URL"
            case connectionFailed = "connection failed"
            case loginFailed = "login failed"
            case connectionLost = "connection lost"
            case timeout = "timed out"
            case closedByBroker = "closed by the broker"
            case tooManyInFlight = "too many unconfirmed publishes"
            case closed = "client is closed"
        }
        private let base: Base

        /// `AMQP_URL` is not an `amqp://` URL this client can use.
        public static let invalidURL = Code(base: .invalidURL)
        /// The TCP connection could not be opened.
        public static let connectionFailed = Code(base: .connectionFailed)
        /// The broker refused the credentials or the virtual host.
        public static let loginFailed = Code(base: .loginFailed)
        /// The socket broke or a frame could not be read or written.
        public static let connectionLost = Code(base: .connectionLost)
        /// The broker did not answer in time (an RPC, a confirm, the heartbeat).
        public static let timeout = Code(base: .timeout)
        /// The broker closed the channel or the connection, with `replyCode`.
        public static let closedByBroker = Code(base: .closedByBroker)
        /// A publish batch larger than the bound on unconfirmed messages.
        public static let tooManyInFlight = Code(base: .tooManyInFlight)
        /// The client was shut down.
        public static let closed = Code(base: .closed)

        public var description: String { base.rawValue }
    }

    /// What kind of failure this is.
    public let code: Code
    /// The broker's reply text or rabbitmq-c's message, with what was being done; for
    /// `invalidURL`, what is wrong with the URL. May name exchanges, queues or the user, so it is
    /// kept out of `description`; it never holds a password.
    public let serverMessage: String?
    /// The AMQP reply code of a `closedByBroker` error (e.g. 404 NOT_FOUND, 406 PRECONDITION_FAILED).
    public let replyCode: UInt16?

    /// Creates an error.
    public init(code: Code, serverMessage: String? = nil, replyCode: UInt16? = nil) {
        self.code = code
        self.serverMessage = serverMessage
        self.replyCode = replyCode
    }

    public var description: String {
        if let replyCode { return "AMQP \(code) (reply code \(replyCode))" }
        return "AMQP \(code)"
    }

    public var debugDescription: String {
        guard let serverMessage, !serverMessage.isEmpty else { return description }
        return "\(description): \(serverMessage)"
    }

    /// True when the failure says nothing about the call itself: the broker is unreachable, too
    /// slow or shutting down (320 CONNECTION_FORCED), the connection broke, or the client is closed.
    public var isUnavailable: Bool {
        code == .connectionFailed || code == .connectionLost || code == .timeout || code == .closed
            || (code == .closedByBroker && replyCode == 320)
    }
}
