import NIOCore
import Pooling

/// The bytes of a `text/event-stream` (the HTML standard's server-sent events): each change is
/// `event: <type>` and one `data:` line with the JSON the changes feed gives for it. The JSON has
/// no raw newline (strings escape it), so it is always a single data line.
///
/// The last change of each version also carries `id: <version>`, which a client sends back as
/// `Last-Event-ID` to resume after it. Only the last: a reply and its root change in one version,
/// and a client cut off between the two resumes before that version and gets both again (the same
/// states, harmless), where an id on each would have lost the second.
enum ServerSentEvent {
    /// The events of `messages` (ascending versions, each version's changes together).
    static func changes(_ messages: some Collection<Message>) -> [ByteBuffer] {
        messages.indices.map { index in
            let next = messages.index(after: index)
            let endsVersion = next == messages.endIndex || messages[next].version != messages[index].version
            return change(messages[index], endsVersion: endsVersion)
        }
    }

    static func change(_ message: Message, endsVersion: Bool) -> ByteBuffer {
        var buffer = ByteBuffer()
        if endsVersion { buffer.writeString("id: \(message.version)\n") }
        buffer.writeString("event: \(MessageChangeKind(of: message).rawValue)\ndata: ")
        ChangesJSON.writeChange(message, to: &buffer)
        buffer.writeString("\n\n")
        return buffer
    }

    /// The first block of a stream: how long the client waits before reconnecting, and the
    /// position it starts at as the last event id (an id without data sets the client's
    /// `Last-Event-ID` and dispatches nothing), so a client cut off before any change resumes
    /// there instead of at the channel's version of its reconnect.
    static func opening(retry delay: Duration, position: Int64) -> ByteBuffer {
        ByteBuffer(string: "retry: \(delay.totalMilliseconds)\nid: \(position)\n\n")
    }

    /// A comment: ignored by clients, keeps proxies from closing an idle stream.
    static let heartbeat = ByteBuffer(string: ": heartbeat\n\n")

    /// The last comment of a stream whose caller may no longer read the channel; a reconnect gets
    /// the 404 of a channel it cannot use.
    static let accessEnded = ByteBuffer(string: ": access to this channel ended\n\n")

    /// The last comment of a stream the server ends; the client reconnects (to another pod).
    static let goodbye = ByteBuffer(string: ": the server is shutting down; reconnect with Last-Event-ID\n\n")
}
