import Crypto
import Foundation
import Logging
import Postgres

/// `MessageStore` on Postgres.
///
/// Every change runs in one transaction that first bumps the channel row (`last_seq`, `version`).
/// That row lock serializes the writers of one channel, which makes `seq` and `version` gap-free
/// and unique, and gives all writers one lock order (channel, then message) so they cannot
/// deadlock each other.
public struct PostgresMessageStore: MessageStore {
    let client: PostgresClient

    /// Creates a store on a client.
    public init(client: PostgresClient) {
        self.client = client
    }

    /// Thrown inside a transaction to roll it back and answer an existing message instead: the
    /// earlier create an idempotency key names, or a message that was already deleted.
    private struct RollBackAnswering: Error {
        let message: Message
    }

    public func create(_ new: NewMessage) async throws -> CreateOutcome {
        let requestHash = Self.requestHash(of: new)
        if let key = new.idempotencyKey,
            let earlier = try await client.withConnection({ try await Self.message(keyedBy: key, of: new, on: $0) })
        {
            return try Self.replay(earlier, requestHash: requestHash)
        }
        do {
            return try await client.withTransaction { session in
                let channel = try Self.channelState(try await session.query(SQL.bumpChannelForCreate, [new.channelID]).first)
                // The channel row lock is held from here on: a concurrent create with the same key
                // has either committed, and is found now, or waits behind this transaction.
                if let key = new.idempotencyKey,
                    let earlier = try await Self.message(keyedBy: key, of: new, on: session)
                {
                    throw RollBackAnswering(message: earlier)
                }
                var parent: Message?
                if let parentID = new.parentID {
                    // The root's reply count is part of its JSON: it changes with this version.
                    let rows = try await session.query(SQL.addReplyToParent, [new.channelID, parentID, channel.version])
                    guard let row = rows.first else { throw MessageStoreError.parentNotFound }
                    parent = try Self.message(from: row)
                }
                let rows = try await session.query(
                    SQL.insertMessage,
                    [
                        UUID.v7(), new.channelID, channel.lastSeq, channel.version, new.authorID, new.parentID,
                        new.type?.rawValue, new.content, try JSONText.encode(new.attachments),
                        Mentions.extract(from: new.content), new.idempotencyKey,
                        new.idempotencyKey == nil ? nil : requestHash,
                    ]
                )
                let message = try Self.message(from: Self.returned(rows))
                try await Self.record(MessageEvent(.created, of: message, by: new.authorID), on: session)
                return .created(MessageWrite(message: message, parent: parent, channel: channel))
            }
        } catch let found as RollBackAnswering {
            return try Self.replay(found.message, requestHash: requestHash)
        }
    }

    public func message(id: UUID, channelID: UUID) async throws -> Message {
        let rows = try await client.query(SQL.selectMessage, [channelID, id])
        guard let row = rows.first else { throw MessageStoreError.messageNotFound }
        return try Self.message(from: row)
    }

    public func page(channelID: UUID, scope: MessageScope, position: PagePosition, limit: Int) async throws
        -> MessagePage
    {
        let parentID: UUID? = if case .replies(let parent) = scope { parent } else { nil }
        let reads = MessagePage.reads(for: position, limit: limit)
        // One statement: the channel's counters and both sides, each side one row longer than it
        // keeps, to learn whether more exist there.
        let rows = try await client.query(
            SQL.selectPage(Self.filter(of: scope)),
            [
                channelID, parentID, reads.older?.before ?? 0, reads.older.map { $0.count + 1 } ?? 0,
                reads.newer?.after ?? 0, reads.newer.map { $0.count + 1 } ?? 0,
            ]
        )
        let first = rows.first
        var found = MessagePage.Found(
            channel: ChannelState(
                lastSeq: try first?.decodeIfPresent("channel_last_seq") ?? 0,
                version: try first?.decodeIfPresent("channel_version") ?? 0
            )
        )
        var older: [Message] = []
        var newer: [Message] = []
        for row in rows.rows {
            switch try row.decodeIfPresent("side", as: String.self) {
            case "o": older.append(try Self.message(from: row))
            case "n": newer.append(try Self.message(from: row))
            default: break  // the one row of a page with no message at all
            }
        }
        if let (_, count) = reads.older {
            // Read newest first: the page keeps the newest `count`, in ascending order.
            (found.older, found.moreOlder) = (older.prefix(count).reversed(), older.count > count)
        }
        if let (_, count) = reads.newer {
            (found.newer, found.moreNewer) = (Array(newer.prefix(count)), newer.count > count)
        }
        return try MessagePage.assemble(position: position, found: found)
    }

