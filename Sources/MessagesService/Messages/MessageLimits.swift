/// The limits every message request is held to; `GET /v1/limits` publishes them.
public struct MessageLimits: Sendable, Encodable, Equatable {
    /// Request bodies larger than this are refused with 413.
    public static let maxBodyBytes = 64 * 1024
    /// Most different reactions on one message; a new one past it is refused.
    public static let maxReactionsPerMessage = 20

    /// Most characters (Unicode scalars) in `content`.
    public var maxContentLength: Int
    /// Most attachments on one message.
    public var maxAttachments = 10
    /// Most characters in an attachment's `path`.
    public var maxAttachmentPathLength = 1024
    /// Most characters in an attachment's `name` and `mime_type`.
    public var maxAttachmentNameLength = 255
    /// Most characters in an idempotency key.
    public var maxIdempotencyKeyLength = 255
    /// Largest `limit` of a v1 page.
    public var maxPageSize = 100
    /// `limit` of a v1 page when none is given.
    public var defaultPageSize = 50
    /// Largest `limit` of an INF326 page.
    public var maxINF326PageSize = 200
    /// `limit` of an INF326 page when none is given.
    public var defaultINF326PageSize = 50
    /// Largest request body, in bytes.
    public var maxBodyBytes = MessageLimits.maxBodyBytes
    /// Most different reactions on one message (fixed: the stores enforce the constant).
    public let maxReactionsPerMessage = MessageLimits.maxReactionsPerMessage
    /// Longest reaction emoji or short code, in bytes of UTF-8 (fixed, as `ReactionEmoji` reads it).
    public let maxReactionBytes = ReactionEmoji.maxBytes
    /// Hosts an attachment `path` may name as an `https://` URL; other paths are storage keys.
    public var attachmentURLHosts: [String] = []

    /// Creates the limits; `maxContentLength` comes from `MAX_CONTENT_LENGTH`.
    public init(maxContentLength: Int = 4000) {
        self.maxContentLength = maxContentLength
    }

    enum CodingKeys: String, CodingKey {
        case maxContentLength = "max_content_length"
        case maxAttachments = "max_attachments"
        case maxAttachmentPathLength = "max_attachment_path_length"
        case maxAttachmentNameLength = "max_attachment_name_length"
        case maxIdempotencyKeyLength = "max_idempotency_key_length"
        case maxPageSize = "max_page_size"
        case defaultPageSize = "default_page_size"
        case maxBodyBytes = "max_body_bytes"
        case maxReactionsPerMessage = "max_reactions_per_message"
        case maxReactionBytes = "max_reaction_bytes"
        case attachmentURLHosts = "attachment_url_hosts"
    }
}
