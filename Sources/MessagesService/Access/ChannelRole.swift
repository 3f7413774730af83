/// What a member may do in a channel: every member reads and writes; a moderator also deletes
/// others' messages there and reads their edit history.
public enum ChannelRole: String, Sendable, Codable, CaseIterable {
    case member, moderator
}
