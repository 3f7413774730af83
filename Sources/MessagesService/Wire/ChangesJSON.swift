import NIOCore

/// The v1 changes feed: `{"changes":[{"type","version","message"}...],"channel_version",
/// "next_since","has_more"}`, each `message` the same JSON the messages API answers.
enum ChangesJSON {
    static func v1(_ changes: MessageChanges, since: Int64) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeString(#"{"changes":["#)
        for (index, message) in changes.messages.enumerated() {
            if index > 0 { buffer.writeInteger(UInt8(ascii: ",")) }
            writeChange(message, to: &buffer)
        }
        buffer.writeString(
            #"],"channel_version":\#(changes.channelVersion),"next_since":\#(changes.nextSince(after: since)),"#
                + #""has_more":\#(changes.hasMore)}"#
        )
        return buffer
    }

    /// One change: `{"type","version","message"}`, as the feed lists it and a stream sends it.
    static func writeChange(_ message: Message, to buffer: inout ByteBuffer) {
        let kind = MessageChangeKind(of: message).rawValue
        buffer.writeString(#"{"type":"\#(kind)","version":\#(message.version),"message":"#)
        buffer.writeBytes(MessageBody.json(message))
        buffer.writeInteger(UInt8(ascii: "}"))
    }
}
