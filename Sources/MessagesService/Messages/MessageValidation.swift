import Foundation

/// A request field that failed validation: which one, and why, for a person.
public struct ValidationFailure: Error, Equatable {
    /// The field's path, e.g. `content` or `attachments[2].path`.
    public let field: String
    /// The whole sentence a client sees, naming the field.
    public let message: String
    /// A short machine-readable kind, e.g. `missing`, `too_long`.
    public let kind: String
}

/// The JSON body of a v1 create.
struct CreateMessageBody: Decodable {
    let content: String
    let type: String?
    let attachments: [Attachment]?
    let parent_id: String?
    let client_message_id: String?
}

/// The JSON body of a v1 edit.
struct EditMessageBody: Decodable {
    let content: String?
    let attachments: [Attachment]?
}

/// Checks request values against `MessageLimits`. Each check names the field it failed on.
struct MessageValidator: Sendable {
    let limits: MessageLimits

    /// Content of at most `maxContentLength` characters; empty only where `allowEmpty` (a message
    /// with attachments needs no text).
    func content(_ content: String, field: String = "content", allowEmpty: Bool = false) throws -> String {
        let length = content.unicodeScalars.count
        let minimum = allowEmpty ? 0 : 1
        guard length >= minimum, length <= limits.maxContentLength else {
            let range = allowEmpty ? "at most \(limits.maxContentLength)" : "1..\(limits.maxContentLength)"
            throw ValidationFailure(
                field: field, message: "\(field) must be \(range) characters (got \(length))",
                kind: length == 0 ? "too_short" : "too_long"
            )
        }
        try Self.noNUL(content, field: field)
        return content
    }

    func type(_ raw: String?) throws -> MessageType? {
        guard let raw else { return nil }
        guard let type = MessageType(rawValue: raw) else {
            throw ValidationFailure(field: "type", message: "type must be one of text, audio, file", kind: "enum")
        }
        return type
    }

    func attachments(_ attachments: [Attachment], field: String = "attachments") throws
        -> [Attachment]
    {
        guard attachments.count <= limits.maxAttachments else {
            throw ValidationFailure(
                field: field, message: "\(field) may hold at most \(limits.maxAttachments) items", kind: "too_long"
            )
        }
        for (index, attachment) in attachments.enumerated() {
            let prefix = "\(field)[\(index)]"
            let pathLength = attachment.path.unicodeScalars.count
            guard pathLength >= 1, pathLength <= limits.maxAttachmentPathLength else {
                throw ValidationFailure(
                    field: "\(prefix).path",
                    message: "\(prefix).path must be 1..\(limits.maxAttachmentPathLength) characters", kind: "too_long"
                )
            }
            try Self.noNUL(attachment.path, field: "\(prefix).path")
            if !AttachmentPath.isAllowed(attachment.path, urlHosts: limits.attachmentURLHosts) {
                let hosts =
                    limits.attachmentURLHosts.isEmpty
                    ? "" : " on " + limits.attachmentURLHosts.joined(separator: ", ")
                throw ValidationFailure(
                    field: "\(prefix).path",
                    message: "\(prefix).path must be a relative storage key (no '..' segments, no control characters) "
                        + "or an https:// URL\(hosts)",
                    kind: "value"
                )
            }
            if let mimeType = attachment.mimeType, !MediaType.isValid(mimeType) {
                throw ValidationFailure(
                    field: "\(prefix).mime_type", message: "\(prefix).mime_type must be a media type such as image/png",
                    kind: "value"
                )
            }
            for (name, value) in [("name", attachment.name), ("mime_type", attachment.mimeType)] {
                guard let value else { continue }
                guard value.unicodeScalars.count <= limits.maxAttachmentNameLength else {
                    throw ValidationFailure(
                        field: "\(prefix).\(name)",
                        message: "\(prefix).\(name) must be at most \(limits.maxAttachmentNameLength) characters",
                        kind: "too_long"
                    )
                }
                try Self.noNUL(value, field: "\(prefix).\(name)")
            }
            if let size = attachment.size, size < 0 {
                throw ValidationFailure(field: "\(prefix).size", message: "\(prefix).size must not be negative", kind: "range")
            }
        }
        return attachments
    }

    func uuid(_ raw: String?, field: String) throws -> UUID? {
        guard let raw else { return nil }
        guard let id = UUID(uuidString: raw) else {
            throw ValidationFailure(field: field, message: "\(field) must be a UUID", kind: "uuid")
        }
        return id
    }

    func idempotencyKey(_ key: String?, field: String) throws -> String? {
        guard let key else { return nil }
        guard (1...limits.maxIdempotencyKeyLength).contains(key.unicodeScalars.count) else {
            throw ValidationFailure(
                field: field, message: "\(field) must be 1..\(limits.maxIdempotencyKeyLength) characters",
                kind: "too_long"
            )
        }
        try Self.noNUL(key, field: field)
        return key
    }

    /// Postgres text cannot hold NUL; refuse it at the edge rather than fail in the store.
    private static func noNUL(_ value: String, field: String) throws {
        if value.utf8.contains(0) {
            throw ValidationFailure(field: field, message: "\(field) must not contain NUL characters", kind: "value")
        }
    }
}

/// Reads JSON request bodies, turning decoding errors into failures that name the field.
enum JSONBody {
    /// Decodes `T` from `bytes`, or throws a `ValidationFailure` naming the field that was wrong.
    static func decode<T: Decodable>(_ type: T.Type, from bytes: Data) throws -> T {
        do {
            return try JSONDecoder().decode(type, from: bytes)
        } catch let error as DecodingError {
            throw failure(for: error)
        } catch {
            throw ValidationFailure(field: "body", message: "request body is not valid JSON", kind: "json_invalid")
        }
    }

    private static func failure(for error: DecodingError) -> ValidationFailure {
        switch error {
        case .keyNotFound(let key, let context):
            let field = path(context.codingPath + [key])
            return ValidationFailure(field: field, message: "\(field) is required", kind: "missing")
        case .valueNotFound(_, let context):
            let field = path(context.codingPath)
            return ValidationFailure(field: field, message: "\(field) must not be null", kind: "missing")
        case .typeMismatch(let expected, let context):
            if context.codingPath.isEmpty {
                return ValidationFailure(field: "body", message: "request body must be a JSON object", kind: "type")
            }
            let field = path(context.codingPath)
            return ValidationFailure(field: field, message: "\(field) must be \(describe(expected))", kind: "type")
        case .dataCorrupted(let context) where !context.codingPath.isEmpty:
            let field = path(context.codingPath)
            return ValidationFailure(field: field, message: "\(field) has an invalid value", kind: "value")
        default:
            return ValidationFailure(field: "body", message: "request body is not valid JSON", kind: "json_invalid")
        }
    }

    private static func path(_ keys: [any CodingKey]) -> String {
        var result = ""
        for key in keys {
            if let index = key.intValue {
                result += "[\(index)]"
            } else {
                result += result.isEmpty ? key.stringValue : ".\(key.stringValue)"
            }
        }
        return result.isEmpty ? "body" : result
    }

    private static func describe(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Int64.Type, is Int.Type: "an integer"
        case is Bool.Type: "a boolean"
        case is [Any].Type: "an array"
        default: type == [Attachment].self ? "an array" : "an object"
        }
    }
}
