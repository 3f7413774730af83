import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle

/// Whether this pod still wants new requests: false from SIGTERM on, so `/health/ready` answers
/// 503 while the pod drains.
public final class Readiness: Sendable {
    private let draining = NIOLockedValueBox(false)

    public init() {}

    public var isDraining: Bool { draining.withLockedValue { $0 } }

    func startDraining() {
        draining.withLockedValue { $0 = true }
    }
}

/// The first step of a graceful shutdown: readiness turns 503 and the server keeps serving for
/// `delay`, so load balancers that poll readiness stop sending before the listener closes. Runs
/// as the last service of the process' group, so it is the first one shut down, and the server
/// (which then finishes its in-flight requests) only after it returned.
public struct ShutdownDrain: Service {
    let readiness: Readiness
    let delay: Duration
    let logger: Logger

    public init(readiness: Readiness, delay: Duration, logger: Logger) {
        self.readiness = readiness
        self.delay = delay
        self.logger = logger
    }

    public func run() async throws {
        try? await gracefulShutdown()
        guard !Task.isCancelled else { return }
        readiness.startDraining()
        logger.notice(
            "shutting down: readiness is 503; serving for the drain delay, then finishing in-flight requests",
            metadata: ["drain_seconds": .stringConvertible(delay.inSeconds)]
        )
        try? await Task.sleep(for: delay)
    }
}
