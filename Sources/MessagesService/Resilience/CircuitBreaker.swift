import NIOConcurrencyHelpers

/// Stops calling a dependency that keeps failing, so requests do not each wait for its timeout,
/// and lets one trial call through after a pause to find out whether it is back.
///
/// closed: calls pass; `failureThreshold` failures in a row open it. open: calls are refused at
/// once for `openDuration`. half-open: one trial call passes; its success closes the breaker, its
/// failure opens it again for another `openDuration`.
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
        var consecutiveFailures = 0
        var openedAt = ContinuousClock.now
        var trialInFlight = false
    }

    private let configuration: Configuration
    private let status = NIOLockedValueBox(Status())

    init(configuration: Configuration) {
        self.configuration = configuration
    }

    var state: State { status.withLockedValue { $0.state } }

    /// Runs `operation` if the breaker lets it through and records how it went; throws `OpenError`
    /// without calling it otherwise. `isFailure` tells outages from answers that only refused.
    func run<T>(
        isFailure: (any Error) -> Bool = { _ in true },
        _ operation: () async throws -> T
    ) async throws -> T {
        guard permit() else { throw OpenError() }
        do {
            let result = try await operation()
            recordSuccess()
            return result
        } catch {
            if isFailure(error) { recordFailure() } else { recordSuccess() }
            throw error
        }
    }

    /// True when a call may go ahead now (in half-open, only the one trial call).
    func permit() -> Bool {
        status.withLockedValue { status in
            switch status.state {
            case .closed:
                return true
            case .open:
                guard ContinuousClock.now - status.openedAt >= configuration.openDuration else { return false }
                status.state = .halfOpen
                status.trialInFlight = true
                return true
            case .halfOpen:
                guard !status.trialInFlight else { return false }
                status.trialInFlight = true
                return true
            }
        }
    }

    func recordSuccess() {
        status.withLockedValue { status in
            status.state = .closed
            status.consecutiveFailures = 0
            status.trialInFlight = false
        }
    }

    func recordFailure() {
        status.withLockedValue { status in
            status.consecutiveFailures += 1
            status.trialInFlight = false
            if status.state == .halfOpen || status.consecutiveFailures >= configuration.failureThreshold {
                status.state = .open
                status.openedAt = .now
            }
        }
    }
}
