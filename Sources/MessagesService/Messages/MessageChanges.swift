import Foundation

/// What changed in a channel after a version: each message whose last change came later, once, in
/// its current state (a deleted message as its tombstone), in version order.
///
/// A message carries the channel version of its last change, so reading messages by version is
/// the whole changes feed: a message changed twice since `since` appears once, with the later
/// version (earlier versions are then held by no message). The channel's current version is
/// always held by the message its last change touched, so a batch that ends below it has more
/// after it.
public struct MessageChanges: Sendable, Equatable {
    /// The changed messages, ascending by (version, seq).
    public var messages: [Message]
    /// The channel's version when read: 0 for a channel without any message.
    public var channelVersion: Int64

    public init(messages: [Message], channelVersion: Int64) {
        self.messages = messages
        self.channelVersion = channelVersion
    }

    /// The `since` that continues after this batch.
    public func nextSince(after since: Int64) -> Int64 {
        messages.last?.version ?? max(since, channelVersion)
    }

    /// True when changes after this batch exist.
    public var hasMore: Bool {
        (messages.last?.version).map { $0 < channelVersion } ?? false
    }

    /// The first `limit` changed messages of `candidates` (every message of the channel with a
    /// version after `since`, in any order), extended to every message of the last version: a
    /// reply and its root share their version, and a batch that split them would lose one, since
    /// the next batch starts after that version.
    static func select(from candidates: [Message], limit: Int, channelVersion: Int64) -> MessageChanges {
        let ordered = candidates.sorted { ($0.version, $0.seq) < ($1.version, $1.seq) }
        guard ordered.count > limit, limit > 0 else {
            return MessageChanges(messages: ordered, channelVersion: channelVersion)
        }
        let lastVersion = ordered[limit - 1].version
        let kept = ordered.prefix { $0.version <= lastVersion }
        return MessageChanges(messages: Array(kept), channelVersion: channelVersion)
    }
}

/// How a message in the changes feed last changed, with the events' names. The rule is the feed's:
/// a reply changes its root (count, version), for which no event is published.
public enum MessageChangeKind: String, Sendable {
    case created = "message.created"
    case updated = "message.updated"
    case deleted = "message.deleted"

    /// Read from the message's state: a tombstone was deleted; an edited message, a root with
    /// replies (each reply gives its root a new version) or a message that took or lost a reaction
    /// was updated after it was created. (Events name reaction changes `reaction.added` and
    /// `reaction.removed`; the feed gives states, in which a reaction is one more change of the
    /// message's `reactions`.)
    public init(of message: Message) {
        if message.deletedAt != nil {
            self = .deleted
        } else if message.editedAt != nil || message.replyCount > 0 || message.reactedAt != nil {
            self = .updated
        } else {
            self = .created
        }
    }
}
