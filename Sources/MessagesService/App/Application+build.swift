import AMQP
import Crypto
import Foundation
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import Postgres
import Prometheus
import Redis
import ServiceLifecycle

/// The Postgres pool settings the configuration asks for.
public func postgresConfiguration(_ configuration: ServiceConfiguration) -> PostgresClient.Configuration {
    PostgresClient.Configuration(
        url: configuration.databaseURL,
        poolSize: configuration.postgresPoolSize,
        acquireTimeout: configuration.postgresPoolTimeout,
        statementTimeout: configuration.postgresStatementTimeout
    )
}

/// The Redis pool settings the configuration asks for.
public func redisConfiguration(_ configuration: ServiceConfiguration, endpoint: RedisEndpoint) -> RedisClient.Configuration {
    RedisClient.Configuration(
        endpoint: endpoint,
        poolSize: configuration.redisPoolSize,
        connectTimeout: configuration.redisConnectTimeout,
        commandTimeout: configuration.redisCommandTimeout,
        acquireTimeout: configuration.redisCommandTimeout
    )
}

/// The RabbitMQ client settings the configuration asks for.
func amqpConfiguration(_ configuration: ServiceConfiguration, endpoint: AMQPEndpoint) -> AMQPClient.Configuration {
    AMQPClient.Configuration(
        endpoint: endpoint,
        connection: AMQPClient.ConnectionOptions(
            heartbeat: configuration.amqpHeartbeat, connectTimeout: configuration.amqpConnectTimeout,
            rpcTimeout: configuration.amqpConfirmTimeout,
            // A batch publishes each row once, and new messages once more for the legacy queue.
            maxInFlight: 2 * configuration.outbox.batchSize
        ),
        reconnect: configuration.outbox.retry
    )
}

/// The version `/metrics` reports in `messages_build_info` and `--version` prints.
public let serviceVersion = "0.5.0"

/// Builds the whole service: the one place where its parts are wired together. `log` is where
/// every part logs (its journal is written to Postgres here); `metrics` is the registry the
/// executable bootstrapped swift-metrics with; `readiness` turns 503 when `runService` drains.
public func buildApplication(
    configuration: ServiceConfiguration, log: ServiceLog, metrics: PrometheusCollectorRegistry,
    readiness: Readiness = Readiness()
) async throws -> some ApplicationProtocol {
    let logger = log.logger(label: "messages-service")
    let authenticator = try await makeAuthenticator(configuration.authMode, configuration)
    // The legacy API verifies tokens whenever the v1 API does, unless told otherwise.
    let inf326Authenticator =
        configuration.effectiveINF326Auth == configuration.authMode
        ? authenticator : try await makeAuthenticator(configuration.effectiveINF326Auth, configuration)
    if configuration.inf326Enabled, configuration.effectiveINF326Auth == .header {
        logger.warning(
            "INF326_AUTH=header: the /threads API takes X-User-Id on trust; anyone who reaches it can write as anyone"
        )
    }
    if configuration.cursorSecret == nil {
        logger.warning(
            "CURSOR_SECRET is not set: page cursors are signed with a key of this process, so they break on restart and across pods"
        )
    }
    let postgres = PostgresClient(configuration: postgresConfiguration(configuration), logger: logger)
    let store = PostgresMessageStore(client: postgres)
    let outageWatch = StoreOutageWatch(logger: logger) {
        // A connection of its own: the pool may be saturated, or hold connections broken by the outage.
        guard let probe = try? await PostgresDedicatedConnection.connect(postgresConfiguration(configuration)) else {
            return false
        }
        let answered = (try? await probe.query("SELECT 1")) != nil
        await probe.close()
        return answered
    }
    // Shut down in reverse order: the journal writes its last entries before Postgres closes.
    var services: [any Service] = [
        postgres,
        ErrorJournalWriter(journal: log.journal, postgres: postgres, configuration: configuration.errorJournal, logger: logger),
        outageWatch,
    ]
    if let alerts = log.alerts { services.append(alerts) }
    var relay: OutboxRelay?
    if let endpoint = configuration.amqp {
        let legacyQueue = configuration.outbox.legacyQueue
        let amqp = AMQPClient(configuration: amqpConfiguration(configuration, endpoint: endpoint), logger: logger) {
            try OutboxRelay.declareTopology(on: $0, legacyQueue: legacyQueue)
        }
        let outboxRelay = OutboxRelay(
            postgres: postgresConfiguration(configuration), amqp: amqp, configuration: configuration.outbox, logger: logger
        )
        services.append(outboxRelay)
        relay = outboxRelay
    } else {
        logger.notice("AMQP_URL is empty: no outbox relay in this pod; events wait in the outbox for one that has it")
    }
    let operations = Operations(relay: relay, readiness: readiness, outageWatch: outageWatch)
    let router: Router<AppRequestContext>
    func metricsController(timeline: TimelineCache?, rateLimiter: RateLimiter?) -> MetricsController {
        MetricsController(
            registry: metrics, postgres: postgres, timeline: timeline, rateLimiter: rateLimiter, relay: relay,
            log: log, version: serviceVersion
        )
    }
    if let endpoint = configuration.redis {
        let redis = RedisClient(configuration: redisConfiguration(configuration, endpoint: endpoint), logger: logger)
        services.append(redis)
        // One Redis, one breaker: when it fails, the cache and the rate limit both stop asking it.
        let breaker = CircuitBreaker(configuration: configuration.redisBreaker)
        let timeline = TimelineCache(
            redis: redis, configuration: configuration.timelineCache, breaker: breaker, logger: logger
        ) { channelID, scope, limit in
            try await store.page(channelID: channelID, scope: scope, position: .newest, limit: limit)
        }
        let rateLimiter =
            configuration.rateLimit.rate > 0
            ? RateLimiter(redis: redis, configuration: configuration.rateLimit, breaker: breaker, logger: logger) : nil
        router = buildRouter(
            store: WriteThroughStore(base: store, timeline: timeline), timeline: timeline, rateLimiter: rateLimiter,
            operations: operations, metrics: metricsController(timeline: timeline, rateLimiter: rateLimiter),
            authenticator: authenticator, inf326Authenticator: inf326Authenticator, configuration: configuration
        )
    } else {
        logger.notice("REDIS_URL is empty: no timeline cache; the rate limit is kept per pod")
        let rateLimiter =
            configuration.rateLimit.rate > 0
            ? RateLimiter(redis: nil, configuration: configuration.rateLimit, breaker: nil, logger: logger) : nil
        router = buildRouter(
            store: store, timeline: nil, rateLimiter: rateLimiter, operations: operations,
            metrics: metricsController(timeline: nil, rateLimiter: rateLimiter), authenticator: authenticator,
            inf326Authenticator: inf326Authenticator, configuration: configuration
        )
    }
    return Application(
        router: router,
        server: httpServer(configuration),
        configuration: .init(address: .hostname(configuration.host, port: configuration.port)),
        services: services,
        logger: logger
    )
}

