import Foundation
import NIOConcurrencyHelpers

/// This pod's copy of the memberships it looked up, kept exact by the changes every pod hears
/// (`MembershipChanges`): a change drops what it touches, so the next check reads the store again.
///
/// It holds whole channels, every member of a channel with at most `ChannelAccess.wholeChannelLimit`
/// members (any user of such a channel is answered from it, non-members too), and single answers
/// (member or not) for users of larger channels. A change of (channel, user) drops that answer
/// and the channel's member list.
///
/// It only answers while this pod has heard every change up to a moment less than
/// `maxStaleness` ago (`confirm(heardUntil:)`, from the listener's probes). Otherwise every check
/// goes to the store, so a lost or late notification can never leave an answer staler than that
/// behind. A read that raced with a change of what it read is not kept: each change moves `epoch`
/// and records it for its key and its channel, and a read keeps its result only if those did not
/// change after the epoch the read started in.
final class MembershipCache: Sendable {
    struct Key: Hashable, Sendable {
        let channelID: UUID
        let userID: UUID
    }

    /// What a look-up found: `.some(nil)` is a cached non-member.
    typealias Entry = ChannelRole?

    private struct State {
        /// Channels held whole: their members and roles.
        var channels: [UUID: [UUID: ChannelRole]] = [:]
        /// Single answers, for channels too large to hold whole.
        var answers: [Key: Entry] = [:]
        /// Channels known to be too large to hold whole.
        var largeChannels: Set<UUID> = []
        /// Members held in `channels` (an empty channel counts one), plus `answers`: what
        /// `capacity` bounds.
        var size = 0
        var epoch: UInt64 = 0
        /// The epoch of the last change of each key and of each channel, for the reads still in
        /// flight; past `capacity` entries they start over, and reads older than `floor` are then
        /// not kept at all.
        var keyChangedAt: [Key: UInt64] = [:]
        var channelChangedAt: [UUID: UInt64] = [:]
        var floor: UInt64 = 0
        /// Every change committed before this moment has been applied.
        var heardUntil: ContinuousClock.Instant?
        var hits = 0
        var misses = 0

        mutating func startOver() {
            channels.removeAll()
            answers.removeAll()
            largeChannels.removeAll()
            keyChangedAt.removeAll()
            channelChangedAt.removeAll()
            size = 0
            floor = epoch
        }
    }

    /// What a look-up found.
    enum Lookup: Equatable {
        /// The answer is cached.
        case cached(Entry)
        /// Not cached: ask the store, and keep the result with `epoch`. `channelIsLarge`: the
        /// channel is known to be too large to load whole.
        case unknown(epoch: UInt64, channelIsLarge: Bool)
        /// The cache cannot answer now (it cannot confirm it heard every change): ask the store,
        /// keep nothing.
        case notAnswering
    }

    /// At most this many members and answers; past it the cache starts over (look-ups are cheap
    /// to redo, and a bound keeps a flood of made-up channel ids from growing the pod).
    let capacity: Int
    /// How old the last confirmed moment may be for the cache to answer.
    let maxStaleness: Duration
    private let state = NIOLockedValueBox(State())

    init(capacity: Int = 2_000_000, maxStaleness: Duration = .seconds(1)) {
        self.capacity = max(1, capacity)
        self.maxStaleness = maxStaleness
    }

    func lookup(_ key: Key) -> Lookup {
        let now = ContinuousClock.now
        return state.withLockedValue { state in
            guard let heardUntil = state.heardUntil, now - heardUntil <= maxStaleness else {
                state.misses += 1
                return .notAnswering
            }
            if let members = state.channels[key.channelID] {
                state.hits += 1
                return .cached(members[key.userID])
            }
            if let entry = state.answers[key] {
                state.hits += 1
                return .cached(entry)
            }
            state.misses += 1
            return .unknown(epoch: state.epoch, channelIsLarge: state.largeChannels.contains(key.channelID))
        }
    }

    /// Keeps a single answer a store read found, unless its key changed since the read began.
    func keep(_ entry: Entry, for key: Key, readInEpoch epoch: UInt64) {
        state.withLockedValue { state in
            guard epoch >= state.floor, (state.keyChangedAt[key] ?? 0) <= epoch,
                (state.channelChangedAt[key.channelID] ?? 0) <= epoch
            else { return }
            if state.size >= capacity { state.startOver() }
            if state.answers.updateValue(entry, forKey: key) == nil { state.size += 1 }
        }
    }

    /// Keeps every member of a channel a store read found, unless the channel changed since the
    /// read began.
    func keep(members: [ChannelMember], of channelID: UUID, readInEpoch epoch: UInt64) {
        state.withLockedValue { state in
            guard epoch >= state.floor, (state.channelChangedAt[channelID] ?? 0) <= epoch,
                state.channels[channelID] == nil
            else { return }
            let weight = Self.weight(of: members.count)
            if state.size + weight > capacity { state.startOver() }
            guard weight <= capacity else { return }
            state.channels[channelID] = Dictionary(members.map { ($0.userID, $0.role) }) { _, last in last }
            state.size += weight
        }
    }

    /// Remembers that a channel has too many members to hold whole (its users are answered one by one).
    func markLarge(_ channelID: UUID, readInEpoch epoch: UInt64) {
        state.withLockedValue { state in
            guard epoch >= state.floor, state.largeChannels.count < capacity else { return }
            state.largeChannels.insert(channelID)
        }
    }

    /// A membership changed.
    func invalidate(_ key: Key) {
        state.withLockedValue { state in
            state.epoch += 1
            if state.answers.removeValue(forKey: key) != nil { state.size -= 1 }
            if let members = state.channels.removeValue(forKey: key.channelID) { state.size -= Self.weight(of: members.count) }
            // The channel may have crossed the size limit either way: learn it again.
            state.largeChannels.remove(key.channelID)
            if state.keyChangedAt.count + state.channelChangedAt.count >= capacity {
                state.startOver()
            }
            state.keyChangedAt[key] = state.epoch
            state.channelChangedAt[key.channelID] = state.epoch
        }
    }

    /// What a channel held whole counts against `capacity`: its members, and at least one, so that
    /// made-up channel ids (which have none) are bounded too.
    private static func weight(of memberCount: Int) -> Int {
        max(1, memberCount)
    }

    /// Every change committed before `moment` has been applied.
    func confirm(heardUntil moment: ContinuousClock.Instant) {
        state.withLockedValue { state in
            state.heardUntil = max(state.heardUntil ?? moment, moment)
        }
    }

    /// Forgets everything, and answers nothing until the next `confirm`: changes may have gone
    /// unheard.
    func reset() {
        state.withLockedValue { state in
            state.epoch += 1
            state.startOver()
            state.heardUntil = nil
        }
    }

    struct Statistics: Sendable, Equatable {
        /// Members of whole channels plus single answers held.
        var entries: Int
        var hits: Int
        var misses: Int
        /// Whether the cache answers now (it has heard every change up to `maxStaleness` ago).
        var answering: Bool
    }

    var statistics: Statistics {
        let now = ContinuousClock.now
        return state.withLockedValue { state in
            Statistics(
                entries: state.size, hits: state.hits, misses: state.misses,
                answering: state.heardUntil.map { now - $0 <= maxStaleness } ?? false
            )
        }
    }
}
