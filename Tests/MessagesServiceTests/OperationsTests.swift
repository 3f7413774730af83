import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import Postgres
import Redis
import Testing

@testable import MessagesService

/// Health, request ids, configuration and migrations.
@Suite(.tags(.servers)) struct OperationsTests {
    @Test func liveAndReadyAnswer200WithPostgresUp() async throws {
        try await withService { api, _ in
            #expect(try await api.send(.get, "/health/live").status == .ok)
            let ready = try await api.send(.get, "/health/ready")
            #expect(ready.status == .ok)
            #expect((ready.json["checks"] as? [String: String])?["postgres"] == "ok")
        }
    }

    @Test func readinessFailsAndRequestsAre503WhilePostgresIsUnreachable() async throws {
        let client = PostgresClient(
            configuration: .init(url: "postgres://messages@127.0.0.1:1/messages", poolSize: 1, connectTimeout: .seconds(1)),
            logger: Logger(label: "test")
        )
        let app = Application(
            router: buildRouter(
                store: PostgresMessageStore(client: client), timeline: nil, rateLimiter: nil, authenticator: .userHeader,
                configuration: .init()))
        try await app.test(.router) { client in
            let api = APIClient(client: client)
            #expect(try await api.send(.get, "/health/live").status == .ok)
            #expect(try await api.send(.get, "/health/ready").status == .serviceUnavailable)
            let write = try await api.send(.post, "/v1/channels/\(UUID())/messages", user: UUID(), json: #"{"content":"x"}"#)
            #expect(write.status == .serviceUnavailable)
            #expect(write.headers[.retryAfter] != nil)
            #expect((write.json["error"] as? [String: Any])?["code"] as? String == "unavailable")
            let legacy = try await api.send(.get, "/threads/\(UUID())/messages")
            #expect(legacy.status == .serviceUnavailable)
            #expect(legacy.json["detail"] is String)
        }
        await client.shutdown()
    }

    @Test func requestIDIsEchoedOrMadeUp() async throws {
        try await withService { api, _ in
            let echoed = try await api.send(.get, "/health/live", headers: [HTTPField.Name("X-Request-ID")!: "abc-123"])
            #expect(echoed.headers[HTTPField.Name("X-Request-ID")!] == "abc-123")
            let made = try await api.send(.get, "/nowhere", headers: [HTTPField.Name("X-Request-ID")!: "bad id with spaces"])
            #expect(made.status == .notFound)
            let id = try #require(made.headers[HTTPField.Name("X-Request-ID")!])
            #expect(id != "bad id with spaces")
            #expect((made.json["error"] as? [String: Any])?["request_id"] as? String == id)
        }
    }

    @Test func openAPISpecIsServed() async throws {
        try await withService { api, _ in
            let reply = try await api.send(.get, "/openapi.yaml")
            #expect(reply.status == .ok)
            #expect(String(decoding: reply.bytes, as: UTF8.self).hasPrefix("openapi: 3.1"))
        }
    }

    @Test func migrationsAreIdempotentUnderConcurrentRunners() async throws {
        _ = try await TestDatabase.shared.migratedClient()
        // As `migrate` does: on sessions of their own (the migration lock is a session's).
        let client = PostgresClient(
            configuration: .init(url: TestDatabase.sessionURL, poolSize: 3, acquireTimeout: .seconds(10)),
            logger: Logger(label: "test"))
        let migrator = Migrator(client: client, logger: Logger(label: "test"), partitions: TestDatabase.partitions)
        let applied = try await withThrowingTaskGroup(of: [Int].self) { group in
            for _ in 0..<3 { group.addTask { try await migrator.migrate() } }
            return try await group.reduce(into: [Int]()) { $0 += $1 }
        }
        let versions = try await client.query("SELECT version FROM schema_migrations ORDER BY version").rows.map {
            try $0.decode("version", as: Int.self)
        }
        await client.shutdown()
        #expect(applied.isEmpty)
        #expect(versions == Migrations.all.map(\.version))
    }

    @Test(arguments: [
        ("PORT", "http", "invalid PORT: must be an integer 1...65535 (got \"http\")"),
        ("DATABASE_URL", "mysql://x", "invalid DATABASE_URL: must be a URL starting with postgres:// or postgresql://"),
        (
            "LOG_LEVEL", "loud",
            "invalid LOG_LEVEL: must be one of trace, debug, info, notice, warning, error, critical (got \"loud\")"
        ),
        ("INF326_API_ENABLED", "maybe", "invalid INF326_API_ENABLED: must be true or false (got \"maybe\")"),
        ("MAX_CONTENT_LENGTH", "0", "invalid MAX_CONTENT_LENGTH: must be an integer 1...20000 (got \"0\")"),
        ("AUTH_MODE", "none", "invalid AUTH_MODE: must be one of jwt, header (got \"none\")"),
        ("JWT_SECRET", "short", "invalid JWT_SECRET: must be at least 32 bytes"),
        (
            "JWT_SECRET", "dev-only-jwt-secret-REPLACE_ME-0123456789abcdef",
            "invalid JWT_SECRET: is a placeholder (REPLACE_ME): set the real value"
        ),
        (
            "DATABASE_URL", "postgres://messages:replace_me@postgres:5432/messages",
            "invalid DATABASE_URL: is a placeholder (REPLACE_ME): set the real value"
        ),
        (
            "CURSOR_SECRET", String(repeating: "REPLACE_ME", count: 4),
            "invalid CURSOR_SECRET: is a placeholder (REPLACE_ME): set the real value"
        ),
        ("JWT_PUBLIC_KEY_FILE", "/nonexistent.pem", "invalid JWT_PUBLIC_KEY_FILE: must name a readable PEM public key file"),
        ("REDIS_URL", "redis://cache/x", "invalid REDIS_URL: the database must be a number, e.g. /0"),
        ("TIMELINE_CACHE_SIZE", "50", "invalid TIMELINE_CACHE_SIZE: must be an integer 200...100000 (got \"50\")"),
        ("RATE_LIMIT_RPS", "-1", "invalid RATE_LIMIT_RPS: must be an integer 0...1000000 (got \"-1\")"),
    ])
    func badConfigurationNamesTheVariable(variable: String, value: String, message: String) {
        #expect(throws: ConfigurationError.self) { try ServiceConfiguration(environment: [variable: value]) }
        do {
            _ = try ServiceConfiguration(environment: [variable: value])
        } catch {
            #expect(error.description == message)
        }
    }

    @Test func configurationReadsTheEnvironment() throws {
        let configuration = try ServiceConfiguration(environment: [
            "AUTH_MODE": "header", "PORT": "9000", "REDIS_URL": "", "MAX_CONTENT_LENGTH": "100", "PG_POOL_SIZE": "4",
            "INF326_API_ENABLED": "false",
        ])
        #expect(configuration.port == 9000)
        #expect(configuration.redis == nil)
        #expect(configuration.limits.maxContentLength == 100)
        #expect(configuration.postgresPoolSize == 4)
        #expect(configuration.inf326Enabled == false)
        #expect(configuration.authMode == .header)
        let jwt = try ServiceConfiguration(environment: ["JWT_SECRET": String(repeating: "s", count: 32), "JWT_ISSUER": "me"])
        #expect(jwt.authMode == .jwt)
        #expect(jwt.jwtKey == .hmacSecret(String(repeating: "s", count: 32)))
        #expect(jwt.jwtIssuer == "me")
        #expect(jwt.jwtAudience == "messages-api")
        let redis = try ServiceConfiguration(environment: [
            "REDIS_URL": "redis://:pw@cache:6380/1", "TIMELINE_CACHE_SIZE": "500", "TIMELINE_CACHE_TTL_SECONDS": "60",
            "REDIS_COMMAND_TIMEOUT_MS": "50", "REDIS_BREAKER_FAILURES": "3", "RATE_LIMIT_RPS": "0", "RATE_LIMIT_BURST": "9",
        ])
        #expect(redis.redis == RedisEndpoint(host: "cache", port: 6380, password: "pw", database: 1))
        #expect(
            redis.timelineCache
                == TimelineCache.Configuration(capacity: 500, timeToLive: .seconds(60), replicaTimeout: .milliseconds(25)))
        #expect(redis.redisSentinel == nil)
        let sentinel = try ServiceConfiguration(environment: [
            "REDIS_SENTINELS": "s0:26380, s1", "REDIS_SENTINEL_NAME": "chat", "REDIS_WAIT_REPLICAS": "1",
        ])
        #expect(
            sentinel.redisSentinel
                == RedisSentinel(
                    sentinels: [RedisEndpoint(host: "s0", port: 26380), RedisEndpoint(host: "s1", port: 26379)],
                    primaryName: "chat"))
        #expect(sentinel.timelineCache.replicas == 1)
        for wrong in ["s0:x", ":1", "s0:70000", ","] {
            #expect(throws: ConfigurationError.self) { try ServiceConfiguration(environment: ["REDIS_SENTINELS": wrong]) }
        }
        #expect(redis.redisCommandTimeout == .milliseconds(50))
        #expect(redis.redisBreaker.failureThreshold == 3)
        #expect(redis.rateLimit == RateLimiter.Configuration(rate: 0, burst: 9))
    }

    @Test func jwtModeIsTheDefaultAndServingNeedsAKey() async throws {
        let configuration = try ServiceConfiguration(environment: [:])
        #expect(configuration.authMode == .jwt)
        await #expect(
            throws: ConfigurationError(
                variable: "JWT_SECRET", problem: "AUTH_MODE=jwt and INF326_AUTH=jwt need JWT_SECRET or JWT_PUBLIC_KEY_FILE"
            )
        ) {
            try await makeAuthenticator(configuration.authMode, configuration)
        }
    }
}
