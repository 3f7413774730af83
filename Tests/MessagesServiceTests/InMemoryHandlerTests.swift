import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

@testable import MessagesService

/// Runs `body` against both APIs wired as in production, over an in-memory store: no server.
func withMemoryService(
    configuration: ServiceConfiguration = .forTests, authenticator: Authenticator = .userHeader,
    _ body: @escaping @Sendable (APIClient) async throws -> Void
) async throws {
    let app = Application(
        router: buildRouter(
            store: InMemoryMessageStore(), timeline: nil, rateLimiter: nil, authenticator: authenticator,
            configuration: configuration
        )
    )
    try await app.test(.router) { client in try await body(APIClient(client: client)) }
}

/// The handlers of both APIs over the in-memory store: what a request gets, in milliseconds and
/// without Postgres, Redis or RabbitMQ. The same behaviours are tested against the real servers in
/// the other suites.
@Suite struct InMemoryHandlerTests {
    let alice = UUID()
    let bob = UUID()

    func v1(_ channel: UUID, _ rest: String = "") -> String {
        "/v1/channels/\(channel.uuidString.lowercased())/messages\(rest)"
    }

    /// FastAPI validated the path before anything else: a malformed id is the first error, in
    /// both identity modes, before the caller is asked for (401/422) or rate-limited.
    @Test func theLegacyAPIRejectsAMalformedPathIdBeforeAskingWhoCalls() async throws {
        let verifier = try await JWTVerifier(
            key: .hmacSecret("path-first-secret-0123456789-0123456789"),
            expectations: .init(issuer: "messages-service", audience: "messages-api")
        )
        for authenticator in [Authenticator.jwt(verifier), .userHeader] {
            try await withMemoryService(authenticator: authenticator) { api in
                let requests: [(HTTPRequest.Method, String, String?)] = [
                    (.get, "/threads/not-a-uuid/messages", nil),
                    (.post, "/threads/not-a-uuid/messages", #"{"content":"x"}"#),
                    (.put, "/threads/\(UUID())/messages/not-a-uuid", #"{"content":"x"}"#),
                    (.delete, "/threads/not-a-uuid/messages/\(UUID())", nil),
                ]
                for (method, path, json) in requests {
                    let reply = try await api.send(method, path, json: json)
                    #expect(reply.status == .unprocessableContent, "\(method) \(path)")
                    let problem = (reply.json["detail"] as? [[String: Any]])?.first
                    #expect(problem?["type"] as? String == "uuid_parsing", "\(method) \(path)")
                    #expect((problem?["loc"] as? [String])?.first == "path", "\(method) \(path)")
                }
                // A well-formed path gets to the caller check: 401 without a token, 422 for the
                // missing header of a header-mode write.
                let write = try await api.send(.post, "/threads/\(UUID())/messages", json: #"{"content":"x"}"#)
                if case .jwt = authenticator.mode {
                    #expect(write.status == .unauthorized)
                } else {
                    #expect(write.status == .unprocessableContent)
                }
            }
        }
    }

    @Test func pagesWalkBothWaysWithCursorsBoundToTheirList() async throws {
        let channel = UUID()
        try await withMemoryService { api in
            var ids: [String] = []
            for index in 1...25 {
                let reply = try await api.send(.post, v1(channel), user: alice, json: #"{"content":"m\#(index)"}"#)
                #expect(reply.status == .created)
                ids.append(try #require(reply.json["id"] as? String))
            }
            var seen: [Int] = []
            var reply = try await api.send(.get, v1(channel, "?limit=10"), user: alice)
            while true {
                seen = reply.items.compactMap { $0["seq"] as? Int } + seen
                guard reply.page["has_before"] as? Bool == true, let before = reply.page["before"] as? String else { break }
                reply = try await api.send(.get, v1(channel, "?limit=10&before=\(before)"), user: alice)
            }
            #expect(seen == Array(1...25))
            // A cursor of this channel is no cursor of another channel, nor of a reply thread.
            let before = try #require(try await api.send(.get, v1(channel, "?limit=5"), user: alice).page["before"] as? String)
            let elsewhere = try await api.send(.get, v1(UUID(), "?before=\(before)"), user: alice)
            #expect(elsewhere.status == .badRequest)
            #expect(elsewhere.errorMessage == "before must be a message id or a cursor from an earlier page of this list")
            let replies = try await api.send(.get, v1(channel, "/\(ids[0])/replies?after=\(before)"), user: alice)
            #expect(replies.status == .badRequest)
            // The cursor that used to overflow `seq + 1` is a 400 like any forged one.
            let overflow = try await api.send(.get, v1(channel, "?after=czE6OTIyMzM3MjAzNjg1NDc3NTgwNw"), user: alice)
            #expect(overflow.status == .badRequest)
            // And a genuinely signed cursor at the largest seq is outside the channel: a 400 too.
            let largest = try await api.send(
                .get, v1(channel, "?after=\(testCursor(CursorCodec.maxSeq, channel: channel))"), user: alice)
            #expect(largest.status == .badRequest)
            #expect(largest.errorMessage == "the cursor lies outside this channel's messages")
            // Around a message id.
            let around = try await api.send(.get, v1(channel, "?limit=4&around=\(ids[9])"), user: alice)
            #expect(around.items.compactMap { $0["seq"] as? Int } == [8, 9, 10, 11])
        }
    }

    @Test func aSignedCursorPastTheChannelsEndIs400() async throws {
        let channel = UUID()
        try await withMemoryService { api in
            _ = try await api.send(.post, v1(channel), user: alice, json: #"{"content":"one"}"#)
            let inRange = try await api.send(.get, v1(channel, "?after=\(testCursor(2, channel: channel))"), user: alice)
            #expect(inRange.status == .ok)
            let past = try await api.send(.get, v1(channel, "?before=\(testCursor(3, channel: channel))"), user: alice)
            #expect(past.status == .badRequest)
            #expect(past.errorMessage == "the cursor lies outside this channel's messages")
        }
    }

    @Test func idempotentCreatesEditsAndTombstones() async throws {
        let channel = UUID()
        try await withMemoryService { api in
            let key: HTTPFields = [.testIdempotencyKey: "k1"]
            let first = try await api.send(.post, v1(channel), user: alice, json: #"{"content":"hi"}"#, headers: key)
            let again = try await api.send(.post, v1(channel), user: alice, json: #"{"content":"hi"}"#, headers: key)
            let other = try await api.send(.post, v1(channel), user: alice, json: #"{"content":"other"}"#, headers: key)
            #expect(first.status == .created)
            #expect(again.status == .ok)
            #expect(again.json["id"] as? String == first.json["id"] as? String)
            #expect(other.status == .conflict)
            let id = try #require(first.json["id"] as? String)
            let stale = try await api.send(
                .patch, v1(channel, "/\(id)"), user: alice, json: #"{"content":"x"}"#, headers: [.ifMatch: "\"9\""])
            #expect(stale.status == .preconditionFailed)
            #expect(try await api.send(.patch, v1(channel, "/\(id)"), user: bob, json: #"{"content":"x"}"#).status == .forbidden)
            #expect(try await api.send(.patch, v1(channel, "/\(id)"), user: alice, json: #"{"content":"edited"}"#).status == .ok)
            #expect(try await api.send(.get, v1(channel, "/\(id)/history"), user: bob).status == .forbidden)
            #expect(
                try await api.send(.get, v1(channel, "/\(id)/history"), user: alice).items.first?["content"] as? String == "hi")
            #expect(try await api.send(.delete, v1(channel, "/\(id)"), user: alice).status == .noContent)
            let tombstone = try await api.send(.get, v1(channel, "/\(id)"), user: bob)
            #expect(tombstone.json["content"] as? String == "")
            #expect(tombstone.json["deleted_at"] is String)
        }
    }

    @Test func aMessageNeedsTextOrAttachments() async throws {
        let channel = UUID()
        try await withMemoryService { api in
            #expect(try await api.send(.post, v1(channel), user: alice, json: #"{"content":""}"#).status == .badRequest)
            let file = try await api.send(
                .post, v1(channel), user: alice, json: #"{"content":"","attachments":[{"path":"a/b.pdf"}]}"#)
            #expect(file.status == .created)
            let id = try #require(file.json["id"] as? String)
            let emptied = try await api.send(.patch, v1(channel, "/\(id)"), user: alice, json: #"{"attachments":[]}"#)
            #expect(emptied.status == .badRequest)
            #expect(emptied.errorMessage == "content must not be empty when the message has no attachments")
            let unsafe = try await api.send(
                .post, v1(channel), user: alice, json: #"{"content":"x","attachments":[{"path":"javascript:alert(1)"}]}"#)
            #expect(unsafe.status == .badRequest)
            #expect(unsafe.errorMessage?.hasPrefix("attachments[0].path must be") == true)
            let mime = try await api.send(
                .post, v1(channel), user: alice, json: #"{"content":"x","attachments":[{"path":"a","mime_type":"no type"}]}"#)
            #expect(mime.errorMessage == "attachments[0].mime_type must be a media type such as image/png")
        }
    }

    @Test func theLegacyAPIReadsInputsAsTheOriginalDid() async throws {
        let thread = UUID()
        let hex = alice.uuidString.replacingOccurrences(of: "-", with: "")
        try await withMemoryService { api in
            let path = "/threads/\(thread.uuidString.replacingOccurrences(of: "-", with: ""))/messages"
            let created = try await api.send(
                .post, path, json: #"{"content":"","paths":["a.png"]}"#, headers: [.testUserID: "{\(hex)}"])
            #expect(created.status == .created)
            #expect(created.json["user_id"] as? String == alice.uuidString.lowercased())
            #expect(created.json["thread_id"] as? String == thread.uuidString.lowercased())
            #expect(created.json["updated_at"] as? String == created.json["created_at"] as? String)
            let page = try await api.send(.get, "\(path)?limit=2.0")
            #expect(page.status == .ok)
            #expect(page.items.count == 1)
            // A cursor of a message never stored here pages from its time; month 13 is invalid.
            let old = try await api.send(
                .get,
                "\(path)?cursor=\("2000-01-01T00:00:00|\(UUID())".addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)")
            #expect(old.status == .ok)
            #expect(old.items.isEmpty)
            let later = try await api.send(
                .get,
                "\(path)?cursor=\("2999-01-01T00:00:00|\(UUID())".addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)")
            #expect(later.status == .ok)
            #expect(later.items.map { $0["id"] as? String } == [created.json["id"] as? String])
            let invalid = try await api.send(
                .get,
                "\(path)?cursor=\("2024-13-01T00:00:00|\(UUID())".addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)")
            #expect(invalid.status == .badRequest)
            #expect(invalid.json["detail"] as? String == "Invalid cursor")
        }
    }
}
