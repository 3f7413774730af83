import Pooling

/// One connection outside the pool, owned by one caller for as long as it likes: for session
/// state that must outlive a statement, such as an advisory lock or `LISTEN`.
///
/// Its blocking calls run on its own thread, never on the caller's thread or an event loop. Once a
/// call fails with `connectionLost`, the session state (locks, listens) is gone: close it and open
/// another.
public final class PostgresDedicatedConnection: Sendable {
    private let connection: PostgresConnection
    private let thread: BlockingExecutor

    private init(connection: PostgresConnection, thread: BlockingExecutor) {
        self.connection = connection
        self.thread = thread
    }

    /// Opens a connection with the client configuration's URL, timeouts and application name.
    public static func connect(_ configuration: PostgresClient.Configuration) async throws -> PostgresDedicatedConnection {
        let thread = BlockingExecutor(threadCount: 1)
        let settings = PostgresClient.connectionSettings(configuration)
        do {
            let connection = try await thread.run {
                try PostgresConnection.connect(
                    url: configuration.url, settings: settings, transactionPooling: configuration.transactionPooling)
            }
            return PostgresDedicatedConnection(connection: connection, thread: thread)
        } catch {
            await thread.shutdown()
            throw error
        }
    }

    /// Runs one statement with parameters `$1, $2, ...` and returns its rows.
    @discardableResult
    public func query(_ sql: String, _ parameters: [any PostgresEncodable] = []) async throws -> PostgresRows {
        let texts = parameters.map { $0.postgresText }
        let connection = self.connection
        return try await StatementSpan.run(sql) { try await thread.run { try connection.execute(sql, texts) } }
    }

    /// Waits up to `timeout` for `NOTIFY` on the channels this connection listens to (`LISTEN name`
    /// first); returns the notifications in the order they were sent, empty on timeout.
    public func waitForNotifications(timeout: Duration) async throws -> [PostgresNotification] {
        let connection = self.connection
        return try await thread.run { try connection.waitForNotifications(timeout: timeout) }
    }

    /// Closes the connection (which releases its session locks) and stops its thread.
    public func close() async {
        let connection = self.connection
        _ = try? await thread.run { connection.close() }
        await thread.shutdown()
    }
}
