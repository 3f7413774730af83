import Foundation
import HTTPTypes
import Testing

@testable import MessagesService

/// The v1 API against a real Postgres.
@Suite(.tags(.servers)) struct MessagesAPITests {
    let alice = UUID()
    let bob = UUID()

    func path(_ channel: UUID, _ rest: String = "") -> String {
        "/v1/channels/\(channel.uuidString.lowercased())/messages\(rest)"
    }

    @Test func createsAMessageWithSeqLocationAndETag() async throws {
        let channel = UUID()
        try await withService { api, _ in
            let reply = try await api.send(
                .post, path(channel), user: alice,
                json: #"{"content":"hi @\#(bob.uuidString.lowercased())","attachments":[{"path":"a/b.png","size":3}]}"#)
            #expect(reply.status == .created)
            let id = try #require(reply.json["id"] as? String)
            #expect(reply.json["seq"] as? Int == 1)
            #expect(reply.json["version"] as? Int == 1)
            #expect(reply.json["type"] as? String == "text")
            #expect(reply.json["author_id"] as? String == alice.uuidString.lowercased())
            #expect(reply.json["mentions"] as? [String] == [bob.uuidString.lowercased()])
            #expect(reply.headers[.location] == path(channel, "/\(id)"))
            #expect(reply.headers[.eTag] == "\"1\"")
            let fetched = try await api.send(.get, path(channel, "/\(id)"), user: bob)
            #expect(fetched.status == .ok)
            #expect(fetched.bytes == reply.bytes)
        }
    }

    @Test func storesContentByteExact() async throws {
        let channel = UUID()
        let content = "it's \"quoted\" \\ '; DROP TABLE messages; -- 👩‍👩‍👧 \u{202E}RTL\u{200F} <b>"
        try await withService { api, _ in
            let created = try await api.send(.post, path(channel), user: alice, json: #"{"content":\#(jsonString(content))}"#)
            #expect(created.status == .created)
            #expect(created.json["content"] as? String == content)
            let listed = try await api.send(.get, path(channel), user: alice)
            #expect(listed.items.first?["content"] as? String == content)
        }
    }

    @Test func idempotencyKeyReplaysTheOriginalAndRefusesAnotherBody() async throws {
        let channel = UUID()
        try await withService { api, _ in
            let headers: HTTPFields = [.testIdempotencyKey: "key-1"]
            let first = try await api.send(.post, path(channel), user: alice, json: #"{"content":"once"}"#, headers: headers)
            let retry = try await api.send(.post, path(channel), user: alice, json: #"{"content":"once"}"#, headers: headers)
            #expect(first.status == .created)
            #expect(retry.status == .ok)
            #expect(retry.headers[HTTPField.Name("Idempotent-Replayed")!] == "true")
            #expect(retry.json["id"] as? String == first.json["id"] as? String)
            let reuse = try await api.send(.post, path(channel), user: alice, json: #"{"content":"other"}"#, headers: headers)
            #expect(reuse.status == .conflict)
            // The key is per author: bob may use the same one.
            let bobs = try await api.send(.post, path(channel), user: bob, json: #"{"content":"once"}"#, headers: headers)
            #expect(bobs.status == .created)
            // The body's client_message_id is the same key as the header.
            let viaBody = try await api.send(
                .post, path(channel), user: alice, json: #"{"content":"once","client_message_id":"key-1"}"#)
            #expect(viaBody.status == .ok)
            let list = try await api.send(.get, path(channel), user: alice)
            #expect(list.items.count == 2)
        }
    }

    @Test func concurrentRetriesOfOneKeyCreateOneMessage() async throws {
        let channel = UUID()
        try await withService { api, _ in
            let statuses = try await withThrowingTaskGroup(of: HTTPResponse.Status.self) { group in
                for _ in 0..<10 {
                    group.addTask {
                        try await api.send(
                            .post, path(channel), user: alice, json: #"{"content":"x","client_message_id":"same"}"#
                        ).status
                    }
                }
                return try await group.reduce(into: [HTTPResponse.Status]()) { $0.append($1) }
            }
            #expect(statuses.filter { $0 == .created }.count == 1)
            #expect(statuses.filter { $0 == .ok }.count == 9)
            let list = try await api.send(.get, path(channel), user: alice)
            #expect(list.items.count == 1)
            #expect((list.json["channel"] as? [String: Any])?["last_seq"] as? Int == 1)
        }
    }

    @Test func fiftyConcurrentCreatesGetSeqOneToFiftyWithoutGaps() async throws {
        let channel = UUID()
        try await withService { api, _ in
            let seqs = try await withThrowingTaskGroup(of: Int.self) { group in
                for index in 0..<50 {
                    group.addTask {
                        let reply = try await api.send(.post, path(channel), user: alice, json: #"{"content":"m\#(index)"}"#)
                        #expect(reply.status == .created)
                        return reply.json["seq"] as? Int ?? -1
                    }
                }
                return try await group.reduce(into: [Int]()) { $0.append($1) }
            }
            #expect(seqs.sorted() == Array(1...50))
            let list = try await api.send(.get, path(channel, "?limit=100"), user: alice)
            #expect(list.items.compactMap { $0["seq"] as? Int } == Array(1...50))
            #expect(list.items.compactMap { $0["version"] as? Int } == Array(1...50))
        }
    }

    @Test(arguments: [
        (#"{"content":""}"#, "content must be 1..4000 characters"),
        (#"{"content":"\#(String(repeating: "é", count: 4001))"}"#, "content must be 1..4000 characters"),
        (#"{"content":5}"#, "content must be a string"),
        (#"{}"#, "content is required"),
        (#"{"content":null}"#, "content must not be null"),
        (#"{"content":"x","type":"video"}"#, "type must be one of text, audio, file"),
        (#"{"content":"x","attachments":{}}"#, "attachments must be an array"),
        (
            #"{"content":"x","attachments":[\#(Array(repeating: #"{"path":"p"}"#, count: 11).joined(separator: ","))]}"#,
            "attachments may hold at most 10 items"
        ),
        (
            #"{"content":"x","attachments":[{"path":"\#(String(repeating: "p", count: 1025))"}]}"#,
            "attachments[0].path must be 1..1024 characters"
        ),
        (#"{"content":"x","attachments":[{"name":"n"}]}"#, "attachments[0].path is required"),
        (#"{"content":"x","parent_id":"nope"}"#, "parent_id must be a UUID"),
        (#"{"content":"a\u0000b"}"#, "content must not contain NUL characters"),
        (#"{"content":"x""#, "request body is not valid JSON"),
        (#"[1,2]"#, "request body must be a JSON object"),
    ])
    func rejectsInvalidCreatesAndWritesNothing(body: String, message: String) async throws {
        let channel = UUID()
        try await withService { api, _ in
            let reply = try await api.send(.post, path(channel), user: alice, json: body)
            #expect(reply.status == .badRequest)
            #expect(reply.errorMessage?.hasPrefix(message) == true, "\(reply.errorMessage ?? "nil")")
            #expect((reply.json["error"] as? [String: Any])?["code"] as? String == "invalid_argument")
            let list = try await api.send(.get, path(channel), user: alice)
            #expect(list.items.isEmpty)
        }
    }

    @Test func rejectsBodiesOver64KiBWith413() async throws {
        let channel = UUID()
        try await withService { api, _ in
            let big = #"{"content":"\#(String(repeating: "x", count: 70_000))"}"#
            let reply = try await api.send(.post, path(channel), user: alice, json: big)
            #expect(reply.status == .contentTooLarge)
            #expect((reply.json["error"] as? [String: Any])?["code"] as? String == "payload_too_large")
            #expect(reply.errorMessage == "request body is larger than 65536 bytes")
            let inf326 = try await api.send(.post, "/threads/\(channel)/messages", user: alice, json: big)
            #expect(inf326.status == .contentTooLarge)
            #expect(inf326.json["detail"] as? String == "request body is larger than 65536 bytes")
            #expect(try await api.send(.get, path(channel), user: alice).items.isEmpty)
        }
    }

    @Test func rejectsNonJSONContentTypeWith415() async throws {
        try await withService { api, _ in
            let reply = try await api.send(
                .post, path(UUID()), user: alice, json: "content=x", headers: [.contentType: "application/x-www-form-urlencoded"])
            #expect(reply.status == .unsupportedMediaType)
        }
    }

    @Test func identityIsRequiredAndMustBeAUUID() async throws {
        try await withService { api, _ in
            let missing = try await api.send(.get, path(UUID()))
            #expect(missing.status == .unauthorized)
            #expect(missing.errorMessage == "X-User-Id header is required")
            let invalid = try await api.send(.post, path(UUID()), json: #"{"content":"x"}"#, headers: [.testUserID: "bob"])
            #expect(invalid.status == .unauthorized)
            #expect(invalid.errorMessage == "X-User-Id must be a UUID")
        }
    }

    @Test func badUUIDsInThePathAre400() async throws {
        try await withService { api, _ in
            let channel = try await api.send(.get, "/v1/channels/not-a-uuid/messages", user: alice)
            #expect(channel.status == .badRequest)
            #expect(channel.errorMessage == "channel_id must be a UUID")
            let message = try await api.send(.get, path(UUID(), "/123"), user: alice)
            #expect(message.status == .badRequest)
            #expect(message.errorMessage == "message_id must be a UUID")
        }
    }

    @Test func unknownMessageIs404() async throws {
        try await withService { api, _ in
            let reply = try await api.send(.get, path(UUID(), "/\(UUID().uuidString)"), user: alice)
            #expect(reply.status == .notFound)
            #expect(
                (reply.json["error"] as? [String: Any])?["request_id"] as? String
                    == reply.headers[HTTPField.Name("X-Request-ID")!])
        }
    }

    @Test func authorEditsKeepHistoryAndOthersAreForbidden() async throws {
        let channel = UUID()
        try await withService { api, _ in
            let created = try await api.send(.post, path(channel), user: alice, json: #"{"content":"first"}"#)
            let id = try #require(created.json["id"] as? String)
            let forbidden = try await api.send(.patch, path(channel, "/\(id)"), user: bob, json: #"{"content":"hacked"}"#)
            #expect(forbidden.status == .forbidden)
            let stale = try await api.send(
                .patch, path(channel, "/\(id)"), user: alice, json: #"{"content":"second"}"#, headers: [.ifMatch: "\"7\""])
            #expect(stale.status == .preconditionFailed)
            let edited = try await api.send(
                .patch, path(channel, "/\(id)"), user: alice, json: #"{"content":"second"}"#, headers: [.ifMatch: "\"1\""])
            #expect(edited.status == .ok)
            #expect(edited.json["content"] as? String == "second")
            #expect(edited.json["version"] as? Int == 2)
            #expect(edited.json["seq"] as? Int == 1)
            #expect(edited.json["edited_at"] is String)
            #expect(edited.headers[.eTag] == "\"2\"")
            #expect(try await api.send(.get, path(channel, "/\(id)/history"), user: bob).status == .forbidden)
            let history = try await api.send(.get, path(channel, "/\(id)/history"), user: alice)
            #expect(history.items.map { $0["content"] as? String } == ["first"])
            #expect(history.items.first?["version"] as? Int == 1)
            let empty = try await api.send(.patch, path(channel, "/\(id)"), user: alice, json: #"{}"#)
            #expect(empty.status == .badRequest)
            let tooLong = try await api.send(.patch, path(channel, "/\(id)"), user: alice, json: #"{"content":""}"#)
            #expect(tooLong.status == .badRequest)
            let unchanged = try await api.send(.get, path(channel, "/\(id)"), user: alice)
            #expect(unchanged.json["content"] as? String == "second")
        }
    }

    @Test func deleteLeavesATombstoneOnlyTheAuthorCanMake() async throws {
        let channel = UUID()
        try await withService { api, _ in
            let created = try await api.send(
                .post, path(channel), user: alice, json: #"{"content":"secret","attachments":[{"path":"x"}]}"#)
            let id = try #require(created.json["id"] as? String)
            _ = try await api.send(.patch, path(channel, "/\(id)"), user: alice, json: #"{"content":"secret 2"}"#)
            #expect(try await api.send(.delete, path(channel, "/\(id)"), user: bob).status == .forbidden)
            #expect(try await api.send(.delete, path(channel, "/\(id)"), user: alice).status == .noContent)
            #expect(try await api.send(.delete, path(channel, "/\(id)"), user: alice).status == .noContent)
            let tombstone = try await api.send(.get, path(channel, "/\(id)"), user: bob)
            #expect(tombstone.status == .ok)
            #expect(tombstone.json["content"] as? String == "")
            #expect((tombstone.json["attachments"] as? [Any])?.isEmpty == true)
            #expect(tombstone.json["deleted_at"] is String)
            #expect(tombstone.json["version"] as? Int == 3)
            let list = try await api.send(.get, path(channel), user: bob)
            #expect(list.items.first?["deleted_at"] is String)
            #expect(try await api.send(.get, path(channel, "/\(id)/history"), user: bob).items.isEmpty)
            let editDeleted = try await api.send(.patch, path(channel, "/\(id)"), user: alice, json: #"{"content":"back"}"#)
            #expect(editDeleted.status == .conflict)
        }
    }

    @Test func repliesAreListedUnderTheirRootNotInTheTimeline() async throws {
        let channel = UUID()
        try await withService { api, _ in
            let root = try await api.send(.post, path(channel), user: alice, json: #"{"content":"root"}"#)
            let rootID = try #require(root.json["id"] as? String)
            let reply = try await api.send(
                .post, path(channel), user: bob, json: #"{"content":"reply","parent_id":"\#(rootID)"}"#)
            #expect(reply.status == .created)
            let replyID = try #require(reply.json["id"] as? String)
            let nested = try await api.send(
                .post, path(channel), user: bob, json: #"{"content":"nested","parent_id":"\#(replyID)"}"#)
            #expect(nested.status == .badRequest)
            let timeline = try await api.send(.get, path(channel), user: alice)
            #expect(timeline.items.map { $0["content"] as? String } == ["root"])
            #expect(timeline.items.first?["reply_count"] as? Int == 1)
            let replies = try await api.send(.get, path(channel, "/\(rootID)/replies"), user: alice)
            #expect(replies.items.map { $0["content"] as? String } == ["reply"])
            #expect(try await api.send(.get, path(channel, "/\(UUID())/replies"), user: alice).status == .notFound)
        }
    }

    @Test func pagesWalkAFewHundredMessagesInEveryDirection() async throws {
        let channel = UUID()
        let total = 240
        try await withService { api, store in
            for index in 1...total {
                _ = try await store.create(
                    NewMessage(
                        channelID: channel, authorID: alice, type: .text, content: "m\(index)", attachments: [], parentID: nil,
                        idempotencyKey: nil))
            }
            // Backwards from the newest page.
            var seen: [Int] = []
            var reply = try await api.send(.get, path(channel, "?limit=37"), user: alice)
            #expect(reply.page["has_after"] as? Bool == false)
            while true {
                seen = reply.items.compactMap { $0["seq"] as? Int } + seen
                guard reply.page["has_before"] as? Bool == true, let before = reply.page["before"] as? String else { break }
                reply = try await api.send(.get, path(channel, "?limit=37&before=\(before)"), user: alice)
            }
            #expect(seen == Array(1...total))
            // Forwards from the oldest page.
            seen = []
            reply = try await api.send(.get, path(channel, "?limit=100&after=\(testCursor(0, channel: channel))"), user: alice)
            #expect(reply.page["has_before"] as? Bool == false)
            while true {
                seen += reply.items.compactMap { $0["seq"] as? Int }
                guard reply.page["has_after"] as? Bool == true, let after = reply.page["after"] as? String else { break }
                reply = try await api.send(.get, path(channel, "?limit=100&after=\(after)"), user: alice)
            }
            #expect(seen == Array(1...total))
            // Around a message id: the message is in the middle of its page.
            let middle = try await store.page(channelID: channel, scope: .timeline, position: .around(seq: 120), limit: 1).items[
                0]
            reply = try await api.send(.get, path(channel, "?limit=10&around=\(middle.id.uuidString)"), user: alice)
            #expect(reply.items.compactMap { $0["seq"] as? Int } == Array(115...124))
            #expect(reply.page["has_before"] as? Bool == true)
            #expect(reply.page["has_after"] as? Bool == true)
            #expect((reply.json["channel"] as? [String: Any])?["last_seq"] as? Int == total)
            // An empty page at the end keeps its position for polling.
            reply = try await api.send(.get, path(channel, "?after=\(testCursor(Int64(total), channel: channel))"), user: alice)
            #expect(reply.items.isEmpty)
            #expect(reply.page["after"] as? String == testCursor(Int64(total), channel: channel))
            #expect(reply.headers[HTTPField.Name("X-Cache")!] != nil)
        }
    }

    @Test(arguments: [
        "limit=0", "limit=101", "limit=abc", "before=zzz", "before=\(UUID().uuidString)", "before=czE6MQ&after=czE6MQ",
    ])
    func rejectsBadPageParameters(query: String) async throws {
        try await withService { api, _ in
            let reply = try await api.send(.get, path(UUID(), "?\(query)"), user: alice)
            #expect(reply.status == .badRequest)
            #expect(reply.errorMessage != nil)
        }
    }

    @Test func limitsArePublished() async throws {
        try await withService { api, _ in
            let reply = try await api.send(.get, "/v1/limits")
            #expect(reply.json["max_content_length"] as? Int == 4000)
            #expect(reply.json["max_attachments"] as? Int == 10)
            #expect(reply.json["max_body_bytes"] as? Int == 65536)
        }
    }
}
