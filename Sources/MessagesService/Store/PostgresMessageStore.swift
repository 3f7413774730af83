import Crypto
import Foundation
import Logging
import Postgres

/// `MessageStore` on Postgres.
///
/// Every request is one prepared statement. A write calls one of the functions of migration 6,
/// which runs in the statement's own transaction: it takes the channel row first (`last_seq`,
/// `version`), which serializes the writers of one channel, makes `seq` and `version` gap-free and
/// unique, and gives all writers one lock order (channel, then message) so they cannot deadlock
/// each other; it writes the change's event into the outbox in the same transaction.
public struct PostgresMessageStore: MessageStore {
    let client: PostgresClient

    /// Creates a store on a client.
    public init(client: PostgresClient) {
        self.client = client
    }

    public func create(_ new: NewMessage) async throws -> CreateOutcome {
        // Only a create with a key can be replayed, and only then is the request compared.
        let requestHash = new.idempotencyKey == nil ? "" : Self.requestHash(of: new)
        do {
            return try await create(new, requestHash: requestHash)
        } catch let error as PostgresError where error.isUniqueViolation && new.idempotencyKey != nil {
            // A create with the same key committed between this one's look-up and its insert
            // (see create_message): the call again finds it.
            return try await create(new, requestHash: requestHash)
        }
    }

    private func create(_ new: NewMessage, requestHash: String) async throws -> CreateOutcome {
        let rows: PostgresRows
        do {
            rows = try await client.query(
                SQL.createMessage,
                [
                    UUID.v7(), new.channelID, new.authorID, new.parentID, new.type?.rawValue, new.content,
                    try JSONText.encode(new.attachments), Mentions.extract(from: new.content), new.idempotencyKey,
                    new.idempotencyKey == nil ? nil : requestHash, UUID.v7(),
                ] + Self.eventOrigin
            )
        } catch let error as PostgresError where error.sqlState == SQL.noDataFound {
            throw MessageStoreError.parentNotFound
        }
        let written = try WriteResult(rows)
        switch written.outcome {
        case "replayed":
            guard try written.message.requestHash == requestHash else { throw MessageStoreError.idempotencyKeyReused }
            return .replayed(try written.message)
        case "created":
            return .created(try MessageWrite(message: written.message, parent: written.parent, channel: written.channel))
        default:
            throw StoreInvariantViolation()
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
        if let first {
            let side = try first.column("side")
            let columns = try MessageColumns(first)
            for row in rows.rows {
                switch try row.decodeIfPresent(side, as: String.self) {
                case "o": older.append(try columns.message(row))
                case "n": newer.append(try columns.message(row))
                default: break  // the one row of a page with no message at all
                }
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
        let rows = try await client.query(
            SQL.editMessage,
            [
                channelID, id, userID, edit.content, try edit.attachments.map(JSONText.encode),
                edit.content.map(Mentions.extract(from:)), edit.expectedVersion, UUID.v7(),
            ] + Self.eventOrigin
        )
        let written = try WriteResult(rows)
        switch written.outcome {
        case "edited": return try MessageWrite(message: written.message, channel: written.channel)
        case "not_found": throw MessageStoreError.messageNotFound
        case "not_author": throw MessageStoreError.notAuthor
        case "deleted": throw MessageStoreError.messageDeleted
        case "version_mismatch": throw MessageStoreError.versionMismatch(current: try written.message.version)
        case "empty": throw MessageStoreError.emptyMessage
        default: throw StoreInvariantViolation()
        }
    }

    public func delete(id: UUID, channelID: UUID, by userID: UUID, asModerator: Bool) async throws -> MessageWrite {
        let rows = try await client.query(
            SQL.deleteMessage, [channelID, id, userID, asModerator, UUID.v7()] + Self.eventOrigin
        )
        let written = try WriteResult(rows)
        switch written.outcome {
        case "deleted": return try MessageWrite(message: written.message, channel: written.channel)
        // Deleting twice changes nothing: the tombstone, no new version.
        case "unchanged": return try MessageWrite(message: written.message)
        case "not_found": throw MessageStoreError.messageNotFound
        case "not_author": throw MessageStoreError.notAuthor
        default: throw StoreInvariantViolation()
        }
    }

    /// One statement on `messages_channel_version`: Postgres' `FETCH FIRST n ROWS WITH TIES` keeps
    /// every message of the last version, as `MessageChanges.select` asks.
    public func changes(channelID: UUID, since: Int64, limit: Int) async throws -> MessageChanges {
        let rows = try await client.query(SQL.selectChanges, [channelID, since, limit])
        var messages: [Message] = []
        if let first = rows.first {
            let columns = try MessageColumns(first)
            messages = try rows.rows.compactMap { row in row.text(columns.id) == nil ? nil : try columns.message(row) }
        }
        return MessageChanges(
            messages: messages.sorted { ($0.version, $0.seq) < ($1.version, $1.seq) },
            channelVersion: try rows.first?.decodeIfPresent("channel_version") ?? 0
        )
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
                    attachments: try JSONText.decode([Attachment].self, from: row.decode("attachments"), empty: "[]", as: []),
                    replacedAt: try row.decode("edited_at"),
                    editedBy: try row.decode("edited_by")
                )
            }
        }
    }

