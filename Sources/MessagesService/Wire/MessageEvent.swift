import Foundation

/// A change to a message as consumers receive it on `messages.events` (docs/design.md, "The event contract"): the
/// body `{id, type, occurred_at, channel_id, seq, version, actor_id, message}`, with the routing
/// key and AMQP `type` equal to `type`.
struct MessageEvent: Sendable {
    enum Kind: String, Sendable, CaseIterable {
        case created = "message.created"
        case updated = "message.updated"
        case deleted = "message.deleted"
    }

    let id: UUID
    let kind: Kind
    /// Who made the change: the author, or the moderator who deleted.
    let actorID: UUID
    /// The message after the change.
    let message: Message

    init(_ kind: Kind, of message: Message, by actorID: UUID, id: UUID = .v7()) {
        self.id = id
        self.kind = kind
        self.actorID = actorID
        self.message = message
    }

    /// When the change happened, as the message records it.
    var occurredAt: String {
        switch kind {
        case .created: message.createdAt.rfc3339
        case .updated: (message.editedAt ?? message.createdAt).rfc3339
        case .deleted: (message.deletedAt ?? message.createdAt).rfc3339
        }
    }

    /// The event JSON.
    func payload() throws -> String {
        String(decoding: try WireJSON.encoder.encode(Body(event: self)), as: UTF8.self)
    }

    /// What the INF326 service published for a new message (its message JSON), for the consumers
    /// of `LEGACY_QUEUE`; nil for other changes, which it never published.
    func legacyPayload() throws -> String? {
        guard kind == .created else { return nil }
        return String(decoding: try WireJSON.encoder.encode(ThreadMessageBody(message, as: .event)), as: UTF8.self)
    }

    private struct Body: Encodable {
        let event: MessageEvent

        enum CodingKeys: String, CodingKey {
            case id, type, seq, version, message
            case occurredAt = "occurred_at"
            case channelID = "channel_id"
            case actorID = "actor_id"
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(event.id.lowercased, forKey: .id)
            try container.encode(event.kind.rawValue, forKey: .type)
            try container.encode(event.occurredAt, forKey: .occurredAt)
            try container.encode(event.message.channelID.lowercased, forKey: .channelID)
            try container.encode(event.message.seq, forKey: .seq)
            try container.encode(event.message.version, forKey: .version)
            try container.encode(event.actorID.lowercased, forKey: .actorID)
            try container.encode(MessageBody(message: event.message), forKey: .message)
        }
    }
}
