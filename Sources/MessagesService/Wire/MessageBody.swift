import Foundation

/// The v1 JSON representation of a message.
struct MessageBody: Encodable {
    let message: Message

    enum CodingKeys: String, CodingKey {
        case id, seq, version, type, content, attachments, mentions, reactions
        case channelID = "channel_id"
        case authorID = "author_id"
        case parentID = "parent_id"
        case replyCount = "reply_count"
        case createdAt = "created_at"
        case editedAt = "edited_at"
        case deletedAt = "deleted_at"
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(message.id.lowercased, forKey: .id)
        try container.encode(message.channelID.lowercased, forKey: .channelID)
        try container.encode(message.seq, forKey: .seq)
        try container.encode(message.version, forKey: .version)
        try container.encode(message.authorID.lowercased, forKey: .authorID)
        // v1 clients always get a type; INF326 messages created without one are plain text.
        try container.encode(message.type ?? .text, forKey: .type)
        try container.encode(message.content, forKey: .content)
        try container.encode(message.attachments, forKey: .attachments)
        try container.encode(message.mentions.map(\.lowercased), forKey: .mentions)
        try container.encode(message.parentID?.lowercased, forKey: .parentID)
        try container.encode(message.replyCount, forKey: .replyCount)
        try container.encode(message.reactions, forKey: .reactions)
        try container.encode(message.createdAt.rfc3339, forKey: .createdAt)
        try container.encode(message.editedAt?.rfc3339, forKey: .editedAt)
        try container.encode(message.deletedAt?.rfc3339, forKey: .deletedAt)
    }
}
