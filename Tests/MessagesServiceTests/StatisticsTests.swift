import Foundation
import HTTPTypes
import NIOConcurrencyHelpers
import Postgres
import Testing

@testable import MessagesService

/// The statistics against the real Postgres: what the counters say equals what counting the
/// messages themselves says.
@Suite(.tags(.servers)) struct StatisticsTests {
    static let secret = "statistics-test-secret-0123456789-012345"

    /// The statistics of `channel` counted from `messages` directly: the truth the counters keep.
    func counted(
        _ channel: UUID, _ query: (String, [any PostgresEncodable]) async throws -> PostgresRows
    ) async throws -> [String: String] {
        let row = try #require(
            try await query(
                """
                SELECT count(*)::text AS messages, count(*) FILTER (WHERE parent_id IS NOT NULL)::text AS replies,
                    count(*) FILTER (WHERE deleted_at IS NOT NULL)::text AS deleted,
                    count(DISTINCT author_id)::text AS authors,
                    coalesce(api_time(min(created_at)), 'null') AS first, coalesce(api_time(max(created_at)), 'null') AS last,
                    coalesce((SELECT string_agg(day || '=' || n, ',' ORDER BY day) FROM (
                        SELECT (created_at AT TIME ZONE 'UTC')::date::text AS day, count(*) AS n FROM messages
                        WHERE channel_id = $1 AND (created_at AT TIME ZONE 'UTC')::date > (now() AT TIME ZONE 'UTC')::date - 30
                        GROUP BY 1) AS per_day), '') AS days
                FROM messages WHERE channel_id = $1
                """, [channel]
            ).first)
        var fields: [String: String] = [:]
        for name in ["messages", "replies", "deleted", "authors", "first", "last", "days"] {
            fields[name] = try row.decode(name)
        }
        return fields
    }

    /// The same fields from an answer of the API (or of the store).
    func reported(_ statistics: ChannelStatistics) -> [String: String] {
        [
            "messages": "\(statistics.messages)", "replies": "\(statistics.replies)", "deleted": "\(statistics.deleted)",
            "authors": "\(statistics.authors)", "first": statistics.firstMessageAt ?? "null",
            "last": statistics.lastMessageAt ?? "null",
            "days": statistics.days.filter { $0.messages > 0 }.map { "\($0.day)=\($0.messages)" }.joined(separator: ","),
        ]
    }

    static func statistics(from json: [String: Any]) -> ChannelStatistics {
        ChannelStatistics(
            channelID: UUID(uuidString: json["channel_id"] as? String ?? "") ?? UUID(),
            messages: (json["messages"] as? Int).map(Int64.init) ?? -1, replies: (json["replies"] as? Int).map(Int64.init) ?? -1,
            deleted: (json["deleted"] as? Int).map(Int64.init) ?? -1, authors: (json["authors"] as? Int).map(Int64.init) ?? -1,
            firstMessageAt: json["first_message_at"] as? String, lastMessageAt: json["last_message_at"] as? String,
            days: (json["days"] as? [[String: Any]] ?? []).map {
                DayCount(day: $0["day"] as? String ?? "", messages: ($0["messages"] as? Int).map(Int64.init) ?? -1)
            })
    }

    @Test func channelStatisticsEqualCountsTakenFromPostgresAfterAConcurrentSeededLoad() async throws {
        let channels = (0..<4).map { _ in UUID() }
        let authors = (0..<5).map { _ in UUID() }
        try await withService { api, _ in
            // Per channel, concurrently: roots by rotating authors, replies to some, deletes of some.
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (index, channel) in channels.enumerated() {
                    group.addTask {
                        let path = "/v1/channels/\(channel)/messages"
                        var roots: [String] = []
                        for n in 0..<(12 + index * 3) {
                            let author = authors[(n + index) % (index + 2)]
                            let parent = n % 4 == 3 ? roots.last : nil
                            let body =
                                parent.map { #"{"content":"reply \#(n)","parent_id":"\#($0)"}"# } ?? #"{"content":"m \#(n)"}"#
                            let reply = try await api.send(.post, path, user: author, json: body)
                            #expect(reply.status == .created)
                            if parent == nil, let id = reply.json["id"] as? String { roots.append(id) }
                            if n % 5 == 4, let id = reply.json["id"] as? String {
                                #expect(try await api.send(.delete, "\(path)/\(id)", user: author).status == .noContent)
                                roots.removeAll { $0 == id }  // a deleted root takes no replies
                            }
                        }
                        // What must not count: a repeated delete, a repeated create with its key, a
                        // reply to a root that is not there (the write rolls back).
                        if let first = roots.first {
                            let owner = authors[index % (index + 2)]
                            #expect(try await api.send(.delete, "\(path)/\(first)", user: owner).status == .noContent)
                            #expect(try await api.send(.delete, "\(path)/\(first)", user: owner).status == .noContent)
                        }
                        let keyed = #"{"content":"once","client_message_id":"k-\#(index)"}"#
                        #expect(try await api.send(.post, path, user: authors[0], json: keyed).status == .created)
                        let again = try await api.send(.post, path, user: authors[0], json: keyed)
                        #expect(again.status == .ok || again.status == .created)
                        #expect(again.headers[HTTPField.Name("Idempotent-Replayed")!] == "true")
                        let orphan = #"{"content":"lost","parent_id":"\#(UUID())"}"#
                        #expect(try await api.send(.post, path, user: authors[1], json: orphan).status.code >= 400)
                    }
                }
                try await group.waitForAll()
            }
            let client = try await TestDatabase.shared.migratedClient()
            for channel in channels {
                let reply = try await api.send(.get, "/v1/channels/\(channel)/stats", user: authors[0])
                #expect(reply.status == .ok)
                let answered = Self.statistics(from: reply.json)
                #expect(answered.channelID == channel)
                #expect(answered.days.count == 30)
                #expect(answered.days.map(\.day) == answered.days.map(\.day).sorted())
                #expect(reported(answered) == (try await counted(channel) { try await client.query($0, $1) }))
                #expect(answered.replies > 0 && answered.deleted > 0 && answered.authors > 1)
            }
            // A channel nobody wrote in: zeros and nulls, not an error.
            let empty = try await api.send(.get, "/v1/channels/\(UUID())/stats", user: authors[0])
            #expect(empty.status == .ok)
            #expect(empty.json["messages"] as? Int == 0)
            #expect(empty.json["first_message_at"] is NSNull)
            let bad = try await api.send(.get, "/v1/channels/nope/stats", user: authors[0])
            #expect(bad.status == .badRequest)
            #expect(String(decoding: bad.bytes, as: UTF8.self).contains("channel_id"))
        }
    }

    @Test func serviceStatisticsAreForModeratorsAndLieBetweenCountsTakenBeforeAndAfter() async throws {
        let verifier = try await JWTVerifier(
            key: .hmacSecret(Self.secret), expectations: .init(issuer: "messages-service", audience: "messages-api"))
        @Sendable func bearer(_ roles: [String]) async throws -> HTTPFields {
            let token = try await JWTVerifier.mint(
                secret: Self.secret, subject: UUID(), roles: roles, issuer: "messages-service", audience: "messages-api",
                lifetime: 600)
            return [.authorization: "Bearer \(token)"]
        }
        let client = try await TestDatabase.shared.migratedClient()
        // Other suites write meanwhile: every total only grows, so the answer lies between two counts.
        let totals = """
            SELECT count(*) AS messages, count(*) FILTER (WHERE deleted_at IS NOT NULL) AS deleted,
                count(DISTINCT channel_id) AS channels,
                count(*) FILTER (WHERE (created_at AT TIME ZONE 'UTC')::date = (now() AT TIME ZONE 'UTC')::date) AS today,
                (SELECT coalesce(sum(published), 0)::bigint FROM event_days) AS published
            FROM messages
            """
        try await withService(authenticator: .jwt(verifier)) { api, _ in
            #expect(
                try await api.send(
                    .post, "/v1/channels/\(UUID())/messages", json: #"{"content":"x"}"#, headers: try await bearer([])
                ).status == .created)
            #expect(try await api.send(.get, "/v1/stats", headers: try await bearer([])).status == .forbidden)
            #expect(try await api.send(.get, "/v1/stats").status == .unauthorized)
            let before = try #require(try await client.query(totals).first)
            let reply = try await api.send(.get, "/v1/stats", headers: try await bearer(["moderator"]))
            let after = try #require(try await client.query(totals).first)
            #expect(reply.status == .ok)
            func between(_ answered: Any?, _ column: String) throws -> Bool {
                guard let value = answered as? Int else { return false }
                return try before.decode(column, as: Int.self) <= value && value <= after.decode(column, as: Int.self)
            }
            #expect(try between(reply.json["messages"], "messages"))
            #expect(try between(reply.json["deleted"], "deleted"))
            #expect(try between(reply.json["channels"], "channels"))
            let days = try #require(reply.json["days"] as? [[String: Any]])
            #expect(days.count == 30)
            #expect(try between(days.last?["messages"], "today"))
            let events = try #require(reply.json["events"] as? [String: Any])
            #expect(try between(events["published"], "published"))
            #expect((events["waiting"] as? Int ?? -1) >= 0 && (events["dead"] as? Int ?? -1) >= 0)
            #expect((events["oldest_waiting_seconds"] as? Double ?? -1) >= 0 || events["oldest_waiting_seconds"] is Int)
        }
    }

    @Test func theMigrationCountsTheMessagesAlreadyThereOverTheirDays() async throws {
        try await withScratchSchema(throughVersion: 9) { session in
            // Messages written before the counters existed, spread over five days and three authors.
            let channel = UUID()
            try await session.query(
                """
                INSERT INTO channels (id, last_seq, version, message_count) VALUES ($1, 20, 20, 20);
                """, [channel])
            try await session.query(
                """
                INSERT INTO messages (id, channel_id, seq, version, author_id, parent_id, content, created_at, deleted_at)
                SELECT gen_random_uuid(), $1, n, n, ('00000000-0000-4000-8000-00000000000' || (n % 3))::uuid,
                    CASE WHEN n % 4 = 0 THEN gen_random_uuid() END, 'm', now() - (20 - n) * interval '6 hours',
                    CASE WHEN n % 6 = 0 THEN now() END
                FROM generate_series(1, 20) AS n
                """, [channel])
            try await session.executeScript(Migrations.all.first { $0.version == 10 }!.sql)
            let answered = try PostgresStatisticsStore.channelStatistics(
                channel, from: try await session.query(PostgresStatisticsStore.selectChannel, [channel]))
            #expect(reported(answered) == (try await counted(channel) { try await session.query($0, $1) }))
            #expect(answered.days.filter { $0.messages > 0 }.count > 1)
            #expect(answered.replies > 0 && answered.deleted > 0 && answered.authors == 3)
            // The schema holds this channel only: the service's totals are its own. The first
            // call sums the days past into message_days, the second reads them there.
            let today = try #require(
                try await session.query(PostgresStatisticsStore.selectToday).first?.decode("today", as: String.self))
            for _ in 1...2 {
                try await session.query(PostgresStatisticsStore.rollUpDays, [today])
                let service = try PostgresStatisticsStore.serviceStatistics(
                    from: try await session.query(PostgresStatisticsStore.selectService, [today]))
                #expect(service.channels == 1)
                #expect(
                    [service.messages, service.replies, service.deleted]
                        == [answered.messages, answered.replies, answered.deleted])
                #expect(service.days.map(\.day) == answered.days.map(\.day))
                #expect(service.days.map(\.messages) == answered.days.map(\.messages))
            }
            let rolledUp = try await session.query("SELECT count(*)::int AS n FROM message_days")
            #expect(try rolledUp.first?.decode("n", as: Int.self) == 28)
        }
    }
}
