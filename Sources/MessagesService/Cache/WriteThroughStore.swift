import Foundation

/// A store that applies every committed write to the timeline cache before it answers, so that a
/// client reads its own write from the cache, and the cache never waits for a TTL to learn of it.
struct WriteThroughStore<Base: MessageStore>: MessageStore {
    let base: Base
    let timeline: TimelineCache

    func create(_ message: NewMessage) async throws -> CreateOutcome {
        let outcome = try await writing(in: message.channelID) { try await base.create(message) }
        if case .created(let write) = outcome { await timeline.apply(write) }
        return outcome
    }

    func edit(id: UUID, channelID: UUID, by userID: UUID, _ edit: MessageEdit) async throws -> MessageWrite {
        let write = try await writing(in: channelID) { try await base.edit(id: id, channelID: channelID, by: userID, edit) }
        await timeline.apply(write)
        return write
    }

    func delete(id: UUID, channelID: UUID, by userID: UUID, asModerator: Bool) async throws -> MessageWrite {
        let write = try await writing(in: channelID) {
            try await base.delete(id: id, channelID: channelID, by: userID, asModerator: asModerator)
        }
        await timeline.apply(write)
        return write
    }

    func react(
        _ emoji: ReactionEmoji, adding: Bool, messageID: UUID, channelID: UUID, userID: UUID
    ) async throws -> MessageWrite {
        let write = try await writing(in: channelID) {
            try await base.react(emoji, adding: adding, messageID: messageID, channelID: channelID, userID: userID)
        }
        await timeline.apply(write)
        return write
    }

    /// A write that failed for another reason than a refusal (say, the connection broke around
    /// COMMIT) may have committed: the cached timeline can no longer be trusted.
    private func writing<T>(in channelID: UUID, _ write: () async throws -> T) async throws -> T {
        do {
            return try await write()
        } catch let refusal as MessageStoreError {
            throw refusal
        } catch {
            timeline.markStale(channelID)
            throw error
        }
    }

    func message(id: UUID, channelID: UUID) async throws -> Message {
        try await base.message(id: id, channelID: channelID)
    }

    func page(channelID: UUID, scope: MessageScope, position: PagePosition, limit: Int) async throws -> MessagePage {
        try await base.page(channelID: channelID, scope: scope, position: position, limit: limit)
    }

    func seq(ofMessage id: UUID, channelID: UUID) async throws -> Int64? {
        try await base.seq(ofMessage: id, channelID: channelID)
    }

    func lastSeq(createdBefore timestamp: String, channelID: UUID) async throws -> Int64? {
        try await base.lastSeq(createdBefore: timestamp, channelID: channelID)
    }

    func history(id: UUID, channelID: UUID) async throws -> [MessageRevision] {
        try await base.history(id: id, channelID: channelID)
    }

    func changes(channelID: UUID, since: Int64, limit: Int) async throws -> MessageChanges {
        try await base.changes(channelID: channelID, since: since, limit: limit)
    }

    func reactors(
        _ emoji: ReactionEmoji, messageID: UUID, channelID: UUID, after: UUID?, limit: Int
    ) async throws -> ReactorPage {
        try await base.reactors(emoji, messageID: messageID, channelID: channelID, after: after, limit: limit)
    }

    func markRead(channelID: UUID, userID: UUID, seq: Int64) async throws -> ReadState? {
        try await base.markRead(channelID: channelID, userID: userID, seq: seq)
    }

    func readState(channelID: UUID, userID: UUID) async throws -> ReadState {
        try await base.readState(channelID: channelID, userID: userID)
    }

    func isReachable() async -> Bool {
        await base.isReachable()
    }
}
