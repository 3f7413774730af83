import Foundation

/// `MessageStore` in this process' memory, with the semantics of `PostgresMessageStore`: gap-free
/// `seq` and `version` per channel, idempotent creates, replies, edit history, soft deletes and
/// the same paging. For handler tests that need no server, and for trying the API locally; the
/// tests against Postgres remain the reference.
public actor InMemoryMessageStore: MessageStore {
    private struct Channel {
        var state = ChannelState(lastSeq: 0, version: 0)
        /// Ascending by seq.
        var messages: [Message] = []
        var revisions: [UUID: [MessageRevision]] = [:]
        var lastCreatedAt: Int64 = 0
        /// Each user's read marker.
        var readMarkers: [UUID: Int64] = [:]
        /// Who reacted to which message with what, and when.
        var reactions: [UUID: [ReactionEmoji: [UUID: Timestamp]]] = [:]
    }

    private var channels: [UUID: Channel] = [:]
    private let now: @Sendable () -> Date

    /// An empty store; `now` is its clock.
    public init(now: @escaping @Sendable () -> Date = Date.init) {
        self.now = now
    }

    public func create(_ new: NewMessage) async throws -> CreateOutcome {
        var channel = channels[new.channelID] ?? Channel()
        let requestHash = PostgresMessageStore.requestHash(of: new)
        if let key = new.idempotencyKey,
            let earlier = channel.messages.first(where: { $0.authorID == new.authorID && $0.clientMessageID == key })
        {
            guard earlier.requestHash == requestHash else { throw MessageStoreError.idempotencyKeyReused }
            return .replayed(earlier)
        }
        let state = ChannelState(lastSeq: channel.state.lastSeq + 1, version: channel.state.version + 1)
        var parent: Message?
        if let parentID = new.parentID {
            guard let index = channel.messages.firstIndex(where: { $0.id == parentID }),
                channel.messages[index].parentID == nil, !channel.messages[index].isDeleted
            else { throw MessageStoreError.parentNotFound }
            channel.messages[index].replyCount += 1
            channel.messages[index].version = state.version
            parent = channel.messages[index]
        }
        // Later than every earlier message of the channel, as created_at under the channel lock is.
        let createdAt = max(Self.microseconds(now()), channel.lastCreatedAt + 1)
        let message = Message(
            id: .v7(), channelID: new.channelID, seq: state.lastSeq, version: state.version, authorID: new.authorID,
            parentID: new.parentID, type: new.type, content: new.content, attachments: new.attachments,
            mentions: Mentions.extract(from: new.content), replyCount: 0, reactions: [:],
            createdAt: Timestamp(microsecondsSinceEpoch: createdAt), editedAt: nil, deletedAt: nil,
            clientMessageID: new.idempotencyKey, requestHash: new.idempotencyKey == nil ? nil : requestHash
        )
        channel.state = state
        channel.lastCreatedAt = createdAt
        channel.messages.append(message)
        channels[new.channelID] = channel
        return .created(MessageWrite(message: message, parent: parent, channel: state))
    }

    public func message(id: UUID, channelID: UUID) async throws -> Message {
        guard let message = channels[channelID]?.messages.first(where: { $0.id == id }) else {
            throw MessageStoreError.messageNotFound
        }
        return message
    }

    public func page(channelID: UUID, scope: MessageScope, position: PagePosition, limit: Int) async throws
        -> MessagePage
    {
        let channel = channels[channelID] ?? Channel()
        let listed = channel.messages.filter { message in
            switch scope {
            case .timeline: message.parentID == nil
            case .replies(let root): message.parentID == root
            case .liveTimeline: message.parentID == nil && !message.isDeleted
            }
        }
        let reads = MessagePage.reads(for: position, limit: limit)
        var found = MessagePage.Found(channel: channel.state)
        if let (before, count) = reads.older {
            let candidates = listed.filter { $0.seq < before }
            (found.older, found.moreOlder) = (Array(candidates.suffix(count)), candidates.count > count)
        }
        if let (after, count) = reads.newer {
            let candidates = listed.filter { $0.seq > after }
            (found.newer, found.moreNewer) = (Array(candidates.prefix(count)), candidates.count > count)
        }
        return try MessagePage.assemble(position: position, found: found)
    }

    public func seq(ofMessage id: UUID, channelID: UUID) async throws -> Int64? {
        channels[channelID]?.messages.first(where: { $0.id == id })?.seq
    }

    public func lastSeq(createdBefore timestamp: String, channelID: UUID) async throws -> Int64? {
        guard let time = Timestamp(iso8601: timestamp) else { throw MessageStoreError.invalidTimestamp }
        return channels[channelID]?.messages.last(where: { $0.parentID == nil && $0.createdAt < time })?.seq
    }

    public func edit(id: UUID, channelID: UUID, by userID: UUID, _ edit: MessageEdit) async throws -> MessageWrite {
        guard var channel = channels[channelID], let index = channel.messages.firstIndex(where: { $0.id == id }) else {
            throw MessageStoreError.messageNotFound
        }
        let current = channel.messages[index]
        let (content, attachments) = try edit.applied(to: current, by: userID)
        let editedAt = Timestamp(microsecondsSinceEpoch: Self.microseconds(now()))
        channel.revisions[id, default: []].append(
            MessageRevision(
                version: current.version, content: current.content, attachments: current.attachments,
                replacedAt: editedAt.rfc3339, editedBy: userID
            )
        )
        channel.state.version += 1
        var message = current
        message.version = channel.state.version
        message.content = content
        message.attachments = attachments
        message.mentions = Mentions.extract(from: content)
        message.editedAt = editedAt
        channel.messages[index] = message
        channels[channelID] = channel
        return MessageWrite(message: message, channel: channel.state)
    }

    public func delete(id: UUID, channelID: UUID, by userID: UUID, asModerator: Bool) async throws -> MessageWrite {
        guard var channel = channels[channelID], let index = channel.messages.firstIndex(where: { $0.id == id }) else {
            throw MessageStoreError.messageNotFound
        }
        let current = channel.messages[index]
        guard current.authorID == userID || asModerator else { throw MessageStoreError.notAuthor }
        guard !current.isDeleted else { return MessageWrite(message: current) }
        channel.state.version += 1
        var message = current
        message.version = channel.state.version
        message.content = ""
        message.attachments = []
        message.mentions = []
        message.deletedAt = Timestamp(microsecondsSinceEpoch: Self.microseconds(now()))
        channel.messages[index] = message
        channel.revisions[id] = nil
        channels[channelID] = channel
        return MessageWrite(message: message, channel: channel.state)
    }

    public func history(id: UUID, channelID: UUID) async throws -> [MessageRevision] {
        guard let channel = channels[channelID], channel.messages.contains(where: { $0.id == id }) else {
            throw MessageStoreError.messageNotFound
        }
        return channel.revisions[id] ?? []
    }

    public func changes(channelID: UUID, since: Int64, limit: Int) async throws -> MessageChanges {
        let channel = channels[channelID] ?? Channel()
        return MessageChanges.select(
            from: channel.messages.filter { $0.version > since }, limit: limit, channelVersion: channel.state.version
        )
    }

    public func react(
        _ emoji: ReactionEmoji, adding: Bool, messageID: UUID, channelID: UUID, userID: UUID
    ) async throws -> MessageWrite {
        guard var channel = channels[channelID], let index = channel.messages.firstIndex(where: { $0.id == messageID })
        else { throw MessageStoreError.messageNotFound }
        var message = channel.messages[index]
        guard !message.isDeleted else { throw MessageStoreError.messageDeleted }
        var users = channel.reactions[messageID, default: [:]][emoji, default: [:]]
        guard (users[userID] == nil) == adding else { return MessageWrite(message: message) }
        if adding, message.reactions[emoji.text] == nil,
            message.reactions.count >= MessageLimits.maxReactionsPerMessage
        {
            throw MessageStoreError.tooManyReactions
        }
        let reactedAt = Timestamp(microsecondsSinceEpoch: Self.microseconds(now()))
        users[userID] = adding ? reactedAt : nil
        channel.reactions[messageID, default: [:]][emoji] = users
        channel.state.version += 1
        message.version = channel.state.version
        message.reactions[emoji.text] = users.isEmpty ? nil : Int64(users.count)
        message.reactedAt = reactedAt
        channel.messages[index] = message
        channels[channelID] = channel
        return MessageWrite(message: message, channel: channel.state)
    }

    public func reactors(
        _ emoji: ReactionEmoji, messageID: UUID, channelID: UUID, after: UUID?, limit: Int
    ) async throws -> ReactorPage {
        let message = try await message(id: messageID, channelID: channelID)
        let users = channels[channelID]?.reactions[messageID]?[emoji] ?? [:]
        let reactors = users.map { Reactor(userID: $0.key, reactedAt: $0.value) }.filter { reactor in
            after.map { reactor.userID.uuidString > $0.uuidString } ?? true
        }
        return ReactorPage.first(limit, of: reactors, count: message.reactions[emoji.text] ?? 0)
    }

    public func markRead(channelID: UUID, userID: UUID, seq: Int64) async throws -> ReadState? {
        guard seq <= channels[channelID]?.state.lastSeq ?? 0 else { return nil }
        var channel = channels[channelID] ?? Channel()
        channel.readMarkers[userID] = max(channel.readMarkers[userID] ?? 0, seq)
        channels[channelID] = channel
        return try await readState(channelID: channelID, userID: userID)
    }

    public func readState(channelID: UUID, userID: UUID) async throws -> ReadState {
        let marker = channels[channelID]?.readMarkers[userID] ?? 0
        let unread = (channels[channelID]?.messages ?? []).lazy.filter {
            $0.seq > marker && $0.parentID == nil && $0.deletedAt == nil && $0.authorID != userID
        }.prefix(ReadState.unreadLimit).count
        return ReadState(lastReadSeq: marker, unread: unread)
    }

    public func isReachable() async -> Bool { true }

    private static func microseconds(_ date: Date) -> Int64 {
        Int64((date.timeIntervalSince1970 * 1_000_000).rounded(.down))
    }
}