    public func react(
        _ emoji: ReactionEmoji, adding: Bool, messageID: UUID, channelID: UUID, userID: UUID
    ) async throws -> MessageWrite {
        let written = try WriteResult(
            try await client.query(
                SQL.reactMessage,
                [
                    channelID, messageID, userID, emoji.text, adding, MessageLimits.maxReactionsPerMessage, UUID.v7(),
                ] + Self.eventOrigin
            )
        )
        switch written.outcome {
        case "changed": return try MessageWrite(message: written.message, channel: written.channel)
        case "unchanged": return try MessageWrite(message: written.message)
        case "too_many": throw MessageStoreError.tooManyReactions
        case "deleted": throw MessageStoreError.messageDeleted
        case "not_found": throw MessageStoreError.messageNotFound
        default: throw StoreInvariantViolation()
        }
    }

    public func reactors(
        _ emoji: ReactionEmoji, messageID: UUID, channelID: UUID, after: UUID?, limit: Int
    ) async throws -> ReactorPage {
        var values: [any PostgresEncodable] = [channelID, messageID, emoji.text, limit + 1]
        if let after { values.append(after) }
        let rows = try await client.query(SQL.selectReactors(after: after != nil), values)
        guard let first = rows.first else { throw MessageStoreError.messageNotFound }
        let reactors = try rows.rows.compactMap { row -> Reactor? in
            guard let userID: UUID = try row.decodeIfPresent("user_id") else { return nil }
            return Reactor(userID: userID, reactedAt: Timestamp(microsecondsSinceEpoch: try row.decode("created_at")))
        }
        return ReactorPage.first(limit, of: reactors, count: try first.decode("count"))
    }

    public func markRead(channelID: UUID, userID: UUID, seq: Int64) async throws -> ReadState? {
        let rows = try await client.query(SQL.markRead, [channelID, userID, seq, ReadState.unreadLimit])
        guard let row = rows.first else { return nil }
        return ReadState(lastReadSeq: try row.decode("last_read_seq"), unread: Int(try row.decode("unread", as: Int64.self)))
    }

    public func readState(channelID: UUID, userID: UUID) async throws -> ReadState {
        let rows = try await client.query(SQL.readState, [channelID, userID, ReadState.unreadLimit])
        let row = rows.first
        return ReadState(
            lastReadSeq: try row?.decode("last_read_seq") ?? 0, unread: Int(try row?.decode("unread", as: Int64.self) ?? 0))
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

    /// What one of the write functions (migration 6) answered: its first row's outcome, the
    /// message and the channel's counters in it (when the write changed them), and the root a
    /// reply moved.
    private struct WriteResult {
        let outcome: String
        private let first: PostgresRow
        private let parentRow: PostgresRow?

        init(_ rows: PostgresRows) throws {
            first = try PostgresMessageStore.returned(rows.first)
            outcome = try first.decode("outcome")
            parentRow = rows.rows.dropFirst().first
        }

        var message: Message {
            get throws { try PostgresMessageStore.message(from: first) }
        }

        var parent: Message? {
            get throws { try parentRow.map(PostgresMessageStore.message(from:)) }
        }

        var channel: ChannelState? {
            get throws {
                guard let lastSeq: Int64 = try first.decodeIfPresent("channel_last_seq") else { return nil }
                return ChannelState(lastSeq: lastSeq, version: try first.decode("channel_version"))
            }
        }
    }

    private static func returned(_ row: PostgresRow?) throws -> PostgresRow {
        guard let row else { throw StoreInvariantViolation() }
        return row
    }

    static func filter(of scope: MessageScope) -> String {
        switch scope {
        case .timeline: "parent_id IS NULL AND $2::uuid IS NULL"
        case .replies: "parent_id = $2::uuid"
        case .liveTimeline: "parent_id IS NULL AND deleted_at IS NULL AND $2::uuid IS NULL"
        }
    }

    /// The last parameters of every write: the request id (the event's `correlation_id`) and the
    /// W3C trace context the event carries on (`traceparent`, `tracestate`).
    private static var eventOrigin: [any PostgresEncodable] {
        let trace = RequestScope.traceContextToPropagate
        return [RequestScope.current?.requestID, trace?.traceparent, trace?.state]
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
        let hex = Array("0123456789abcdef".utf8)
        return String(decoding: SHA256.hash(data: bytes).flatMap { [hex[Int($0 >> 4)], hex[Int($0 & 0x0f)]] }, as: UTF8.self)
    }

    static func message(from row: PostgresRow) throws -> Message {
        try MessageColumns(row).message(row)
    }
}

/// The columns of a message in one result, found once: a page then reads each of its rows by
/// position (finding 18 columns by name in each of 51 rows was 6% of an older page's CPU).
struct MessageColumns {
    let id, channelID, seq, version, authorID, parentID, type, content, attachments, mentions: PostgresColumn
    let replyCount, reactions, createdAt, editedAt, deletedAt, clientMessageID, requestHash, reactedAt: PostgresColumn

