import Foundation

/// An INF326 message, as the original service wrote it: times naive UTC with microseconds, and
/// `updated_at` equal to `created_at` until the message is edited.
struct ThreadMessageBody: Encodable {
    /// Where the JSON goes: the original answered `datetime.isoformat()` times, and published
    /// `str(datetime)` times with a `deleted_at` (always null: it published new messages only).
    enum Form {
        case api, event
    }

    let message: Message
    let form: Form

    init(_ message: Message, as form: Form = .api) {
        self.message = message
        self.form = form
    }

    enum CodingKeys: String, CodingKey {
        case id, thread_id, user_id, type, content, paths, created_at, updated_at, deleted_at
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(message.id.lowercased, forKey: .id)
        try container.encode(message.channelID.lowercased, forKey: .thread_id)
        try container.encode(message.authorID.lowercased, forKey: .user_id)
        try container.encode(message.type, forKey: .type)
        try container.encode(message.content, forKey: .content)
        try container.encode(message.attachments.map(\.path), forKey: .paths)
        let time: (Timestamp) -> String = form == .api ? \.pythonISOFormat : \.pythonString
        try container.encode(time(message.createdAt), forKey: .created_at)
        try container.encode(time(message.editedAt ?? message.createdAt), forKey: .updated_at)
        if form == .event { try container.encode(message.deletedAt.map(time), forKey: .deleted_at) }
    }
}
