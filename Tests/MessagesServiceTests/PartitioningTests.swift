import Foundation
import Postgres
import Testing

@testable import MessagesService

/// `MESSAGES_PARTITIONS`: converting the channel tables keeps every row and every write, and every
/// statement the stores run touches one partition. Each test works in a schema of its own inside
/// a transaction it rolls back, so it runs the same whether the suite's database is partitioned
/// or not (`make test` runs the suite on both).
@Suite(.tags(.servers)) struct PartitioningTests {
    static let channelTables = ChannelPartitioning.tables.map(\.name)

    func rowCounts(_ session: PostgresSession) async throws -> [String: Int] {
        var counts: [String: Int] = [:]
        for table in Self.channelTables {
            counts[table] = try await session.query("SELECT count(*) AS n FROM \(table)").first?.decode("n")
        }
        return counts
    }

    /// One call of a write function; its outcome and the channel's last seq.
    func write(_ session: PostgresSession, _ call: String, _ parameters: [any PostgresEncodable]) async throws -> (String, Int?) {
        let row = try #require(try await session.query("SELECT outcome, channel_last_seq FROM \(call)", parameters).first)
        return (try row.decode("outcome"), try row.decodeIfPresent("channel_last_seq"))
    }

    func create(
        _ session: PostgresSession, channel: UUID, author: UUID, parent: UUID? = nil, id: UUID = UUID()
    ) async throws -> (String, Int?) {
        try await write(
            session, "create_message($1, $2, $3, $4, 'text', 'hi', '[]', '{}', NULL, NULL, $5, NULL)",
            [id, channel, author, parent, UUID()])
    }

    @Test func aTableALaterMigrationAddsIsPartitionedLikeTheOthers() async throws {
        try await withScratchSchema(throughVersion: 9) { session in
            try await session.executeScript(ChannelPartitioning.conversion(count: 3))
            for migration in Migrations.all where migration.version > 9 { try await session.executeScript(migration.sql) }
            #expect(try await ChannelPartitioning.plainTables(on: session).sorted() == ["channel_authors", "channel_days"])
            try await session.executeScript(ChannelPartitioning.conversion(count: 3))
            #expect(try await ChannelPartitioning.plainTables(on: session) == [])
            let partitions = try await session.query(
                "SELECT count(*) AS n FROM pg_inherits WHERE inhparent = 'channel_days'::regclass"
            ).first?.decode("n", as: Int.self)
            #expect(partitions == 3)
            // The (replaced) write functions write into them.
            let channel = UUID()
            #expect(try await create(session, channel: channel, author: UUID()).0 == "created")
            let days = try await session.query(
                "SELECT sum(messages)::int AS n FROM channel_days WHERE channel_id = $1", [channel])
            #expect(try days.first?.decode("n", as: Int.self) == 1)
        }
    }

    @Test func convertingKeepsEveryRowAndEveryWriteGoesOn() async throws {
        try await withScratchSchema { session in
            let (alice, bob) = (UUID(), UUID())
            let channels = (0..<6).map { _ in UUID() }
            var roots: [UUID] = []
            for channel in channels {
                let root = UUID()
                roots.append(root)
                #expect(try await create(session, channel: channel, author: alice, id: root).0 == "created")
                #expect(try await create(session, channel: channel, author: bob, parent: root).0 == "created")
                #expect(
                    try await write(
                        session, "edit_message($1, $2, $3, 'edited', NULL, NULL, NULL, $4, NULL)", [channel, root, alice, UUID()]
                    ).0 == "edited")
                #expect(
                    try await write(session, "react_message($1, $2, $3, '👍', true, 20, $4, NULL)", [channel, root, bob, UUID()])
                        .0 == "changed")
                try await session.execute(
                    "INSERT INTO read_markers (channel_id, user_id, last_read_seq) VALUES ($1, $2, 1)", [channel, bob])
                try await session.execute(
                    "INSERT INTO channel_members (channel_id, user_id, role) VALUES ($1, $2, 'member')", [channel, bob])
            }
            let before = try await rowCounts(session)
            #expect(
                before == [
                    "channels": 6, "messages": 12, "message_edits": 6, "reactions": 6, "read_markers": 6, "channel_members": 6,
                    "channel_authors": 12, "channel_days": 6,
                ])
            #expect(try await ChannelPartitioning.partitionCount(on: session) == nil)

            try await session.executeScript(ChannelPartitioning.conversion(count: 3))

            #expect(try await ChannelPartitioning.partitionCount(on: session) == 3)
            #expect(try await rowCounts(session) == before)
            // The rows spread over the partitions by channel.
            let used = try await session.query("SELECT count(DISTINCT tableoid) AS n FROM messages").first?.decode(
                "n", as: Int.self)
            #expect((used ?? 0) > 1)
            // Every write function works on the new tables, and seq goes on where it was.
            let (outcome, lastSeq) = try await create(session, channel: channels[0], author: alice)
            #expect(outcome == "created")
            #expect(lastSeq == 3)
            // The writes of migration 11, with a trace context, too.
            let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
            #expect(
                try await write(
                    session, "create_message($1, $2, $3, NULL, 'text', 'hi', '[]', '{}', NULL, NULL, $4, NULL, $5, NULL)",
                    [UUID(), channels[0], alice, UUID(), traceparent]
                ).0 == "created")
            let traced = try await session.query(
                "SELECT count(*)::int AS n FROM outbox WHERE channel_id = $1 AND traceparent = $2", [channels[0], traceparent])
            #expect(try traced.first?.decode("n", as: Int.self) == 1)
            #expect(
                try await write(session, "delete_message($1, $2, $3, false, $4, NULL)", [channels[1], roots[1], alice, UUID()]).0
                    == "deleted")
            #expect(
                try await write(
                    session, "react_message($1, $2, $3, '👍', false, 20, $4, NULL)", [channels[2], roots[2], bob, UUID()]
                )
                .0 == "changed")
            // The keys still hold: an idempotency key is unique per author and channel, a reply needs its root.
            try await session.execute(
                "SELECT create_message($1, $2, $3, NULL, 'text', 'k', '[]', '{}', 'key', NULL, $4, NULL)",
                [UUID(), channels[3], alice, UUID()])
            let replayed = try await session.query(
                "SELECT outcome FROM create_message($1, $2, $3, NULL, 'text', 'k', '[]', '{}', 'key', NULL, $4, NULL)",
                [UUID(), channels[3], alice, UUID()])
            #expect(try replayed.first?.decode("outcome", as: String.self) == "replayed")
            await #expect(throws: PostgresError.self) {
                try await create(session, channel: channels[4], author: bob, parent: UUID())
            }
        }
    }

    @Test func everyStoreStatementReadsOnePartitionOfEachTable() async throws {
        try await withScratchSchema { session in
            try await session.executeScript(ChannelPartitioning.conversion(count: 4))
            let channel = UUID()
            for (index, statement) in SQL.all.enumerated() {
                let name = "partition_check_\(index)"
                try await session.executeScript("PREPARE \(name) AS \(statement)")
                let types = try #require(
                    try await session.query(
                        "SELECT array_to_string(parameter_types::text[], ',') AS types FROM pg_prepared_statements WHERE name = $1",
                        [name]
                    ).first?.decode("types", as: String.self))
                let values = types.split(separator: ",").map { Self.sampleValue(ofType: String($0), channel: channel) }
                let plan = try #require(
                    try await session.query("EXPLAIN (FORMAT JSON) EXECUTE \(name)(\(values.joined(separator: ", ")))").first?
                        .text("QUERY PLAN"))
                try await session.executeScript("DEALLOCATE \(name)")
                // A plan made for these values names only the partitions it reads.
                let partitions = Set(plan.matches(of: /"Relation Name": "([a-z_]+)_p(\d+)"/).map { "\($0.1)_p\($0.2)" })
                for table in Self.channelTables {
                    let read = partitions.filter {
                        $0.hasPrefix(table + "_p") && $0.dropFirst(table.count + 2).allSatisfy(\.isNumber)
                    }
                    #expect(read.count <= 1, "\(table): \(read.sorted()) in\n\(statement)")
                }
            }
        }
    }

    /// The write functions run statements of their own: each one on a channel table names the
    /// channel (`p_channel`) in equality or among the values it inserts.
    @Test func everyStatementOfTheWriteFunctionsNamesTheChannel() async throws {
        let client = try await TestDatabase.shared.migratedClient()
        let functions = ["create_message", "edit_message", "delete_message", "react_message", "lock_message", "record_event"]
        let tables = Self.channelTables.joined(separator: "|")
        let onChannelTable = try Regex("\\b(FROM|JOIN|UPDATE|INTO)\\s+(\(tables))\\b")
        for function in functions {
            let definition = try #require(
                try await client.query(
                    """
                    SELECT pg_get_functiondef(p.oid) AS definition FROM pg_proc p
                    WHERE p.proname = $1 AND p.pronamespace = current_schema()::regnamespace
                    """, [function]
                ).first?.decode("definition", as: String.self))
            let body = definition.split(separator: "$function$").dropFirst().first.map(String.init) ?? ""
            let statements = body.split(separator: ";").map(String.init).filter { $0.contains(onChannelTable) }
            #expect(!statements.isEmpty || function == "record_event", "\(function) has no statement on a channel table")
            for statement in statements {
                let names =
                    statement.contains(/=\s*p_channel\b/)
                    || statement.contains(/VALUES\s*\([^;]*\bp_channel\b/)
                #expect(names, "\(function):\(statement)")
            }
        }
    }

    /// A literal of `type` for `EXPLAIN EXECUTE`: the channel for every uuid, so the plan is made
    /// for one channel.
    static func sampleValue(ofType type: String, channel: UUID) -> String {
        switch type {
        case "uuid": "'\(channel.lowercased)'::uuid"
        case "bigint", "integer", "smallint": "1::\(type)"
        case "boolean": "false"
        case "jsonb": "'[]'::jsonb"
        case "uuid[]": "'{}'::uuid[]"
        case "timestamp with time zone": "now()"
        default: "'x'::\(type)"
        }
    }
}
