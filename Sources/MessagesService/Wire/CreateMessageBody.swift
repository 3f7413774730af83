import Foundation

/// The JSON body of a v1 create.
struct CreateMessageBody: Decodable {
    let content: String
    let type: String?
    let attachments: [Attachment]?
    let parent_id: String?
    let client_message_id: String?
}
