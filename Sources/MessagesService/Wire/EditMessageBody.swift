import Foundation

/// The JSON body of a v1 edit.
struct EditMessageBody: Decodable {
    let content: String?
    let attachments: [Attachment]?
}
