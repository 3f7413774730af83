import Logging

/// A `ConnectionPool` of connections that make blocking C calls (libpq). It owns one thread per
/// connection, and every call on a connection, connecting and closing included, runs there: never on
/// the caller's thread or an event loop. The pool's refusals are thrown as `Failure`, the client's
/// own error type.
public final class BlockingConnectionPool<Connection: PooledConnection, Failure: PoolErrorConvertible>: Sendable {
    /// A leased connection, valid only inside the `withConnection` closure that received it.
    public struct Lease: Sendable {
        let connection: Connection
        let executor: BlockingExecutor

        /// Runs a blocking call on the connection, on one of the pool's threads.
        public func run<T: Sendable>(_ call: @escaping @Sendable (Connection) throws -> T) async throws -> T {
            let connection = self.connection
            return try await executor.run { try call(connection) }
        }
    }

    private let executor: BlockingExecutor
    private let pool: ConnectionPool<Connection>

    /// Creates the pool; `connect` opens a connection (blocking) when a caller needs one.
    public init(
        capacity: Int, acquireTimeout: Duration, logger: Logger,
        connect: @escaping @Sendable () throws -> Connection
    ) {
        let executor = BlockingExecutor(threadCount: capacity)
        self.executor = executor
        self.pool = ConnectionPool(
            capacity: capacity, acquireTimeout: acquireTimeout, logger: logger,
            dispose: { connection in Task { try? await executor.run { connection.close() } } }
        ) {
            try await executor.run(connect)
        }
    }

    /// Leases a connection for the duration of `body`; throws `Failure` made from a `PoolError`
    /// when none comes in time or the pool is closed.
    public func withConnection<Result: Sendable>(_ body: (Lease) async throws -> Result) async throws -> Result {
        let executor = self.executor
        do {
            return try await pool.withConnection { try await body(Lease(connection: $0, executor: executor)) }
        } catch let refusal as PoolError {
            throw Failure(refusal)
        }
    }

    /// How busy the pool is right now.
    public func statistics() async -> PoolStatistics {
        await pool.statistics()
    }

    /// Closes every connection and stops the threads; later calls throw the closed error.
    public func shutdown() async {
        await pool.close()
        await executor.shutdown()
    }
}
