import Foundation

/// What a validated create request asks for.
public struct NewMessage: Sendable, Equatable {
    public var channelID: UUID
    public var authorID: UUID
    public var type: MessageType?
    public var content: String
    public var attachments: [Attachment]
    public var parentID: UUID?
    /// The idempotency key: the `Idempotency-Key` header, else the body's `client_message_id`.
    public var idempotencyKey: String?
}

/// What a validated edit request changes; nil fields stay as they are.
public struct MessageEdit: Sendable, Equatable {
    public var content: String?
    public var attachments: [Attachment]?
    /// The version the client last saw (`If-Match`), if it sent one.
    public var expectedVersion: Int64?
}

extension MessageEdit {
    /// What `current` holds after this edit by `userID`, or why every store refuses it: only its
    /// author edits a live message, at the version the edit expects (if any), and a message keeps
    /// some text or an attachment.
    func applied(to current: Message, by userID: UUID) throws -> (content: String, attachments: [Attachment]) {
        guard current.authorID == userID else { throw MessageStoreError.notAuthor }
        guard !current.isDeleted else { throw MessageStoreError.messageDeleted }
        if let expectedVersion, expectedVersion != current.version {
            throw MessageStoreError.versionMismatch(current: current.version)
        }
        let content = self.content ?? current.content
        let attachments = self.attachments ?? current.attachments
        guard !content.isEmpty || !attachments.isEmpty else { throw MessageStoreError.emptyMessage }
        return (content, attachments)
    }
}

/// What one committed write changed: what the timeline cache and change feeds need to follow it.
public struct MessageWrite: Sendable, Equatable {
    /// The message as stored after the write.
    public var message: Message
    /// The root message whose reply count a new reply changed (and whose `version` moved with it).
    public var parent: Message?
    /// The channel's counters right after the write; nil when the write changed nothing.
    public var channel: ChannelState?
}

/// The result of a create.
public enum CreateOutcome: Sendable, Equatable {
    /// A new message was stored.
    case created(MessageWrite)
    /// The idempotency key named an earlier create with the same request: here is its message.
    case replayed(Message)
}

/// Which messages a page walks through.
public enum MessageScope: Sendable, Equatable {
    /// Root messages of the channel (replies are listed under their root).
    case timeline
    /// Replies to one root message.
    case replies(to: UUID)
    /// INF326 threads: root messages that are not deleted.
    case liveTimeline
}

/// Where a page starts.
public enum PagePosition: Sendable, Equatable {
    /// The newest messages.
    case newest
    /// Messages with a `seq` lower than this.
    case before(seq: Int64)
    /// Messages with a `seq` higher than this.
    case after(seq: Int64)
    /// Messages around this `seq`, which is included.
    case around(seq: Int64)
}

extension PagePosition {
    /// The seq the position names; nil for the newest page.
    var seq: Int64? {
        switch self {
        case .newest: nil
        case .before(let seq), .after(let seq), .around(let seq): seq
        }
    }
}

/// A page of messages, ascending by `seq`.
public struct MessagePage: Sendable, Equatable {
    public var items: [Message]
    /// True when older messages exist before the first item.
    public var hasBefore: Bool
    /// True when newer messages exist after the last item.
    public var hasAfter: Bool
    /// The channel's counters when the page was read.
    public var channel: ChannelState
}

extension MessagePage {
    /// What a store reads for one page, in one go: up to `count` messages of the scope on each
    /// side of an anchor, and whether more exist there (a count of 0 only asks whether any
    /// exists). A side that is nil is not read.
    struct Reads {
        /// Messages with `seq < before`, the newest of them.
        var older: (before: Int64, count: Int)?
        /// Messages with `seq > after`, the oldest of them.
        var newer: (after: Int64, count: Int)?
    }

    /// What a store found for `Reads`: the channel's counters and each side, ascending by `seq`.
    struct Found {
        var channel: ChannelState
        var older: [Message] = []
        var moreOlder = false
        var newer: [Message] = []
        var moreNewer = false
    }

    /// The reads a page at `position` needs. Arithmetic on the position saturates: it is a
    /// client's value (checked against the channel only once it is read).
    static func reads(for position: PagePosition, limit: Int) -> Reads {
        switch position {
        case .newest:
            return Reads(older: (.max, limit), newer: nil)
        case .before(let seq):
            // Newer than the page: whatever lies at or after the anchor.
            return Reads(older: (seq, limit), newer: (seq.saturatingAdd(-1), 0))
        case .after(let seq):
            return Reads(older: (seq.saturatingAdd(1), 0), newer: (seq, limit))
        case .around(let seq):
            let olderCount = limit / 2
            return Reads(older: (seq, olderCount), newer: (seq.saturatingAdd(-1), limit - olderCount))
        }
    }

