import Foundation

/// A reference to a file stored elsewhere, attached to a message.
public struct Attachment: Codable, Sendable, Equatable {
    /// Where the file is, as the client's storage names it.
    public var path: String
    /// The file's display name.
    public var name: String?
    /// The file's media type.
    public var mimeType: String?
    /// The file's size in bytes.
    public var size: Int64?

    enum CodingKeys: String, CodingKey {
        case path, name, size
        case mimeType = "mime_type"
    }

    /// Creates an attachment.
    public init(path: String, name: String? = nil, mimeType: String? = nil, size: Int64? = nil) {
        self.path = path
        self.name = name
        self.mimeType = mimeType
        self.size = size
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(path, forKey: .path)
        try container.encodeIfPresent(name, forKey: .name)
        try container.encodeIfPresent(mimeType, forKey: .mimeType)
        try container.encodeIfPresent(size, forKey: .size)
    }
}

/// The kinds of message the service stores.
public enum MessageType: String, Codable, Sendable, CaseIterable {
    case text, audio, file
}

/// A stored message, as Postgres holds it.
public struct Message: Sendable, Equatable {
    public var id: UUID
    public var channelID: UUID
    /// Position in the channel: gap-free, unique, assigned at creation.
    public var seq: Int64
    /// The channel version of this message's last change.
    public var version: Int64
    public var authorID: UUID
    public var parentID: UUID?
    /// Nil only for INF326 messages created without a type.
    public var type: MessageType?
    public var content: String
    public var attachments: [Attachment]
    public var mentions: [UUID]
    public var replyCount: Int64
    public var reactions: [String: Int64]
    /// Microseconds, as Postgres keeps them; each API writes them in its own form.
    public var createdAt: Timestamp
    public var editedAt: Timestamp?
    public var deletedAt: Timestamp?
    /// The idempotency key the message was created with, if any.
    var clientMessageID: String?
    /// Hash of the create request, to tell a retry from a reuse of its key.
    var requestHash: String?
    /// When a reaction was last added or removed; it tells a reaction change from a creation.
    var reactedAt: Timestamp? = nil

    /// True once the message was soft-deleted.
    public var isDeleted: Bool { deletedAt != nil }
}
