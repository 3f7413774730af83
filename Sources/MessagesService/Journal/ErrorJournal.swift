import Foundation
import Logging
import NIOConcurrencyHelpers

/// A warning, error or critical log line as the journal stores it (table `error_events`).
public struct JournalEntry: Sendable, Codable, Equatable {
    public var time: Date
    public var level: String
    public var message: String
    /// The module that logged it (swift-log's `source`), e.g. `MessagesService`, `Postgres`, `AMQP`.
    public var source: String
    public var requestID: String?
    public var userID: UUID?
    public var channelID: UUID?
    /// The rest of the line's metadata, as a JSON object.
    public var metadata: String

    enum CodingKeys: String, CodingKey {
        case time, level, message, source, metadata
        case requestID = "request_id"
        case userID = "user_id"
        case channelID = "channel_id"
    }
}

extension JournalEntry {
    /// The entry as a JSON object, its metadata as a nested object: the alert body's `entry`
    /// and the lines of `messages-service errors --json`.
    public func jsonObject() -> [String: Any] {
        var object: [String: Any] = [
            "time": time.iso8601WithFractions, "level": level,
            "message": message, "source": source,
            "metadata": (try? JSONSerialization.jsonObject(with: Data(metadata.utf8))) ?? [String: Any](),
        ]
        object["request_id"] = requestID
        object["user_id"] = userID?.lowercased
        object["channel_id"] = channelID?.lowercased
        return object
    }

    /// `jsonObject()` as one line of JSON text.
    public func jsonLine(adding fields: [String: Any] = [:]) -> Data {
        let object = jsonObject().merging(fields) { _, added in added }
        return (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
    }
}

/// The bounded queue between the log and the `error_events` table.
///
/// Logging a warning only appends here, under a lock, and never waits: a request never blocks on
/// the journal, even while Postgres is down. When the queue is full the entry is dropped and
/// counted (`messages_error_journal_dropped_total`); `ErrorJournalWriter` empties it in batches.
public final class ErrorJournal: Sendable {
    public struct Statistics: Sendable, Equatable {
        public var queued = 0
        public var recorded = 0
        public var dropped = 0
        public var written = 0
        public var writeFailures = 0
    }

    /// The entries from `head` on are queued; the ones before it were taken. Taking only moves
    /// `head` (no copying of the rest under the lock); the array is compacted once mostly taken.
    private struct Queue {
        var entries: [JournalEntry] = []
        var head = 0
        var statistics = Statistics()

        var count: Int { entries.count - head }
    }

    public let capacity: Int
    private let state = NIOLockedValueBox(Queue())

    public init(capacity: Int) {
        precondition(capacity > 0)
        self.capacity = capacity
    }

    /// Queues `entry`; false (and counted) when the queue is full.
    @discardableResult
    public func record(_ entry: JournalEntry) -> Bool {
        state.withLockedValue { queue in
            guard queue.count < capacity else {
                queue.statistics.dropped += 1
                return false
            }
            queue.entries.append(entry)
            queue.statistics.recorded += 1
            return true
        }
    }

    public var statistics: Statistics {
        state.withLockedValue { queue in
            var statistics = queue.statistics
            statistics.queued = queue.count
            return statistics
        }
    }

    /// Removes and returns the oldest entries, at most `limit`.
    func take(_ limit: Int) -> [JournalEntry] {
        state.withLockedValue { queue in
            let end = min(queue.head + limit, queue.entries.count)
            let batch = Array(queue.entries[queue.head..<end])
            queue.head = end
            if queue.head == queue.entries.count {
                queue.entries.removeAll(keepingCapacity: true)
                queue.head = 0
            } else if queue.head > 1024, queue.head * 2 > queue.entries.count {
                queue.entries.removeFirst(queue.head)
                queue.head = 0
            }
            return batch
        }
    }

    /// Puts a batch that could not be written back in front, as far as there is room (the rest
    /// is dropped and counted: the queue stays bounded).
    func putBack(_ batch: [JournalEntry]) {
        state.withLockedValue { queue in
            let kept = batch.prefix(max(0, capacity - queue.count))
            if queue.head >= kept.count {
                queue.head -= kept.count
                queue.entries.replaceSubrange(queue.head..<queue.head + kept.count, with: kept)
            } else {
                queue.entries.insert(contentsOf: kept, at: queue.head)
            }
            queue.statistics.dropped += batch.count - kept.count
            queue.statistics.writeFailures += 1
        }
    }

    func wrote(_ count: Int) {
        state.withLockedValue { $0.statistics.written += count }
    }
}

/// A log handler that copies warnings and worse into the error journal, and critical lines to
/// the alert webhook. Used beside the stdout handler (`MultiplexLogHandler`).
public struct JournalLogHandler: LogHandler {
    public var logLevel: Logger.Level = .warning
    public var metadata: Logger.Metadata = [:]
    private let label: String
    private let journal: ErrorJournal
    private let alerts: AlertNotifier?

    public init(label: String, journal: ErrorJournal, alerts: AlertNotifier?) {
        self.label = label
        self.journal = journal
        self.alerts = alerts
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        guard event.level >= .warning else { return }
        var fields = metadata.merging(event.metadata ?? [:]) { _, new in new }.mapValues(Self.withoutNUL)
        let requestID = fields.removeValue(forKey: LogKey.requestID)?.description
        let userID = fields.removeValue(forKey: LogKey.userID).flatMap { UUID(uuidString: $0.description) }
        let channelID = fields.removeValue(forKey: LogKey.channelID).flatMap { UUID(uuidString: $0.description) }
        fields["logger"] = .string(label)
        let object = fields.mapValues(JSONLogHandler.json)
        let metadataJSON =
            (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]))
            .map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        let entry = JournalEntry(
            time: Date(), level: event.level.rawValue, message: Self.withoutNUL(event.message.description), source: event.source,
            requestID: requestID, userID: userID, channelID: channelID, metadata: metadataJSON
        )
        journal.record(entry)
        if event.level == .critical { alerts?.raise(entry) }
    }

    /// Postgres text (and jsonb) cannot hold NUL: it becomes U+FFFD.
    static func withoutNUL(_ text: String) -> String {
        text.contains("\u{0}") ? text.replacingOccurrences(of: "\u{0}", with: "\u{FFFD}") : text
    }

    static func withoutNUL(_ value: Logger.Metadata.Value) -> Logger.Metadata.Value {
        switch value {
        case .string(let text): .string(withoutNUL(text))
        case .stringConvertible(let convertible):
            convertible.description.contains("\u{0}") ? .string(withoutNUL(convertible.description)) : value
        case .dictionary(let dictionary): .dictionary(dictionary.mapValues(withoutNUL))
        case .array(let array): .array(array.map(withoutNUL))
        }
    }
}
