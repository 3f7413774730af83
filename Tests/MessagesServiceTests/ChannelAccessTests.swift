import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import Postgres
import Testing

@testable import MessagesService

/// `CHANNEL_ACCESS=members` on two pods (two routers on the shared database, each with its own
/// membership cache kept by its own listener): access follows the membership API on every path.
@Suite(.tags(.servers)) struct ChannelAccessTests {
    static let secret = "access-test-secret-0123456789-0123456789"
    let alice = UUID()
    let bob = UUID()
    let channel = UUID()
    /// The staleness docs/access.md states for a membership change on another pod.
    static let statedStaleness = Duration.seconds(1)

    /// A pod: its API and its membership cache.
    struct Pod {
        let api: APIClient
        let cache: MembershipCache
    }

    func bearer(_ user: UUID, roles: [String] = []) async throws -> HTTPFields {
        let token = try await JWTVerifier.mint(
            secret: Self.secret, subject: user, roles: roles, issuer: "messages-service", audience: "messages-api",
            lifetime: 600
        )
        return [.authorization: "Bearer \(token)"]
    }

    var service: HTTPFields {
        get async throws { try await bearer(UUID(), roles: ["service"]) }
    }

    func withPods(_ body: @escaping @Sendable (Pod, Pod) async throws -> Void) async throws {
        let client = try await TestDatabase.shared.migratedClient()
        let verifier = try await JWTVerifier(
            key: .hmacSecret(Self.secret),
            expectations: .init(issuer: "messages-service", audience: "messages-api")
        )
        func pod() -> (Application<RouterResponder<AppRequestContext>>, MembershipCache, MembershipChanges) {
            let cache = MembershipCache()
            let access = ChannelAccess(mode: .members, store: PostgresMembershipStore(client: client), cache: cache)
            let router = buildRouter(
                store: PostgresMessageStore(client: client), timeline: nil, rateLimiter: nil,
                operations: Operations(statistics: PostgresStatisticsStore(client: client)),
                authenticator: .jwt(verifier), access: access, configuration: .forTests
            )
            let listener = MembershipChanges(cache: cache, logger: Logger(label: "test")) {
                try await PostgresDedicatedConnection.connect(
                    .init(url: TestDatabase.sessionURL, poolSize: 1, acquireTimeout: .seconds(5)))
            }
            return (Application(router: router), cache, listener)
        }
        let (appA, cacheA, listenerA) = pod()
        let (appB, cacheB, listenerB) = pod()
        let listeners = [Task { try await listenerA.run() }, Task { try await listenerB.run() }]
        defer { listeners.forEach { $0.cancel() } }
        // Both caches answering: the test sees what a pod with a warm cache does.
        let deadline = ContinuousClock.now + .seconds(10)
        while !(cacheA.statistics.answering && cacheB.statistics.answering), ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(cacheA.statistics.answering && cacheB.statistics.answering, "listeners never confirmed")
        try await appA.test(.router) { a in
            try await appB.test(.router) { b in
                try await body(Pod(api: APIClient(client: a), cache: cacheA), Pod(api: APIClient(client: b), cache: cacheB))
            }
        }
    }

    func members(_ channel: UUID) -> String { "/v1/channels/\(channel)/members" }
    func messages(_ channel: UUID) -> String { "/v1/channels/\(channel)/messages" }

    @Test func nonMembersGetTheNotFoundOfAMissingChannelOnEveryPath() async throws {
        let (alice, bob, channel) = (alice, bob, channel)
        let service = try await service
        let asAlice = try await bearer(alice)
        let asBob = try await bearer(bob)
        try await withPods { a, b in
            #expect(
                try await a.api.send(.put, "\(members(channel))/\(alice)", json: #"{"role":"member"}"#, headers: service).status
                    == .created)
            #expect(
                try await a.api.send(.put, "\(members(channel))/\(alice)", json: #"{"role":"member"}"#, headers: service).status
                    == .ok)
            let created = try await b.api.send(.post, messages(channel), json: #"{"content":"members only"}"#, headers: asAlice)
            #expect(created.status == .created)
            let id = try #require(created.json["id"] as? String)
            #expect(try await b.api.send(.get, messages(channel), headers: asAlice).items.count == 1)
            #expect(try await b.api.send(.get, "/v1/channels/\(channel)/stats", headers: asAlice).json["messages"] as? Int == 1)
            let bobsTries: [(HTTPRequest.Method, String, String?)] = [
                (.get, messages(channel), nil), (.post, messages(channel), #"{"content":"let me in"}"#),
                (.get, "\(messages(channel))/\(id)", nil), (.patch, "\(messages(channel))/\(id)", #"{"content":"x"}"#),
                (.delete, "\(messages(channel))/\(id)", nil), (.get, "\(messages(channel))/\(id)/history", nil),
                (.get, "\(messages(channel))/\(id)/replies", nil), (.get, "/v1/channels/\(channel)/stats", nil),
            ]
            for pod in [a, b] {
                for (method, path, json) in bobsTries {
                    let reply = try await pod.api.send(method, path, json: json, headers: asBob)
                    #expect(reply.status == .notFound, "\(method) \(path)")
                    #expect((reply.json["error"] as? [String: Any])?["code"] as? String == "not_found")
                }
                // The legacy API, verified by the same tokens.
                let legacy = "/threads/\(channel)/messages"
                let legacyList = try await pod.api.send(.get, legacy, headers: asBob)
                #expect(legacyList.status == .notFound)
                #expect(legacyList.json["detail"] as? String == "Thread not found")
                #expect(try await pod.api.send(.post, legacy, json: #"{"content":"x"}"#, headers: asBob).status == .notFound)
                #expect(
                    try await pod.api.send(.put, "\(legacy)/\(id)", json: #"{"content":"x"}"#, headers: asBob).status == .notFound
                )
                #expect(try await pod.api.send(.delete, "\(legacy)/\(id)", headers: asBob).status == .notFound)
                #expect(try await pod.api.send(.get, legacy, headers: asAlice).status == .ok)
                // A channel nobody was added to is just as absent, for everyone.
                #expect(try await pod.api.send(.get, messages(UUID()), headers: asAlice).status == .notFound)
            }
            // Nothing Bob tried changed the channel.
            let listed = try await a.api.send(.get, messages(channel), headers: asAlice)
            #expect(listed.items.map { $0["content"] as? String } == ["members only"])
        }
    }

    @Test func membershipChangesReachTheOtherPodWithinTheStatedStaleness() async throws {
        let (bob, channel) = (bob, channel)
        let service = try await service
        let asBob = try await bearer(bob)
        try await withPods { a, b in
            // Both pods have Bob cached as a non-member.
            #expect(try await a.api.send(.get, messages(channel), headers: asBob).status == .notFound)
            #expect(try await b.api.send(.get, messages(channel), headers: asBob).status == .notFound)
            let hits = b.cache.statistics.hits
            #expect(try await b.api.send(.get, messages(channel), headers: asBob).status == .notFound)
            #expect(b.cache.statistics.hits == hits + 1, "the second check was not answered from the cache")

            #expect(
                try await a.api.send(.put, "\(members(channel))/\(bob)", json: #"{"role":"member"}"#, headers: service).status
                    == .created)
            // The pod that made the change at once.
            #expect(try await a.api.send(.get, messages(channel), headers: asBob).status == .ok)
            let joined = try await Self.timeUntil { try await b.api.send(.get, messages(channel), headers: asBob).status == .ok }
            #expect(joined <= Self.statedStaleness, "pod B let Bob in after \(joined)")

            #expect(try await a.api.send(.delete, "\(members(channel))/\(bob)", headers: service).status == .noContent)
            #expect(try await a.api.send(.delete, "\(members(channel))/\(bob)", headers: service).status == .noContent)
            let left = try await Self.timeUntil {
                try await b.api.send(.get, messages(channel), headers: asBob).status == .notFound
            }
            #expect(left <= Self.statedStaleness, "pod B kept Bob in for \(left)")
            // And pod A, which made the change, at once.
            #expect(try await a.api.send(.get, messages(channel), headers: asBob).status == .notFound)
        }
    }

    @Test func channelModeratorsDeleteOthersMessagesOnlyInTheirChannel() async throws {
        let (alice, bob, channel) = (alice, bob, channel)
        let other = UUID()
        let service = try await service
        let asAlice = try await bearer(alice)
        let asBob = try await bearer(bob)
        try await withPods { a, _ in
            for (user, role, inChannel) in [
                (alice, "member", channel), (bob, "moderator", channel), (alice, "member", other), (bob, "member", other),
            ] {
                let reply = try await a.api.send(
                    .put, "\(members(inChannel))/\(user)", json: #"{"role":"\#(role)"}"#, headers: service)
                #expect(reply.status == .created)
                #expect(reply.json["role"] as? String == role)
            }
            let here = try await a.api.send(.post, messages(channel), json: #"{"content":"moderated"}"#, headers: asAlice)
            let there = try await a.api.send(.post, messages(other), json: #"{"content":"not moderated"}"#, headers: asAlice)
            let hereID = try #require(here.json["id"] as? String)
            let thereID = try #require(there.json["id"] as? String)
            #expect(try await a.api.send(.get, "\(messages(channel))/\(hereID)/history", headers: asBob).status == .ok)
            #expect(try await a.api.send(.delete, "\(messages(channel))/\(hereID)", headers: asBob).status == .noContent)
            #expect(try await a.api.send(.get, "\(messages(other))/\(thereID)/history", headers: asBob).status == .forbidden)
            #expect(try await a.api.send(.delete, "\(messages(other))/\(thereID)", headers: asBob).status == .forbidden)
            #expect(try await a.api.send(.get, "\(messages(other))/\(thereID)", headers: asAlice).json["deleted_at"] is NSNull)
            // Operators (the token role) use every channel, as moderators, without being members.
            let asOperator = try await bearer(UUID(), roles: ["moderator"])
            #expect(try await a.api.send(.get, messages(other), headers: asOperator).status == .ok)
            #expect(try await a.api.send(.delete, "\(messages(other))/\(thereID)", headers: asOperator).status == .noContent)
        }
    }

    @Test func onlyServiceTokensChangeOrListMembership() async throws {
        let (alice, channel) = (alice, channel)
        let service = try await service
        let asAlice = try await bearer(alice)
        let asOperator = try await bearer(UUID(), roles: ["moderator"])
        try await withPods { a, _ in
            for headers in [asAlice, asOperator] {
                #expect(
                    try await a.api.send(.put, "\(members(channel))/\(alice)", json: #"{"role":"moderator"}"#, headers: headers)
                        .status == .forbidden)
                #expect(try await a.api.send(.delete, "\(members(channel))/\(alice)", headers: headers).status == .forbidden)
                #expect(try await a.api.send(.get, members(channel), headers: headers).status == .forbidden)
            }
            #expect(try await a.api.send(.get, members(channel)).status == .unauthorized)
            #expect(try await a.api.send(.get, messages(channel), headers: asAlice).status == .notFound)

            let bad = try await a.api.send(.put, "\(members(channel))/\(alice)", json: #"{"role":"owner"}"#, headers: service)
            #expect(bad.status == .badRequest)
            #expect(bad.errorMessage?.contains("role") == true)
            #expect(
                try await a.api.send(.put, "\(members(channel))/not-a-user", json: #"{"role":"member"}"#, headers: service).status
                    == .badRequest)
            #expect(try await a.api.send(.get, "\(members(channel))?limit=0", headers: service).status == .badRequest)

            let users = (0..<3).map { _ in UUID() }
            for user in users {
                #expect(
                    try await a.api.send(.put, "\(members(channel))/\(user)", json: #"{"role":"member"}"#, headers: service)
                        .status == .created)
            }
            let first = try await a.api.send(.get, "\(members(channel))?limit=2", headers: service)
            let next = try #require(first.json["next_after"] as? String)
            let rest = try await a.api.send(.get, "\(members(channel))?limit=2&after=\(next)", headers: service)
            #expect(rest.json["next_after"] is NSNull)
            let listed = (first.items + rest.items).compactMap { $0["user_id"] as? String }
            #expect(listed == users.map { $0.uuidString.lowercased() }.sorted())
        }
    }

    /// How long until `condition` holds, polled every 10 ms, giving up after 10 s.
    /// How long after now a check of `condition` first held, counted to the start of that
    /// check: the request's own time (long on a busy machine) is not the pod's staleness.
    static func timeUntil(_ condition: () async throws -> Bool) async throws -> Duration {
        let start = ContinuousClock.now
        while true {
            let attempt = ContinuousClock.now
            if try await condition() { return attempt - start }
            guard ContinuousClock.now - start < .seconds(10) else { return .seconds(10) }
            try await Task.sleep(for: .milliseconds(10))
        }
    }
}
