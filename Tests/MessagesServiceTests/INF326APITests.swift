import Foundation
import HTTPTypes
import Testing

@testable import MessagesService

/// The INF326-compatible API, answered as the original FastAPI service answers.
@Suite(.tags(.servers)) struct INF326APITests {
    let alice = UUID()
    let bob = UUID()

    func path(_ thread: UUID, _ rest: String = "") -> String {
        "/threads/\(thread.uuidString.lowercased())/messages\(rest)"
    }

    @Test func createAnswersTheINF326MessageShape() async throws {
        let thread = UUID()
        try await withService { api, _ in
            let reply = try await api.send(
                .post, path(thread), user: alice, json: #"{"content":"hola","type":"file","paths":["a.png","b.pdf"]}"#)
            #expect(reply.status == .created)
            #expect(
                Set(reply.json.keys) == ["id", "thread_id", "user_id", "type", "content", "paths", "created_at", "updated_at"])
            #expect(reply.json["thread_id"] as? String == thread.uuidString.lowercased())
            #expect(reply.json["user_id"] as? String == alice.uuidString.lowercased())
            #expect(reply.json["type"] as? String == "file")
            #expect(reply.json["paths"] as? [String] == ["a.png", "b.pdf"])
            // The original repeats created_at until an edit, in datetime.isoformat(): naive UTC,
            // microseconds (left out when zero).
            let createdAt = try #require(reply.json["created_at"] as? String)
            #expect(reply.json["updated_at"] as? String == createdAt)
            #expect(createdAt.wholeMatch(of: /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?/) != nil)
            let untyped = try await api.send(.post, path(thread), user: alice, json: #"{"content":"sin tipo"}"#)
            #expect(untyped.json["type"] is NSNull)
        }
    }

    @Test func listIsNewestFirstWithCursorPagingAndLeavesDeletedOut() async throws {
        let thread = UUID()
        try await withService { api, _ in
            var ids: [String] = []
            for index in 1...7 {
                let reply = try await api.send(.post, path(thread), user: alice, json: #"{"content":"m\#(index)"}"#)
                ids.append(try #require(reply.json["id"] as? String))
            }
            #expect(try await api.send(.delete, path(thread, "/\(ids[4])"), user: alice).status == .noContent)
            // Reads need no identity.
            let first = try await api.send(.get, path(thread, "?limit=3"))
            #expect(first.status == .ok)
            #expect(first.items.map { $0["content"] as? String } == ["m7", "m6", "m4"])
            #expect(first.json["has_more"] as? Bool == true)
            let cursor = try #require(first.json["next_cursor"] as? String)
            #expect(cursor.hasSuffix("|\(ids[3])"))
            let encoded = cursor.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
            let second = try await api.send(.get, path(thread, "?limit=3&cursor=\(encoded)"))
            #expect(second.items.map { $0["content"] as? String } == ["m3", "m2", "m1"])
            let third = try await api.send(
                .get,
                path(
                    thread,
                    "?limit=3&cursor=\((second.json["next_cursor"] as? String ?? "").addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)"
                ))
            #expect(third.items.isEmpty)
            #expect(third.json["next_cursor"] is NSNull)
            #expect(third.json["has_more"] as? Bool == false)
        }
    }

    @Test func acceptsThePythonIsoformatCursorOfTheOriginalService() async throws {
        let thread = UUID()
        try await withService { api, _ in
            for index in 1...3 { _ = try await api.send(.post, path(thread), user: alice, json: #"{"content":"m\#(index)"}"#) }
            // A cursor naming a message this service never stored falls back to its time.
            let cursor = "2999-01-01T00:00:00.123456+00:00|\(UUID().uuidString.lowercased())"
            let reply = try await api.send(
                .get, path(thread, "?cursor=\(cursor.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)"))
            #expect(reply.status == .ok)
            #expect(reply.items.map { $0["content"] as? String } == ["m3", "m2", "m1"])
            let past = "2000-01-01T00:00:00|\(UUID().uuidString.lowercased())"
            let none = try await api.send(
                .get, path(thread, "?cursor=\(past.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)"))
            #expect(none.items.isEmpty)
        }
    }

    @Test(arguments: ["garbage", "2024-01-01T00:00:00", "2024-13-45T00:00:00|\(UUID().uuidString)", "x|\(UUID().uuidString)"])
    func invalidCursorIs400(cursor: String) async throws {
        try await withService { api, _ in
            let reply = try await api.send(
                .get, path(UUID(), "?cursor=\(cursor.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)"))
            #expect(reply.status == .badRequest)
            #expect(reply.json["detail"] as? String == "Invalid cursor")
        }
    }

    @Test(arguments: [
        ("0", "greater_than_equal"), ("201", "less_than_equal"), ("abc", "int_parsing"), ("2.5", "int_parsing"),
        ("-3", "greater_than_equal"), ("99999999999999999999999", "less_than_equal"), ("1__0", "int_parsing"),
        ("_5", "int_parsing"), ("", "int_parsing"), ("0x10", "int_parsing"),
    ])
    func limitOutside1To200Is422(limit: String, type: String) async throws {
        try await withService { api, _ in
            let reply = try await api.send(.get, path(UUID(), "?limit=\(limit)"))
            #expect(reply.status == .unprocessableContent)
            let detail = try #require((reply.json["detail"] as? [[String: Any]])?.first)
            #expect(detail["type"] as? String == type)
            #expect(detail["loc"] as? [String] == ["query", "limit"])
        }
    }

    /// What pydantic's lax integers accept, the original answered: so does this service.
    @Test(arguments: [("2.0", 2), ("%205", 5), ("5%20", 5), ("1_0", 10), ("%2B3", 3), ("007", 7), ("4.", 4)])
    func limitIsReadAsPydanticReadsIt(limit: String, expected: Int) async throws {
        let thread = UUID()
        try await withService { api, _ in
            for index in 1...12 { _ = try await api.send(.post, path(thread), user: alice, json: #"{"content":"m\#(index)"}"#) }
            let reply = try await api.send(.get, path(thread, "?limit=\(limit)"))
            #expect(reply.status == .ok)
            #expect(reply.items.count == expected)
        }
    }

    /// Every X-User-Id form Python's uuid.UUID() reads is the same user, answered canonically.
    @Test func userIdIsReadAsPythonsUUIDReadsIt() async throws {
        let thread = UUID()
        let hex = alice.uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        let forms = [
            hex, hex.uppercased(), "{\(alice.uuidString)}", "urn:uuid:\(alice.uuidString.lowercased())",
            "{{\(hex)}}", String(hex.prefix(16)) + "-" + String(hex.dropFirst(16)),
        ]
        try await withService { api, _ in
            for form in forms {
                let reply = try await api.send(.post, path(thread), json: #"{"content":"x"}"#, headers: [.testUserID: form])
                #expect(reply.status == .created, "\(form)")
                #expect(reply.json["user_id"] as? String == alice.uuidString.lowercased(), "\(form)")
            }
            let id = try #require(try await api.send(.get, path(thread, "?limit=1")).items.first?["id"] as? String)
            // The author may edit under any spelling of their id.
            let edited = try await api.send(
                .put, path(thread, "/\(id)"), json: #"{"content":"y"}"#, headers: [.testUserID: hex.uppercased()])
            #expect(edited.status == .ok)
            let bad = try await api.send(
                .post, path(thread), json: #"{"content":"x"}"#, headers: [.testUserID: "z" + hex.dropFirst()])
            #expect(bad.status == .badRequest)
            #expect(bad.json["detail"] as? String == "invalid literal for int() with base 16: 'z\(hex.dropFirst())'")
        }
    }

    /// Path ids in every form pydantic reads: braces, urn:uuid:, 32 hex digits, upper case.
    @Test func threadIdIsReadAsPydanticReadsIt() async throws {
        let thread = UUID()
        let canonical = thread.uuidString.lowercased()
        let forms = [
            canonical.replacingOccurrences(of: "-", with: ""), thread.uuidString, "%7B\(canonical)%7D", "urn:uuid:\(canonical)",
        ]
        try await withService { api, _ in
            for form in forms {
                let created = try await api.send(
                    .post, "/threads/\(form)/messages", user: alice, json: #"{"content":"\#(form)"}"#)
                #expect(created.status == .created, "\(form)")
                #expect(created.json["thread_id"] as? String == canonical, "\(form)")
                let id = try #require(created.json["id"] as? String)
                let upper = id.uppercased().replacingOccurrences(of: "-", with: "")
                #expect(
                    try await api.send(.put, "/threads/\(form)/messages/\(upper)", user: alice, json: #"{"content":"e"}"#).status
                        == .ok)
            }
            #expect(try await api.send(.get, "/threads/\(forms[0])/messages").items.count == forms.count)
            #expect(
                try await api.send(.get, "/threads/%7B\(canonical.replacingOccurrences(of: "-", with: ""))%7D/messages").status
                    == .unprocessableContent)
        }
    }

    /// A file message may carry its paths and no text, as in the original; neither is still a 422.
    @Test func emptyContentNeedsPaths() async throws {
        let thread = UUID()
        try await withService { api, _ in
            let file = try await api.send(
                .post, path(thread), user: alice, json: #"{"content":"","type":"file","paths":["a.pdf"]}"#)
            #expect(file.status == .created)
            #expect(file.json["content"] as? String == "")
            let id = try #require(file.json["id"] as? String)
            let stripped = try await api.send(.put, path(thread, "/\(id)"), user: alice, json: #"{"paths":[]}"#)
            #expect(stripped.status == .unprocessableContent)
            #expect(
                try await api.send(.post, path(thread), user: alice, json: #"{"content":""}"#).status == .unprocessableContent)
        }
    }

    @Test func userHeaderMissingIs422AndInvalidIs400() async throws {
        let thread = UUID()
        try await withService { api, _ in
            let missing = try await api.send(.post, path(thread), json: #"{"content":"x"}"#)
            #expect(missing.status == .unprocessableContent)
            #expect(((missing.json["detail"] as? [[String: Any]])?.first?["loc"] as? [String]) == ["header", "X-User-Id"])
            let invalid = try await api.send(.post, path(thread), json: #"{"content":"x"}"#, headers: [.testUserID: "nope"])
            #expect(invalid.status == .badRequest)
            #expect(invalid.json["detail"] as? String == "badly formed hexadecimal UUID string")
            #expect(try await api.send(.get, path(thread)).items.isEmpty)
        }
    }

    @Test(arguments: [#"{}"#, #"{"content":""}"#, #"{"content":"x","type":"video"}"#, #"{"content":"x","paths":"a"}"#, #"{"#])
    func invalidBodiesAre422AndWriteNothing(body: String) async throws {
        let thread = UUID()
        try await withService { api, _ in
            let reply = try await api.send(.post, path(thread), user: alice, json: body)
            #expect(reply.status == .unprocessableContent)
            #expect(reply.json["detail"] is [Any])
            #expect(try await api.send(.get, path(thread)).items.isEmpty)
        }
    }

    @Test func badThreadIdIs422() async throws {
        try await withService { api, _ in
            let reply = try await api.send(.get, "/threads/nope/messages")
            #expect(reply.status == .unprocessableContent)
        }
    }

    @Test func updateAndDeleteFollowTheOriginalFlow() async throws {
        let thread = UUID()
        try await withService { api, _ in
            let created = try await api.send(.post, path(thread), user: alice, json: #"{"content":"v1","paths":["a"]}"#)
            let id = try #require(created.json["id"] as? String)
            let updated = try await api.send(.put, path(thread, "/\(id)"), user: alice, json: #"{"content":"v2"}"#)
            #expect(updated.status == .ok)
            #expect(updated.json["content"] as? String == "v2")
            #expect(updated.json["paths"] as? [String] == ["a"])
            #expect(updated.json["updated_at"] is String)
            let paths = try await api.send(.put, path(thread, "/\(id)"), user: alice, json: #"{"paths":["b","c"]}"#)
            #expect(paths.json["paths"] as? [String] == ["b", "c"])
            #expect(
                try await api.send(.put, path(thread, "/\(id)"), user: bob, json: #"{"content":"mine"}"#).status == .forbidden)
            #expect(try await api.send(.delete, path(thread, "/\(id)"), user: bob).status == .forbidden)
            #expect(
                try await api.send(.put, path(UUID(), "/\(id)"), user: alice, json: #"{"content":"elsewhere"}"#).status
                    == .notFound)
            #expect(try await api.send(.delete, path(thread, "/\(id)"), user: alice).status == .noContent)
            let again = try await api.send(.delete, path(thread, "/\(id)"), user: alice)
            #expect(again.status == .notFound)
            #expect(again.json["detail"] as? String == "Message not found")
            #expect(
                try await api.send(.put, path(thread, "/\(id)"), user: alice, json: #"{"content":"zombie"}"#).status == .notFound)
        }
    }

    @Test func theSwitchTurnsTheAPIOff() async throws {
        var configuration = ServiceConfiguration()
        configuration.inf326Enabled = false
        try await withService(configuration: configuration) { api, _ in
            let reply = try await api.send(.get, path(UUID()))
            #expect(reply.status == .notFound)
        }
    }
}
