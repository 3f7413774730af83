import Logging
import NIOPosix

/// A `ConnectionPool` of connections that make blocking C calls (libpq, hiredis). It owns one
/// thread per connection, and every call on a connection, connecting included, runs there: never on
/// the caller's thread or an event loop.
public final class BlockingConnectionPool<Connection: PooledConnection>: Sendable {
    /// A leased connection, valid only inside the `withConnection` closure that received it.
    public struct Lease: Sendable {
        let connection: Connection
        let threads: NIOThreadPool

        /// Runs a blocking call on the connection, on one of the pool's threads.
        public func run<T: Sendable>(_ call: @escaping @Sendable (Connection) throws -> T) async throws -> T {
            let connection = self.connection
            return try await threads.runIfActive { try call(connection) }
        }
    }

    private let threads: NIOThreadPool
    private let pool: ConnectionPool<Connection>

    /// Creates the pool; `connect` opens a connection (blocking) when a caller needs one.
    public init(
        capacity: Int, acquireTimeout: Duration, logger: Logger,
        connect: @escaping @Sendable () throws -> Connection
    ) {
        let threads = NIOThreadPool(numberOfThreads: capacity)
        threads.start()
        self.threads = threads
        self.pool = ConnectionPool(capacity: capacity, acquireTimeout: acquireTimeout, logger: logger) {
            try await threads.runIfActive(connect)
        }
    }

    /// Leases a connection for the duration of `body`; throws `PoolError` when none comes in time.
    public func withConnection<Result: Sendable>(_ body: (Lease) async throws -> Result) async throws -> Result {
        let threads = self.threads
        return try await pool.withConnection { try await body(Lease(connection: $0, threads: threads)) }
    }

    /// How busy the pool is right now.
    public func statistics() async -> PoolStatistics {
        await pool.statistics()
    }

    /// Closes every connection and stops the threads; later calls throw `PoolError.closed`.
    public func shutdown() async {
        await pool.close()
        try? await threads.shutdownGracefully()
    }
}