    /// The page at `position` from what a store found for `reads(for:limit:)`, so that every
    /// store pages alike. Positions come from cursors and message ids of this channel: 0 is before
    /// the first message, last_seq + 1 after the last; anything else was not made by this service.
    static func assemble(position: PagePosition, found: Found) throws -> MessagePage {
        if let seq = position.seq, !(0...found.channel.lastSeq.saturatingAdd(1)).contains(seq) {
            throw MessageStoreError.positionOutOfRange
        }
        switch position {
        case .newest:
            return MessagePage(items: found.older, hasBefore: found.moreOlder, hasAfter: false, channel: found.channel)
        case .before:
            return MessagePage(items: found.older, hasBefore: found.moreOlder, hasAfter: found.moreNewer, channel: found.channel)
        case .after:
            return MessagePage(items: found.newer, hasBefore: found.moreOlder, hasAfter: found.moreNewer, channel: found.channel)
        case .around:
            return MessagePage(
                items: found.older + found.newer, hasBefore: found.moreOlder, hasAfter: found.moreNewer,
                channel: found.channel
            )
        }
    }
}

/// A channel's counters.
public struct ChannelState: Sendable, Equatable {
    public var lastSeq: Int64
    public var version: Int64
}

/// One earlier state of an edited message.
public struct MessageRevision: Sendable, Equatable {
    /// The version the message had while it read like this.
    public var version: Int64
    public var content: String
    public var attachments: [Attachment]
    /// When this text was replaced.
    public var replacedAt: String
    public var editedBy: UUID
}

/// Why a store operation refused.
public enum MessageStoreError: Error, Equatable {
    /// No such message in this channel.
    case messageNotFound
    /// The parent of a reply is not a live root message of this channel.
    case parentNotFound
    /// Only the author (or, for deletes, a moderator) may do this.
    case notAuthor
    /// `If-Match` named another version than the current one.
    case versionMismatch(current: Int64)
    /// The idempotency key was used before with another request.
    case idempotencyKeyReused
    /// The message is deleted and cannot change.
    case messageDeleted
    /// A page position past the channel's messages: no seq outside 0...`last_seq` + 1 names a place.
    case positionOutOfRange
    /// An edit would leave the message with neither text nor attachments.
    case emptyMessage
    /// A time the store cannot read (an INF326 cursor naming month 13, say).
    case invalidTimestamp
    /// A new kind of reaction on a message that already carries `MessageLimits.maxReactionsPerMessage`.
    case tooManyReactions
}

/// Stores and reads messages. Every operation names the channel, so the data can be partitioned
/// by channel without changing a call.
public protocol MessageStore: Sendable {
    /// Stores a message, assigning its `seq` and `version`, or replays an earlier create.
    func create(_ message: NewMessage) async throws -> CreateOutcome
    /// One message, deleted or not.
    func message(id: UUID, channelID: UUID) async throws -> Message
    /// A page of messages around a position.
    func page(channelID: UUID, scope: MessageScope, position: PagePosition, limit: Int) async throws -> MessagePage
    /// The `seq` of a message in this channel, to start a page at a message id.
    func seq(ofMessage id: UUID, channelID: UUID) async throws -> Int64?
    /// The highest `seq` among root messages created before a time (RFC 3339), for INF326 cursors
    /// that name a message this service never stored.
    func lastSeq(createdBefore timestamp: String, channelID: UUID) async throws -> Int64?
    /// Edits a message's content or attachments, keeping the old state in its history.
    func edit(id: UUID, channelID: UUID, by userID: UUID, _ edit: MessageEdit) async throws -> MessageWrite
    /// Soft-deletes a message, by its author or a moderator; deleting a deleted message changes
    /// nothing (`channel` is then nil). The write's message is the tombstone.
    func delete(id: UUID, channelID: UUID, by userID: UUID, asModerator: Bool) async throws -> MessageWrite
    /// The earlier states of a message, oldest first.
    func history(id: UUID, channelID: UUID) async throws -> [MessageRevision]
    /// The messages changed after channel version `since`: the first `limit` by (version, seq),
    /// with every other message of the last version (`MessageChanges.select`).
    func changes(channelID: UUID, since: Int64, limit: Int) async throws -> MessageChanges
    /// Adds (`adding`) or removes `userID`'s reaction with `emoji` on a live message; a reaction
    /// that is already there, or not there, changes nothing (`channel` is then nil). The write's
    /// message carries the new counts.
    func react(
        _ emoji: ReactionEmoji, adding: Bool, messageID: UUID, channelID: UUID, userID: UUID
    ) async throws -> MessageWrite
    /// Up to `limit` users who reacted to a message with `emoji`, ascending by id, after `after`.
    func reactors(
        _ emoji: ReactionEmoji, messageID: UUID, channelID: UUID, after: UUID?, limit: Int
    ) async throws -> ReactorPage
    /// Moves `userID`'s read marker in the channel forward to `seq`, never back (idempotent);
    /// nil, changing nothing, when `seq` is after the channel's last message.
    func markRead(channelID: UUID, userID: UUID, seq: Int64) async throws -> ReadState?
    /// `userID`'s read marker in the channel and the unread root messages after it.
    func readState(channelID: UUID, userID: UUID) async throws -> ReadState
    /// True when the store can answer right now.
    func isReachable() async -> Bool
}
