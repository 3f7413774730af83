import Foundation
import NIOConcurrencyHelpers

/// This pod's copy of the memberships it looked up, members and non-members alike, kept exact by
/// the changes every pod hears (`MembershipChanges`): a change drops its entry, so the next check
/// reads the store again.
///
/// It only answers while this pod has heard every change up to a moment less than
/// `maxStaleness` ago (`confirm(heardUntil:)`, from the listener's probes). Otherwise every check
/// goes to the store, so a lost or late notification can never leave an answer staler than that
/// behind. A look-up that raced with a change of its key is not kept: each change moves `epoch`
/// and records it for its key, and a read keeps its result only if its key did not change after
/// the epoch the read started in.
final class MembershipCache: Sendable {
    struct Key: Hashable, Sendable {
        let channelID: UUID
        let userID: UUID
    }

    /// What a look-up found: `.some(nil)` is a cached non-member.
    typealias Entry = ChannelRole?

    private struct State {
        var entries: [Key: Entry] = [:]
        var epoch: UInt64 = 0
        /// The epoch of each key's last change, for the reads still in flight; past `capacity`
        /// entries it starts over, and reads older than `floor` are then not kept at all.
        var changedAt: [Key: UInt64] = [:]
        var floor: UInt64 = 0
        /// Every change committed before this moment has been applied.
        var heardUntil: ContinuousClock.Instant?
        var hits = 0
        var misses = 0
    }

    /// At most this many entries; past it the cache starts over (look-ups are cheap to redo, and
    /// a bound keeps a flood of made-up channel ids from growing the pod).
    let capacity: Int
    /// How old the last confirmed moment may be for the cache to answer.
    let maxStaleness: Duration
    private let state = NIOLockedValueBox(State())

    init(capacity: Int = 100_000, maxStaleness: Duration = .seconds(1)) {
        self.capacity = max(1, capacity)
        self.maxStaleness = maxStaleness
    }

    /// The cached answer, or nil when the store must be asked; then `epoch` is what to hand
    /// `keep` (nil: not live, keep nothing).
    func lookup(_ key: Key) -> (entry: Entry?, epoch: UInt64?) {
        let now = ContinuousClock.now
        return state.withLockedValue { state in
            guard let heardUntil = state.heardUntil, now - heardUntil <= maxStaleness else {
                state.misses += 1
                return (nil, nil)
            }
            if let entry = state.entries[key] {
                state.hits += 1
                return (.some(entry), nil)
            }
            state.misses += 1
            return (nil, state.epoch)
        }
    }

    /// Keeps what a store read found, unless a change was heard since the read began.
    func keep(_ entry: Entry, for key: Key, readInEpoch epoch: UInt64) {
        state.withLockedValue { state in
            guard epoch >= state.floor, (state.changedAt[key] ?? 0) <= epoch else { return }
            if state.entries.count >= capacity { state.entries.removeAll(keepingCapacity: true) }
            state.entries[key] = entry
        }
    }

    /// A membership changed.
    func invalidate(_ key: Key) {
        state.withLockedValue { state in
            state.epoch += 1
            state.entries[key] = nil
            if state.changedAt.count >= capacity {
                state.changedAt.removeAll(keepingCapacity: true)
                state.floor = state.epoch
            }
            state.changedAt[key] = state.epoch
        }
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
            state.floor = state.epoch
            state.entries.removeAll()
            state.changedAt.removeAll()
            state.heardUntil = nil
        }
    }

    struct Statistics: Sendable, Equatable {
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
                entries: state.entries.count, hits: state.hits, misses: state.misses,
                answering: state.heardUntil.map { now - $0 <= maxStaleness } ?? false
            )
        }
    }
}
