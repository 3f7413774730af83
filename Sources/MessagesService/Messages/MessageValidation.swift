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
