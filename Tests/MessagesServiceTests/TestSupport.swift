import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import Postgres
import Testing

@testable import MessagesService

/// One migrated database for every test; tests stay independent by using fresh channel ids.
actor TestDatabase {
    static let shared = TestDatabase()
    static let url = ProcessInfo.processInfo.environment["DATABASE_URL"] ?? "postgres://messages@127.0.0.1:5432/messages"
    /// `make test` runs the suite again on a partitioned schema (`MESSAGES_PARTITIONS`) and
    /// through PgBouncer in transaction pooling (`PG_TRANSACTION_POOLING`, with
    /// `DATABASE_SESSION_URL` reaching Postgres itself), as the service would be configured.
    static let partitions = ProcessInfo.processInfo.environment["MESSAGES_PARTITIONS"].flatMap { Int($0) }
    static let transactionPooling = ProcessInfo.processInfo.environment["PG_TRANSACTION_POOLING"] == "true"
    static let sessionURL = ProcessInfo.processInfo.environment["DATABASE_SESSION_URL"] ?? url

    /// The variables that point a service (process or configuration) at the test database the
    /// way the tests reach it; `suffix` names a database of its own (`_pods`) on both URLs.
    static func environment(suffix: String = "") -> [String: String] {
        func named(_ url: String) -> String {
            var components = URLComponents(string: url)!
            components.path += suffix
            return components.string!
        }
        var variables = ["DATABASE_URL": named(url)]
        if sessionURL != url { variables["DATABASE_SESSION_URL"] = named(sessionURL) }
        if transactionPooling { variables["PG_TRANSACTION_POOLING"] = "true" }
        if let partitions { variables["MESSAGES_PARTITIONS"] = String(partitions) }
        return variables
    }

    /// A pool on the test database, as the service's (through the pooler, if there is one).
    static func configuration(url: String = url, poolSize: Int, acquireTimeout: Duration) -> PostgresClient.Configuration {
        .init(url: url, poolSize: poolSize, acquireTimeout: acquireTimeout, transactionPooling: transactionPooling)
    }

    private var client: Task<PostgresClient, any Error>?

    /// The shared client, with every migration applied. One task makes it: the actor is
    /// reentrant across the migration's awaits, and every suite starting at once used to make a
    /// client (and a migrator waiting on the migration lock) of its own, enough of them on a busy
    /// machine to run past the statement timeout.
    func migratedClient() async throws -> PostgresClient {
        if let client { return try await client.value }
        let making = Task {
            // Migrations hold a session's advisory lock: on their own connection, never through a pooler.
            let migrating = PostgresClient(
                configuration: .init(url: Self.sessionURL, poolSize: 1, acquireTimeout: .seconds(10)),
                logger: Logger(label: "test"))
            do {
                try await Migrator(client: migrating, logger: Logger(label: "test"), partitions: Self.partitions).migrate()
            } catch {
                await migrating.shutdown()
                throw error
            }
            await migrating.shutdown()
            return PostgresClient(
                configuration: Self.configuration(poolSize: 8, acquireTimeout: .seconds(10)), logger: Logger(label: "test"))
        }
        client = making
        return try await making.value
    }
}

/// A decoded response.
struct Reply: Sendable {
    let status: HTTPResponse.Status
    let headers: HTTPFields
    let bytes: [UInt8]

    /// The body as a JSON object.
    var json: [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(bytes))) as? [String: Any] ?? [:]
    }

    var errorMessage: String? { (json["error"] as? [String: Any])?["message"] as? String }
    var items: [[String: Any]] { json["items"] as? [[String: Any]] ?? [] }
    var page: [String: Any] { json["page"] as? [String: Any] ?? [:] }
}

/// Sends requests to the application in-process.
struct APIClient {
    let client: any TestClientProtocol

    func send(
        _ method: HTTPRequest.Method, _ uri: String, user: UUID? = nil, json: String? = nil, headers: HTTPFields = [:]
    ) async throws -> Reply {
        var headers = headers
        if let user { headers[HTTPField.Name("X-User-Id")!] = user.uuidString.lowercased() }
        if json != nil, headers[.contentType] == nil { headers[.contentType] = "application/json" }
        return try await client.execute(
            uri: uri, method: method, headers: headers, body: json.map { ByteBuffer(string: $0) }
        ) { response in
            Reply(status: response.status, headers: response.headers, bytes: Array(response.body.readableBytesView))
        }
    }
}

/// Runs `body` against the service wired as in production, on the shared test database.
func withService(
    configuration: ServiceConfiguration = .forTests,
    authenticator: Authenticator = .userHeader,
    _ body: @escaping @Sendable (APIClient, PostgresMessageStore) async throws -> Void
) async throws {
    let client = try await TestDatabase.shared.migratedClient()
    let store = PostgresMessageStore(client: client)
    let app = Application(
        router: buildRouter(
            store: store, timeline: nil, rateLimiter: nil,
            operations: Operations(statistics: PostgresStatisticsStore(client: client)), authenticator: authenticator,
            configuration: configuration))
    try await app.test(.router) { client in
        try await body(APIClient(client: client), store)
    }
}

/// The stores a handler test can run against: the real Postgres, and the in-memory store that
/// must behave the same.
enum StoreBackend: String, CaseIterable, Sendable {
    case postgres, memory

    /// Runs `body` against the service wired over this store.
    func run(_ body: @escaping @Sendable (APIClient) async throws -> Void) async throws {
        switch self {
        case .postgres: try await withService { api, _ in try await body(api) }
        case .memory: try await withMemoryService(body)
        }
    }
}

extension ServiceConfiguration {
    /// The defaults, with a fixed cursor key: tests make cursors the service accepts, and two
    /// routers built from it read each other's cursors.
    static var forTests: ServiceConfiguration {
        var configuration = ServiceConfiguration()
        configuration.cursorSecret = testCursorSecret
        return configuration
    }
}

let testCursorSecret = "cursor-secret-of-the-tests-0123456789"

/// The cursor the service (built from `.forTests`) hands out for a position of a page sequence.
func testCursor(_ seq: Int64, channel: UUID, scope: MessageScope = .timeline) -> String {
    makeCursorCodec(.forTests).cursors(channelID: channel, scope: scope).encode(seq)
}

/// A JSON string literal for `value`.
func jsonString(_ value: String) -> String {
    String(decoding: try! JSONEncoder().encode(value), as: UTF8.self)
}

extension HTTPField.Name {
    static let testUserID = HTTPField.Name("X-User-Id")!
    static let testIdempotencyKey = HTTPField.Name("Idempotency-Key")!
}

/// Runs `body` on a session whose search path is a new schema with the migrations up to
/// `last` applied (every one by default); everything it did is rolled back afterwards.
func withScratchSchema(
    throughVersion last: Int = .max, _ body: @escaping @Sendable (PostgresSession) async throws -> Void
) async throws {
    let client = try await TestDatabase.shared.migratedClient()
    try await client.withConnection { session in
        try await session.execute("BEGIN")
        do {
            let schema = "scratch_\(UUID().uuidString.lowercased().prefix(8))"
            try await session.executeScript("CREATE SCHEMA \(schema); SET LOCAL search_path = \(schema)")
            for migration in Migrations.all where migration.version <= last {
                try await session.executeScript(migration.sql)
            }
            try await body(session)
        } catch {
            try? await session.execute("ROLLBACK")
            throw error
        }
        try await session.execute("ROLLBACK")
    }
}
