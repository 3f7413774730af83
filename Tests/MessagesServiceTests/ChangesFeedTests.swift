import Foundation
import HTTPTypes
import TestSupport
import Testing

@testable import MessagesService

/// `GET /v1/channels/{id}/changes`, against the real Postgres and the in-memory store alike.
@Suite(.tags(.servers)) struct ChangesFeedTests {
    let alice = UUID()
    let bob = UUID()

    func messages(_ channel: UUID, _ rest: String = "") -> String {
        "/v1/channels/\(channel.lowercased)/messages\(rest)"
    }

    func changes(_ channel: UUID, _ query: String) -> String {
        "/v1/channels/\(channel.lowercased)/changes?\(query)"
    }

    @Test(arguments: StoreBackend.allCases)
    func walkedFromZeroTheFeedIsTheChannelsFinalState(backend: StoreBackend) async throws {
        let (alice, bob) = (self.alice, self.bob)
        try await backend.run { api in
            let channel = UUID()
            var ids: [String] = []
            for index in 0..<12 {
                let created = try await api.send(.post, messages(channel), user: alice, json: #"{"content":"root \#(index)"}"#)
                ids.append(try #require(created.json["id"] as? String))
            }
            var replies: [String] = []
            for index in 0..<5 {
                let reply = try await api.send(
                    .post, messages(channel), user: bob, json: #"{"content":"reply \#(index)","parent_id":"\#(ids[3])"}"#)
                replies.append(try #require(reply.json["id"] as? String))
            }
            for (id, text) in [(ids[2], "edited"), (ids[7], "edited once"), (ids[7], "edited twice")] {
                #expect(
                    try await api.send(.patch, messages(channel, "/\(id)"), user: alice, json: #"{"content":"\#(text)"}"#).status
                        == .ok)
            }
            #expect(try await api.send(.delete, messages(channel, "/\(ids[5])"), user: alice).status == .noContent)
            #expect(try await api.send(.delete, messages(channel, "/\(replies[1])"), user: bob).status == .noContent)
            // Reactions: one that stays, one added and taken back (no count left, still a change),
            // and a repeated add, which changes nothing.
            for (method, id) in [(HTTPRequest.Method.put, ids[9]), (.put, ids[9]), (.put, ids[10]), (.delete, ids[10])] {
                #expect(try await api.send(method, messages(channel, "/\(id)/reactions/:eyes:"), user: bob).status == .ok)
            }

            // Small batches, so that batch ends fall on every kind of change, a shared version included.
            var since: Int64 = 0
            var seen: [[String: Any]] = []
            var last: [String: Any] = [:]
            for _ in 0..<40 {
                let batch = try await api.send(.get, changes(channel, "since=\(since)&limit=3"), user: bob)
                #expect(batch.status == .ok)
                last = batch.json
                seen += last["changes"] as? [[String: Any]] ?? []
                since = Int64(try #require(last["next_since"] as? Int))
                if last["has_more"] as? Bool != true { break }
            }
            let page = try await api.send(.get, messages(channel), user: bob)
            let channelVersion = try #require((page.json["channel"] as? [String: Any])?["version"] as? Int)
            #expect(last["channel_version"] as? Int == channelVersion)
            #expect(since == Int64(channelVersion))

            // Each message once, in version order, as GET answers it now, named by its last change.
            let seenIDs = seen.compactMap { ($0["message"] as? [String: Any])?["id"] as? String }
            #expect(seenIDs.count == 17)
            #expect(Set(seenIDs) == Set(ids + replies))
            let versions = seen.compactMap { $0["version"] as? Int }
            #expect(versions == versions.sorted())
            for change in seen {
                let message = try #require(change["message"] as? [String: Any])
                let id = try #require(message["id"] as? String)
                let current = try await api.send(.get, messages(channel, "/\(id)"), user: bob)
                #expect(canonical(message) == canonical(current.json), "message \(id)")
                #expect(change["version"] as? Int == current.json["version"] as? Int)
                let reactions = message["reactions"] as? [String: Int]
                #expect(reactions == (id == ids[9] ? [":eyes:": 1] : [:]), "message \(id)")
                let expected =
                    if [ids[5], replies[1]].contains(id) {
                        "message.deleted"
                    } else if [ids[2], ids[7], ids[3], ids[9], ids[10]].contains(id) {
                        "message.updated"
                    } else {
                        "message.created"
                    }
                #expect(change["type"] as? String == expected, "message \(id)")
            }

            // Nothing after the end; a later write shows up alone.
            let idle = try await api.send(.get, changes(channel, "since=\(since)"), user: bob)
            #expect((idle.json["changes"] as? [Any])?.isEmpty == true)
            #expect(idle.json["next_since"] as? Int == channelVersion)
            #expect(idle.json["has_more"] as? Bool == false)
            #expect(
                try await api.send(.patch, messages(channel, "/\(ids[0])"), user: alice, json: #"{"content":"late"}"#).status
                    == .ok)
            let late = try await api.send(.get, changes(channel, "since=\(since)"), user: bob)
            let lateChanges = late.json["changes"] as? [[String: Any]] ?? []
            #expect(lateChanges.count == 1)
            #expect((lateChanges.first?["message"] as? [String: Any])?["id"] as? String == ids[0])
            #expect(late.json["next_since"] as? Int == channelVersion + 1)
        }
    }

    @Test(arguments: StoreBackend.allCases)
    func aBatchKeepsAReplyWithItsRoot(backend: StoreBackend) async throws {
        let alice = self.alice
        try await backend.run { api in
            let channel = UUID()
            let root = try await api.send(.post, messages(channel), user: alice, json: #"{"content":"root"}"#)
            let rootID = try #require(root.json["id"] as? String)
            _ = try await api.send(.post, messages(channel), user: alice, json: #"{"content":"r","parent_id":"\#(rootID)"}"#)
            // The reply gave its root the reply's version: one change of version 2, two messages.
            let first = try await api.send(.get, changes(channel, "since=0&limit=1"), user: alice)
            #expect((first.json["changes"] as? [Any])?.count == 2)
            #expect(first.json["next_since"] as? Int == 2)
            #expect(first.json["has_more"] as? Bool == false)
        }
    }

    @Test(arguments: StoreBackend.allCases)
    func aSinceThatIsNoVersionOfTheChannelIsRefused(backend: StoreBackend) async throws {
        let alice = self.alice
        try await backend.run { api in
            let channel = UUID()
            let empty = try await api.send(.get, changes(channel, "since=0"), user: alice)
            #expect(empty.status == .ok)
            #expect(empty.json["channel_version"] as? Int == 0)
            #expect(empty.json["next_since"] as? Int == 0)
            _ = try await api.send(.post, messages(channel), user: alice, json: #"{"content":"one"}"#)
            let ahead = try await api.send(.get, changes(channel, "since=2"), user: alice)
            #expect(ahead.status == .gone)
            #expect((ahead.json["error"] as? [String: Any])?["code"] as? String == "reload_required")
            for bad in ["-1", "x", "1.5", "9223372036854775808", ""] {
                let refused = try await api.send(.get, changes(channel, "since=\(bad)"), user: alice)
                #expect(refused.status == .badRequest, "since=\(bad)")
                #expect(refused.errorMessage?.contains("since") == true, "since=\(bad)")
            }
            #expect(try await api.send(.get, changes(channel, "limit=0"), user: alice).status == .badRequest)
        }
    }

    /// The batch rule on its own: a prefix of the (version, seq) order that ends at a version's
    /// end, at least `limit` long when there are that many.
    @Test func selectionEndsAtTheEndOfAVersion() {
        var random = SeededGenerator(seed: 410)
        for round in 0..<500 {
            let count = Int.random(in: 0...30, using: &random)
            var version: Int64 = 0
            let candidates = (0..<count).map { seq -> Message in
                if Bool.random(using: &random) || seq == 0 { version += 1 }
                return .sample(seq: Int64(seq + 1), version: version)
            }.shuffled(using: &random)
            let limit = Int.random(in: 1...10, using: &random)
            let batch = MessageChanges.select(from: candidates, limit: limit, channelVersion: version)
            let ordered = candidates.sorted { ($0.version, $0.seq) < ($1.version, $1.seq) }
            #expect(batch.messages == Array(ordered.prefix(batch.messages.count)), "round \(round)")
            #expect(batch.messages.count >= min(limit, count), "round \(round)")
            if batch.messages.count < count, let lastKept = batch.messages.last {
                #expect(ordered[batch.messages.count].version > lastKept.version, "round \(round)")
            }
            #expect(batch.hasMore == (batch.messages.count < count), "round \(round)")
        }
    }

    /// Schemathesis holds every answer to the spec: a code the spec's enum lacks fails it there,
    /// only after a long fuzzing run; here it fails at once.
    @Test func everyV1ErrorCodeIsOneTheSpecLists() async throws {
        let codes =
            [
                APIError.invalidArgument(""), .unauthenticated(""), .permissionDenied(""), .notFound(""), .conflict(""),
                .preconditionFailed(""), .reloadRequired(""), .payloadTooLarge(""), .unsupportedMediaType(""),
                .unavailable(""), .internal,
            ].map(\.code) + ["resource_exhausted", "method_not_allowed"]
        try await withMemoryService { api in
            let spec = String(decoding: try await api.send(.get, "/openapi.yaml").bytes, as: UTF8.self)
            let codeSchema = try #require(spec.range(of: "description: A stable machine-readable code."))
            let listed = spec[codeSchema.upperBound...].split(separator: "\n").dropFirst(2)
                .prefix { $0.trimmingCharacters(in: .whitespaces).hasPrefix("- ") }
                .map { $0.trimmingCharacters(in: .whitespaces).dropFirst(2) }.map(String.init)
            #expect(Set(codes).subtracting(listed).isEmpty, "missing from the spec: \(Set(codes).subtracting(listed))")
        }
    }

    private func canonical(_ object: [String: Any]) -> String {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }
}

extension Message {
    fileprivate static func sample(seq: Int64, version: Int64) -> Message {
        Message(
            id: UUID(), channelID: UUID(), seq: seq, version: version, authorID: UUID(), parentID: nil, type: .text,
            content: "m\(seq)", attachments: [], mentions: [], replyCount: 0, reactions: [:],
            createdAt: Timestamp(microsecondsSinceEpoch: 0), editedAt: nil, deletedAt: nil, clientMessageID: nil,
            requestHash: nil
        )
    }
}
