/// Exponential backoff with jitter, for reconnecting and retrying.
///
/// The delay doubles with each consecutive failure up to `maximum`; half of it is fixed and half
/// random ("equal jitter"), so pods that lost a server together do not come back in lockstep, yet
/// none retries sooner than half the exponential delay.
public struct Backoff: Sendable, Equatable {
    public var initial: Duration
    public var maximum: Duration

    public init(initial: Duration = .milliseconds(100), maximum: Duration = .seconds(10)) {
        precondition(initial > .zero && maximum >= initial, "0 < initial <= maximum")
        self.initial = initial
        self.maximum = maximum
    }

    /// The delay before retry `attempt` (1 after the first failure); `random` in 0...1.
    public func delay(attempt: Int, random: Double = Double.random(in: 0...1)) -> Duration {
        let doublings = min(max(attempt - 1, 0), 40)
        let ceiling = min(maximum.totalSeconds, initial.totalSeconds * Double(1 << UInt64(min(doublings, 62))))
        let seconds = ceiling / 2 + ceiling / 2 * min(max(random, 0), 1)
        return .nanoseconds(Int64(seconds * 1_000_000_000))
    }
}