    public func seq(ofMessage id: UUID, channelID: UUID) async throws -> Int64? {
        try await client.query(SQL.selectSeq, [channelID, id]).first?.decode("seq")
    }

    public func lastSeq(createdBefore timestamp: String, channelID: UUID) async throws -> Int64? {
        do {
            return try await client.query(SQL.selectLastSeqBefore, [channelID, timestamp]).first?.decodeIfPresent("seq")
        } catch let error as PostgresError where error.sqlState?.hasPrefix("22") == true {
            // Data exception: Postgres could not read the time (month 13, year 0, ...).
            throw MessageStoreError.invalidTimestamp
        }
    }

    public func edit(id: UUID, channelID: UUID, by userID: UUID, _ edit: MessageEdit) async throws -> MessageWrite {
        try await client.withTransaction { session in
            let channel = try await Self.bumpChannelVersion(channelID, on: session)
            let current = try await Self.lockedMessage(id: id, channelID: channelID, on: session)
            let (content, attachments) = try edit.applied(to: current, by: userID)
            try await session.execute(
                SQL.insertRevision,
                [channelID, id, current.version, current.content, try JSONText.encode(current.attachments), userID]
            )
            let rows = try await session.query(
                SQL.updateMessage,
                [
                    channelID, id, channel.version, content, try JSONText.encode(attachments),
                    Mentions.extract(from: content),
                ]
            )
            let message = try Self.message(from: Self.returned(rows))
            try await Self.record(MessageEvent(.updated, of: message, by: userID), on: session)
            return MessageWrite(message: message, channel: channel)
        }
    }

    public func delete(id: UUID, channelID: UUID, by userID: UUID, asModerator: Bool) async throws -> MessageWrite {
        do {
            return try await client.withTransaction { session in
                let channel = try await Self.bumpChannelVersion(channelID, on: session)
                let current = try await Self.lockedMessage(id: id, channelID: channelID, on: session)
                guard current.authorID == userID || asModerator else { throw MessageStoreError.notAuthor }
                // Deleting twice changes nothing: roll back the version bump and answer the tombstone.
                guard !current.isDeleted else { throw RollBackAnswering(message: current) }
                // The text is gone for everyone, including from the edit history.
                try await session.execute(SQL.deleteRevisions, [channelID, id])
                let rows = try await session.query(SQL.tombstoneMessage, [channelID, id, channel.version, userID])
                let message = try Self.message(from: Self.returned(rows))
                try await Self.record(MessageEvent(.deleted, of: message, by: userID), on: session)
                return MessageWrite(message: message, channel: channel)
            }
        } catch let unchanged as RollBackAnswering {
            return MessageWrite(message: unchanged.message)
        }
    }

    public func history(id: UUID, channelID: UUID) async throws -> [MessageRevision] {
        try await client.withConnection { session in
            guard !(try await session.query(SQL.selectSeq, [channelID, id])).isEmpty else {
                throw MessageStoreError.messageNotFound
            }
            return try await session.query(SQL.selectRevisions, [channelID, id]).rows.map { row in
                MessageRevision(
                    version: try row.decode("version"),
                    content: try row.decode("content"),
                    attachments: try JSONText.decode([Attachment].self, from: row.decode("attachments")),
                    replacedAt: try row.decode("edited_at"),
                    editedBy: try row.decode("edited_by")
                )
            }
        }
    }

    public func isReachable() async -> Bool {
        do {
            try await client.query("SELECT 1")
            return true
        } catch let error as PostgresError where error.code == .poolTimeout {
            // Every connection is busy answering queries: the server is reachable.
            return true
        } catch {
            return false
        }
    }

    // MARK: - Helpers

    /// Writes the event of a change into the outbox, inside the change's transaction, so the event
    /// exists exactly when the change does; the relay finds it at its next poll.
    private static func record(_ event: MessageEvent, on session: PostgresSession) async throws {
        try await session.execute(
            SQL.insertOutboxEvent,
            [
                event.id, event.message.channelID, event.kind.rawValue, try event.payload(), try event.legacyPayload(),
                RequestScope.current?.requestID,
            ]
        )
    }

    private static func replay(_ earlier: Message, requestHash: String) throws -> CreateOutcome {
        guard earlier.requestHash == requestHash else { throw MessageStoreError.idempotencyKeyReused }
        return .replayed(earlier)
    }

