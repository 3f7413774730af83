import Foundation
import Logging
import NIOCore
import NIOPosix
import Testing

@testable import Redis

#if canImport(Glibc)
    import Glibc
#endif

/// The Redis client against the real server `make test` starts (`REDIS_URL`).
@Suite(.tags(.servers)) struct RedisClientTests {
    static let url = ProcessInfo.processInfo.environment["REDIS_URL"] ?? "redis://127.0.0.1:6379/0"

    init() {
        // A write to a closed socket must not kill the test process.
        signal(SIGPIPE, SIG_IGN)
    }

    func client(commandTimeout: Duration = .milliseconds(500), poolSize: Int = 2) throws -> RedisClient {
        let configuration = RedisClient.Configuration(
            endpoint: try RedisEndpoint(url: Self.url), poolSize: poolSize, commandTimeout: commandTimeout,
            acquireTimeout: .seconds(2)
        )
        return RedisClient(configuration: configuration, logger: Logger(label: "test"))
    }

    func key(_ name: String) -> String { "test:\(UUID().uuidString):\(name)" }

    @Test func commandsAreBinarySafe() async throws {
        let redis = try client()
        let key = key("binary")
        let value: [UInt8] = [0, 13, 10, 255, 36, 42, 0]
        #expect(try await redis.send("SET", key, value) == .status("OK"))
        #expect(try await redis.send("GET", key) == .bulk(value))
        #expect(try await redis.send("STRLEN", key) == .integer(7))
        #expect(try await redis.send("GET", key + ":missing") == .null)
        #expect(try await redis.send("DEL", key) == .integer(1))
        await redis.shutdown()
    }

    @Test func pipelineAnswersInOrderAndKeepsErrorRepliesAsValues() async throws {
        let redis = try client()
        let key = key("pipeline")
        let replies = try await redis.pipeline([
            RedisCommand("RPUSH", key, "a", "b", "c"),
            RedisCommand("INCR", key),  // wrong type: an error reply, not a failure of the batch
            RedisCommand("LRANGE", key, 0, -1),
            RedisCommand("DEL", key),
        ])
        #expect(replies.count == 4)
        #expect(replies[0] == .integer(3))
        guard case .error(let message) = replies[1] else {
            Issue.record("expected an error reply, got \(replies[1])")
            return
        }
        #expect(message.hasPrefix("WRONGTYPE"))
        #expect(replies[2] == .array([.bulk(Array("a".utf8)), .bulk(Array("b".utf8)), .bulk(Array("c".utf8))]))
        #expect(replies[3] == .integer(1))
        await redis.shutdown()
    }

    @Test func errorReplyThrowsATypedError() async throws {
        let redis = try client()
        let error = await #expect(throws: RedisError.self) { try await redis.send("NO-SUCH-COMMAND") }
        #expect(error?.code == .server)
        #expect(error?.errorPrefix == "ERR")
        #expect(error?.serverMessage?.contains("unknown command") == true)
        // The server's text may quote arguments: only the error prefix reaches the description.
        #expect(error?.description == "Redis server error (ERR)")
        #expect(error?.debugDescription.contains("unknown command") == true)
        #expect(error?.isUnavailable == false)
        // The connection stays usable after an error reply.
        #expect(try await redis.send("PING") == .status("PONG"))
        await redis.shutdown()
    }

    @Test func scriptsRunBySHAAndAreReloadedAfterAFlush() async throws {
        let redis = try client(poolSize: 1)
        let script = RedisScript("return {KEYS[1], ARGV[1], tonumber(ARGV[2]) * 2}")
        #expect(script.sha1.count == 40)
        let expected = RedisValue.array([.bulk(Array("k".utf8)), .bulk(Array("v".utf8)), .integer(42)])
        #expect(try await redis.evaluate(script, keys: ["k"], arguments: ["v", 21]) == expected)
        // The server's SHA matches ours, so EVALSHA finds what SCRIPT LOAD stored.
        #expect(try await redis.send("SCRIPT", "LOAD", script.source).string == script.sha1)
        try await redis.send("SCRIPT", "FLUSH")
        #expect(try await redis.evaluate(script, keys: ["k"], arguments: ["v", 21]) == expected)
        // A script may reply with any text, keys included: only a prefix Redis itself uses is kept.
        let keyed = await #expect(throws: RedisError.self) {
            try await redis.evaluate(RedisScript("return redis.error_reply(KEYS[1])"), keys: ["SECRETKEY"], arguments: [])
        }
        #expect(keyed?.errorPrefix != "SECRETKEY")
        #expect(keyed?.description.contains("SECRETKEY") == false)
        #expect(keyed?.debugDescription.contains("SECRETKEY") == true)
        let failing = RedisScript("return redis.call('NO-SUCH-COMMAND')")
        let error = await #expect(throws: RedisError.self) { try await redis.evaluate(failing, keys: [], arguments: []) }
        #expect(error?.code == .server)
        await redis.shutdown()
    }

    @Test func aCommandSlowerThanTheTimeoutFailsAndTheNextCallReconnects() async throws {
        let redis = try client(commandTimeout: .milliseconds(200), poolSize: 1)
        let started = ContinuousClock.now
        // BLPOP would answer after 10 s; the timeout ends the call long before, even on a machine
        // so busy (every suite runs at once) that the deadline check itself runs late.
        let error = await #expect(throws: RedisError.self) { try await redis.send("BLPOP", key("empty"), 10) }
        #expect(error?.code == .timeout)
        #expect(error?.isUnavailable == true)
        #expect(ContinuousClock.now - started < .seconds(8))
        #expect(try await redis.send("PING") == .status("PONG"))
        await redis.shutdown()
    }

    @Test func killedConnectionsAreReplaced() async throws {
        let redis = try client(poolSize: 1)
        let admin = try client(poolSize: 1)
        let name = "victim-\(UUID().uuidString)"
        try await redis.send("CLIENT", "SETNAME", name)
        let id = try #require(try await redis.send("CLIENT", "ID").integer)
        try await admin.send("CLIENT", "KILL", "ID", id)
        // The first call finds the connection closed; the next one opens a new connection.
        let first = try? await redis.send("PING")
        #expect(first == nil || first == .status("PONG"))
        #expect(try await redis.send("PING") == .status("PONG"))
        #expect(try await redis.send("CLIENT", "GETNAME") != .bulk(Array(name.utf8)))
        await admin.shutdown()
        await redis.shutdown()
    }

    @Test func unreachableServerIsAConnectionError() async throws {
        let configuration = RedisClient.Configuration(endpoint: RedisEndpoint(host: "127.0.0.1", port: 1), poolSize: 1)
        let redis = RedisClient(configuration: configuration, logger: Logger(label: "test"))
        let error = await #expect(throws: RedisError.self) { try await redis.send("PING") }
        #expect(error?.code == .connectionFailed)
        await redis.shutdown()
    }

    @Test func poolBoundsConcurrentCallers() async throws {
        let redis = RedisClient(
            configuration: .init(endpoint: try RedisEndpoint(url: Self.url), poolSize: 2, acquireTimeout: .seconds(5)),
            logger: Logger(label: "test")
        )
        let key = key("counter")
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<50 { group.addTask { try await redis.send("INCR", key) } }
            try await group.waitForAll()
        }
        #expect(try await redis.send("GET", key).integer == 50)
        // Both connections carried calls, and no third was opened.
        let statistics = await redis.statistics()
        #expect(statistics.inUse + statistics.idle == 2)
        try await redis.send("DEL", key)
        await redis.shutdown()
        let closed = await #expect(throws: RedisError.self) { try await redis.send("PING") }
        #expect(closed?.code == .poolClosed)
    }

    @Test func concurrentCallersSharingOneConnectionEachGetTheirOwnReply() async throws {
        let redis = try client(poolSize: 1)
        let prefix = key("mine")
        // Hundreds of calls pipelined on one socket: a reply matched to the wrong caller shows up
        // as a value that is not the caller's own.
        let mismatches = try await withThrowingTaskGroup(of: Int.self) { group in
            for index in 0..<300 {
                group.addTask {
                    let value = "value-\(index)-" + String(repeating: "x", count: index * 37 % 5000)
                    let replies = try await redis.pipeline([
                        RedisCommand("SET", "\(prefix):\(index)", value), RedisCommand("GET", "\(prefix):\(index)"),
                    ])
                    return replies == [.status("OK"), .bulk(Array(value.utf8))] ? 0 : 1
                }
            }
            return try await group.reduce(0, +)
        }
        #expect(mismatches == 0)
        let statistics = await redis.statistics()
        #expect(statistics.inUse + statistics.idle == 1)
        await redis.shutdown()
    }

    @Test func aFullWindowIsLoadThatWaitsNotAnOutage() async throws {
        let configuration = RedisClient.Configuration(
            endpoint: try RedisEndpoint(url: Self.url), poolSize: 1, commandTimeout: .seconds(3),
            acquireTimeout: .milliseconds(300), window: 1
        )
        let redis = RedisClient(configuration: configuration, logger: Logger(label: "test"))
        let list = key("list")
        // The one slot of the window is held by a blocked pop; a call behind it waits its turn, and
        // past the acquire timeout it is refused as load, with the connection kept.
        async let blocked = redis.send("BLPOP", list, 1)
        try await Task.sleep(for: .milliseconds(50))
        let error = await #expect(throws: RedisError.self) { try await redis.send("PING") }
        #expect(error?.code == .poolTimeout)
        #expect(error?.isOutage == false)
        #expect(try await blocked == .null)
        // Calls that fit the window wait for each other rather than fail.
        let pongs = try await withThrowingTaskGroup(of: RedisValue.self) { group in
            for _ in 0..<20 { group.addTask { try await redis.send("PING") } }
            return try await group.reduce(into: [RedisValue]()) { $0.append($1) }
        }
        #expect(pongs == Array(repeating: .status("PONG"), count: 20))
        #expect(await redis.statistics().timeouts == 1)
        await redis.shutdown()
    }

    @Test func everyConnectionSelectsTheDatabaseBeforeAnyCall() async throws {
        var endpoint = try RedisEndpoint(url: Self.url)
        endpoint.database = 7
        let selected = RedisClient(configuration: .init(endpoint: endpoint, poolSize: 1), logger: Logger(label: "test"))
        let plain = try client()
        let key = key("db")
        // The first calls race the connection's SELECT: they must wait for it, not run in database 0.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<10 { group.addTask { try await selected.send("SET", "\(key):\(index)", "7") } }
            try await group.waitForAll()
        }
        #expect(try await selected.send("GET", "\(key):3") == .bulk(Array("7".utf8)))
        #expect(try await plain.send("EXISTS", "\(key):3") == .integer(0))
        // A lost connection selects again on the next one.
        let id = try #require(try await selected.send("CLIENT", "ID").integer)
        try await plain.send("CLIENT", "KILL", "ID", id)
        _ = try? await selected.send("PING")
        #expect(try await selected.send("GET", "\(key):3") == .bulk(Array("7".utf8)))
        for index in 0..<10 { try await selected.send("DEL", "\(key):\(index)") }
        await selected.shutdown()
        await plain.shutdown()
    }

    @Test func aServerThatNeverAnswersTheSetUpIsAnOutageNotAWait() async throws {
        // Accepts connections and never answers: a frozen Redis, or a proxy in front of a dead one.
        let silent = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0).get()
        let port = try #require(silent.localAddress?.port)
        let configuration = RedisClient.Configuration(
            endpoint: RedisEndpoint(host: "127.0.0.1", port: port, database: 7), poolSize: 1,
            commandTimeout: .milliseconds(200), acquireTimeout: .seconds(10)
        )
        let redis = RedisClient(configuration: configuration, logger: Logger(label: "test"))
        let started = ContinuousClock.now
        // The calls wait for SELECT, which gets no answer: they fail with the connection, as an
        // outage the breaker counts, not after the acquire timeout as load.
        let errors = await withTaskGroup(of: RedisError?.self) { group in
            for _ in 0..<5 {
                group.addTask {
                    do {
                        _ = try await redis.send("PING")
                        return nil
                    } catch { return error as? RedisError }
                }
            }
            return await group.reduce(into: [RedisError?]()) { $0.append($1) }
        }
        #expect(errors.allSatisfy { $0?.code == .connectionFailed && $0?.isOutage == true })
        #expect(ContinuousClock.now - started < .seconds(2))
        await redis.shutdown()
        try await silent.close()
    }

    @Test func callsMadeOnTheLoopAndFromReplyCallbacksKeepTheirOrder() async throws {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let settings = RedisConnection.Settings(
            endpoint: try RedisEndpoint(url: Self.url), connectTimeout: .seconds(1), commandTimeout: .seconds(2),
            acquireTimeout: .seconds(2), window: 4
        )
        let connection = RedisConnection(eventLoop: loop, settings: settings, logger: Logger(label: "test"))
        let key = key("ordered")
        // Forty calls sent in one turn of the loop (the window of 4 keeps most waiting), each
        // sending another from inside its reply callback, while the connection reads more replies.
        let results = try await loop.flatSubmit {
            let pairs = (0..<40).map { _ in
                connection.send([RedisCommand("INCR", key)]).flatMap { incremented in
                    connection.send([RedisCommand("GET", key)]).map { read in
                        (incremented[0].integer ?? -1, read[0].integer ?? -1)
                    }
                }
            }
            return EventLoopFuture.whenAllSucceed(pairs, on: loop)
        }.get()
        #expect(results.map(\.0) == Array(1...40))
        #expect(results.allSatisfy { $0.1 >= $0.0 && $0.1 <= 40 })
        _ = try await connection.send([RedisCommand("DEL", key)]).get()
        try await connection.close().get()
    }

    @Test func aLoopTooBusyToReadTheReplyInTimeIsNoRedisTimeout() async throws {
        // A loop of its own: other suites' work on a shared loop would decide when it reads.
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        let settings = RedisConnection.Settings(
            endpoint: try RedisEndpoint(url: Self.url), connectTimeout: .seconds(1), commandTimeout: .milliseconds(200),
            acquireTimeout: .seconds(1), window: 8
        )
        let connection = RedisConnection(eventLoop: loop, settings: settings, logger: Logger(label: "test"))
        _ = try await connection.send([RedisCommand("PING")]).get()
        // The call goes out, then the loop is busy for one and a half command timeouts: Redis
        // answered at once, but nobody read the reply, and the deadline check runs before the loop
        // gets back to its sockets.
        let reply = try await loop.flatSubmit {
            let reply = connection.send([RedisCommand("ECHO", "late but there")])
            loop.execute {
                let until = NIODeadline.now() + .milliseconds(300)
                while NIODeadline.now() < until {}
            }
            return reply
        }.get()
        #expect(reply == [.bulk(Array("late but there".utf8))])
        try await connection.close().get()
        try await group.shutdownGracefully()
    }

    @Test func aWrongPasswordIsAConnectionFailure() async throws {
        var endpoint = try RedisEndpoint(url: Self.url)
        endpoint.password = "not-the-password"
        let redis = RedisClient(configuration: .init(endpoint: endpoint, poolSize: 1), logger: Logger(label: "test"))
        let error = await #expect(throws: RedisError.self) { try await redis.send("PING") }
        #expect(error?.code == .connectionFailed)
        await redis.shutdown()
    }

    @Test(arguments: [
        ("redis://127.0.0.1:6380/2", RedisEndpoint(host: "127.0.0.1", port: 6380, database: 2)),
        ("redis://:s%40cret@cache", RedisEndpoint(host: "cache", password: "s@cret")),
        ("redis://app:pw@cache:7000", RedisEndpoint(host: "cache", port: 7000, username: "app", password: "pw")),
    ])
    func endpointsParse(url: String, expected: RedisEndpoint) throws {
        #expect(try RedisEndpoint(url: url) == expected)
    }

    @Test(arguments: ["http://cache", "redis://", "redis://cache/x", "not a url"])
    func badEndpointsAreRefused(url: String) {
        #expect(throws: RedisError.self) { try RedisEndpoint(url: url) }
    }
}
