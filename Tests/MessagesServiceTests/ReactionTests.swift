import Foundation
import HTTPTypes
import TestSupport
import Testing

@testable import MessagesService

/// Which texts are reaction emoji: one grapheme cluster of emoji, or a `:short_code:`.
@Suite struct ReactionEmojiTests {
    @Test(arguments: [
        "👍", "❤️", "❤", "👩🏽‍💻", "🇨🇱", "1️⃣", "#️⃣", "🏴󠁧󠁢󠁳󠁣󠁴󠁿", "©", ":tada:", ":+1:", ":thumbs_up-2:",
        ":" + String(repeating: "a", count: 62) + ":",
    ])
    func accepted(_ text: String) {
        #expect(ReactionEmoji(text)?.text == text)
    }

    @Test(arguments: [
        "", "a", "1", "#", "ab", "👍👍", "👍a", "a\u{301}", "\u{200D}", "\u{FE0F}", " 👍", "👍\n", "\r\n", "\u{0}",
        "::", ":Tada:", ":ta da:", ":tada", "tada:", ":é:", ":" + String(repeating: "a", count: 63) + ":",
        "👍" + String(repeating: "\u{FE0F}", count: 30),
        // Invisible riders under the byte limit: a second selector, a trailing or doubled joiner,
        // tags outside a 🏴 flag or without their cancel tag, a lone modifier, three indicators.
        "👍\u{FE0F}\u{FE0F}", "👍\u{200D}", "👍\u{200D}\u{200D}👍", "👍\u{E0067}\u{E007F}", "1\u{E0031}",
        "🏴\u{E0067}\u{E0062}", "🏽", "👍🏽🏽", "🇨🇱🇨", "\u{20E3}",
    ])
    func refused(_ text: String) {
        #expect(ReactionEmoji(text) == nil)
    }

    @Test func aPathSegmentIsPercentDecodedOnce() {
        #expect(ReactionEmoji(percentEncoded: "%F0%9F%91%8D")?.text == "👍")
        #expect(ReactionEmoji(percentEncoded: ":tada:")?.text == ":tada:")
        #expect(ReactionEmoji(percentEncoded: "%3Atada%3A")?.text == ":tada:")
        // Invalid UTF-8, a broken escape, an escape of an escape.
        for segment in ["%F0%9F%91", "%zz", "%", "%25F0%259F%2591%258D", String(repeating: "%F0", count: 100)] {
            #expect(ReactionEmoji(percentEncoded: segment) == nil, "\(segment)")
        }
    }

    /// Random scalars, mostly from emoji blocks and their joiners: whatever is accepted is within
    /// the byte limit and is either a short code or a single grapheme cluster.
    @Test func everyAcceptedTextKeepsTheRule() {
        var generator = SeededGenerator(seed: 17)
        let pools: [ClosedRange<UInt32>] = [
            0x1F300...0x1FAFF, 0x2600...0x27BF, 0x200D...0x200D, 0xFE0E...0xFE0F, 0x1F3FB...0x1F3FF,
            0xE0020...0xE007F, 0x20...0x7E, 0x300...0x36F, 0x1F1E6...0x1F1FF,
        ]
        var accepted = 0
        for _ in 0..<40_000 {
            var text = ""
            for _ in 0..<Int.random(in: 1...6, using: &generator) {
                let pool = pools.randomElement(using: &generator)!
                if let scalar = Unicode.Scalar(UInt32.random(in: pool, using: &generator)) {
                    text.unicodeScalars.append(scalar)
                }
            }
            guard let emoji = ReactionEmoji(text) else { continue }
            accepted += 1
            let scalars = Array(emoji.text.unicodeScalars)
            #expect(emoji.text.utf8.count <= ReactionEmoji.maxBytes)
            #expect(emoji.text.count == 1 || (emoji.text.hasPrefix(":") && emoji.text.hasSuffix(":")), "\(text)")
            // Read independently of the rule's state machine: nothing invisible rides along.
            let tags = scalars.filter { (0xE0020...0xE007F).contains($0.value) }
            #expect(tags.isEmpty || (scalars.first?.value == 0x1F3F4 && scalars.last?.value == 0xE007F), "\(text)")
            #expect(scalars.last?.value != 0x200D && scalars.first?.value != 0x200D, "\(text)")
            let selectors = zip(scalars, scalars.dropFirst()).filter {
                [0xFE0E, 0xFE0F].contains($0.0.value) && [0xFE0E, 0xFE0F].contains($0.1.value)
            }
            #expect(selectors.isEmpty, "\(text)")
            #expect(
                !scalars.contains { ($0.properties.generalCategory == .nonspacingMark && ![0xFE0E, 0xFE0F].contains($0.value)) },
                "\(text)")
            #expect(ReactionEmoji(percentEncoded: text.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!) == emoji)
        }
        #expect(accepted > 100)
    }
}

