import Hummingbird
import Logging
import ServiceLifecycle

/// Runs `application` until SIGTERM or SIGINT, then shuts down gracefully: readiness turns 503
/// for `SHUTDOWN_DRAIN_MS` while requests are still served (`ShutdownDrain`), the server stops
/// accepting and finishes its in-flight requests, the relay its batch, the journal its last
/// write; whatever is left `SHUTDOWN_TIMEOUT_MS` after the drain is cancelled (and given 5 s to
/// stop). Returns (exit 0) when done.
public func runService(
    _ application: some ApplicationProtocol, configuration: ServiceConfiguration, readiness: Readiness,
    tracing: (any Service)? = nil, logger: Logger
) async throws {
    // The group stops its services in reverse order: the span exporter last, so that it sends
    // the spans of the shutdown too.
    var group = ServiceGroupConfiguration(
        services: (tracing.map { [ServiceGroupConfiguration.ServiceConfiguration(service: $0)] } ?? []) + [
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
