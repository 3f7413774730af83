import Foundation
import Logging
import Testing

@testable import Postgres

/// The Postgres layer against a real server (`DATABASE_URL`, started by `make test`).
@Suite(.tags(.servers)) struct PostgresClientTests {
    /// Postgres itself: these tests are about libpq and the pool, including session settings a
    /// transaction pooler would not carry (the service's suite runs through PgBouncer too).
    static let url =
        ProcessInfo.processInfo.environment["DATABASE_SESSION_URL"] ?? ProcessInfo.processInfo.environment["DATABASE_URL"]
        ?? "postgres://messages@127.0.0.1:5432/messages"

    func makeClient(poolSize: Int = 2, acquireTimeout: Duration = .seconds(2), url: String = Self.url) -> PostgresClient {
        PostgresClient(
            configuration: .init(url: url, poolSize: poolSize, acquireTimeout: acquireTimeout, connectTimeout: .seconds(2)),
            logger: Logger(label: "test")
        )
    }

    @Test func parametersTravelByteExactAndNullsStayNull() async throws {
        let client = makeClient()
        let hostile = "it's \"quoted\"; DROP TABLE x; -- 😀 \u{200F}"
        let id = UUID()
        let row = try await client.query(
            "SELECT $1::text AS text, $2::uuid AS id, $3::bigint AS number, $4::text AS missing, $5::uuid[] AS ids",
            [hostile, id, Int64(42), String?.none, [id, id]]
        ).first
        #expect(try row?.decode("text", as: String.self) == hostile)
        #expect(try row?.decode("id", as: UUID.self) == id)
        #expect(try row?.decode("number", as: Int64.self) == 42)
        #expect(try row?.decodeIfPresent("missing", as: String.self) == nil)
        #expect(try row?.decode("ids", as: [UUID].self) == [id, id])
        await client.shutdown()
    }

    @Test func serverErrorsCarrySQLStateButNeverTheStatement() async throws {
        let client = makeClient()
        let error = await #expect(throws: PostgresError.self) {
            try await client.query("SELECT * FROM no_such_table_secret_name WHERE a = $1", ["x"])
        }
        #expect(error?.code == .queryFailed)
        #expect(error?.sqlState == "42P01")
        #expect(error?.description.contains("no_such_table_secret_name") == false)
        #expect(error?.debugDescription.contains("no_such_table_secret_name") == true)
        // The connection is still good after a statement error.
        #expect(try await client.query("SELECT 1 AS one").first?.decode("one", as: Int.self) == 1)
        await client.shutdown()
    }

    @Test func uniqueViolationIsRecognised() async throws {
        let client = makeClient()
        let table = "pg_test_\(UUID().uuidString.prefix(8).lowercased())"
        try await client.query("CREATE TABLE \(table) (id int PRIMARY KEY)")
        try await client.query("INSERT INTO \(table) VALUES (1)")
        let error = await #expect(throws: PostgresError.self) { try await client.query("INSERT INTO \(table) VALUES (1)") }
        #expect(error?.isUniqueViolation == true)
        try await client.query("DROP TABLE \(table)")
        await client.shutdown()
    }

    @Test func transactionsCommitOrRollBackAsAWhole() async throws {
        let client = makeClient()
        let table = "pg_test_\(UUID().uuidString.prefix(8).lowercased())"
        try await client.query("CREATE TABLE \(table) (id int PRIMARY KEY)")
        try await client.withTransaction { session in
            try await session.execute("INSERT INTO \(table) VALUES (1)")
            try await session.execute("INSERT INTO \(table) VALUES (2)")
        }
        struct Abort: Error {}
        await #expect(throws: Abort.self) {
            try await client.withTransaction { session in
                try await session.execute("INSERT INTO \(table) VALUES (3)")
                throw Abort()
            }
        }
        await #expect(throws: PostgresError.self) {
            try await client.withTransaction { session in
                try await session.execute("INSERT INTO \(table) VALUES (4)")
                try await session.execute("INSERT INTO \(table) VALUES (1)")
            }
        }
        let ids = try await client.query("SELECT id FROM \(table) ORDER BY id").rows.map { try $0.decode("id", as: Int.self) }
        #expect(ids == [1, 2])
        try await client.query("DROP TABLE \(table)")
        await client.shutdown()
    }

    @Test func exhaustedPoolTimesOutInsteadOfQueueingForever() async throws {
        let client = makeClient(poolSize: 1, acquireTimeout: .milliseconds(200))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await client.query("SELECT pg_sleep(1)") }
            try await Task.sleep(for: .milliseconds(100))
            let error = await #expect(throws: PostgresError.self) { try await client.query("SELECT 1") }
            #expect(error?.code == .poolTimeout)
            #expect(error?.isUnavailable == true)
            try await group.waitForAll()
        }
        let statistics = await client.statistics()
        #expect(statistics.timeouts == 1)
        #expect(statistics.inUse == 0)
        #expect(try await client.query("SELECT 1 AS one").count == 1)
        await client.shutdown()
    }

    @Test func waitersGetConnectionsInTurn() async throws {
        let client = makeClient(poolSize: 2, acquireTimeout: .seconds(10))
        let sum = try await withThrowingTaskGroup(of: Int.self) { group in
            for value in 1...20 {
                group.addTask { try await client.query("SELECT $1::int AS v", [value]).first!.decode("v") }
            }
            return try await group.reduce(0, +)
        }
        #expect(sum == 210)
        let statistics = await client.statistics()
        #expect(statistics.inUse == 0)
        #expect(statistics.idle <= 2)
        await client.shutdown()
    }

    @Test func unreachableServerIsAConnectionFailure() async throws {
        let client = makeClient(url: "postgres://messages@127.0.0.1:1/messages")
        let error = await #expect(throws: PostgresError.self) { try await client.query("SELECT 1") }
        #expect(error?.code == .connectionFailed)
        #expect(error?.isUnavailable == true)
        #expect(await client.statistics().inUse == 0)
        await client.shutdown()
    }

    @Test func brokenConnectionIsReplaced() async throws {
        let client = makeClient(poolSize: 1)
        await #expect(throws: PostgresError.self) {
            try await client.query("SELECT pg_terminate_backend(pg_backend_pid())")
        }
        #expect(try await client.query("SELECT 2 AS two").first?.decode("two", as: Int.self) == 2)
        await client.shutdown()
    }

    @Test func closedPoolRefusesWork() async throws {
        let client = makeClient()
        try await client.query("SELECT 1")
        await client.shutdown()
        let error = await #expect(throws: PostgresError.self) { try await client.query("SELECT 1") }
        #expect(error?.code == .poolClosed)
    }

    @Test func statementTimeoutCancelsSlowStatements() async throws {
        let client = PostgresClient(
            configuration: .init(url: Self.url, poolSize: 1, statementTimeout: .milliseconds(100)),
            logger: Logger(label: "test")
        )
        let error = await #expect(throws: PostgresError.self) { try await client.query("SELECT pg_sleep(2)") }
        #expect(error?.sqlState == "57014")
        await client.shutdown()
    }
}
