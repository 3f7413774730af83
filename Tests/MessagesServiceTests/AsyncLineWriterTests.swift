import Foundation
import NIOConcurrencyHelpers
import Testing

@testable import MessagesService

/// Log lines never wait for a slow reader of stdout. No server needed.
/// A writer that blocked its callers would never return from the writes below (the reader stays
/// stuck until they are done): the time limit turns that hang into a failure.
@Suite(.timeLimit(.minutes(1))) struct AsyncLineWriterTests {
    @Test func aStalledReaderMakesLinesDropNotCallersWait() async throws {
        let gate = ConditionLock(value: 0)
        let received = NIOLockedValueBox<[String]>([])
        let writer = AsyncLineWriter(capacity: 10) { data in
            // The reader is stuck until the gate opens.
            gate.lock(whenValue: 1)
            gate.unlock()
            received.withLockedValue { $0 += String(decoding: data, as: UTF8.self).split(separator: "\n").map(String.init) }
        }
        for index in 0..<1000 { writer.write(Data("line \(index)\n".utf8)) }
        let stalled = writer.statistics
        #expect(stalled.dropped >= 1000 - 10 - 10, "at most the queue and the batch in the stalled write may be kept")
        #expect(stalled.written == 0)
        gate.lock()
        gate.unlock(withValue: 1)
        writer.flush(timeout: .seconds(10))
        let done = writer.statistics
        #expect(done.queued == 0)
        #expect(done.written + done.dropped == 1000, "every line is either written or counted as dropped")
        let lines = received.withLockedValue { $0 }
        #expect(lines.count == done.written)
        // What was written is in the order it was logged.
        let numbers = lines.compactMap { Int($0.dropFirst("line ".count)) }
        #expect(numbers == numbers.sorted() && numbers.count == lines.count)
    }
}
