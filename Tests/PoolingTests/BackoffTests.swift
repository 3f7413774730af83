import Pooling
import Testing

@Suite struct BackoffTests {
    let backoff = Backoff(initial: .milliseconds(100), maximum: .seconds(2))

    @Test func theDelayDoublesWithEachFailure() {
        #expect(backoff.delay(attempt: 1, random: 1) == .milliseconds(100))
        #expect(backoff.delay(attempt: 2, random: 1) == .milliseconds(200))
        #expect(backoff.delay(attempt: 3, random: 1) == .milliseconds(400))
        #expect(backoff.delay(attempt: 3, random: 0) == .milliseconds(200))
        // Attempt 0 or below counts as the first.
        #expect(backoff.delay(attempt: 0, random: 1) == .milliseconds(100))
    }

    @Test func theDelayStopsGrowingAtTheMaximum() {
        #expect(backoff.delay(attempt: 5, random: 1) == .milliseconds(1600))
        #expect(backoff.delay(attempt: 6, random: 1) == .seconds(2))
        #expect(backoff.delay(attempt: 10, random: 1) == .seconds(2))
        #expect(backoff.delay(attempt: 1000, random: 0) == .seconds(1))
        #expect(backoff.delay(attempt: .max, random: 1) == .seconds(2))
    }

    @Test func halfTheDelayIsJitter() {
        // Equal jitter: between half the exponential delay and all of it, never outside.
        #expect(backoff.delay(attempt: 1, random: 0) == .milliseconds(50))
        #expect(backoff.delay(attempt: 1, random: -3) == .milliseconds(50))
        #expect(backoff.delay(attempt: 1, random: 7) == .milliseconds(100))
        for attempt in 1...20 {
            let ceiling = min(Duration.milliseconds(100) * (1 << min(attempt - 1, 30)), .seconds(2))
            for _ in 0..<50 {
                let delay = backoff.delay(attempt: attempt)
                #expect(delay >= ceiling / 2 && delay <= ceiling)
            }
        }
    }
}
