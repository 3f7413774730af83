import Foundation

/// One member of a channel, as the channels service set it.
public struct ChannelMember: Sendable, Equatable {
    public let userID: UUID
    public let role: ChannelRole

    public init(userID: UUID, role: ChannelRole) {
        self.userID = userID
        self.role = role
    }
}
