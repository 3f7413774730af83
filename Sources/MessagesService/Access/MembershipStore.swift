import Foundation

/// Where channel memberships are kept. The channels service owns them; this service keeps the
/// copy it enforces (`ChannelAccess`).
public protocol MembershipStore: Sendable {
    /// The user's role in the channel, nil when they are no member.
    func role(of userID: UUID, in channelID: UUID) async throws -> ChannelRole?
    /// Makes the user a member with `role` (or changes their role); true when they were no
    /// member before. Every pod hears of the change (`MembershipChanges`).
    func setRole(_ role: ChannelRole, of userID: UUID, in channelID: UUID) async throws -> Bool
    /// Ends the user's membership, if any; every pod hears of it.
    func remove(_ userID: UUID, from channelID: UUID) async throws
    /// The channel's members in user id order, after `after` (exclusive), at most `limit`.
    func members(of channelID: UUID, after: UUID?, limit: Int) async throws -> [ChannelMember]
}

/// The `NOTIFY` channel of membership changes; the payload is `<channel id> <user id>`.
let membershipNotificationChannel = "channel_members"
