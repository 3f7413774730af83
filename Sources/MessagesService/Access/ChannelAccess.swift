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

    /// The caller's role in the channel; nil when they may not use it. Costs no store round trip
    /// when this pod has the answer cached.
    func role(of userID: UUID, in channelID: UUID) async throws -> ChannelRole? {
        guard mode == .members else { return .member }
        let key = MembershipCache.Key(channelID: channelID, userID: userID)
        let (cached, epoch) = cache.lookup(key)
        if let cached { return cached }
        let role = try await store.role(of: userID, in: channelID)
        if let epoch { cache.keep(role, for: key, readInEpoch: epoch) }
        return role
    }
}
