import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import Postgres
import Redis
import Testing

@testable import MessagesService

#if canImport(Glibc)
    import Glibc
#endif

/// The Redis `make test` starts (`REDIS_URL`).
enum TestRedis {
    static let url = ProcessInfo.processInfo.environment["REDIS_URL"] ?? "redis://127.0.0.1:6379/0"

    static var endpoint: RedisEndpoint {
        try! RedisEndpoint(url: url)
    }
}

/// The service with a timeline cache, and beside it the same service without one on the same
/// database: what the cache answers must equal, byte for byte, what Postgres answers.
struct CachedService: Sendable {
    let api: APIClient
    /// Reads every page from Postgres.
    let reference: APIClient
    let timeline: TimelineCache
    let rateLimiter: RateLimiter?
    let store: PostgresMessageStore
    /// The Redis the cache uses, to look at its keys.
    let redis: RedisClient
}

struct CacheSettings {
    var endpoint = TestRedis.endpoint
    var capacity = 200
    var breaker = CircuitBreaker.Configuration()
    var commandTimeout = Duration.milliseconds(250)
    /// Makes every store read this much slower, so that concurrent misses surely overlap.
    var storeDelay: Duration?
    /// A per-user rate limit on the same Redis, when set.
    var rateLimit: RateLimiter.Configuration?
}

func withCachedService(
    _ settings: CacheSettings = CacheSettings(),
    _ body: @escaping @Sendable (CachedService) async throws -> Void
) async throws {
    signal(SIGPIPE, SIG_IGN)
    let client = try await TestDatabase.shared.migratedClient()
    let store = PostgresMessageStore(client: client)
    let redis = RedisClient(
        configuration: .init(
            endpoint: settings.endpoint, poolSize: 4, connectTimeout: settings.commandTimeout,
            // Waiting for a pooled connection is load, not an outage: generous, so that a busy
            // machine running every suite at once does not turn waits into bypasses.
            commandTimeout: settings.commandTimeout, acquireTimeout: .seconds(5)
        ),
        logger: Logger(label: "test")
    )
    let breaker = CircuitBreaker(configuration: settings.breaker)
    let rateLimiter = settings.rateLimit.map {
        RateLimiter(redis: redis, configuration: $0, breaker: breaker, logger: Logger(label: "test"))
    }
    let timeline = makeTimelineCache(
        redis: redis, store: store, capacity: settings.capacity, breaker: breaker, storeDelay: settings.storeDelay)
    let configuration = ServiceConfiguration.forTests
    let cached = Application(
        router: buildRouter(
            store: WriteThroughStore(base: store, timeline: timeline), timeline: timeline, rateLimiter: rateLimiter,
            authenticator: .userHeader, configuration: configuration
        )
    )
    let reference = Application(
        router: buildRouter(
            store: store, timeline: nil, rateLimiter: nil, authenticator: .userHeader, configuration: configuration)
    )
    do {
        try await cached.test(.router) { cachedClient in
            try await reference.test(.router) { referenceClient in
                try await body(
                    CachedService(
                        api: APIClient(client: cachedClient), reference: APIClient(client: referenceClient),
                        timeline: timeline, rateLimiter: rateLimiter, store: store, redis: redis
                    )
                )
            }
        }
    } catch {
        await redis.shutdown()
        throw error
    }
    await redis.shutdown()
}

/// A timeline cache on `redis` that fills from `store`, as `Application.build` makes one (another
/// one on the same Redis is another pod).
func makeTimelineCache(
    redis: RedisClient, store: PostgresMessageStore, capacity: Int = 200,
    breaker: CircuitBreaker = CircuitBreaker(configuration: .init()),
    storeDelay: Duration? = nil
) -> TimelineCache {
    TimelineCache(
        redis: redis, configuration: .init(capacity: capacity, timeToLive: .seconds(600)), breaker: breaker,
        logger: Logger(label: "test")
    ) { channelID, scope, limit in
        if let storeDelay { try await Task.sleep(for: storeDelay) }
        return try await store.page(channelID: channelID, scope: scope, position: .newest, limit: limit)
    }
}

/// A private redis-server that a test may stop, pause and restart without disturbing the others;
/// or a private redis-sentinel.
final class RedisServerProcess: @unchecked Sendable {
    let port = Int.random(in: 20_000..<30_000)
    private var process: Process?
    private let command: [String]
    /// The files and folders the server used, removed with it.
    private var scratch: [URL] = []

    var endpoint: RedisEndpoint { RedisEndpoint(host: "127.0.0.1", port: port) }

    /// A redis-server with `arguments` after its own (e.g. `--replicaof host port`).
    init(arguments: [String] = []) {
        command =
            [
                "redis-server", "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--loglevel", "warning",
            ] + arguments
    }

    /// A redis-sentinel that monitors the server on `primaryPort` as `name`, alone (quorum 1),
    /// and fails it over 500 ms after it stops answering. Its configuration (which a sentinel
    /// rewrites) is a file of its own.
    init(sentinelMonitoring primaryPort: Int, name: String) {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("sentinel-\(UUID()).conf")
        let configuration = """
            port \(port)
            bind 127.0.0.1
            dir \(FileManager.default.temporaryDirectory.path)
            loglevel warning
            sentinel monitor \(name) 127.0.0.1 \(primaryPort) 1
            sentinel down-after-milliseconds \(name) 500
            sentinel failover-timeout \(name) 5000
            """
        FileManager.default.createFile(atPath: file.path, contents: Data(configuration.utf8))
        command = ["redis-sentinel", file.path]
        scratch = [file]
    }

    func start() async throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = command
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        // A directory of its own: a replica saves what it received (dump.rdb) where it runs.
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("redis-\(port)-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        scratch.append(directory)
        process.currentDirectoryURL = directory
        try process.run()
        self.process = process
        let probe = RedisClient(configuration: .init(endpoint: endpoint, poolSize: 1), logger: Logger(label: "probe"))
        defer { Task { await probe.shutdown() } }
        for _ in 0..<100 {
            if (try? await probe.send("PING")) == .status("PONG") {
                // Ours, not another server that had the port (ours then failed to bind).
                let info = (try? await probe.send("INFO", "server"))?.string ?? ""
                guard info.contains("process_id:\(process.processIdentifier)\r") else {
                    throw RedisError(code: .connectionFailed, serverMessage: "port \(port) is taken by another server")
                }
                return
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw RedisError(code: .connectionFailed, serverMessage: "redis-server on port \(port) did not start")
    }

    /// Kills the server and waits until it is gone. (Not `waitUntilExit`: off the main thread it
    /// spins on a run loop that has no source to wake it.)
    func stop() async {
        guard let process else { return }
        self.process = nil
        kill(process.processIdentifier, SIGKILL)
        for _ in 0..<200 where process.isRunning {
            try? await Task.sleep(for: .milliseconds(25))
        }
    }

    /// Kills the server at once (a crash), without waiting.
    func crash() {
        guard let process else { return }
        self.process = nil
        kill(process.processIdentifier, SIGKILL)
    }

    /// Freezes the server: connections stay open and every call times out.
    func pause() {
        if let process { kill(process.processIdentifier, SIGSTOP) }
    }

    func resume() {
        if let process { kill(process.processIdentifier, SIGCONT) }
    }

    deinit {
        if let process { kill(process.processIdentifier, SIGKILL) }
        for url in scratch { try? FileManager.default.removeItem(at: url) }
    }
}
