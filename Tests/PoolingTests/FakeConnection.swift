import Foundation
import Pooling

/// A connection that only records what the pool does with it.
final class FakeConnection: PooledConnection, @unchecked Sendable {
    let id: Int
    private let lock = NSLock()
    private var usable = true
    private var closed = false

    init(id: Int) {
        self.id = id
    }

    var isUsable: Bool { lock.withLock { usable && !closed } }
    var isReusable: Bool { isUsable }
    var isClosed: Bool { lock.withLock { closed } }

    /// Makes the connection broken, as a lost socket would.
    func breakDown() {
        lock.withLock { usable = false }
    }

    func close() {
        lock.withLock { closed = true }
    }
}

struct ConnectFailed: Error, Equatable {}

/// Opens fake connections, numbered from 1, and fails the ones it is told to.
final class FakeServer: @unchecked Sendable {
    private let lock = NSLock()
    private var opened = 0
    private var failuresToCome = 0

    var opens: Int { lock.withLock { opened } }

    func failNextConnects(_ count: Int) {
        lock.withLock { failuresToCome = count }
    }

    func connect() throws -> FakeConnection {
        try lock.withLock {
            if failuresToCome > 0 {
                failuresToCome -= 1
                throw ConnectFailed()
            }
            opened += 1
            return FakeConnection(id: opened)
        }
    }
}

/// The order in which things happened, across tasks.
actor Log {
    private(set) var entries: [Int] = []

    func append(_ entry: Int) {
        entries.append(entry)
    }
}

extension ConnectionPool {
    /// Yields until `count` callers wait, so a test knows the order they queued in. No timing:
    /// it only gives the waiting tasks the turns they need to reach the pool.
    func untilWaiting(_ count: Int) async {
        for _ in 0..<100_000 where statistics().waiting < count {
            await Task.yield()
        }
    }
}