/// `PUT`, `DELETE` and `GET /v1/channels/{id}/messages/{mid}/reactions/{emoji}`, against the real
/// Postgres and the in-memory store alike.
@Suite(.tags(.servers)) struct ReactionTests {
    let alice = UUID()
    let bob = UUID()
    static let thumbsUp = "%F0%9F%91%8D"

    func path(_ channel: UUID, _ rest: String = "") -> String {
        "/v1/channels/\(channel.lowercased)/messages\(rest)"
    }

    func reactions(_ channel: UUID, _ message: String, _ emoji: String = thumbsUp) -> String {
        path(channel, "/\(message)/reactions/\(emoji)")
    }

    func post(_ api: APIClient, _ channel: UUID, _ body: String, user: UUID) async throws -> String {
        let reply = try await api.send(.post, path(channel), user: user, json: body)
        return try #require(reply.json["id"] as? String)
    }

    func counts(_ reply: Reply) -> [String: Int] {
        reply.json["reactions"] as? [String: Int] ?? ["<no reactions>": -1]
    }

    /// Adding twice counts once, removing twice removes once; only a change takes a version, and
    /// the message's JSON, the changes feed and the list of reactors all agree.
    @Test(arguments: StoreBackend.allCases)
    func addingAndRemovingAreIdempotentAndOnlyChangesTakeAVersion(backend: StoreBackend) async throws {
        let (alice, bob) = (self.alice, self.bob)
        try await backend.run { api in
            let channel = UUID()
            let id = try await post(api, channel, #"{"content":"react to me"}"#, user: alice)
            let first = try await api.send(.put, reactions(channel, id), user: bob)
            #expect(first.status == .ok)
            #expect(counts(first) == ["👍": 1])
            #expect(first.json["version"] as? Int == 2)
            #expect(first.headers[.eTag] == "\"2\"")
            let again = try await api.send(.put, reactions(channel, id), user: bob)
            #expect(counts(again) == ["👍": 1] && again.json["version"] as? Int == 2)
            #expect(counts(try await api.send(.put, reactions(channel, id), user: alice)) == ["👍": 2])
            #expect(counts(try await api.send(.put, reactions(channel, id, ":tada:"), user: alice)) == ["👍": 2, ":tada:": 1])

            let listed = try await api.send(.get, reactions(channel, id), user: bob)
            #expect(listed.status == .ok)
            #expect(listed.json["emoji"] as? String == "👍" && listed.json["count"] as? Int == 2)
            let users = (listed.json["items"] as? [[String: Any]] ?? []).compactMap { $0["user_id"] as? String }
            #expect(users == [alice, bob].map(\.lowercased).sorted())

            let removed = try await api.send(.delete, reactions(channel, id), user: bob)
            #expect(removed.status == .ok && counts(removed) == ["👍": 1, ":tada:": 1])
            #expect(removed.json["version"] as? Int == 5)
            let removedAgain = try await api.send(.delete, reactions(channel, id), user: bob)
            #expect(counts(removedAgain) == ["👍": 1, ":tada:": 1] && removedAgain.json["version"] as? Int == 5)
            // The last one of a kind leaves no zero behind.
            #expect(counts(try await api.send(.delete, reactions(channel, id, ":tada:"), user: alice)) == ["👍": 1])

            let message = try await api.send(.get, path(channel, "/\(id)"), user: bob)
            #expect(counts(message) == ["👍": 1] && message.json["version"] as? Int == 6)
            let changes = try await api.send(.get, "/v1/channels/\(channel.lowercased)/changes?since=1", user: bob)
            let entries = changes.json["changes"] as? [[String: Any]] ?? []
            #expect(entries.map { $0["type"] as? String } == ["message.updated"])
            #expect(entries.map { $0["version"] as? Int } == [6])
            #expect(((entries.first?["message"] as? [String: Any])?["reactions"] as? [String: Int]) == ["👍": 1])
            #expect(changes.json["channel_version"] as? Int == 6)
        }
    }

    /// Reactors come `limit` at a time, ascending by user id, with no one missed or repeated.
    @Test(arguments: StoreBackend.allCases)
    func reactorsArePagedByUserID(backend: StoreBackend) async throws {
        let alice = self.alice
        try await backend.run { api in
            let channel = UUID()
            let id = try await post(api, channel, #"{"content":"popular"}"#, user: alice)
            let users = (0..<7).map { _ in UUID() }
            for user in users {
                #expect(try await api.send(.put, reactions(channel, id, ":fire:"), user: user).status == .ok)
            }
            var seen: [String] = []
            var after: String? = nil
            var pages = 0
            repeat {
                let query = "?limit=3" + (after.map { "&after=\($0)" } ?? "")
                let page = try await api.send(.get, reactions(channel, id, ":fire:") + query, user: alice)
                #expect(page.status == .ok && page.json["count"] as? Int == 7)
                seen += (page.json["items"] as? [[String: Any]] ?? []).compactMap { $0["user_id"] as? String }
                #expect((page.json["has_more"] as? Bool) == (page.json["next_after"] is String))
                after = page.json["next_after"] as? String
                pages += 1
            } while after != nil && pages < 10
            #expect(pages == 3)
            #expect(seen == users.map(\.lowercased).sorted())
            // Nobody reacted with another emoji: an empty list, not an error.
            let none = try await api.send(.get, reactions(channel, id), user: alice)
            #expect(none.status == .ok && none.json["count"] as? Int == 0 && (none.json["items"] as? [Any])?.isEmpty == true)
        }
    }

    /// Refusals say what is wrong and change nothing: a bad emoji or `after`, a message that is not
    /// there or deleted, a 21st kind of reaction.
    @Test(arguments: StoreBackend.allCases)
    func refusalsChangeNothing(backend: StoreBackend) async throws {
        let (alice, bob) = (self.alice, self.bob)
        try await backend.run { api in
            let channel = UUID()
            let id = try await post(api, channel, #"{"content":"m"}"#, user: alice)
            for emoji in [
                "a", "%F0%9F%91%8D%F0%9F%91%8D", ":Tada:", "%F0%9F", "%00", String(repeating: "%F0%9F%91%8D", count: 20),
            ] {
                let reply = try await api.send(.put, reactions(channel, id, emoji), user: bob)
                #expect(reply.status == .badRequest, "\(emoji)")
                #expect(reply.errorMessage?.hasPrefix("emoji must be") == true, "\(emoji)")
            }
            let badAfter = try await api.send(.get, reactions(channel, id) + "?after=me", user: bob)
            #expect(badAfter.status == .badRequest && badAfter.errorMessage?.hasPrefix("after") == true)
            #expect(try await api.send(.put, reactions(channel, UUID().lowercased), user: bob).status == .notFound)
            #expect(try await api.send(.get, reactions(channel, UUID().lowercased), user: bob).status == .notFound)
            #expect(try await api.send(.put, reactions(channel, "not-an-id"), user: bob).status == .badRequest)

            for index in 0..<MessageLimits.maxReactionsPerMessage {
                #expect(try await api.send(.put, reactions(channel, id, ":r\(index):"), user: bob).status == .ok)
            }
            let tooMany = try await api.send(.put, reactions(channel, id, ":one_more:"), user: bob)
            #expect(tooMany.status == .conflict)
            #expect(tooMany.errorMessage?.contains("20 different reactions") == true)
            // A kind already there still takes more users.
            let more = try await api.send(.put, reactions(channel, id, ":r0:"), user: alice)
            #expect(more.status == .ok && counts(more).count == 20 && counts(more)[":r0:"] == 2)

            #expect(try await api.send(.delete, path(channel, "/\(id)"), user: alice).status == .noContent)
            let onDeleted = try await api.send(.put, reactions(channel, id, ":r1:"), user: alice)
            #expect(onDeleted.status == .conflict && onDeleted.errorMessage == "the message is deleted")
            #expect(try await api.send(.delete, reactions(channel, id, ":r0:"), user: alice).status == .conflict)
            let tombstone = try await api.send(.get, path(channel, "/\(id)"), user: alice)
            #expect(tombstone.json["version"] as? Int == 23)
        }
    }

    /// Twenty identical PUTs at once count once and take one version; twenty users at once count
    /// twenty. The reactions row decides, under the channel's lock.
    @Test func concurrentReactionsCountEachUserOnce() async throws {
        let alice = self.alice
        try await withService { api, _ in
            let channel = UUID()
            let id = try await post(api, channel, #"{"content":"m"}"#, user: alice)
            let users = (0..<20).map { _ in UUID() }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<20 {
                    group.addTask {
                        let reply = try await api.send(.put, reactions(channel, id), user: alice)
                        #expect(reply.status == .ok)
                    }
                }
                for user in users {
                    group.addTask {
                        let reply = try await api.send(.put, reactions(channel, id, ":wave:"), user: user)
                        #expect(reply.status == .ok)
                    }
                }
                try await group.waitForAll()
            }
            let message = try await api.send(.get, path(channel, "/\(id)"), user: alice)
            #expect(counts(message) == ["👍": 1, ":wave:": 20])
            // The create, then one version per change that happened: 1 + 20.
            #expect(message.json["version"] as? Int == 22)
            let listed = try await api.send(.get, reactions(channel, id, ":wave:") + "?limit=100", user: alice)
            #expect((listed.json["items"] as? [Any])?.count == 20)
        }
    }

    /// A cached newest page shows the counts right after the reaction, from the cache.
    @Test func theCachedTimelineFollowsReactions() async throws {
        let alice = self.alice
        try await withCachedService { service in
            let api = service.api
            let channel = UUID()
            let id = try await post(api, channel, #"{"content":"m"}"#, user: alice)
            _ = try await api.send(.get, path(channel), user: alice)
            #expect(try await api.send(.put, reactions(channel, id), user: alice).status == .ok)
            let page = try await api.send(.get, path(channel), user: alice)
            #expect(page.headers[HTTPField.Name("X-Cache")!] == "hit")
            let item = (page.json["items"] as? [[String: Any]])?.first
            #expect(item?["reactions"] as? [String: Int] == ["👍": 1])
            #expect(item?["version"] as? Int == 2)
            let reference = try await service.reference.send(.get, path(channel), user: alice)
            #expect((reference.json["items"] as? [[String: Any]])?.first?["reactions"] as? [String: Int] == ["👍": 1])
        }
    }
}
