import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import NIOConcurrencyHelpers
import Redis
import Testing

@testable import MessagesService

/// The timeline cache on a Redis primary with two replicas and a sentinel (Debian's
/// `redis-sentinel`), through a failover under load: after it, the promoted replica has the other
/// one as its replica, so write-throughs are confirmed (`WAIT`) and cached again.
@Suite(.tags(.servers)) struct RedisFailoverTests {
    static let primaryName = "messages-failover-test"

    @Test func requestsKeepSucceedingAndNoPageMissesAnAcknowledgedWriteAcrossAFailover() async throws {
        let primary = RedisServerProcess()
        try await primary.start()
        let replicas = (0..<2).map { _ in RedisServerProcess(arguments: ["--replicaof", "127.0.0.1", String(primary.port)]) }
        for replica in replicas { try await replica.start() }
        let sentinel = RedisServerProcess(sentinelMonitoring: primary.port, name: Self.primaryName)
        try await sentinel.start()
        defer {
            sentinel.crash()
            for replica in replicas { replica.crash() }
            primary.crash()
        }
        // The sentinel knows both replicas (it asks the primary at once), and they are in sync.
        let probe = RedisClient(configuration: .init(endpoint: sentinel.endpoint, poolSize: 1), logger: Logger(label: "probe"))
        let ready = await eventually(timeout: .seconds(20)) {
            let known = (try? await probe.send("SENTINEL", "replicas", Self.primaryName))?.array ?? []
            var inSync = 0
            for replica in replicas
            where (try? await RedisClient.info(of: replica.endpoint))?.contains("master_link_status:up") == true {
                inSync += 1
            }
            return known.count == 2 && inSync == 2
        }
        try #require(ready, "the sentinel never saw both replicas in sync")

        let client = try await TestDatabase.shared.migratedClient()
        let store = PostgresMessageStore(client: client)
        let redis = RedisClient(
            configuration: .init(
                endpoint: RedisEndpoint(host: "127.0.0.1", port: 1), poolSize: 2, connectTimeout: .milliseconds(300),
                commandTimeout: .milliseconds(250), acquireTimeout: .seconds(5),
                sentinel: RedisSentinel(sentinels: [sentinel.endpoint], primaryName: Self.primaryName)),
            logger: Logger(label: "failover"))
        let breaker = CircuitBreaker(configuration: .init(failureThreshold: 2, openDuration: .milliseconds(200)))
        let timeline = TimelineCache(
            redis: redis, configuration: .init(capacity: 200, timeToLive: .seconds(600), replicas: 1), breaker: breaker,
            logger: Logger(label: "failover")
        ) { channelID, scope, limit in
            try await store.page(channelID: channelID, scope: scope, position: .newest, limit: limit)
        }
        let app = Application(
            router: buildRouter(
                store: WriteThroughStore(base: store, timeline: timeline), timeline: timeline, rateLimiter: nil,
                authenticator: .userHeader, configuration: .forTests))

        let problems = NIOLockedValueBox<[String]>([])
        let hitsAfterFailover = NIOLockedValueBox(0)
        let failedOver = NIOLockedValueBox(false)
        let writtenChannels = NIOLockedValueBox<[UUID]>([])
        let author = UUID()
        try await app.test(.router) { client in
            let api = APIClient(client: client)
            let stop = NIOLockedValueBox(false)
            // Each writer has channels of its own: the message it just created is the newest of
            // its channel, so the newest page must show it, from wherever it is answered.
            let load = Task {
                await withTaskGroup(of: Void.self) { group in
                    for _ in 0..<2 {
                        group.addTask {
                            let channels = (0..<3).map { _ in UUID() }
                            writtenChannels.withLockedValue { $0 += channels }
                            var turn = 0
                            while !stop.withLockedValue({ $0 }) {
                                turn += 1
                                let path = "/v1/channels/\(channels[turn % channels.count])/messages"
                                do {
                                    let created = try await api.send(.post, path, user: author, json: #"{"content":"m\#(turn)"}"#)
                                    guard created.status == .created, let id = created.json["id"] as? String else {
                                        problems.withLockedValue { $0.append("create answered \(created.status)") }
                                        continue
                                    }
                                    let page = try await api.send(.get, path, user: author)
                                    guard page.status == .ok else {
                                        problems.withLockedValue { $0.append("read answered \(page.status)") }
                                        continue
                                    }
                                    if !page.items.contains(where: { $0["id"] as? String == id }) {
                                        let source = page.headers[.cacheStatus] ?? "?"
                                        problems.withLockedValue {
                                            $0.append("a page (\(source)) without the write just acknowledged")
                                        }
                                    }
                                    if failedOver.withLockedValue({ $0 }), page.headers[.cacheStatus] == "hit" {
                                        hitsAfterFailover.withLockedValue { $0 += 1 }
                                    }
                                } catch {
                                    problems.withLockedValue { $0.append("request failed: \(error)") }
                                }
                                // A steady load, not a flood: every event goes into the shared outbox.
                                try? await Task.sleep(for: .milliseconds(10))
                            }
                        }
                    }
                }
            }
            let cached = await eventually(timeout: .seconds(20)) { timeline.statistics.hits > 0 }
            #expect(cached, "the cache answered nothing before the failover")
            // The primary dies; the sentinel promotes a replica (down after 500 ms) and points the
            // other one at it.
            primary.crash()
            let promoted = await eventually(timeout: .seconds(20)) {
                for replica in replicas {
                    let info = (try? await RedisClient.info(of: replica.endpoint)) ?? ""
                    if info.contains("role:master"), info.contains("connected_slaves:1") { return true }
                }
                return false
            }
            failedOver.withLockedValue { $0 = promoted }
            _ = await eventually(timeout: .seconds(20)) { hitsAfterFailover.withLockedValue { $0 } > 0 }
            try await Task.sleep(for: .seconds(1))
            stop.withLockedValue { $0 = true }
            await load.value
            #expect(promoted, "the sentinel did not promote a replica with the other one behind it")
        }
        await redis.shutdown()
        await probe.shutdown()
        // No relay runs here: the events of these writes would wait for other tests' relays.
        try await client.query("DELETE FROM outbox WHERE channel_id = ANY($1::uuid[])", [writtenChannels.withLockedValue { $0 }])
        #expect(problems.withLockedValue { $0 } == [])
        // Through the sentinel, the pool found the new primary and the cache answers again.
        #expect(hitsAfterFailover.withLockedValue { $0 } > 0)
    }
}

extension RedisClient {
    /// `INFO replication` of a server, on a connection of its own.
    static func info(of endpoint: RedisEndpoint) async throws -> String {
        let client = RedisClient(configuration: .init(endpoint: endpoint, poolSize: 1), logger: Logger(label: "info"))
        let reply = try? await client.send("INFO", "replication")
        await client.shutdown()
        return reply?.string ?? ""
    }
}
