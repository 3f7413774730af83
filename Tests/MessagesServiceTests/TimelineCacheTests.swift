import Foundation
import HTTPTypes
import Logging
import Redis
import Testing

@testable import MessagesService

/// The Redis timeline cache: hits and misses, write-through, the cache/Postgres equality invariant
/// under concurrent writes, shared fills, and Redis outages.
@Suite(.tags(.servers)) struct TimelineCacheTests {
    let alice = UUID()
    let bob = UUID()

    func v1(_ channel: UUID, _ rest: String = "") -> String {
        "/v1/channels/\(channel.uuidString.lowercased())/messages\(rest)"
    }

    func threads(_ channel: UUID, _ rest: String = "") -> String {
        "/threads/\(channel.uuidString.lowercased())/messages\(rest)"
    }

    /// Asserts that the cached service answers `uri` from the cache with the bytes Postgres gives.
    func expectCachedEqualsPostgres(
        _ service: CachedService, _ uri: String, status: String = "hit", sourceLocation: SourceLocation = #_sourceLocation
    ) async throws {
        let cached = try await service.api.send(.get, uri, user: alice)
        let reference = try await service.reference.send(.get, uri, user: alice)
        #expect(cached.status == .ok, sourceLocation: sourceLocation)
        #expect(cached.headers[.cacheStatus] == status, sourceLocation: sourceLocation)
        #expect(reference.headers[.cacheStatus] == "bypass", sourceLocation: sourceLocation)
        #expect(
            String(decoding: cached.bytes, as: UTF8.self) == String(decoding: reference.bytes, as: UTF8.self),
            sourceLocation: sourceLocation
        )
    }

    @Test func firstReadMissesThenHitsWithPostgresBytes() async throws {
        try await withCachedService { service in
            let channel = UUID()
            for index in 1...3 {
                let created = try await service.api.send(.post, v1(channel), user: alice, json: #"{"content":"m\#(index)"}"#)
                #expect(created.status == .created)
            }
            try await expectCachedEqualsPostgres(service, v1(channel), status: "miss")
            try await expectCachedEqualsPostgres(service, v1(channel))
            try await expectCachedEqualsPostgres(service, v1(channel, "?limit=2"))
            // INF326 reads the same cached timeline.
            try await expectCachedEqualsPostgres(service, threads(channel))
            try await expectCachedEqualsPostgres(service, threads(channel, "?limit=1"))
            // Pages at a cursor are not cached.
            let cursor = testCursor(3, channel: channel)
            try await expectCachedEqualsPostgres(service, v1(channel, "?before=\(cursor)"), status: "bypass")
            let statistics = service.timeline.statistics
            #expect(statistics.fills == 1)
            #expect(statistics.hits == 4)
            // One key for the channel: every script names one key, valid on a sharded Redis.
            let keys = try await service.redis.send("KEYS", "*\(channel.lowercased)*").array ?? []
            #expect(keys.compactMap(\.string) == ["timeline:v2:\(channel.lowercased)"])
        }
    }

    @Test func writesGoThroughToTheCachedTimeline() async throws {
        try await withCachedService { service in
            let channel = UUID()
            let first = try await service.api.send(.post, v1(channel), user: alice, json: #"{"content":"first"}"#)
            let firstID = try #require(first.json["id"] as? String)
            try await expectCachedEqualsPostgres(service, v1(channel), status: "miss")
            // Create, edit, reply (which changes the root's reply count) and delete: each is
            // visible in the next cached read, which still equals Postgres.
            let second = try await service.api.send(.post, v1(channel), user: bob, json: #"{"content":"second \"quoted\" ✓"}"#)
            let secondID = try #require(second.json["id"] as? String)
            try await expectCachedEqualsPostgres(service, v1(channel))
            let edited = try await service.api.send(
                .patch, v1(channel, "/\(firstID)"), user: alice, json: #"{"content":"first, edited"}"#)
            #expect(edited.status == .ok)
            try await expectCachedEqualsPostgres(service, v1(channel))
            let reply = try await service.api.send(
                .post, v1(channel), user: bob, json: #"{"content":"re","parent_id":"\#(firstID)"}"#)
            #expect(reply.status == .created)
            try await expectCachedEqualsPostgres(service, v1(channel))
            let cached = try await service.api.send(.get, v1(channel), user: alice)
            #expect(cached.items.map { $0["reply_count"] as? Int } == [1, 0])
            #expect(try await service.api.send(.delete, v1(channel, "/\(secondID)"), user: bob).status == .noContent)
            // v1 keeps the tombstone; INF326 leaves it out.
            try await expectCachedEqualsPostgres(service, v1(channel))
            try await expectCachedEqualsPostgres(service, threads(channel))
            let tombstone = try await service.api.send(.get, v1(channel), user: alice).items.last
            #expect(tombstone?["deleted_at"] is String)
            let live = try await service.api.send(.get, threads(channel))
            #expect(live.items.map { $0["content"] as? String } == ["first, edited"])
            // INF326 writes go through too.
            let legacy = try await service.api.send(.post, threads(channel), user: alice, json: #"{"content":"legacy"}"#)
            #expect(legacy.status == .created)
            try await expectCachedEqualsPostgres(service, threads(channel))
            try await expectCachedEqualsPostgres(service, v1(channel))
        }
    }

    @Test func aPageKeptInProcessIsNeverOlderThanAWriteThroughAnotherPod() async throws {
        try await withCachedService { service in
            let channel = UUID()
            // The other pod: its own cache (and kept pages) on the same Redis and database.
            let redis = RedisClient(
                configuration: .init(endpoint: TestRedis.endpoint, poolSize: 2), logger: Logger(label: "test"))
            let otherPod = WriteThroughStore(base: service.store, timeline: makeTimelineCache(redis: redis, store: service.store))
            func create(_ content: String) -> NewMessage {
                NewMessage(
                    channelID: channel, authorID: alice, type: nil, content: content, attachments: [], parentID: nil,
                    idempotencyKey: nil)
            }
            _ = try await otherPod.create(create("first"))
            try await expectCachedEqualsPostgres(service, v1(channel), status: "miss")
            // Unchanged timeline: the second hit is the page this pod kept, for both APIs.
            try await expectCachedEqualsPostgres(service, v1(channel))
            try await expectCachedEqualsPostgres(service, v1(channel))
            try await expectCachedEqualsPostgres(service, threads(channel))
            try await expectCachedEqualsPostgres(service, threads(channel))
            #expect(service.timeline.statistics.hotHits == 2)
            // A write through the other pod: the next read here shows it.
            _ = try await otherPod.create(create("second"))
            try await expectCachedEqualsPostgres(service, v1(channel))
            try await expectCachedEqualsPostgres(service, threads(channel))
            #expect(service.timeline.statistics.hotHits == 2)
            // Two commits whose write-throughs reach Redis newest first: the channel version in
            // Redis does not move with the older one, yet the kept page must not outlive it.
            guard case .created(let older) = try await service.store.create(create("third")),
                case .created(let newer) = try await service.store.create(create("fourth"))
            else { throw StoreInvariantViolation() }
            await otherPod.timeline.apply(newer)
            let before = try await service.api.send(.get, v1(channel), user: alice)
            #expect(before.items.map { $0["content"] as? String } == ["first", "second", "fourth"])
            let kept = try await service.api.send(.get, v1(channel), user: alice)
            #expect(kept.bytes == before.bytes)
            let hot = service.timeline.statistics.hotHits
            #expect(hot == 3)
            await otherPod.timeline.apply(older)
            try await expectCachedEqualsPostgres(service, v1(channel))
            #expect(service.timeline.statistics.hotHits == hot)
            let page = try await service.api.send(.get, v1(channel), user: alice)
            #expect(page.items.map { $0["content"] as? String } == ["first", "second", "third", "fourth"])
            await redis.shutdown()
        }
    }

    @Test func concurrentMissesOfAChannelShareOneDatabaseRead() async throws {
        var settings = CacheSettings()
        settings.storeDelay = .milliseconds(300)
        try await withCachedService(settings) { service in
            let channel = UUID()
            _ = try await service.store.create(
                NewMessage(
                    channelID: channel, authorID: alice, type: .text, content: "hello", attachments: [], parentID: nil,
                    idempotencyKey: nil)
            )
            let bodies = try await withThrowingTaskGroup(of: [UInt8].self) { group in
                for _ in 0..<20 {
                    group.addTask {
                        let reply = try await service.api.send(.get, v1(channel), user: alice)
                        #expect(reply.headers[.cacheStatus] == "miss")
                        return reply.bytes
                    }
                }
                return try await group.reduce(into: [[UInt8]]()) { $0.append($1) }
            }
            #expect(Set(bodies).count == 1)
            #expect(service.timeline.statistics.fills == 1)
            try await expectCachedEqualsPostgres(service, v1(channel))
        }
    }

    @Test func cachedPagesEqualPostgresAfterAConcurrentWriteStormOnTwentyChannels() async throws {
        var settings = CacheSettings()
        settings.capacity = 100  // smaller than what the storm writes: trimming is exercised
        settings.commandTimeout = .seconds(1)
        try await withCachedService(settings) { service in
            let channels = (0..<20).map { _ in UUID() }
            let authors = [alice, bob]
            try await withThrowingTaskGroup(of: Void.self) { group in
                for channel in channels {
                    for (writer, author) in authors.enumerated() {
                        group.addTask {
                            var mine: [String] = []
                            for step in 0..<60 {
                                let created = try await service.api.send(
                                    .post, v1(channel), user: author, json: #"{"content":"w\#(writer) s\#(step)"}"#
                                )
                                #expect(created.status == .created)
                                if let id = created.json["id"] as? String { mine.append(id) }
                                if step % 5 == 4, let id = mine.randomElement() {
                                    let edit = try await service.api.send(
                                        .patch, v1(channel, "/\(id)"), user: author, json: #"{"content":"edited \#(step)"}"#
                                    )
                                    #expect(edit.status == .ok || edit.status == .conflict)
                                }
                                if step % 7 == 6, let id = mine.randomElement() {
                                    #expect(
                                        try await service.api.send(.delete, v1(channel, "/\(id)"), user: author).status
                                            == .noContent)
                                }
                                if step % 9 == 0, let id = mine.last {
                                    let reply = try await service.api.send(
                                        .post, v1(channel), user: author, json: #"{"content":"r","parent_id":"\#(id)"}"#
                                    )
                                    #expect(reply.status == .created || reply.status == .badRequest)
                                }
                                // Readers during the storm start fills that race with the writers.
                                if step % 4 == 0 {
                                    _ = try await service.api.send(.get, v1(channel, "?limit=\(10 + step)"), user: author)
                                    _ = try await service.api.send(.get, threads(channel))
                                }
                            }
                        }
                    }
                }
                try await group.waitForAll()
            }
            // A write-through that timed out on this busy machine makes its channel miss once; a
            // hit must always equal Postgres.
            for channel in channels {
                for uri in [
                    v1(channel), v1(channel, "?limit=100"), v1(channel, "?limit=7"), threads(channel),
                    threads(channel, "?limit=50"),
                ] {
                    let first = try await service.api.send(.get, uri, user: alice)
                    if first.headers[.cacheStatus] == "hit" {
                        let reference = try await service.reference.send(.get, uri, user: alice)
                        #expect(String(decoding: first.bytes, as: UTF8.self) == String(decoding: reference.bytes, as: UTF8.self))
                    }
                    try await expectCachedEqualsPostgres(service, uri)
                }
            }
        }
    }

    @Test func redisPausedOrKilledNeverFailsARequestAndTheCacheComesBack() async throws {
        let server = RedisServerProcess()
        try await server.start()
        var settings = CacheSettings()
        settings.endpoint = server.endpoint
        settings.commandTimeout = .milliseconds(100)
        settings.breaker = .init(failureThreshold: 2, openDuration: .milliseconds(300))
        try await withCachedService(settings) { service in
            let channel = UUID()
            func traffic(_ round: Int) async throws {
                for step in 0..<10 {
                    let created = try await service.api.send(
                        .post, v1(channel), user: alice, json: #"{"content":"r\#(round) s\#(step)"}"#)
                    #expect(created.status == .created)
                    #expect(try await service.api.send(.get, v1(channel), user: alice).status == .ok)
                    #expect(try await service.api.send(.get, threads(channel)).status == .ok)
                }
            }
            func eventuallyHit() async throws {
                let hit = try await eventually(timeout: .seconds(5)) {
                    try await service.api.send(.get, v1(channel), user: alice).headers[.cacheStatus] == "hit"
                }
                #expect(hit, "the cache did not come back")
            }
            try await traffic(0)
            try await eventuallyHit()
            try await expectCachedEqualsPostgres(service, v1(channel))

            // Frozen: calls time out, the breaker opens, requests are answered from Postgres, and
            // the writes it could not apply make the old cached timeline stale.
            server.pause()
            try await traffic(1)
            #expect(service.timeline.breakerState != .closed)
            let bypassed = try await service.api.send(.get, v1(channel), user: alice)
            #expect(bypassed.headers[.cacheStatus] == "bypass")
            server.resume()
            try await eventuallyHit()
            try await expectCachedEqualsPostgres(service, v1(channel))
            try await expectCachedEqualsPostgres(service, threads(channel))

            // Killed and restarted empty.
            await server.stop()
            try await traffic(2)
            try await server.start()
            try await eventuallyHit()
            try await expectCachedEqualsPostgres(service, v1(channel))
            try await expectCachedEqualsPostgres(service, threads(channel))
            #expect(service.timeline.statistics.errors > 0)
        }
        await server.stop()
    }
}
