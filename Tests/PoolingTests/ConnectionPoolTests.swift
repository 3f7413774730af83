import Logging
import Testing

@testable import Pooling

/// The pool's bookkeeping, with fake connections: no server, no threads.
@Suite struct ConnectionPoolTests {
    let server = FakeServer()

    /// A pool whose acquire timeout never fires unless a test asks for a short one.
    func pool(capacity: Int, acquireTimeout: Duration = .seconds(600)) -> ConnectionPool<FakeConnection> {
        let server = self.server
        return ConnectionPool(capacity: capacity, acquireTimeout: acquireTimeout, logger: Logger(label: "test")) {
            try server.connect()
        }
    }

    @Test func noMoreConnectionsThanTheCapacityAreOpened() async throws {
        let pool = pool(capacity: 2)
        let first = try await pool.acquire()
        let second = try await pool.acquire()
        #expect(first.id != second.id)
        let third = Task { try await pool.acquire() }
        await pool.untilWaiting(1)
        #expect(await pool.statistics() == PoolStatistics(inUse: 2, idle: 0, waiting: 1, timeouts: 0))
        #expect(server.opens == 2)

        await pool.release(first)
        // The waiter gets the released connection; nothing new is opened.
        #expect(try await third.value === first)
        #expect(server.opens == 2)
        await pool.release(first)
        await pool.release(second)
        #expect(await pool.statistics() == PoolStatistics(inUse: 0, idle: 2, waiting: 0, timeouts: 0))
        // Idle connections are lent again before any new one is opened.
        _ = try await pool.acquire()
        #expect(server.opens == 2)
    }

    @Test func aCallerWaitingLongerThanTheAcquireTimeoutGetsTimeout() async throws {
        let pool = pool(capacity: 1, acquireTimeout: .milliseconds(20))
        let held = try await pool.acquire()
        await #expect(throws: PoolError.timeout) { try await pool.acquire() }
        #expect(await pool.statistics() == PoolStatistics(inUse: 1, idle: 0, waiting: 0, timeouts: 1))
        await pool.release(held)
        #expect(try await pool.acquire() === held)
    }

    @Test func waitersAreServedInTheOrderTheyCame() async throws {
        let pool = pool(capacity: 1)
        let held = try await pool.acquire()
        let log = Log()
        var waiters: [Task<Void, any Error>] = []
        for index in 0..<5 {
            waiters.append(
                Task {
                    let connection = try await pool.acquire()
                    await log.append(index)
                    await pool.release(connection)
                })
            await pool.untilWaiting(index + 1)
        }
        await pool.release(held)
        for waiter in waiters { try await waiter.value }
        #expect(await log.entries == [0, 1, 2, 3, 4])
        #expect(server.opens == 1)
    }

    @Test func aFailedConnectGivesItsSlotBack() async throws {
        let pool = pool(capacity: 1)
        server.failNextConnects(1)
        await #expect(throws: ConnectFailed()) { try await pool.acquire() }
        #expect(await pool.statistics() == PoolStatistics(inUse: 0, idle: 0, waiting: 0, timeouts: 0))
        // The slot is free again: the next caller opens a connection in it.
        let connection = try await pool.acquire()
        #expect(server.opens == 1)
        await pool.release(connection)
    }

    @Test func aFailedConnectHandsItsSlotToTheNextWaiter() async throws {
        let pool = pool(capacity: 1)
        let held = try await pool.acquire()
        let waiter = Task { try await pool.acquire() }
        await pool.untilWaiting(1)
        // The held connection breaks: its slot goes to the waiter, whose connect fails once.
        held.breakDown()
        server.failNextConnects(1)
        await pool.release(held)
        await #expect(throws: ConnectFailed()) { try await waiter.value }
        #expect(held.isClosed)
        #expect(await pool.statistics() == PoolStatistics(inUse: 0, idle: 0, waiting: 0, timeouts: 0))
        _ = try await pool.acquire()
        #expect(server.opens == 2)
    }

    @Test func aBrokenConnectionIsClosedWithItsIdleSiblings() async throws {
        let pool = pool(capacity: 3)
        let broken = try await pool.acquire()
        let sibling = try await pool.acquire()
        let leased = try await pool.acquire()
        await pool.release(sibling)
        broken.breakDown()
        await pool.release(broken)
        #expect(broken.isClosed)
        #expect(sibling.isClosed)
        #expect(!leased.isClosed)
        #expect(await pool.statistics() == PoolStatistics(inUse: 1, idle: 0, waiting: 0, timeouts: 0))
        // Both slots are free: two new connections can open beside the leased one.
        let fresh = [try await pool.acquire(), try await pool.acquire()]
        #expect(server.opens == 5)
        #expect(fresh.allSatisfy { !$0.isClosed })
    }

    @Test func withConnectionGivesTheConnectionBackWhenTheBodyThrows() async throws {
        let pool = pool(capacity: 1)
        await #expect(throws: ConnectFailed()) {
            try await pool.withConnection { _ in throw ConnectFailed() }
        }
        #expect(await pool.statistics() == PoolStatistics(inUse: 0, idle: 1, waiting: 0, timeouts: 0))
    }

    @Test func closeFailsTheWaitersAndEveryLaterCall() async throws {
        let pool = pool(capacity: 2)
        let leased = [try await pool.acquire(), try await pool.acquire()]
        let waiters = (0..<2).map { _ in Task { try await pool.acquire() } }
        await pool.untilWaiting(2)

        await pool.close()
        for waiter in waiters {
            await #expect(throws: PoolError.closed) { try await waiter.value }
        }
        await #expect(throws: PoolError.closed) { try await pool.acquire() }
        // Leased connections stay open until they come back, then close.
        #expect(leased.allSatisfy { !$0.isClosed })
        for connection in leased { await pool.release(connection) }
        #expect(leased.allSatisfy { $0.isClosed })
        #expect(await pool.statistics() == PoolStatistics(inUse: 0, idle: 0, waiting: 0, timeouts: 0))
    }

    @Test func closeClosesTheIdleConnections() async throws {
        let pool = pool(capacity: 2)
        let connection = try await pool.acquire()
        await pool.release(connection)
        await pool.close()
        #expect(connection.isClosed)
        #expect(await pool.statistics() == PoolStatistics(inUse: 0, idle: 0, waiting: 0, timeouts: 0))
    }
}