/// HTTP/1.1 with the slow-client limits: connections idle too long, or too slow to send a
/// request head, are closed.
func httpServer(_ configuration: ServiceConfiguration) -> HTTPServerBuilder {
    let idleTimeout = TimeAmount.nanoseconds(Int64(configuration.httpIdleTimeout.inSeconds * 1e9))
    let headerTimeout = TimeAmount.nanoseconds(Int64(configuration.httpHeaderTimeout.inSeconds * 1e9))
    return .http1(
        configuration: .init(
            additionalChannelHandlers: [RequestHeadDeadline(timeout: headerTimeout)], idleTimeout: idleTimeout
        )
    )
}

/// Runs `application` until SIGTERM or SIGINT, then shuts down gracefully: readiness turns 503
/// for `SHUTDOWN_DRAIN_MS` while requests are still served (`ShutdownDrain`), the server stops
/// accepting and finishes its in-flight requests, the relay its batch, the journal its last
/// write; whatever is left `SHUTDOWN_TIMEOUT_MS` after the drain is cancelled (and given 5 s to
/// stop). Returns (exit 0) when done.
public func runService(
    _ application: some ApplicationProtocol, configuration: ServiceConfiguration, readiness: Readiness, logger: Logger
) async throws {
    var group = ServiceGroupConfiguration(
        services: [
            .init(service: application),
            .init(service: ShutdownDrain(readiness: readiness, delay: configuration.shutdownDrain, logger: logger)),
        ],
        gracefulShutdownSignals: [.sigterm, .sigint],
        logger: logger
    )
    // The group's clock starts at the signal, so it covers the drain as well.
    group.maximumGracefulShutdownDuration = configuration.shutdownDrain + configuration.shutdownTimeout
    group.maximumCancellationDuration = .seconds(5)
    try await ServiceGroup(configuration: group).run()
}

/// The authenticator of a mode (`AUTH_MODE`, `INF326_AUTH`). Checked here, when serving, so that
/// `migrate` and other commands need no key.
public func makeAuthenticator(
    _ mode: ServiceConfiguration.AuthMode, _ configuration: ServiceConfiguration
) async throws -> Authenticator {
    switch mode {
    case .header:
        return .userHeader
    case .jwt:
        guard let key = configuration.jwtKey else {
            throw ConfigurationError(
                variable: "JWT_SECRET", problem: "AUTH_MODE=jwt and INF326_AUTH=jwt need JWT_SECRET or JWT_PUBLIC_KEY_FILE"
            )
        }
        let expectations = JWTVerifier.Expectations(
            issuer: configuration.jwtIssuer, audience: configuration.jwtAudience,
            maxLifetime: configuration.jwtMaxTTL.inSeconds
        )
        do {
            return .jwt(try await JWTVerifier(key: key, expectations: expectations))
        } catch {
            throw ConfigurationError(variable: "JWT_PUBLIC_KEY_FILE", problem: "is not an RSA or P-256 public key")
        }
    }
}
