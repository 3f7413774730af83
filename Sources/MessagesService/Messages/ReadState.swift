/// Where a user has read up to in a channel, and what came after it.
public struct ReadState: Sendable, Equatable {
    /// Unread counts stop here: counting is bounded work per call, and a client shows "999+".
    public static let unreadLimit = 999

    /// The `seq` of the last message the user marked read; 0 before any mark.
    public var lastReadSeq: Int64
    /// Root messages after `lastReadSeq` by others, not deleted; at most `unreadLimit`.
    public var unread: Int

    public init(lastReadSeq: Int64, unread: Int) {
        self.lastReadSeq = lastReadSeq
        self.unread = unread
    }
}
