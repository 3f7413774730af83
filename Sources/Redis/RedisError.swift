/// An error from the Redis layer. Its description never quotes keys or values.
public struct RedisError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What kind of failure this is.
    public enum Code: String, Sendable, Equatable {
        /// `REDIS_URL` is not a usable `redis://` URL.
        case invalidURL = "invalid URL"
        /// The server could not be reached, or refused AUTH or SELECT.
        case connectionFailed = "connection failed"
        /// The server did not answer within the command timeout; the connection is dropped.
        case timeout = "timed out"
        /// The connection broke during a call.
        case connectionLost = "connection lost"
        /// The server answered with an error reply (`message` holds it).
        case server = "server error"
        /// Every pooled connection stayed leased longer than the acquire timeout.
        case poolTimeout = "timed out waiting for a pooled connection"
        /// The client was shut down.
        case poolClosed = "connection pool is closed"
        /// A reply had a shape the caller did not expect.
        case unexpectedReply = "unexpected reply"
    }

    public let code: Code
    /// hiredis' or the server's text, e.g. `NOSCRIPT No matching script`.
    public let message: String

    public init(code: Code, message: String = "") {
        self.code = code
        self.message = message
    }

    public var description: String {
        message.isEmpty ? "Redis \(code.rawValue)" : "Redis \(code.rawValue): \(message)"
    }

    /// True when the server does not know a script SHA (it restarted or flushed its scripts).
    public var isNoScript: Bool { code == .server && message.hasPrefix("NOSCRIPT") }
}
