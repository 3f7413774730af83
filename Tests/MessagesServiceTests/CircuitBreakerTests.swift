import Foundation
import Testing

@testable import MessagesService

/// The breaker's states with a clock the test advances: no sleeps, no timing.
@Suite struct CircuitBreakerTests {
    /// A clock that stands still until told to move.
    final class TestClock: @unchecked Sendable {
        private let lock = NSLock()
        private var current = ContinuousClock.now

        var now: ContinuousClock.Instant { lock.withLock { current } }

        func advance(by duration: Duration) {
            lock.withLock { current += duration }
        }
    }

    struct Outage: Error {}
    struct Refusal: Error {}

    let clock = TestClock()
    let breaker: CircuitBreaker

    init() {
        let clock = self.clock
        breaker = CircuitBreaker(configuration: .init(failureThreshold: 3, openDuration: .seconds(5))) { clock.now }
    }

    func fail() async {
        _ = try? await breaker.run { () async throws -> Int in throw Outage() }
    }

    func succeed() async throws {
        _ = try await breaker.run { 1 }
    }

    /// True when the breaker refused the call without running it.
    func isRefused() async -> Bool {
        var ran = false
        do {
            try await breaker.run { ran = true }
        } catch {
            #expect(error is CircuitBreaker.OpenError)
            #expect(!ran)
            return true
        }
        return false
    }

    func open() async {
        for _ in 0..<3 { await fail() }
        #expect(breaker.state == .open)
    }

    @Test func itOpensAfterTheFailureThresholdInARow() async throws {
        await fail()
        await fail()
        #expect(breaker.state == .closed)
        // A success in between starts the count again.
        try await succeed()
        await fail()
        await fail()
        #expect(breaker.state == .closed)
        await fail()
        #expect(breaker.state == .open)
    }

    @Test func answersThatOnlyRefusedDoNotCount() async throws {
        for _ in 0..<5 {
            _ = try? await breaker.run(isFailure: { !($0 is Refusal) }) { () async throws -> Int in throw Refusal() }
        }
        #expect(breaker.state == .closed)
    }

    @Test func whileOpenCallsFailAtOnceUntilTheCoolDownEnds() async throws {
        await open()
        #expect(await isRefused())
        clock.advance(by: .seconds(4))
        #expect(await isRefused())
        #expect(breaker.state == .open)
    }

    @Test func afterTheCoolDownOneTrialCallGoesThroughAndItsSuccessCloses() async throws {
        await open()
        clock.advance(by: .seconds(5))
        let result = try await breaker.run { () async throws -> Int in
            #expect(breaker.state == .halfOpen)
            // Only the one trial: a second caller during it is refused.
            #expect(await isRefused())
            return 7
        }
        #expect(result == 7)
        #expect(breaker.state == .closed)
        try await succeed()
        #expect(breaker.state == .closed)
    }

    @Test func aFailedTrialOpensItForAnotherCoolDown() async throws {
        await open()
        clock.advance(by: .seconds(5))
        await fail()
        #expect(breaker.state == .open)
        #expect(await isRefused())
        clock.advance(by: .seconds(4))
        #expect(await isRefused())
        clock.advance(by: .seconds(1))
        try await succeed()
        #expect(breaker.state == .closed)
    }

    @Test func aCallFromBeforeTheBreakerOpenedCannotCloseIt() async throws {
        try await breaker.run {
            // While this call is in flight, others fail and open the breaker.
            await open()
        }
        #expect(breaker.state == .open)
        #expect(await isRefused())
    }
}
