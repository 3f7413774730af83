import Crypto
import Foundation
import Hummingbird

/// The cursor keys the configuration names, or a key of this process' own.
func makeCursorCodec(_ configuration: ServiceConfiguration) -> CursorCodec {
    guard let current = configuration.cursorSecret else { return .ephemeral() }
    return CursorCodec(
        current: SymmetricKey(data: Data(current.utf8)),
        previous: configuration.cursorPreviousSecret.map { SymmetricKey(data: Data($0.utf8)) }
    )
}

/// The parts of the service that report on it rather than serve messages; all optional in tests.
struct Operations {
    var relay: OutboxRelay?
    var readiness = Readiness()
    var outageWatch: StoreOutageWatch?
    /// Serves `/v1/stats` and `/v1/channels/{id}/stats` (no statistics routes without it).
    var statistics: (any StatisticsStore)?
}

/// The routes of every API, behind the request-log and error middleware. With a timeline cache,
/// `store` must apply its writes to it (`WriteThroughStore`).
/// `inf326Authenticator` is the identity rule of the `/threads` API (nil: the same as v1's).
/// `access` says who may use which channel and keeps the memberships the membership API
/// changes; nil (tests of other things) lets everyone use every channel and has no membership API.
/// `streams` serves the live streams (no stream route without it).
func buildRouter(
    store: some MessageStore, timeline: TimelineCache?, rateLimiter: RateLimiter?, operations: Operations = Operations(),
    metrics: MetricsController? = nil, authenticator: Authenticator, inf326Authenticator: Authenticator? = nil,
    access: ChannelAccess? = nil, streams: ChannelStreams? = nil, configuration: ServiceConfiguration
) -> Router<AppRequestContext> {
    let validator = MessageValidator(limits: configuration.limits)
    let router = Router(context: AppRequestContext.self)
    if configuration.tracing {
        router.add(middleware: RequestTracingMiddleware())
    }
    router.add(middleware: RequestLogMiddleware())
    if let metrics {
        // Outside every APIErrorMiddleware, so it counts the status each error was answered with.
        router.add(middleware: MetricsMiddleware())
        metrics.addRoutes(to: router)
    }
    var onStoreUnavailable: StoreOutageReporter?
    if let outageWatch = operations.outageWatch {
        onStoreUnavailable = { outageWatch.reportUnavailable($0) }
    }
    // Each API's route group answers its own errors; this one answers the rest.
    router.add(
        middleware: APIErrorMiddleware(
            dialect: V1Dialect.self, onStoreUnavailable: onStoreUnavailable,
            unroutedDialects: configuration.inf326Enabled ? [("/threads", ThreadsDialect.self)] : []
        ))
    HealthController(store: store, timeline: timeline, relay: operations.relay, readiness: operations.readiness)
        .addRoutes(to: router)
    // Each API is one route group with its own error mapping.
    let v1 = router.group("v1")
        .add(middleware: APIErrorMiddleware(dialect: V1Dialect.self, onStoreUnavailable: onStoreUnavailable))
    MessagesController(
        store: store, timeline: timeline, validator: validator, authenticator: authenticator,
        rateLimiter: rateLimiter, cursorCodec: makeCursorCodec(configuration), access: access
    ).addRoutes(to: v1)
    ReactionsController(
        store: store, authenticator: authenticator, rateLimiter: rateLimiter, access: access, limits: validator.limits
    ).addRoutes(to: v1)
    if let streams {
        StreamController(streams: streams, authenticator: authenticator, rateLimiter: rateLimiter, access: access)
            .addRoutes(to: v1)
    }
    if let access {
        MembersController(access: access, authenticator: authenticator).addRoutes(to: v1)
    }
    if let statistics = operations.statistics {
        StatisticsController(statistics: statistics, authenticator: authenticator, rateLimiter: rateLimiter, access: access)
            .addRoutes(to: v1)
    }
    if configuration.inf326Enabled {
        let threads = router.group("threads")
            .add(middleware: APIErrorMiddleware(dialect: ThreadsDialect.self, onStoreUnavailable: onStoreUnavailable))
        ThreadsController(
            store: store, timeline: timeline, rateLimiter: rateLimiter, validator: validator,
            authenticator: inf326Authenticator ?? authenticator,
            clientAddress: ClientAddressResolver(trustedProxyHops: configuration.trustedProxyHops), access: access
        ).addRoutes(to: threads)
    }
    OpenAPIController().addRoutes(to: router)
    WebController(servesApp: configuration.webClient, devTokens: configuration.devTokens).addRoutes(to: router)
    if configuration.devTokens, case .hmacSecret(let secret) = configuration.jwtKey {
        DevTokenController(
            secret: secret, issuer: configuration.jwtIssuer, audience: configuration.jwtAudience,
            lifetime: min(.seconds(3600), configuration.jwtMaxTTL)
        ).addRoutes(to: router)
    }
    return router
}
