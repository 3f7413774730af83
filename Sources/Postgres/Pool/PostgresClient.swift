import Logging
import Pooling

@_exported import struct Pooling.PoolStatistics

/// A bounded pool of libpq connections whose blocking calls run on a dedicated thread pool, never
/// on the caller's thread or an event loop.
///
/// Callers lease a connection with `withConnection` or `withTransaction`; the lease always ends
/// when the closure returns. When every connection is leased, callers wait at most
/// `Configuration.acquireTimeout`, then get `PostgresError.Code.poolTimeout`.
public final class PostgresClient: Sendable {
    /// How to reach the server and how large the pool is.
    public struct Configuration: Sendable {
        /// A libpq connection URI, e.g. `postgres://user@host:5432/db`.
        public var url: String
        /// The most connections open at once (and threads running blocking calls).
        public var poolSize: Int
        /// How long a caller waits for a free connection before `poolTimeout`.
        public var acquireTimeout: Duration
        /// How long opening a connection may take.
        public var connectTimeout: Duration
        /// The server cancels any statement running longer than this.
        public var statementTimeout: Duration
        /// Shown in `pg_stat_activity`.
        public var applicationName: String
        /// `url` reaches a pooler in transaction mode (PgBouncer's `pool_mode = transaction`),
        /// which hands each transaction to any of its server connections: statements are not
        /// prepared (a prepared statement lives on one server connection), and no server
        /// settings are sent at connect (the pooler refuses `options`), so `statementTimeout` is
        /// the server's to set (`ALTER ROLE ... SET statement_timeout`), and connecting fails
        /// unless the server's time zone is UTC.
        public var transactionPooling: Bool

        /// Creates a configuration.
        public init(
            url: String,
            poolSize: Int = 8,
            acquireTimeout: Duration = .seconds(2),
            connectTimeout: Duration = .seconds(3),
            statementTimeout: Duration = .seconds(10),
            applicationName: String = "messages-service",
            transactionPooling: Bool = false
        ) {
            self.url = url
            self.poolSize = poolSize
            self.acquireTimeout = acquireTimeout
            self.connectTimeout = connectTimeout
            self.statementTimeout = statementTimeout
            self.applicationName = applicationName
            self.transactionPooling = transactionPooling
        }
    }

    private let pool: BlockingConnectionPool<PostgresConnection, PostgresError>

    /// Creates the client; connections are opened lazily, on first use.
    public init(configuration: Configuration, logger: Logger) {
        precondition(configuration.poolSize > 0, "poolSize must be positive")
        let settings = Self.connectionSettings(configuration)
        let url = configuration.url
        let transactionPooling = configuration.transactionPooling
        self.pool = BlockingConnectionPool(
            capacity: configuration.poolSize, acquireTimeout: configuration.acquireTimeout, logger: logger
        ) {
            try PostgresConnection.connect(url: url, settings: settings, transactionPooling: transactionPooling)
        }
    }

    /// Leases a connection for the duration of `body`.
    public func withConnection<Result: Sendable>(
        _ body: (PostgresSession) async throws -> Result
    ) async throws -> Result {
        try await pool.withConnection { try await body(PostgresSession(lease: $0)) }
    }

    /// Runs `body` inside `BEGIN ... COMMIT` on one leased connection; any error thrown by `body`
    /// rolls the transaction back and is rethrown.
    public func withTransaction<Result: Sendable>(
        _ body: (PostgresSession) async throws -> Result
    ) async throws -> Result {
        try await withConnection { session in
            try await session.execute("BEGIN")
            let result: Result
            do {
                result = try await body(session)
            } catch {
                // A failed ROLLBACK leaves the connection outside IDLE; the pool then discards it.
                try? await session.execute("ROLLBACK")
                throw error
            }
            try await session.execute("COMMIT")
            return result
        }
    }

    /// Runs one statement on a leased connection.
    @discardableResult
    public func query(_ sql: String, _ parameters: [any PostgresEncodable] = []) async throws -> PostgresRows {
        try await withConnection { try await $0.query(sql, parameters) }
    }

    /// How busy the pool is right now.
    public func statistics() async -> PoolStatistics {
        await pool.statistics()
    }

    /// Closes every connection and stops the thread pool; later calls throw `poolClosed`.
    public func shutdown() async {
        await pool.shutdown()
    }

    static func connectionSettings(_ configuration: Configuration) -> [(String, String)] {
        let connectSeconds = max(1, Int(configuration.connectTimeout.components.seconds))
        let statementMilliseconds = configuration.statementTimeout.totalMilliseconds
        // The server's own keepalives: it notices a vanished client within seconds, not the OS
        // default of two hours, and releases its session (and advisory locks) with it.
        // TimeZone=UTC: a time without an offset means UTC, whatever the server's default.
        // jit=off: every statement is short; compiling one the planner overestimates (the
        // statistics' aggregates) took 130 to 250 ms against 0.2 ms for running it (measured).
        let serverSettings = [
            (
                "options",
                "-c statement_timeout=\(statementMilliseconds) -c tcp_keepalives_idle=5 -c tcp_keepalives_interval=2"
                    + " -c tcp_keepalives_count=3 -c tcp_user_timeout=15000 -c TimeZone=UTC -c jit=off"
            )
        ]
        return [
            ("connect_timeout", String(connectSeconds)),
            ("application_name", configuration.applicationName),
        ] + (configuration.transactionPooling ? [] : serverSettings) + [
            // A dead peer (host gone, no RST) must not block a thread forever.
            ("keepalives", "1"),
            ("keepalives_idle", "5"),
            ("keepalives_interval", "2"),
            ("keepalives_count", "3"),
            ("tcp_user_timeout", String(statementMilliseconds + 5000)),
        ]
    }
}

/// A connection leased from `PostgresClient`; valid only inside the closure that received it.
public struct PostgresSession: Sendable {
    let lease: BlockingConnectionPool<PostgresConnection, PostgresError>.Lease

    /// Runs one statement with parameters `$1, $2, ...` and returns its rows.
    @discardableResult
    public func query(_ sql: String, _ parameters: [any PostgresEncodable] = []) async throws -> PostgresRows {
        let texts = parameters.map { $0.postgresText }
        return try await StatementSpan.run(sql) { try await lease.run { try $0.execute(sql, texts) } }
    }

    /// Runs a script of several statements without parameters, such as a migration.
    public func executeScript(_ sql: String) async throws {
        try await StatementSpan.run(sql) { try await lease.run { try $0.executeScript(sql) } }
    }

    /// Runs a statement that returns no rows.
    public func execute(_ sql: String, _ parameters: [any PostgresEncodable] = []) async throws {
        try await query(sql, parameters)
    }
}

/// In a service group, the client stays open until graceful shutdown and then closes: list it
/// before the services that use it.
extension PostgresClient: ClosesOnShutdown {}
