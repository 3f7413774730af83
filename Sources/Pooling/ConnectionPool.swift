import Logging

/// A connection a `ConnectionPool` can lend. One caller at a time uses it; the pool guarantees that.
public protocol PooledConnection: AnyObject, Sendable {
    /// False once the connection broke. The pool then closes it, and its idle siblings too.
    var isUsable: Bool { get }
    /// True when the connection can go to the next caller as it is (usable, no open transaction,
    /// no unread reply).
    var isReusable: Bool { get }
    /// Closes the connection; called once, by the pool.
    func close()
}

/// Why a pool lent no connection.
public enum PoolError: Error, Sendable, Equatable {
    /// Every connection stayed leased for longer than the acquire timeout.
    case timeout
    /// The pool was closed.
    case closed
}

/// How busy a pool is.
public struct PoolStatistics: Sendable, Equatable {
    /// Connections leased right now.
    public var inUse: Int
    /// Open connections waiting to be leased.
    public var idle: Int
    /// Callers waiting for a connection.
    public var waiting: Int
    /// Callers that gave up waiting since start.
    public var timeouts: Int

    package init(inUse: Int, idle: Int, waiting: Int, timeouts: Int) {
        self.inUse = inUse
        self.idle = idle
        self.waiting = waiting
        self.timeouts = timeouts
    }
}

/// The bookkeeping of a bounded connection pool: which connections are idle, who waits for one, and
/// how many may exist. Opening connections happens outside the actor, in the slot a caller reserved,
/// so a slow connect never blocks the pool.
public actor ConnectionPool<Connection: PooledConnection> {
    private enum Grant {
        case connection(Connection)
        case openSlot
    }

    private struct Waiter {
        let continuation: CheckedContinuation<Grant, any Error>
        /// Fails the wait at the acquire timeout; cancelled when the wait is granted, so that a
        /// thousand queued callers do not leave thousands of sleeping timers behind them.
        let timer: Task<Void, Never>
    }

    private let capacity: Int
    private let acquireTimeout: Duration
    /// Closes a connection the pool drops; the blocking pool closes on its own threads (`PQfinish`
    /// writes to the socket), since the actor runs wherever its caller's task prefers.
    private let dispose: @Sendable (Connection) -> Void
    private let open: @Sendable () async throws -> Connection
    private let logger: Logger

    private var idle: [Connection] = []
    /// Connections open or being opened, leased or idle.
    private var slotsTaken = 0
    /// The waiters by id, and their ids in arrival order from `queueHead` on (ids of waiters that
    /// timed out stay in the queue until they reach its head): granting and expiring are O(1).
    private var waiters: [UInt64: Waiter] = [:]
    private var queue: [UInt64] = []
    private var queueHead = 0
    private var nextWaiterID: UInt64 = 0
    private var timeouts = 0
    private var closed = false

    /// Creates an empty pool; `open` makes a connection when a caller needs one and a slot is free.
    public init(
        capacity: Int,
        acquireTimeout: Duration,
        logger: Logger,
        dispose: @escaping @Sendable (Connection) -> Void = { $0.close() },
        open: @escaping @Sendable () async throws -> Connection
    ) {
        precondition(capacity > 0, "a pool needs room for one connection")
        self.capacity = capacity
        self.acquireTimeout = acquireTimeout
        self.dispose = dispose
        self.open = open
        self.logger = logger
    }

    /// Returns a usable connection, opening one in a free slot or waiting for a release; throws
    /// `PoolError` or the error of `open`.
    public func acquire() async throws -> Connection {
        guard !closed else { throw PoolError.closed }
        let grant: Grant
        if let connection = idle.popLast() {
            grant = .connection(connection)
        } else if slotsTaken < capacity {
            slotsTaken += 1
            grant = .openSlot
        } else {
            grant = try await wait()
        }
        switch grant {
        case .connection(let connection):
            return connection
        case .openSlot:
            do {
                return try await open()
            } catch {
                giveBackSlot()
                logger.warning("connect failed", metadata: ["error": "\(error)"])
                throw error
            }
        }
    }

    /// Takes a connection back; one that is not reusable is closed instead.
    public func release(_ connection: Connection) {
        guard !closed, connection.isReusable else {
            // A connection that broke usually means the server restarted: its idle siblings are
            // dead too, and dropping them now spares the next callers one failure each.
            let siblings = connection.isUsable ? [] : idle
            if !connection.isUsable { idle.removeAll() }
            for dropped in [connection] + siblings {
                dispose(dropped)
                giveBackSlot()
            }
            return
        }
        if let waiter = nextWaiter() {
            waiter.continuation.resume(returning: .connection(connection))
        } else {
            idle.append(connection)
        }
    }

    /// Runs `body` with a leased connection and always gives it back. `body` runs off the actor,
    /// so callers never wait for each other's calls.
    public nonisolated func withConnection<Result: Sendable>(
        _ body: (Connection) async throws -> Result
    ) async throws -> Result {
        let connection = try await acquire()
        do {
            let result = try await body(connection)
            await release(connection)
            return result
        } catch {
            await release(connection)
            throw error
        }
    }

    public func statistics() -> PoolStatistics {
        PoolStatistics(inUse: slotsTaken - idle.count, idle: idle.count, waiting: waiters.count, timeouts: timeouts)
    }

    /// Closes the idle connections and fails the waiters; leased ones close when they come back.
    public func close() {
        closed = true
        // At shutdown, closed here and now: the blocking pool stops its threads right after.
        idle.forEach { $0.close() }
        slotsTaken -= idle.count
        idle.removeAll()
        let pending = waiters.values
        waiters.removeAll()
        queue.removeAll()
        queueHead = 0
        for waiter in pending {
            waiter.timer.cancel()
            waiter.continuation.resume(throwing: PoolError.closed)
        }
    }

    /// A freed slot goes to the first waiter, who opens a new connection in it.
    private func giveBackSlot() {
        if !closed, let waiter = nextWaiter() {
            waiter.continuation.resume(returning: .openSlot)
        } else {
            slotsTaken -= 1
        }
    }

    private func wait() async throws -> Grant {
        nextWaiterID += 1
        let id = nextWaiterID
        let timeout = acquireTimeout
        return try await withCheckedThrowingContinuation { continuation in
            let timer = Task { [weak self] in
                do {
                    try await Task.sleep(for: timeout)
                } catch {
                    return  // granted first
                }
                await self?.expire(waiter: id)
            }
            waiters[id] = Waiter(continuation: continuation, timer: timer)
            queue.append(id)
        }
    }

    /// The longest waiting caller still waiting, taken off the queue.
    private func nextWaiter() -> Waiter? {
        while queueHead < queue.count {
            let id = queue[queueHead]
            queueHead += 1
            if let waiter = waiters.removeValue(forKey: id) {
                waiter.timer.cancel()
                compactQueue()
                return waiter
            }
        }
        compactQueue()
        return nil
    }

    /// Drops the ids before the head once they are the larger part of the queue.
    private func compactQueue() {
        if queueHead == queue.count {
            queue.removeAll(keepingCapacity: true)
            queueHead = 0
        } else if queueHead > 64, queueHead * 2 > queue.count {
            queue.removeFirst(queueHead)
            queueHead = 0
        }
    }

    private func expire(waiter id: UInt64) {
        guard let waiter = waiters.removeValue(forKey: id) else { return }
        timeouts += 1
        waiter.continuation.resume(throwing: PoolError.timeout)
    }
}
