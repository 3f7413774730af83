import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// A client of `text/event-stream` over its own connection, parsing events as a browser's
/// `EventSource` does; or (`reading: false`) a client that sends its request and never reads.
final class EventStreamClient: Sendable {
    struct Event: Equatable, Sendable {
        var id: String?
        var type: String
        var data: String
    }

    struct Received: Sendable {
        var status: Int?
        var events: [Event] = []
        var comments: [String] = []
        var retry: Int?
        /// The response ended (the server finished it).
        var ended = false
        /// The connection closed.
        var closed = false
    }

    let channel: any Channel
    private let received: NIOLockedValueBox<Received>

    private init(channel: any Channel, received: NIOLockedValueBox<Received>) {
        self.channel = channel
        self.received = received
    }

    var state: Received { received.withLockedValue { $0 } }
    var events: [Event] { state.events }

    /// Opens `path` on 127.0.0.1:`port` with `headers`.
    static func open(
        port: Int, path: String, headers: [(String, String)] = [], reading: Bool = true
    ) async throws -> EventStreamClient {
        let received = NIOLockedValueBox(Received())
        var bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        if !reading {
            // A small window, so the server's writes block after little data.
            bootstrap = bootstrap.channelOption(ChannelOptions.autoRead, value: false)
                .channelOption(ChannelOptions.socketOption(.so_rcvbuf), value: 4096)
        }
        let channel = try await bootstrap.channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHTTPClientHandlers()
                try channel.pipeline.syncOperations.addHandler(Parser(received: received))
            }
        }.connect(host: "127.0.0.1", port: port).get()
        var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: path)
        head.headers.add(name: "Host", value: "127.0.0.1")
        head.headers.add(name: "Accept", value: "text/event-stream")
        for (name, value) in headers { head.headers.add(name: name, value: value) }
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        try await channel.writeAndFlush(HTTPClientRequestPart.end(nil)).get()
        return EventStreamClient(channel: channel, received: received)
    }

    /// Starts reading a client opened with `reading: false` (to learn whether the server closed it).
    func startReading() {
        channel.setOption(ChannelOptions.autoRead, value: true).whenSuccess { self.channel.read() }
    }

    func close() async {
        try? await channel.close().get()
    }

    /// Waits until `condition` holds for what was received, for at most `timeout`.
    func wait(timeout: Duration = .seconds(10), until condition: (Received) -> Bool) async -> Bool {
        await eventually(timeout: timeout) { condition(state) }
    }

    private final class Parser: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = HTTPClientResponsePart

        let received: NIOLockedValueBox<Received>
        var pending = ""

        init(received: NIOLockedValueBox<Received>) {
            self.received = received
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head):
                received.withLockedValue { $0.status = Int(head.status.code) }
            case .body(let buffer):
                pending += String(buffer: buffer)
                while let end = pending.range(of: "\n\n") {
                    let block = String(pending[..<end.lowerBound])
                    pending = String(pending[end.upperBound...])
                    parse(block)
                }
            case .end:
                received.withLockedValue { $0.ended = true }
            }
        }

        func channelInactive(context: ChannelHandlerContext) {
            received.withLockedValue { $0.closed = true }
            context.fireChannelInactive()
        }

        private func parse(_ block: String) {
            var event = Event(id: nil, type: "message", data: "")
            var hasData = false
            for line in block.split(separator: "\n", omittingEmptySubsequences: false) {
                if line.hasPrefix(":") {
                    received.withLockedValue { $0.comments.append(String(line.dropFirst().drop { $0 == " " })) }
                    continue
                }
                let parts = line.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
                let field = String(parts[0])
                let value = parts.count > 1 ? String(parts[1].drop { $0 == " " }) : ""
                switch field {
                case "id": event.id = value
                case "event": event.type = value
                case "data":
                    event.data += (hasData ? "\n" : "") + value
                    hasData = true
                case "retry": received.withLockedValue { $0.retry = Int(value) }
                default: break
                }
            }
            if hasData {
                received.withLockedValue { $0.events.append(event) }
            }
        }
    }
}