    /// The columns of `row`'s result (any row of it).
    init(_ row: PostgresRow) throws {
        id = try row.column("id")
        channelID = try row.column("channel_id")
        seq = try row.column("seq")
        version = try row.column("version")
        authorID = try row.column("author_id")
        parentID = try row.column("parent_id")
        type = try row.column("type")
        content = try row.column("content")
        attachments = try row.column("attachments")
        mentions = try row.column("mentions")
        replyCount = try row.column("reply_count")
        reactions = try row.column("reactions")
        createdAt = try row.column("created_at")
        editedAt = try row.column("edited_at")
        deletedAt = try row.column("deleted_at")
        clientMessageID = try row.column("client_message_id")
        requestHash = try row.column("request_hash")
        reactedAt = try row.column("reacted_at")
    }

    func message(_ row: PostgresRow) throws -> Message {
        Message(
            id: try row.decode(id),
            channelID: try row.decode(channelID),
            seq: try row.decode(seq),
            version: try row.decode(version),
            authorID: try row.decode(authorID),
            parentID: try row.decodeIfPresent(parentID),
            type: row.text(type).flatMap(MessageType.init(rawValue:)),
            content: try row.decode(content),
            attachments: try JSONText.decode([Attachment].self, from: row.decode(attachments), empty: "[]", as: []),
            mentions: try row.decode(mentions),
            replyCount: try row.decode(replyCount),
            reactions: try JSONText.decode([String: Int64].self, from: row.decode(reactions), empty: "{}", as: [:]),
            createdAt: Timestamp(microsecondsSinceEpoch: try row.decode(createdAt)),
            editedAt: try row.decodeIfPresent(editedAt, as: Int64.self).map(Timestamp.init),
            deletedAt: try row.decodeIfPresent(deletedAt, as: Int64.self).map(Timestamp.init),
            clientMessageID: try row.decodeIfPresent(clientMessageID),
            requestHash: try row.decodeIfPresent(requestHash),
            reactedAt: try row.decodeIfPresent(reactedAt, as: Int64.self).map(Timestamp.init)
        )
    }
}

/// A store read back what it cannot have written (a statement that must return a row returned
/// none, a value its table does not allow): a fault of the store (a 500), not of the request.
struct StoreInvariantViolation: Error {}

/// The statements of `PostgresMessageStore`. Values are always parameters, never interpolated.
enum SQL {
    /// Every statement the stores run per channel (this one's, `PostgresMembershipStore`'s, a
    /// channel's statistics; not the service-wide statistics, which read every channel). Each names
    /// its channel in equality, so it touches one partition of each table it reads
    /// (`ChannelPartitioning`); `PartitioningTests` checks every one of them on a partitioned schema.
    static var all: [String] {
        [createMessage, editMessage, deleteMessage, reactMessage, selectReactors(after: false), selectReactors(after: true)]
            + [selectMessage, selectSeq, selectLastSeqBefore, selectChanges, markRead, readState, selectRevisions]
            + [MessageScope.timeline, .replies(to: UUID()), .liveTimeline].map { selectPage(PostgresMessageStore.filter(of: $0)) }
            + PostgresMembershipStore.statements + [PostgresStatisticsStore.selectChannel]
    }

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
        request_hash, \(microseconds("created_at")), \(microseconds("edited_at")), \(microseconds("deleted_at")),
        \(microseconds("reacted_at"))
        """

    /// SQLSTATE no_data_found: what create_message raises when a reply's root is missing.
    static let noDataFound = "P0002"

    /// A write: one call of its function (migration 11, after 6, 8 and 10), its rows with the
    /// message's columns.
    private static func write(_ call: String) -> String {
        """
        SELECT r.outcome, r.channel_last_seq, r.channel_version, \(messageColumns)
        FROM \(call) AS r CROSS JOIN LATERAL (SELECT (r.message).*) AS m
        """
    }

    static let createMessage = write("create_message($1, $2, $3, $4, $5, $6, $7::jsonb, $8::uuid[], $9, $10, $11, $12, $13, $14)")

    static let editMessage = write("edit_message($1, $2, $3, $4, $5::jsonb, $6::uuid[], $7, $8, $9, $10, $11)")

    static let deleteMessage = write("delete_message($1, $2, $3, $4, $5, $6, $7, $8)")

    static let reactMessage = write("react_message($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)")

    /// A message's count of one reaction ($3) and up to $4 of the users who reacted with it,
    /// ascending by id from the primary key; no row when the message is not there.
    static func selectReactors(after: Bool) -> String {
        """
        SELECT coalesce((m.reaction_counts ->> $3)::bigint, 0) AS count, r.user_id,
            (extract(epoch FROM r.created_at) * 1000000)::bigint AS created_at
        FROM messages m
        LEFT JOIN LATERAL (
            SELECT user_id, created_at FROM reactions
            WHERE channel_id = $1 AND message_id = $2 AND emoji = $3\(after ? " AND user_id > $5" : "")
            ORDER BY user_id LIMIT $4
        ) r ON true
        WHERE m.channel_id = $1 AND m.id = $2
        """
    }

    static let selectMessage = "SELECT \(messageColumns) FROM messages WHERE channel_id = $1 AND id = $2"

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

    static let selectChanges = """
        SELECT c.version AS channel_version, m.*
        FROM (VALUES (1)) AS one
        LEFT JOIN channels c ON c.id = $1
        LEFT JOIN LATERAL (
            SELECT \(messageColumns) FROM messages
            WHERE channel_id = $1 AND version > $2 ORDER BY version FETCH FIRST $3 ROWS WITH TIES
        ) m ON true
        """

    /// Root messages by others after a marker, not deleted, counted up to a limit ($1 channel,
    /// $2 user, marker, limit): at most that many index entries of (channel_id, seq) are read.
    private static func unreadCount(after marker: String, limit: String) -> String {
        """
        (SELECT count(*) FROM (
            SELECT 1 FROM messages m
            WHERE m.channel_id = $1 AND m.seq > \(marker) AND m.parent_id IS NULL AND m.deleted_at IS NULL
                AND m.author_id <> $2
            ORDER BY m.seq LIMIT \(limit)) unread)
        """
    }

    /// Moves the marker forward ($3) only when the channel has that message, in one statement;
    /// no row when it has not.
    static let markRead = """
        WITH marked AS (
            INSERT INTO read_markers AS r (channel_id, user_id, last_read_seq)
            SELECT $1, $2, $3 WHERE $3 <= coalesce((SELECT last_seq FROM channels WHERE id = $1), 0)
            ON CONFLICT (channel_id, user_id) DO UPDATE
                SET last_read_seq = greatest(r.last_read_seq, excluded.last_read_seq), updated_at = now()
            RETURNING last_read_seq
        )
        SELECT last_read_seq, \(unreadCount(after: "marked.last_read_seq", limit: "$4")) AS unread FROM marked
        """

    static let readState = """
        SELECT coalesce(r.last_read_seq, 0) AS last_read_seq,
            \(unreadCount(after: "coalesce(r.last_read_seq, 0)", limit: "$3")) AS unread
        FROM (VALUES (1)) AS one
        LEFT JOIN read_markers r ON r.channel_id = $1 AND r.user_id = $2
        """

    static let selectRevisions = """
        SELECT version, content, attachments::text AS attachments, edited_by, \(timestamp("edited_at"))
        FROM message_edits WHERE channel_id = $1 AND message_id = $2 ORDER BY version
        """
}
