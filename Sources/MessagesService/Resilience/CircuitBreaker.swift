import NIOConcurrencyHelpers

/// Stops calling a dependency that keeps failing, so requests do not each wait for its timeout,
/// and lets one trial call through after a pause to find out whether it is back.
///
/// closed: calls pass; `failureThreshold` failures in a row open it. open: calls are refused at
/// once for `openDuration`. half-open: one trial call passes; its success closes the breaker, its
/// failure opens it again for another `openDuration`. Each state change starts a new generation,
/// and only calls let through in the current one count: a slow call from before cannot close an
/// open breaker or free a second trial.
final class CircuitBreaker: Sendable {
    struct Configuration: Sendable, Equatable {
        var failureThreshold = 5
        var openDuration = Duration.seconds(5)
    }

    enum State: String, Sendable {
        case closed
        case open
        case halfOpen = "half_open"
    }

    /// Thrown instead of calling the dependency while the breaker is open.
    struct OpenError: Error, CustomStringConvertible {
        var description: String { "circuit breaker open" }
    }

    private struct Status {
        var state = State.closed
        var generation: UInt64 = 0
        var consecutiveFailures = 0
        var openedAt: ContinuousClock.Instant
        var trialInFlight = false

        mutating func enter(_ state: State, at now: ContinuousClock.Instant) {
            self.state = state
            generation &+= 1
            consecutiveFailures = 0
            trialInFlight = false
            if state == .open { openedAt = now }
        }
    }

    private let configuration: Configuration
    /// The time it is; a test passes a clock it advances itself.
    private let now: @Sendable () -> ContinuousClock.Instant
    private let status: NIOLockedValueBox<Status>

    init(configuration: Configuration, now: @escaping @Sendable () -> ContinuousClock.Instant = { .now }) {
        self.configuration = configuration
        self.now = now
        self.status = NIOLockedValueBox(Status(openedAt: now()))
    }

    var state: State { status.withLockedValue { $0.state } }

    /// Runs `operation` if the breaker lets it through and records how it went; throws `OpenError`
    /// without calling it otherwise. `isFailure` tells outages from answers that only refused.
    func run<T>(
        isFailure: (any Error) -> Bool = { _ in true },
        _ operation: () async throws -> T
    ) async throws -> T {
        guard let generation = permit() else { throw OpenError() }
        do {
            let result = try await operation()
            record(success: true, generation: generation)
            return result
        } catch {
            record(success: !isFailure(error), generation: generation)
            throw error
        }
    }

    /// The generation a call may go ahead in now, or nil (in half-open, only the one trial call).
    private func permit() -> UInt64? {
        status.withLockedValue { status in
            switch status.state {
            case .closed:
                return status.generation
            case .open:
                let time = now()
                guard time - status.openedAt >= configuration.openDuration else { return nil }
                status.enter(.halfOpen, at: time)
                status.trialInFlight = true
                return status.generation
            case .halfOpen:
                guard !status.trialInFlight else { return nil }
                status.trialInFlight = true
                return status.generation
            }
        }
    }

    private func record(success: Bool, generation: UInt64) {
        status.withLockedValue { status in
            guard generation == status.generation else { return }
            if success {
                if status.state == .closed {
                    status.consecutiveFailures = 0
                } else {
                    status.enter(.closed, at: now())
                }
                return
            }
            status.consecutiveFailures += 1
            if status.state == .halfOpen || status.consecutiveFailures >= configuration.failureThreshold {
                status.enter(.open, at: now())
            }
        }
    }
}
