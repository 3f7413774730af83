import Foundation

/// One member of a channel as the membership API shows it.
struct MemberBody: Encodable {
    let channel_id: String
    let user_id: String
    let role: String

    init(channelID: UUID, _ member: ChannelMember) {
        channel_id = channelID.lowercased
        user_id = member.userID.lowercased
        role = member.role.rawValue
    }
}
