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
}

/// The routes of every API, behind the request-log and error middleware. With a timeline cache,
/// `store` must apply its writes to it (`WriteThroughStore`).
/// `inf326Authenticator` is the identity rule of the `/threads` API (nil: the same as v1's).
func buildRouter(
    store: some MessageStore, timeline: TimelineCache?, rateLimiter: RateLimiter?, operations: Operations = Operations(),
    metrics: MetricsController? = nil, authenticator: Authenticator, inf326Authenticator: Authenticator? = nil,
    configuration: ServiceConfiguration
) -> Router<AppRequestContext> {
    let validator = MessageValidator(limits: configuration.limits)
    let router = Router(context: AppRequestContext.self)
    router.add(middleware: RequestLogMiddleware())
    if let metrics {
        // Outside ErrorMiddleware, so it counts the status each error was answered with.
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
    MessagesController(
        store: store, timeline: timeline, validator: validator, authenticator: authenticator,
        rateLimiter: rateLimiter, cursorCodec: makeCursorCodec(configuration)
    ).addRoutes(to: router, onStoreUnavailable: onStoreUnavailable)
    if configuration.inf326Enabled {
        ThreadsController(
            store: store, timeline: timeline, rateLimiter: rateLimiter, validator: validator,
            authenticator: inf326Authenticator ?? authenticator,
            clientAddress: ClientAddressResolver(trustedProxyHops: configuration.trustedProxyHops)
        ).addRoutes(to: router, onStoreUnavailable: onStoreUnavailable)
    }
    OpenAPIController().addRoutes(to: router)
    return router
}