    private static func message(keyedBy key: String, of new: NewMessage, on session: PostgresSession) async throws
        -> Message?
    {
        let rows = try await session.query(SQL.selectByIdempotencyKey, [new.channelID, new.authorID, key])
        return try rows.first.map(message(from:))
    }

    private static func bumpChannelVersion(_ channelID: UUID, on session: PostgresSession) async throws -> ChannelState {
        guard let row = try await session.query(SQL.bumpChannelVersion, [channelID]).first else {
            throw MessageStoreError.messageNotFound
        }
        return try channelState(row)
    }

    private static func channelState(_ row: PostgresRow?) throws -> ChannelState {
        let row = try returned(row)
        return ChannelState(lastSeq: try row.decode("last_seq"), version: try row.decode("version"))
    }

    /// The row a `RETURNING` statement that must change one row gave back.
    private static func returned(_ rows: PostgresRows) throws -> PostgresRow {
        try returned(rows.first)
    }

    private static func returned(_ row: PostgresRow?) throws -> PostgresRow {
        guard let row else { throw StoreInvariantViolation() }
        return row
    }

    private static func lockedMessage(id: UUID, channelID: UUID, on session: PostgresSession) async throws -> Message {
        guard let row = try await session.query(SQL.selectMessageForUpdate, [channelID, id]).first else {
            throw MessageStoreError.messageNotFound
        }
        return try message(from: row)
    }

    private static func filter(of scope: MessageScope) -> String {
        switch scope {
        case .timeline: "parent_id IS NULL AND $2::uuid IS NULL"
        case .replies: "parent_id = $2::uuid"
        case .liveTimeline: "parent_id IS NULL AND deleted_at IS NULL AND $2::uuid IS NULL"
        }
    }

    /// A stable fingerprint of what a create asked for, to tell a retry from a reuse of its key.
    static func requestHash(of new: NewMessage) -> String {
        struct Fingerprint: Encodable {
            let type: String?
            let content: String
            let attachments: [Attachment]
            let parentID: UUID?
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let fingerprint = Fingerprint(
            type: new.type?.rawValue, content: new.content, attachments: new.attachments, parentID: new.parentID
        )
        let bytes = (try? encoder.encode(fingerprint)) ?? Data(new.content.utf8)
        return SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
    }

    static func message(from row: PostgresRow) throws -> Message {
        Message(
            id: try row.decode("id"),
            channelID: try row.decode("channel_id"),
            seq: try row.decode("seq"),
            version: try row.decode("version"),
            authorID: try row.decode("author_id"),
            parentID: try row.decodeIfPresent("parent_id"),
            type: try row.text("type").flatMap(MessageType.init(rawValue:)),
            content: try row.decode("content"),
            attachments: try JSONText.decode([Attachment].self, from: row.decode("attachments")),
            mentions: try row.decode("mentions"),
            replyCount: try row.decode("reply_count"),
            reactions: try JSONText.decode([String: Int64].self, from: row.decode("reactions")),
            createdAt: Timestamp(microsecondsSinceEpoch: try row.decode("created_at")),
            editedAt: try row.decodeIfPresent("edited_at", as: Int64.self).map(Timestamp.init),
            deletedAt: try row.decodeIfPresent("deleted_at", as: Int64.self).map(Timestamp.init),
            clientMessageID: try row.decodeIfPresent("client_message_id"),
            requestHash: try row.decodeIfPresent("request_hash")
        )
    }
}

/// A store read back what it cannot have written (a statement that must return a row returned
/// none, a value its table does not allow): a fault of the store (a 500), not of the request.
struct StoreInvariantViolation: Error {}

/// The statements of `PostgresMessageStore`. Values are always parameters, never interpolated.
enum SQL {
    /// RFC 3339 UTC with milliseconds, the only timestamp format the API speaks.
    private static func timestamp(_ column: String) -> String {
        "to_char(\(column) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') AS \(column)"
    }

    /// Microseconds since the epoch: what Postgres keeps, exactly (extract gives a numeric).
    private static func microseconds(_ column: String) -> String {
        "(extract(epoch FROM \(column)) * 1000000)::bigint AS \(column)"
    }

    static let messageColumns = """
        id, channel_id, seq, version, author_id, parent_id, type, content, attachments::text AS attachments,
        mentions::text AS mentions, reply_count, reaction_counts::text AS reactions, client_message_id,
        request_hash, \(microseconds("created_at")), \(microseconds("edited_at")), \(microseconds("deleted_at"))
        """

