import Foundation
import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle

/// Turns a Postgres outage into two log lines instead of one per failed request: `critical`
/// (which alerts) when requests first fail for it, `notice` with its duration once Postgres
/// answers again. Requests report failures; while an outage lasts this checks the store once a
/// second (`isReachable` must really reach it, not trust a saturated pool). Failures within
/// `settleTime` of a recovery come from connections that broke before it and start no new outage.
/// Recovery needs nothing else: the pool reconnects on the next request.
public final class StoreOutageWatch: Service, Sendable {
    private let isReachable: @Sendable () async -> Bool
    private let logger: Logger
    private let probeInterval: Duration
    private let settleTime: Duration
    private let outageStart = NIOLockedValueBox<ContinuousClock.Instant?>(nil)
    private let recoveredAt = NIOLockedValueBox<ContinuousClock.Instant?>(nil)
    private let wakeUp: AsyncStream<Void>.Continuation
    private let wakeUps: AsyncStream<Void>

    public init(
        probeInterval: Duration = .seconds(1), settleTime: Duration = .seconds(10), logger: Logger,
        isReachable: @escaping @Sendable () async -> Bool
    ) {
        self.isReachable = isReachable
        self.logger = logger
        self.probeInterval = probeInterval
        self.settleTime = settleTime
        (wakeUps, wakeUp) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    /// A request failed because Postgres is unreachable.
    func reportUnavailable(_ error: any Error) {
        if let recovered = recoveredAt.withLockedValue({ $0 }), ContinuousClock.now - recovered < settleTime { return }
        let isNew = outageStart.withLockedValue { start in
            guard start == nil else { return false }
            start = .now
            return true
        }
        guard isNew else { return }
        logger.critical(
            "message store unavailable: requests are answered 503 until it is back",
            metadata: ["error": "\(error)"]
        )
        wakeUp.yield()
    }

    public var isInOutage: Bool { outageStart.withLockedValue { $0 != nil } }

    public func run() async throws {
        for await _ in wakeUps.cancelOnGracefulShutdown() {
            while let start = outageStart.withLockedValue({ $0 }), !Task.isShuttingDownGracefully, !Task.isCancelled {
                if await isReachable() {
                    recoveredAt.withLockedValue { $0 = .now }
                    outageStart.withLockedValue { $0 = nil }
                    let seconds = (ContinuousClock.now - start).inSeconds
                    logger.notice("message store reachable again", metadata: ["outage_seconds": .stringConvertible(seconds)])
                    break
                }
                try? await cancelWhenGracefulShutdown { try await Task.sleep(for: self.probeInterval) }
            }
        }
    }
}
