import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import NIOConcurrencyHelpers
import Redis
import Testing

@testable import MessagesService

/// The timeline cache on a Redis primary with a replica and a sentinel (Debian's
/// `redis-sentinel`), through a failover under load. Write-throughs wait for the replica
/// (`REDIS_WAIT_REPLICAS=1`: every replica that can be promoted).
@Suite(.tags(.servers)) struct RedisFailoverTests {
    static let primaryName = "messages-failover-test"

    @Test func requestsKeepSucceedingAndNoPageMissesAnAcknowledgedWriteAcrossAFailover() async throws {
        let primary = RedisServerProcess()
        try await primary.start()
        let replica = RedisServerProcess(arguments: ["--replicaof", "127.0.0.1", String(primary.port)])
        try await replica.start()
        let sentinel = RedisServerProcess(sentinelMonitoring: primary.port, name: Self.primaryName)
        try await sentinel.start()
        // After the failover: a new node joins as the promoted replica's replica.
        let newcomer = RedisServerProcess(arguments: ["--replicaof", "127.0.0.1", String(replica.port)])
        defer {
            for server in [sentinel, replica, primary, newcomer] { server.crash() }
        }
        // The sentinel knows the replica (it asks the primary at once), and the replica is in sync.
        let probe = RedisClient(configuration: .init(endpoint: sentinel.endpoint, poolSize: 1), logger: Logger(label: "probe"))
        let ready = await eventually(timeout: .seconds(20)) {
            let known = (try? await probe.send("SENTINEL", "replicas", Self.primaryName))?.array ?? []
            let inSync = (try? await RedisClient.info(of: replica.endpoint))?.contains("master_link_status:up") == true
            return known.count == 1 && inSync
        }
        try #require(ready, "the sentinel never saw the replica in sync")

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
        /// Every channel's acknowledged message ids, oldest first.
        let acknowledged = NIOLockedValueBox<[UUID: [String]]>([:])
        let author = UUID()
        let pageSize = 50
        /// The newest page must list exactly the newest acknowledged messages of its channel.
        @Sendable func check(_ page: Reply, of channel: UUID, when: String) {
            let listed = Set(page.items.compactMap { $0["id"] as? String })
            let expected = Set(acknowledged.withLockedValue { $0[channel, default: []] }.suffix(pageSize))
            if listed != expected {
                let source = page.headers[.cacheStatus] ?? "?"
                problems.withLockedValue {
                    $0.append("\(when): a page (\(source)) missing \(expected.subtracting(listed).count) acknowledged writes")
                }
            }
        }
        try await app.test(.router) { client in
            let api = APIClient(client: client)
            let stop = NIOLockedValueBox(false)
            // Each writer has channels of its own, so it knows what each newest page must hold.
            let load = Task {
                await withTaskGroup(of: Void.self) { group in
                    for _ in 0..<2 {
                        group.addTask {
                            let channels = (0..<3).map { _ in UUID() }
                            var turn = 0
                            while !stop.withLockedValue({ $0 }) {
                                turn += 1
                                let channel = channels[turn % channels.count]
                                let path = "/v1/channels/\(channel)/messages"
                                do {
                                    let created = try await api.send(.post, path, user: author, json: #"{"content":"m\#(turn)"}"#)
                                    guard created.status == .created, let id = created.json["id"] as? String else {
                                        problems.withLockedValue { $0.append("create answered \(created.status)") }
                                        continue
                                    }
                                    acknowledged.withLockedValue { $0[channel, default: []].append(id) }
                                    let page = try await api.send(.get, "\(path)?limit=\(pageSize)", user: author)
                                    guard page.status == .ok else {
                                        problems.withLockedValue { $0.append("read answered \(page.status)") }
                                        continue
                                    }
                                    check(page, of: channel, when: "under load")
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
            // The replica falls behind (frozen for a second: writes reach only the primary), then
            // the primary dies and the sentinel promotes the replica, which never got those
            // writes. Only the writes a replica confirmed may be served from it.
            replica.pause()
            try await Task.sleep(for: .seconds(1))
            primary.crash()
            replica.resume()
            let promoted = await eventually(timeout: .seconds(20)) {
                (try? await RedisClient.info(of: replica.endpoint))?.contains("role:master") == true
            }
            #expect(promoted, "the sentinel did not promote the replica")
            try await newcomer.start()
            failedOver.withLockedValue { $0 = promoted }
            let cachedAgain = await eventually(timeout: .seconds(20)) { hitsAfterFailover.withLockedValue { $0 } > 0 }
            #expect(cachedAgain, "the cache never answered from the promoted replica")
            try await Task.sleep(for: .seconds(1))
            stop.withLockedValue { $0 = true }
            await load.value
            // Once more, every channel, from wherever the page comes now.
            for channel in acknowledged.withLockedValue({ Array($0.keys) }) {
                check(
                    try await api.send(.get, "/v1/channels/\(channel)/messages?limit=\(pageSize)", user: author), of: channel,
                    when: "after the load")
            }
        }
        await redis.shutdown()
        await probe.shutdown()
        // No relay runs here: the events of these writes would wait for other tests' relays.
        try await client.query(
            "DELETE FROM outbox WHERE channel_id = ANY($1::uuid[])", [acknowledged.withLockedValue { Array($0.keys) }])
        #expect(problems.withLockedValue { $0 } == [])
        #expect(acknowledged.withLockedValue { $0.values.map(\.count).reduce(0, +) } > 20)
    }
}

extension RedisFailoverTests {
    /// What a write-through with `replicas: 1` relies on: the script's write is confirmed while the
    /// replica keeps up, and refused as `notReplicated` (within the timeout) while it does not.
    @Test func aScriptWriteIsConfirmedByTheReplicaOrRefusedInTime() async throws {
        let primary = RedisServerProcess()
        try await primary.start()
        let replica = RedisServerProcess(arguments: ["--replicaof", "127.0.0.1", String(primary.port)])
        try await replica.start()
        defer {
            replica.crash()
            primary.crash()
        }
        let inSync = await eventually(timeout: .seconds(20)) {
            (try? await RedisClient.info(of: replica.endpoint))?.contains("master_link_status:up") == true
        }
        try #require(inSync)
        let redis = RedisClient(
            configuration: .init(endpoint: primary.endpoint, poolSize: 1, commandTimeout: .seconds(2)),
            logger: Logger(label: "wait"))
        let script = RedisScript("return redis.call('INCR', KEYS[1])")
        let confirmed = try await redis.evaluate(script, keys: ["n"], arguments: [], replicas: 1, replicaTimeout: .seconds(1))
        #expect(confirmed == .integer(1))
        replica.pause()
        let started = ContinuousClock.now
        let refused = await #expect(throws: RedisError.self) {
            try await redis.evaluate(script, keys: ["n"], arguments: [], replicas: 1, replicaTimeout: .milliseconds(200))
        }
        #expect(refused?.code == .notReplicated)
        #expect(ContinuousClock.now - started < .seconds(2))
        // The write itself was made on the primary: only its confirmation is missing.
        #expect(try await redis.send("GET", "n").string == "2")
        replica.resume()
        await redis.shutdown()
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
