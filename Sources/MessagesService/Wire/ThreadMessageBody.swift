import Foundation

/// An INF326 message, as the original service wrote it: times naive UTC with microseconds, and
/// `updated_at` equal to `created_at` until the message is edited. (What it published for a new
/// message, with `str(datetime)` times and a `deleted_at`, is written by the store's
/// `inf326_event_json`, migration 6.)
struct ThreadMessageBody: Encodable {
    let message: Message

    init(_ message: Message) {
        self.message = message
    }

    enum CodingKeys: String, CodingKey {
        case id, thread_id, user_id, type, content, paths, created_at, updated_at
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(message.id.lowercased, forKey: .id)
        try container.encode(message.channelID.lowercased, forKey: .thread_id)
        try container.encode(message.authorID.lowercased, forKey: .user_id)
        try container.encode(message.type, forKey: .type)
        try container.encode(message.content, forKey: .content)
        try container.encode(message.attachments.map(\.path), forKey: .paths)
        try container.encode(message.createdAt.pythonISOFormat, forKey: .created_at)
        try container.encode((message.editedAt ?? message.createdAt).pythonISOFormat, forKey: .updated_at)
    }
}
