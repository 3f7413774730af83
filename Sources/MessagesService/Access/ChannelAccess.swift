import Foundation

/// Who may use a channel (`CHANNEL_ACCESS`): in `members` mode only its members, as the channels
/// service set them; in `open` mode every authenticated caller, as a plain member. The
/// memberships are kept in both modes, so a deployment can switch to `members` when ready.
struct ChannelAccess: Sendable {
    enum Mode: String, Sendable, CaseIterable {
        case members, open
    }

    let mode: Mode
    let store: any MembershipStore
    let cache: MembershipCache

    /// Channels with at most this many members are loaded whole on their first check, so every
    /// later check of any of their users is answered by the cache; larger ones user by user.
    static let wholeChannelLimit = 5000

    /// The caller's role in the channel; nil when they may not use it. Costs no store round trip
    /// when this pod has the answer cached.
    func role(of userID: UUID, in channelID: UUID) async throws -> ChannelRole? {
        guard mode == .members else { return .member }
        let key = MembershipCache.Key(channelID: channelID, userID: userID)
        switch cache.lookup(key) {
        case .cached(let role):
            return role
        case .notAnswering:
            return try await store.role(of: userID, in: channelID)
        case .unknown(let epoch, let channelIsLarge):
            if !channelIsLarge {
                let members = try await store.members(of: channelID, after: nil, limit: Self.wholeChannelLimit + 1)
                if members.count <= Self.wholeChannelLimit {
                    cache.keep(members: members, of: channelID, readInEpoch: epoch)
                    return members.first { $0.userID == userID }?.role
                }
                cache.markLarge(channelID, readInEpoch: epoch)
            }
            let role = try await store.role(of: userID, in: channelID)
            cache.keep(role, for: key, readInEpoch: epoch)
            return role
        }
    }
}
