import Foundation

/// The v1 JSON of one entry of an edit history.
struct RevisionBody: Encodable {
    let version: Int64
    let content: String
    let attachments: [Attachment]
    let replaced_at: String
    let edited_by: String

    init(_ revision: MessageRevision) {
        version = revision.version
        content = revision.content
        attachments = revision.attachments
        replaced_at = revision.replacedAt
        edited_by = revision.editedBy.lowercased
    }
}
