import Foundation

/// The v1 JSON representation of a message: `{attachments, author_id, channel_id, content,
/// created_at, deleted_at, edited_at, id, mentions, parent_id, reactions, reply_count, seq, type,
/// version}`, keys in that (sorted) order.
enum MessageBody {
    static func json(_ message: Message) -> [UInt8] {
        var writer = JSONWriter(capacity: 384 + message.content.utf8.count)
        write(message, to: &writer)
        return writer.bytes
    }

    static func write(_ message: Message, to writer: inout JSONWriter) {
        writer.raw(#"{"attachments":"#)
        writer.array(message.attachments) { writer, attachment in attachment.write(to: &writer) }
        writer.raw(#","author_id":"#)
        writer.uuid(message.authorID)
        writer.raw(#","channel_id":"#)
        writer.uuid(message.channelID)
        writer.raw(#","content":"#)
        writer.string(message.content)
        writer.raw(#","created_at":"#)
        writer.timestamp(message.createdAt)
        writer.raw(#","deleted_at":"#)
        writer.timestamp(message.deletedAt)
        writer.raw(#","edited_at":"#)
        writer.timestamp(message.editedAt)
        writer.raw(#","id":"#)
        writer.uuid(message.id)
        writer.raw(#","mentions":"#)
        writer.array(message.mentions) { writer, id in writer.uuid(id) }
        writer.raw(#","parent_id":"#)
        writer.uuid(message.parentID)
        writer.raw(#","reactions":"#)
        if message.reactions.isEmpty {
            writer.raw("{}")
        } else {
            // Emoji keys in the encoder's sorted order: rare, so its own encoder writes them.
            writer.json((try? WireJSON.encoder.encode(message.reactions)) ?? Data("{}".utf8))
        }
        writer.raw(#","reply_count":"#)
        writer.integer(message.replyCount)
        writer.raw(#","seq":"#)
        writer.integer(message.seq)
        // v1 clients always get a type; INF326 messages created without one are plain text.
        writer.raw(#","type":"#)
        writer.string((message.type ?? .text).rawValue)
        writer.raw(#","version":"#)
        writer.integer(message.version)
        writer.raw("}")
    }
}

extension Attachment {
    /// `{mime_type, name, path, size}`, sorted, the absent ones left out.
    func write(to writer: inout JSONWriter) {
        writer.raw("{")
        if let mimeType {
            writer.raw(#""mime_type":"#)
            writer.string(mimeType)
            writer.raw(",")
        }
        if let name {
            writer.raw(#""name":"#)
            writer.string(name)
            writer.raw(",")
        }
        writer.raw(#""path":"#)
        writer.string(path)
        if let size {
            writer.raw(#","size":"#)
            writer.integer(size)
        }
        writer.raw("}")
    }
}