    static let bumpChannelForCreate = """
        INSERT INTO channels AS c (id, last_seq, version, message_count) VALUES ($1, 1, 1, 1)
        ON CONFLICT (id) DO UPDATE SET last_seq = c.last_seq + 1, version = c.version + 1,
            message_count = c.message_count + 1, updated_at = now()
        RETURNING last_seq, version
        """

    static let bumpChannelVersion = """
        UPDATE channels SET version = version + 1, updated_at = now() WHERE id = $1 RETURNING last_seq, version
        """

    static let addReplyToParent = """
        UPDATE messages SET reply_count = reply_count + 1, last_reply_at = clock_timestamp(), version = $3
        WHERE channel_id = $1 AND id = $2 AND parent_id IS NULL AND deleted_at IS NULL
        RETURNING \(messageColumns)
        """

    // clock_timestamp(), not now(): it is read after the channel lock, so created_at grows with seq.
    static let insertMessage = """
        INSERT INTO messages (id, channel_id, seq, version, author_id, parent_id, type, content, attachments,
            mentions, client_message_id, request_hash, created_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10::uuid[], $11, $12, clock_timestamp())
        RETURNING \(messageColumns)
        """

    static let selectMessage = "SELECT \(messageColumns) FROM messages WHERE channel_id = $1 AND id = $2"

    /// No `NOTIFY`: a transaction that notifies takes a database-wide lock from its commit until
    /// it ends, which would serialize every write's commit (and its WAL flush). The relay polls.
    static let insertOutboxEvent = """
        INSERT INTO outbox (event_id, channel_id, routing_key, payload, legacy_payload, correlation_id)
        VALUES ($1, $2, $3, $4::jsonb, $5::jsonb, $6)
        """

    static let selectMessageForUpdate = "\(selectMessage) FOR UPDATE"

    static let selectByIdempotencyKey = """
        SELECT \(messageColumns) FROM messages WHERE channel_id = $1 AND author_id = $2 AND client_message_id = $3
        """

    static let selectSeq = "SELECT seq FROM messages WHERE channel_id = $1 AND id = $2"

    // created_at grows with seq within a channel (clock_timestamp() read under the channel lock),
    // so the newest by time is the highest seq (ties broken by seq): one probe of
    // messages_channel_root_created instead of max(seq) over every older row.
    static let selectLastSeqBefore = """
        SELECT seq FROM messages WHERE channel_id = $1 AND parent_id IS NULL AND created_at < $2::timestamptz
        ORDER BY created_at DESC, seq DESC LIMIT 1
        """

    /// A page in one statement: the channel's counters (one row even when the channel or the
    /// page is empty), then up to $4 messages older than $3 (newest first, side `o`) and up to $6
    /// newer than $5 (oldest first, side `n`). $2 is the root of a reply thread, or null.
    static func selectPage(_ filter: String) -> String {
        """
        SELECT c.last_seq AS channel_last_seq, c.version AS channel_version, m.*
        FROM (VALUES (1)) AS one
        LEFT JOIN channels c ON c.id = $1
        LEFT JOIN LATERAL (
            (SELECT 'o' AS side, \(messageColumns) FROM messages
             WHERE channel_id = $1 AND \(filter) AND seq < $3 ORDER BY seq DESC LIMIT $4)
            UNION ALL
            (SELECT 'n' AS side, \(messageColumns) FROM messages
             WHERE channel_id = $1 AND \(filter) AND seq > $5 ORDER BY seq ASC LIMIT $6)
        ) m ON true
        """
    }

    static let insertRevision = """
        INSERT INTO message_edits (channel_id, message_id, version, content, attachments, edited_at, edited_by)
        VALUES ($1, $2, $3, $4, $5::jsonb, clock_timestamp(), $6)
        """

    static let updateMessage = """
        UPDATE messages SET version = $3, content = $4, attachments = $5::jsonb, mentions = $6::uuid[],
            edited_at = clock_timestamp()
        WHERE channel_id = $1 AND id = $2
        RETURNING \(messageColumns)
        """

    static let deleteRevisions = "DELETE FROM message_edits WHERE channel_id = $1 AND message_id = $2"

    static let tombstoneMessage = """
        UPDATE messages SET version = $3, content = '', attachments = '[]', mentions = '{}',
            deleted_at = clock_timestamp(), deleted_by = $4
        WHERE channel_id = $1 AND id = $2
        RETURNING \(messageColumns)
        """

    static let selectRevisions = """
        SELECT version, content, attachments::text AS attachments, edited_by, \(timestamp("edited_at"))
        FROM message_edits WHERE channel_id = $1 AND message_id = $2 ORDER BY version
        """
}
