import Foundation
import NIOConcurrencyHelpers

/// Hands log lines to a thread of its own that writes them to `sink` (stdout), so that a request
/// that logs never waits for the terminal, a pipe or a log collector that reads slowly.
///
/// At most `capacity` lines wait; past that, new lines are dropped and counted (`dropped`),
/// never blocking the caller. `flush` waits (bounded) until what was queued is written: the
/// executable calls it before it exits, so the last lines of a shutdown are not lost.
public final class AsyncLineWriter: Sendable {
    private struct State {
        var queue: [Data] = []
        var written = 0
        var dropped = 0
        /// Lines taken off the queue and not yet written.
        var writing = 0
    }

    public struct Statistics: Sendable, Equatable {
        public var queued: Int
        public var written: Int
        public var dropped: Int
    }

    /// The process' stdout: every JSON log line goes through it.
    public static let standardOutput = AsyncLineWriter { FileHandle.standardOutput.write($0) }

    private let capacity: Int
    private let sink: @Sendable (Data) -> Void
    private let state: ConditionLock<Int>
    private let lines = NIOLockedValueBox(State())

    /// Condition values of `state`: whether lines wait.
    private static let idle = 0
    private static let pending = 1

    public init(capacity: Int = 10_000, sink: @escaping @Sendable (Data) -> Void) {
        self.capacity = max(1, capacity)
        self.sink = sink
        self.state = ConditionLock(value: Self.idle)
        let thread = Thread { [self] in self.drain() }
        thread.name = "log-writer"
        thread.start()
    }

    /// Queues one line, or drops it when `capacity` lines already wait.
    public func write(_ line: Data) {
        let accepted = lines.withLockedValue { lines in
            guard lines.queue.count < capacity else {
                lines.dropped += 1
                return false
            }
            lines.queue.append(line)
            return true
        }
        guard accepted else { return }
        state.lock()
        state.unlock(withValue: Self.pending)
    }

    /// Waits until every line queued so far is written, at most `timeout`.
    public func flush(timeout: Duration = .seconds(2)) {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if lines.withLockedValue({ $0.queue.isEmpty && $0.writing == 0 }) { return }
            Thread.sleep(forTimeInterval: 0.005)
        }
    }

    public var statistics: Statistics {
        lines.withLockedValue { Statistics(queued: $0.queue.count + $0.writing, written: $0.written, dropped: $0.dropped) }
    }

    /// The writing thread: takes every waiting line at once and writes them in one call.
    private func drain() {
        while true {
            state.lock(whenValue: Self.pending)
            state.unlock(withValue: Self.idle)
            let batch = lines.withLockedValue { lines in
                defer { lines.queue.removeAll(keepingCapacity: true) }
                lines.writing = lines.queue.count
                return lines.queue
            }
            guard !batch.isEmpty else { continue }
            var joined = Data()
            joined.reserveCapacity(batch.reduce(0) { $0 + $1.count })
            for line in batch { joined.append(line) }
            sink(joined)
            lines.withLockedValue { lines in
                lines.written += lines.writing
                lines.writing = 0
            }
        }
    }
}
