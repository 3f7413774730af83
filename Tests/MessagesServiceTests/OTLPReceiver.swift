import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// A small OTLP/HTTP receiver for the tests (JSON encoding, `POST /v1/traces`) on loopback: it
/// keeps every span it is sent and answers 200 with an empty response.
final class OTLPReceiver: Sendable {
    struct Span: Sendable, Equatable {
        var traceID: String
        var spanID: String
        var parentSpanID: String
        var name: String
        /// 1 internal, 2 server, 3 client, 4 producer, 5 consumer.
        var kind: Int
        var attributes: [String: String]
    }

    let port: Int
    private let channel: any Channel
    private let received: NIOLockedValueBox<[Span]>

    private init(channel: any Channel, received: NIOLockedValueBox<[Span]>) {
        self.channel = channel
        self.received = received
        port = channel.localAddress?.port ?? 0
    }

    static func start() async throws -> OTLPReceiver {
        let received = NIOLockedValueBox<[Span]>([])
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline().flatMap {
                    channel.pipeline.addHandler(Handler(received: received))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return OTLPReceiver(channel: channel, received: received)
    }

    var spans: [Span] { received.withLockedValue { $0 } }

    func spans(ofTrace traceID: String) -> [Span] { spans.filter { $0.traceID == traceID } }

    /// The spans of an OTLP JSON export request; ids in hex (swift-otel writes them as protobuf's
    /// JSON mapping does, in base64; the OTLP specification says hex: both are read).
    static func spans(fromJSON data: Data) -> [Span] {
        guard let root = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else { return [] }
        var spans: [Span] = []
        for resource in root["resourceSpans"] as? [[String: Any]] ?? [] {
            for scope in resource["scopeSpans"] as? [[String: Any]] ?? [] {
                for span in scope["spans"] as? [[String: Any]] ?? [] {
                    var attributes: [String: String] = [:]
                    for attribute in span["attributes"] as? [[String: Any]] ?? [] {
                        guard let key = attribute["key"] as? String, let value = attribute["value"] as? [String: Any] else {
                            continue
                        }
                        attributes[key] = (value["stringValue"] as? String) ?? (value["intValue"].map { "\($0)" })
                    }
                    spans.append(
                        Span(
                            traceID: hex(span["traceId"], bytes: 16), spanID: hex(span["spanId"], bytes: 8),
                            parentSpanID: hex(span["parentSpanId"], bytes: 8), name: span["name"] as? String ?? "",
                            kind: span["kind"] as? Int ?? 0, attributes: attributes))
                }
            }
        }
        return spans
    }

    private static func hex(_ value: Any?, bytes: Int) -> String {
        guard let text = value as? String, !text.isEmpty else { return "" }
        if text.count == bytes * 2, text.allSatisfy(\.isHexDigit) { return text.lowercased() }
        guard let data = Data(base64Encoded: text) else { return text }
        return data.map { String(format: "%02x", $0) }.joined()
    }

    func stop() async {
        try? await channel.close()
    }

    private final class Handler: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart

        let received: NIOLockedValueBox<[Span]>
        var body = ByteBuffer()

        init(received: NIOLockedValueBox<[Span]>) {
            self.received = received
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head: body.clear()
            case .body(var part): body.writeBuffer(&part)
            case .end:
                let spans = OTLPReceiver.spans(fromJSON: Data(body.readableBytesView))
                received.withLockedValue { $0 += spans }
                var headers = HTTPHeaders()
                headers.add(name: "Content-Type", value: "application/json")
                headers.add(name: "Content-Length", value: "2")
                context.write(
                    wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
                context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: "{}")))), promise: nil)
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            }
        }
    }
}
