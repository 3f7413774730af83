import Foundation
import HTTPTypes
import Testing

@testable import MessagesService

/// Hostile input on every endpoint: always a 4xx with a clear error, never a 5xx, never internal
/// text; and whatever content is accepted comes back byte for byte.
@Suite(.tags(.servers)) struct HostileInputTests {
    static let user = UUID()

    /// Which endpoints a body is sent to: fields one API does not know are ignored by it (as
    /// FastAPI did), so such bodies are hostile only to the API that reads the field.
    enum Target: Sendable {
        case all, v1, threads
    }

    /// Text that must never reach a client: SQL, server and library internals.
    static let internalWords = [
        "SELECT", "INSERT", "UPDATE messages", "syntax error", "libpq", "SQLSTATE", "postgres", "hiredis", "Fatal error",
    ]

    static let hostileBodies: [(Target, String)] =
        commonBodies.map { (.all, $0) } + v1Bodies.map { (.v1, $0) }
        + threadBodies.map { (.threads, $0) }

    static let commonBodies: [String] = [
        "",
        "null",
        "[]",
        "\"just a string\"",
        "{",
        "{\"content\": 123}",
        "{\"content\": [\"a\"]}",
        "{\"content\": {\"$gt\": \"\"}}",
        "{\"content\": null}",
        "{\"content\": \"\"}",
        "{\"content\": \"nul \\u0000 inside\"}",
        "{\"content\": \"lone surrogate \\ud800\"}",
        "{\"content\": \"" + String(repeating: "x", count: 4001) + "\"}",
        String(repeating: "[", count: 5000) + String(repeating: "]", count: 5000),
        String(repeating: "{\"a\":", count: 3000) + "1" + String(repeating: "}", count: 3000),
    ]

    static let v1Bodies: [String] = [
        "{\"content\": \"ok\", \"attachments\": \"not a list\"}",
        "{\"content\": \"ok\", \"attachments\": [{\"path\": \"p\", \"size\": 1e400}]}",
        "{\"content\": \"ok\", \"attachments\": [{\"path\": \"\"}]}",
        "{\"content\": \"ok\", \"attachments\": [" + Array(repeating: "{\"path\": \"p\"}", count: 11).joined(separator: ",")
            + "]}",
        "{\"content\": \"ok\", \"attachments\": [{\"path\": \"p\", \"size\": \"big\"}]}",
    ]

    static let threadBodies: [String] = [
        "{\"content\": \"ok\", \"paths\": [1, 2]}",
        "{\"content\": \"ok\", \"paths\": \"p\"}",
        "{\"content\": \"ok\", \"paths\": [\"\"]}",
    ]

    static func writeEndpoints(_ target: Target, channel: UUID) -> [(HTTPRequest.Method, String)] {
        let v1 = "/v1/channels/\(channel.uuidString.lowercased())/messages"
        let threads = "/threads/\(channel.uuidString.lowercased())/messages"
        let message = UUID().uuidString.lowercased()
        let v1Endpoints: [(HTTPRequest.Method, String)] = [(.post, v1), (.patch, v1 + "/\(message)")]
        let threadEndpoints: [(HTTPRequest.Method, String)] = [(.post, threads), (.put, threads + "/\(message)")]
        switch target {
        case .all: return v1Endpoints + threadEndpoints
        case .v1: return v1Endpoints
        case .threads: return threadEndpoints
        }
    }

    @Test(arguments: hostileBodies)
    func hostileBodiesGetAClear4xxOnEveryWriteEndpoint(target: Target, body: String) async throws {
        let channel = UUID()
        try await withService { api, _ in
            for (method, path) in Self.writeEndpoints(target, channel: channel) {
                let reply = try await api.send(method, path, user: Self.user, json: body)
                let text = String(decoding: reply.bytes, as: UTF8.self)
                #expect((400..<500).contains(reply.status.code), "\(method) \(path): \(reply.status) \(text.prefix(200))")
                #expect(reply.json["error"] != nil || reply.json["detail"] != nil, "\(method) \(path): \(text.prefix(200))")
                for word in Self.internalWords {
                    #expect(!text.localizedCaseInsensitiveContains(word), "\(method) \(path) leaks \(word)")
                }
            }
            // Nothing was stored by any of it.
            let list = try await api.send(.get, "/v1/channels/\(channel.uuidString.lowercased())/messages", user: Self.user)
            #expect(list.items.isEmpty)
        }
    }

    @Test(arguments: [
        "/v1/channels/'%20OR%201=1/messages",
        "/v1/channels/\(UUID().uuidString)/messages?limit=-1",
        "/v1/channels/\(UUID().uuidString)/messages?limit=1e9",
        "/v1/channels/\(UUID().uuidString)/messages?limit=99999999999999999999999",
        "/v1/channels/\(UUID().uuidString)/messages?before=%27%20OR%201%3D1",
        "/v1/channels/\(UUID().uuidString)/messages?around=czE6LTE",
        "/v1/channels/\(UUID().uuidString)/messages/..%2F..%2Fetc%2Fpasswd",
        "/v1/channels/\(UUID().uuidString)/messages/\(UUID().uuidString)/history?x=%00",
        "/threads/'%20OR%201=1/messages",
        "/threads/\(UUID().uuidString)/messages?limit=abc",
        "/threads/\(UUID().uuidString)/messages?cursor=..%2F..%2F",
        "/threads/\(UUID().uuidString)/messages?cursor=9999-99-99T99:99:99%7C\(UUID().uuidString)",
    ])
    func hostilePathsAndQueriesGetA4xx(uri: String) async throws {
        try await withService { api, _ in
            let reply = try await api.send(.get, uri, user: Self.user)
            let text = String(decoding: reply.bytes, as: UTF8.self)
            #expect((400..<500).contains(reply.status.code), "\(uri): \(reply.status) \(text.prefix(200))")
            for word in Self.internalWords {
                #expect(!text.localizedCaseInsensitiveContains(word), "\(uri) leaks \(word)")
            }
        }
    }

    @Test(arguments: [
        "'; DROP TABLE messages; --",
        "Robert\"); DELETE FROM channels WHERE (\"1\"=\"1",
        "quotes \" ' ` and backslashes \\ \\\\ \\n (not a newline)",
        "real\nnewlines\r\nand\ttabs",
        "emoji 👍🏽 👨‍👩‍👧‍👦 🏳️‍🌈",
        "RTL \u{200F}שלום\u{202E}txet desrever\u{202C} and LTR \u{200E}",
        "zero width \u{200B}\u{200C}\u{200D} and BOM \u{FEFF}",
        "e\u{0301} decomposed vs é precomposed",
        "<script>alert(1)</script> {{7*7}} ${jndi:ldap://x} %s %n",
        String(repeating: "😀", count: 4000),
    ])
    func contentIsStoredAndReturnedByteExact(content: String) async throws {
        try await withService { api, _ in
            let channel = UUID()
            let body = #"{"content":\#(jsonString(content))}"#
            let created = try await api.send(
                .post, "/v1/channels/\(channel.uuidString.lowercased())/messages", user: Self.user, json: body)
            #expect(created.status == .created)
            let id = try #require(created.json["id"] as? String)
            let single = try await api.send(
                .get, "/v1/channels/\(channel.uuidString.lowercased())/messages/\(id)", user: Self.user)
            let list = try await api.send(.get, "/v1/channels/\(channel.uuidString.lowercased())/messages", user: Self.user)
            let legacy = try await api.send(.get, "/threads/\(channel.uuidString.lowercased())/messages")
            for returned in [
                created.json["content"], single.json["content"], list.items.first?["content"], legacy.items.first?["content"],
            ] {
                // Compared as UTF-8 bytes: String equality would call decomposed and precomposed equal.
                #expect((returned as? String).map { Array($0.utf8) } == Array(content.utf8))
            }
        }
    }
}
