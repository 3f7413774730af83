import Foundation
import Logging
import Pooling
import Postgres
import ServiceLifecycle

/// Empties the error journal's queue into `error_events` and enforces its retention.
///
/// Batches of up to 100 entries go in one statement. While Postgres is unreachable the batch goes
/// back in the queue (which then drops when full) and the writer backs off; on shutdown it makes
/// one last attempt, so warnings logged while draining are kept. Old entries are deleted every
/// hour by every pod (the statement is idempotent).
public struct ErrorJournalWriter: Service {
    public struct Configuration: Sendable, Equatable {
        /// Entries older than this are deleted.
        public var retention = Duration.seconds(30 * 86_400)
        /// Queue size: entries beyond it are dropped (and counted) until the writer catches up.
        public var capacity = 1000
        public var pollInterval = Duration.milliseconds(200)
        public var purgeInterval = Duration.seconds(3600)

        public init() {}
    }

    let journal: ErrorJournal
    let postgres: PostgresClient
    let configuration: Configuration
    let logger: Logger
    private let batchSize = 100

    public init(journal: ErrorJournal, postgres: PostgresClient, configuration: Configuration, logger: Logger) {
        self.journal = journal
        self.postgres = postgres
        self.configuration = configuration
        self.logger = logger
    }

    public func run() async throws {
        let backoff = Backoff(initial: .milliseconds(500), maximum: .seconds(30))
        var failures = 0
        var nextPurge = ContinuousClock.now
        // Cancelled (the group gave up waiting) ends it too: its sleeps then return at once.
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            if ContinuousClock.now >= nextPurge {
                nextPurge = ContinuousClock.now + configuration.purgeInterval
                do {
                    try await purge()
                } catch {
                    logger.debug("error journal purge failed", metadata: ["error": "\(error)"])
                }
            }
            let written = await flush()
            if written < 0 {
                failures += 1
                // Only the first failure is worth a line: an outage is logged where it happens.
                if failures == 1 {
                    logger.warning("error journal cannot write to Postgres; entries wait in its queue")
                }
                let delay = backoff.delay(attempt: failures)
                try? await cancelWhenGracefulShutdown { try await Task.sleep(for: delay) }
            } else {
                failures = 0
                // A full batch means more are waiting: go on without a pause.
                if written < batchSize {
                    try? await cancelWhenGracefulShutdown { try await Task.sleep(for: configuration.pollInterval) }
                }
            }
        }
        while !Task.isCancelled, await flush() >= batchSize {}
    }

    /// Writes one batch; the number of entries written, or -1 when the write failed.
    func flush() async -> Int {
        let batch = journal.take(batchSize)
        guard !batch.isEmpty else { return 0 }
        do {
            _ = try await postgres.query(Self.insert, [try Self.json(batch)])
            journal.wrote(batch.count)
            return batch.count
        } catch {
            journal.putBack(batch)
            return -1
        }
    }

    func purge() async throws {
        _ = try await postgres.query(Self.deleteOlder, [Int(configuration.retention.components.seconds)])
    }

    /// The batch as one JSON array.
    static func json(_ batch: [JournalEntry]) throws -> String {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(date.iso8601WithFractions)
        }
        return String(decoding: try encoder.encode(batch), as: UTF8.self)
    }

    static let insert = """
        INSERT INTO error_events (time, level, message, source, request_id, user_id, channel_id, metadata)
        SELECT time, level, message, source, request_id, user_id, channel_id, metadata::jsonb
        FROM jsonb_to_recordset($1::jsonb) AS entry(
            time timestamptz, level text, message text, source text, request_id text, user_id uuid,
            channel_id uuid, metadata text)
        """

    static let deleteOlder = "DELETE FROM error_events WHERE time < now() - make_interval(secs => $1)"
}
