import Foundation

/// An INF326 message, as the original service wrote it: times naive UTC with microseconds, and
/// `updated_at` equal to `created_at` until the message is edited: `{content, created_at, id,
/// paths, thread_id, type, updated_at, user_id}`, keys in that (sorted) order. (What it published
/// for a new message, with `str(datetime)` times and a `deleted_at`, is written by the store's
/// `inf326_event_json`, migration 6.)
enum ThreadMessageBody {
    static func json(_ message: Message) -> [UInt8] {
        var writer = JSONWriter(capacity: 320 + message.content.utf8.count)
        writer.raw(#"{"content":"#)
        writer.string(message.content)
        writer.raw(#","created_at":"#)
        writer.string(message.createdAt.pythonISOFormat)
        writer.raw(#","id":"#)
        writer.uuid(message.id)
        writer.raw(#","paths":"#)
        writer.array(message.attachments) { writer, attachment in writer.string(attachment.path) }
        writer.raw(#","thread_id":"#)
        writer.uuid(message.channelID)
        writer.raw(#","type":"#)
        writer.string(message.type?.rawValue)
        writer.raw(#","updated_at":"#)
        writer.string((message.editedAt ?? message.createdAt).pythonISOFormat)
        writer.raw(#","user_id":"#)
        writer.uuid(message.authorID)
        writer.raw("}")
        return writer.bytes
    }
}
