import Logging

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
}

/// The bookkeeping of `PostgresClient`: which connections are idle, who waits for one, and how many
/// may exist. Opening connections happens outside the actor, in the slot a caller reserved.
actor ConnectionPool {
    private enum Grant {
        case connection(PostgresConnection)
        case openSlot
    }

    private struct Waiter {
        let id: UInt64
        let continuation: CheckedContinuation<Grant, any Error>
    }

    private let capacity: Int
    private let acquireTimeout: Duration
    private let open: @Sendable () async throws -> PostgresConnection
    private let logger: Logger

    private var idle: [PostgresConnection] = []
    /// Connections open or being opened, leased or idle.
    private var slotsTaken = 0
    private var waiters: [Waiter] = []
    private var nextWaiterID: UInt64 = 0
    private var timeouts = 0
    private var closed = false

    init(
        capacity: Int,
        acquireTimeout: Duration,
        open: @escaping @Sendable () async throws -> PostgresConnection,
        logger: Logger
    ) {
        self.capacity = capacity
        self.acquireTimeout = acquireTimeout
        self.open = open
        self.logger = logger
    }

    /// Returns a usable connection, opening one in a free slot or waiting for a release.
    func acquire() async throws -> PostgresConnection {
        guard !closed else { throw PostgresError(code: .poolClosed) }
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
                logger.warning("postgres connect failed", metadata: ["error": "\(error)"])
                throw error
            }
        }
    }

    /// Takes a connection back; a broken one, or one left inside a transaction, is closed instead.
    func release(_ connection: PostgresConnection) {
        guard !closed, connection.isUsable, connection.isIdle else {
            // A connection that broke usually means the server restarted: its idle siblings are
            // dead too, and dropping them now spares the next callers one failure each.
            let siblings = connection.isUsable ? [] : idle
            if !connection.isUsable { idle.removeAll() }
            for dropped in [connection] + siblings {
                dropped.close()
                giveBackSlot()
            }
            return
        }
        if !waiters.isEmpty {
            waiters.removeFirst().continuation.resume(returning: .connection(connection))
        } else {
            idle.append(connection)
        }
    }

    func statistics() -> PoolStatistics {
        PoolStatistics(inUse: slotsTaken - idle.count, idle: idle.count, waiting: waiters.count, timeouts: timeouts)
    }

    func close() {
        closed = true
        idle.forEach { $0.close() }
        slotsTaken -= idle.count
        idle.removeAll()
        let pending = waiters
        waiters.removeAll()
        pending.forEach { $0.continuation.resume(throwing: PostgresError(code: .poolClosed)) }
    }

    /// A freed slot goes to the first waiter, who opens a new connection in it.
    private func giveBackSlot() {
        if !closed, !waiters.isEmpty {
            waiters.removeFirst().continuation.resume(returning: .openSlot)
        } else {
            slotsTaken -= 1
        }
    }

    private func wait() async throws -> Grant {
        nextWaiterID += 1
        let id = nextWaiterID
        let timeout = acquireTimeout
        return try await withCheckedThrowingContinuation { continuation in
            waiters.append(Waiter(id: id, continuation: continuation))
            Task { [weak self] in
                try? await Task.sleep(for: timeout)
                await self?.expire(waiter: id)
            }
        }
    }

    private func expire(waiter id: UInt64) {
        guard let index = waiters.firstIndex(where: { $0.id == id }) else { return }
        timeouts += 1
        waiters.remove(at: index).continuation.resume(throwing: PostgresError(code: .poolTimeout))
    }
}
