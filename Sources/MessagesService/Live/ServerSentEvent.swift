import NIOCore
import Pooling

/// The bytes of a `text/event-stream` (the HTML standard's server-sent events): each change is
/// `id: <version>`, `event: <type>` and one `data:` line with the JSON the changes feed gives for
/// it, so a client's `Last-Event-ID` is the version to resume after. The JSON has no raw newline
/// (strings escape it), so it is always a single data line.
enum ServerSentEvent {
    static func change(_ message: Message) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeString("id: \(message.version)\nevent: \(MessageChangeKind(of: message).rawValue)\ndata: ")
        ChangesJSON.writeChange(message, to: &buffer)
        buffer.writeString("\n\n")
        return buffer
    }

    /// Sets how long the client waits before reconnecting after the stream ends.
    static func retry(_ delay: Duration) -> ByteBuffer {
        ByteBuffer(string: "retry: \(delay.totalMilliseconds)\n\n")
    }

    /// A comment: ignored by clients, keeps proxies from closing an idle stream.
    static let heartbeat = ByteBuffer(string: ": heartbeat\n\n")

    /// The last comment of a stream the server ends; the client reconnects (to another pod).
    static let goodbye = ByteBuffer(string: ": the server is shutting down; reconnect with Last-Event-ID\n\n")
}
