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
    if configuration.devTokens {
        logger.warning(
            "DEV_TOKENS=true: POST /dev/token mints a token for any user to callers on this host (development only)"
        )
    }
    if configuration.cursorSecret == nil {
        logger.warning(
            "CURSOR_SECRET is not set: page cursors are signed with a key of this process, so they break on restart and across pods"
        )
    }
    let postgres = PostgresClient(configuration: PostgresClient.Configuration(configuration), logger: logger)
    let store = PostgresMessageStore(client: postgres)
    let membershipCache = MembershipCache()
    let access = ChannelAccess(
        mode: configuration.channelAccess, store: PostgresMembershipStore(client: postgres), cache: membershipCache
    )
    logger.notice(
        "CHANNEL_ACCESS=\(configuration.channelAccess.rawValue): \(configuration.channelAccess == .members ? "a channel serves only its members" : "every caller may use every channel")"
    )
    if configuration.channelAccess == .members,
        configuration.authMode == .header || (configuration.inf326Enabled && configuration.effectiveINF326Auth == .header)
    {
        logger.warning(
            "CHANNEL_ACCESS=members with X-User-Id taken on trust (AUTH_MODE or INF326_AUTH=header): membership is only as safe as whatever sets that header"
        )
    }
    let outageWatch = StoreOutageWatch(logger: logger) {
        // A connection of its own: the pool may be saturated, or hold connections broken by the outage.
        guard let probe = try? await PostgresDedicatedConnection.connect(PostgresClient.Configuration(configuration)) else {
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
    if configuration.channelAccess == .members {
        services.append(
            MembershipChanges(cache: membershipCache, logger: logger) {
                try await PostgresDedicatedConnection.connect(PostgresClient.Configuration(sessionsOf: configuration))
            })
    }
    var streamConfiguration = configuration.streams
    if configuration.amqp == nil {
        // No notices without a broker: the streams learn of changes by polling only.
        streamConfiguration.pollInterval = min(streamConfiguration.pollInterval, .seconds(1))
    }
    let streams = ChannelStreams(configuration: streamConfiguration, logger: logger) { channelID, since, limit in
        try await store.changes(channelID: channelID, since: since, limit: limit)
    }
    services.append(streams)
    var relay: OutboxRelay?
    if let endpoint = configuration.amqp {
        let outbox = configuration.outbox
        let amqp = AMQPClient(configuration: AMQPClient.Configuration(configuration, endpoint: endpoint), logger: logger) {
            try OutboxRelay.declareTopology(on: $0, configuration: outbox, logger: logger)
        }
        let lag = metrics.makeDurationHistogram(
            name: "messages_event_lag_seconds",
            buckets: [5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 10_000].map { .milliseconds($0) },
            help: "Time from an event's write into the outbox (in its change's transaction) to the broker's confirm."
        )
        let outboxRelay = OutboxRelay(
            postgres: PostgresClient.Configuration(sessionsOf: configuration), amqp: amqp, configuration: configuration.outbox,
            logger: logger, recordLag: { lag.record($0) }
        )
        services.append(outboxRelay)
        relay = outboxRelay
        let fanOutLag = metrics.makeDurationHistogram(
            name: "messages_stream_fanout_lag_seconds",
            buckets: [5, 10, 25, 50, 75, 100, 250, 500, 1_000, 5_000].map { .milliseconds($0) },
            help: "Time from a change's event being written (Postgres' clock) to its notice reaching this pod's streams."
        )
        services.append(
            ChangeNoticeConsumer(
                amqp: AMQPClient.Configuration(configuration, endpoint: endpoint), streams: streams, logger: logger,
                recordLag: { fanOutLag.record($0) }
            ))
    } else {
        logger.notice("AMQP_URL is empty: no outbox relay in this pod; events wait in the outbox for one that has it")
    }
    let operations = Operations(
        relay: relay, readiness: readiness, outageWatch: outageWatch, statistics: PostgresStatisticsStore(client: postgres))
    let router: Router<AppRequestContext>
    func metricsController(timeline: TimelineCache?, rateLimiter: RateLimiter?) -> MetricsController {
        MetricsController(
            registry: metrics, postgres: postgres, timeline: timeline, rateLimiter: rateLimiter, relay: relay,
            membership: configuration.channelAccess == .members ? membershipCache : nil, streams: streams, log: log,
            version: serviceVersion
        )
    }
    if let endpoint = configuration.redis {
        let redis = RedisClient(configuration: RedisClient.Configuration(configuration, endpoint: endpoint), logger: logger)
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
            authenticator: authenticator, inf326Authenticator: inf326Authenticator, access: access, streams: streams,
            configuration: configuration
        )
    } else {
        logger.notice("REDIS_URL is empty: no timeline cache; the rate limit is kept per pod")
        let rateLimiter =
            configuration.rateLimit.rate > 0
            ? RateLimiter(redis: nil, configuration: configuration.rateLimit, breaker: nil, logger: logger) : nil
        router = buildRouter(
            store: store, timeline: nil, rateLimiter: rateLimiter, operations: operations,
            metrics: metricsController(timeline: nil, rateLimiter: rateLimiter), authenticator: authenticator,
            inf326Authenticator: inf326Authenticator, access: access, streams: streams, configuration: configuration
        )
    }
    return Application(
        router: router,
        server: httpServer(configuration),
        // A burst of new connections (a thousand clients at once, a pod taking over another's) waits
        // in the kernel's queue while the event loops are busy, instead of having its SYNs dropped
        // and retried seconds later (the kernel caps it at net.core.somaxconn).
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), backlog: 4096),
        services: services,
        logger: logger
    )
}

/// HTTP/1.1 with the slow-client limits: connections idle too long, or too slow to send a
/// request head, are closed.
func httpServer(_ configuration: ServiceConfiguration) -> HTTPServerBuilder {
    let idleTimeout = TimeAmount.nanoseconds(Int64(configuration.httpIdleTimeout.inSeconds * 1e9))
    let headerTimeout = TimeAmount.nanoseconds(Int64(configuration.httpHeaderTimeout.inSeconds * 1e9))
    let http1 = HTTP1Channel.Configuration(
        additionalChannelHandlers: [RequestHeadDeadline(timeout: headerTimeout)], idleTimeout: idleTimeout
    )
    // Handlers run on Swift's executor, not on the event loops: pinned to the loops (a task
    // executor preference), a cached read was 10-25% faster at 32 connections, but at 1000 a busy
    // loop runs its queued work before it reads any socket (NIO drains all tasks first), so Redis
    // replies sat unread past their timeout, the breaker opened and the mix fell to a third.
    return .http1(configuration: http1)
}
