/// A failure of the AMQP client. `message` names what failed; it never carries credentials.
public struct AMQPError: Error, Equatable, CustomStringConvertible {
    public enum Code: Sendable, Equatable {
        /// `AMQP_URL` is not an `amqp://` URL this client can use.
        case invalidURL
        /// The TCP connection could not be opened.
        case connectionFailed
        /// The broker refused the credentials or the virtual host.
        case loginFailed
        /// The socket broke or a frame could not be read or written.
        case connectionLost
        /// The broker did not answer in time (an RPC, a confirm, the heartbeat).
        case timeout
        /// The broker closed the channel or the connection, with `replyCode`.
        case closedByBroker
        /// A publish batch larger than the bound on unconfirmed messages.
        case tooManyInFlight
        /// The client was shut down.
        case closed
    }

    public let code: Code
    public let message: String
    /// The AMQP reply code of a `closedByBroker` error (e.g. 404 NOT_FOUND, 406 PRECONDITION_FAILED).
    public let replyCode: UInt16?

    public init(_ code: Code, _ message: String, replyCode: UInt16? = nil) {
        self.code = code
        self.message = message
        self.replyCode = replyCode
    }

    public var description: String {
        replyCode.map { "AMQP \(code) (\($0)): \(message)" } ?? "AMQP \(code): \(message)"
    }
}
