import Pooling

/// An error from the Redis layer.
///
/// `description` names what failed (and the error prefix of a server's error reply, such as
/// `WRONGTYPE`), never keys, values or the server's text, so it is safe to log and to wrap;
/// `debugDescription` adds the server's or hiredis' own message for operators.
public struct RedisError: Error, Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible {
    /// What kind of failure this is.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Base: String, Sendable {
            case invalidURL = "invalid URL"
            case connectionFailed = "connection failed"
            case timeout = "timed out"
            case connectionLost = "connection lost"
            case server = "server error"
            case poolTimeout = "timed out waiting for its turn on a connection"
            case poolClosed = "client is closed"
            case unexpectedReply = "unexpected reply"
            case notReplicated = "not confirmed by the replicas in time"
        }
        private let base: Base

        /// `REDIS_URL` is not a usable `redis://` URL.
        public static let invalidURL = Code(base: .invalidURL)
        /// The server could not be reached, or AUTH or SELECT was refused or not answered in time.
        public static let connectionFailed = Code(base: .connectionFailed)
        /// The server did not answer within the command timeout; the connection is dropped.
        public static let timeout = Code(base: .timeout)
        /// The connection broke during a call.
        public static let connectionLost = Code(base: .connectionLost)
        /// The server answered with an error reply (`serverMessage` holds it).
        public static let server = Code(base: .server)
        /// The connection's window of calls in flight stayed full longer than the acquire timeout.
        public static let poolTimeout = Code(base: .poolTimeout)
        /// The client was shut down.
        public static let poolClosed = Code(base: .poolClosed)
        /// A reply had a shape the caller did not expect.
        public static let unexpectedReply = Code(base: .unexpectedReply)
        /// The write was made, but fewer replicas than asked confirmed it in time (`WAIT`): a
        /// failover could lose it.
        public static let notReplicated = Code(base: .notReplicated)

        public var description: String { base.rawValue }
    }

    /// What kind of failure this is.
    public let code: Code
    /// The server's error reply (e.g. `NOSCRIPT No matching script`) or hiredis' text; for
    /// `invalidURL`, what is wrong with the URL. May quote keys or values, so it is kept out of
    /// `description`.
    public let serverMessage: String?

    /// Creates an error.
    public init(code: Code, serverMessage: String? = nil) {
        self.code = code
        self.serverMessage = serverMessage
    }

    /// The first word of a server error reply when it is one of the error prefixes Redis itself
    /// sends (`ERR`, `WRONGTYPE`, `NOSCRIPT`, ...); nil otherwise. A script can reply with any
    /// text, a key included, so no other word is trusted to be safe to log.
    public var errorPrefix: String? {
        guard code == .server, let serverMessage else { return nil }
        let word = String(serverMessage.prefix { $0 != " " && $0 != "\n" })
        return Self.knownPrefixes.contains(word) ? word : nil
    }

    private static let knownPrefixes: Set<String> = [
        "ERR", "WRONGTYPE", "NOSCRIPT", "BUSY", "BUSYKEY", "LOADING", "READONLY", "NOAUTH", "WRONGPASS", "NOPERM",
        "OOM", "EXECABORT", "MISCONF", "MASTERDOWN", "NOREPLICAS", "TRYAGAIN", "CROSSSLOT", "CLUSTERDOWN", "MOVED",
        "ASK", "UNBLOCKED", "NOTBUSY", "UNKILLABLE", "NOPROTO",
    ]

    public var description: String {
        if let errorPrefix { return "Redis \(code) (\(errorPrefix))" }
        return "Redis \(code)"
    }

    public var debugDescription: String {
        guard let serverMessage, !serverMessage.isEmpty else { return description }
        return "\(description): \(serverMessage)"
    }

    /// True when the server does not know a script SHA (it restarted or flushed its scripts).
    public var isNoScript: Bool { errorPrefix == "NOSCRIPT" }

    /// True when Redis itself failed: it could not be reached or set up, a connection broke, or it
    /// did not answer in time. Not for a full window of calls in flight (that is load: the caller
    /// waited its turn too long), an error reply (Redis answered) or a shutdown: a circuit breaker
    /// opens on outages only.
    public var isOutage: Bool {
        code == .connectionFailed || code == .timeout || code == .connectionLost
    }

    /// Whether `error` is a `RedisError` that `isOutage`.
    public static func isOutage(_ error: any Error) -> Bool {
        (error as? RedisError)?.isOutage ?? false
    }

    /// True when the call did not reach Redis or got no answer: an outage, a full window, a shutdown.
    public var isUnavailable: Bool {
        code == .connectionFailed || code == .timeout || code == .connectionLost || code == .poolTimeout
            || code == .poolClosed
    }
}

extension RedisError: PoolErrorConvertible {
    /// `poolTimeout` or `poolClosed`.
    public init(_ refusal: PoolError) {
        self.init(code: refusal == .timeout ? .poolTimeout : .poolClosed)
    }
}
