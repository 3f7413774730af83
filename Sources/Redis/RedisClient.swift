import Logging
import Pooling

@_exported import struct Pooling.PoolStatistics

/// A bounded pool of hiredis connections whose blocking calls run on a dedicated thread pool,
/// never on the caller's thread or an event loop.
///
/// Every call leases one connection for one round trip. A connection that timed out or broke is
/// dropped (with its idle siblings) and the next call reconnects, so the client recovers by itself
/// when the server comes back.
public final class RedisClient: Sendable {
    /// Where the server is, how many connections to keep, and how long anything may take.
    public struct Configuration: Sendable {
        public var endpoint: RedisEndpoint
        /// The most connections open at once (and threads running blocking calls).
        public var poolSize: Int
        /// How long opening a connection (TCP, AUTH, SELECT) may take.
        public var connectTimeout: Duration
        /// How long one read or write on the socket may block.
        public var commandTimeout: Duration
        /// How long a caller waits for a free connection before `poolTimeout`.
        public var acquireTimeout: Duration

        public init(
            endpoint: RedisEndpoint,
            poolSize: Int = 8,
            connectTimeout: Duration = .milliseconds(500),
            commandTimeout: Duration = .milliseconds(250),
            acquireTimeout: Duration = .milliseconds(250)
        ) {
            self.endpoint = endpoint
            self.poolSize = poolSize
            self.connectTimeout = connectTimeout
            self.commandTimeout = commandTimeout
            self.acquireTimeout = acquireTimeout
        }
    }

    private let pool: BlockingConnectionPool<RedisConnection, RedisError>

    /// Creates the client; connections open lazily, on first use.
    public init(configuration: Configuration, logger: Logger) {
        precondition(configuration.poolSize > 0, "poolSize must be positive")
        self.pool = BlockingConnectionPool(
            capacity: configuration.poolSize, acquireTimeout: configuration.acquireTimeout, logger: logger
        ) {
            try RedisConnection.connect(
                to: configuration.endpoint, connectTimeout: configuration.connectTimeout,
                commandTimeout: configuration.commandTimeout
            )
        }
    }

    /// Runs one command; an error reply throws `RedisError.Code.server`.
    @discardableResult
    public func send(_ command: RedisCommand) async throws -> RedisValue {
        let reply = try await pipeline([command])[0]
        if case .error(let message) = reply { throw RedisError(code: .server, serverMessage: message) }
        return reply
    }

    /// Runs one command with its arguments given inline, e.g. `send("GET", key)`.
    @discardableResult
    public func send(_ name: String, _ arguments: any RedisArgument...) async throws -> RedisValue {
        try await send(RedisCommand(name, arguments))
    }

    /// Sends every command in one round trip and returns their replies in order; an error reply of
    /// one command is its `.error` value and does not stop the others.
    public func pipeline(_ commands: [RedisCommand]) async throws -> [RedisValue] {
        guard !commands.isEmpty else { return [] }
        return try await withConnection { lease in try await lease.run { try $0.pipeline(commands) } }
    }

    /// Runs a script by its SHA; when the server does not know it (first use, restart, flush) it is
    /// loaded and run again on the same connection, in one more round trip.
    public func evaluate(_ script: RedisScript, keys: [any RedisArgument], arguments: [any RedisArgument]) async throws
        -> RedisValue
    {
        let run = RedisCommand("EVALSHA", [script.sha1, keys.count] + keys + arguments)
        let reply = try await withConnection { lease in
            try await lease.run { connection throws -> RedisValue in
                let first = try connection.pipeline([run])[0]
                guard case .error(let message) = first, message.hasPrefix("NOSCRIPT") else { return first }
                return try connection.pipeline([RedisCommand("SCRIPT", "LOAD", script.source), run])[1]
            }
        }
        if case .error(let message) = reply { throw RedisError(code: .server, serverMessage: message) }
        return reply
    }

    /// How busy the pool is right now.
    public func statistics() async -> PoolStatistics {
        await pool.statistics()
    }

    /// Closes every connection and stops the thread pool; later calls throw `poolClosed`.
    public func shutdown() async {
        await pool.shutdown()
    }

    private func withConnection<Result: Sendable>(
        _ body: (BlockingConnectionPool<RedisConnection, RedisError>.Lease) async throws -> Result
    ) async throws -> Result {
        try await pool.withConnection(body)
    }
}

/// In a service group, the client stays open until graceful shutdown and then closes: list it
/// before the services that use it.
extension RedisClient: ClosesOnShutdown {}
