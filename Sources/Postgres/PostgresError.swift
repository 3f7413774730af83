import Pooling

/// An error from the Postgres layer.
///
/// `description` names what failed and the SQLSTATE, never the statement or its parameters, so it
/// is safe to log and to wrap; `debugDescription` adds the server's own message for operators.
public struct PostgresError: Error, Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    /// What kind of failure this is.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Base: String, Sendable {
            case connectionFailed = "connection failed"
            case connectionLost = "connection lost"
            case queryFailed = "query failed"
            case poolTimeout = "timed out waiting for a pooled connection"
            case poolClosed = "connection pool is closed"
            case decodingFailed = "could not decode a column"
        }
        private let base: Base

        /// The server could not be reached or refused the connection.
        public static let connectionFailed = Code(base: .connectionFailed)
        /// An established connection broke during a call.
        public static let connectionLost = Code(base: .connectionLost)
        /// The server answered a statement with an error.
        public static let queryFailed = Code(base: .queryFailed)
        /// Every connection stayed leased for longer than the acquire timeout.
        public static let poolTimeout = Code(base: .poolTimeout)
        /// The pool was shut down.
        public static let poolClosed = Code(base: .poolClosed)
        /// A column held a value that could not be read as the requested type.
        public static let decodingFailed = Code(base: .decodingFailed)

        public var description: String { base.rawValue }
    }

    /// What kind of failure this is.
    public let code: Code
    /// The five-character SQLSTATE of a server error, when the server sent one.
    public let sqlState: String?
    /// The server's or libpq's message; may quote values, so it is kept out of `description`.
    public let serverMessage: String?

    /// Creates an error.
    public init(code: Code, sqlState: String? = nil, serverMessage: String? = nil) {
        self.code = code
        self.sqlState = sqlState
        self.serverMessage = serverMessage
    }

    public var description: String {
        if let sqlState { return "Postgres \(code) (SQLSTATE \(sqlState))" }
        return "Postgres \(code)"
    }

    public var debugDescription: String {
        guard let serverMessage else { return description }
        return "\(description): \(serverMessage)"
    }

    /// True for a unique-constraint violation (SQLSTATE 23505).
    public var isUniqueViolation: Bool { sqlState == "23505" }

    /// True when the failure says nothing about the statement itself: the server is unreachable,
    /// the connection broke, or the pool had no connection to lend.
    public var isUnavailable: Bool {
        code == .connectionFailed || code == .connectionLost || code == .poolTimeout || code == .poolClosed
            || sqlState == "57P01" || sqlState == "57P03"  // admin shutdown, cannot connect now
    }
}

extension PostgresError: PoolErrorConvertible {
    /// `poolTimeout` or `poolClosed`.
    public init(_ refusal: PoolError) {
        self.init(code: refusal == .timeout ? .poolTimeout : .poolClosed)
    }
}
