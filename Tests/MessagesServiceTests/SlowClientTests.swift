import Foundation
import HummingbirdTesting
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

/// Slow clients cannot hold the server's sockets: half-sent requests are closed after
/// `HTTP_HEADER_TIMEOUT_MS`, while everyone else is served.
@Suite(.tags(.servers)) struct SlowClientTests {
    @Test func halfSentRequestsAreClosedAndOthersAreStillServed() async throws {
        let headerTimeout = Duration.milliseconds(1500)
        let service = try ServiceProcess.serve(environment: [
            "HTTP_HEADER_TIMEOUT_MS": "1500", "HTTP_IDLE_TIMEOUT_MS": "60000", "AMQP_URL": "",
        ])
        defer { service.cleanUp() }
        try await service.waitUntilReady()

        let group = MultiThreadedEventLoopGroup.singleton
        let opened = ContinuousClock.now
        var channels: [any Channel] = []
        let closedAt = NIOLockedValueBox<[ContinuousClock.Instant]>([])
        for index in 0..<500 {
            let channel = try await ClientBootstrap(group: group).connect(host: "127.0.0.1", port: service.port).get()
            channel.closeFuture.whenComplete { _ in closedAt.withLockedValue { $0.append(.now) } }
            // Half of them send a request head without its end, half send nothing at all.
            if index.isMultiple(of: 2) {
                try await channel.writeAndFlush(ByteBuffer(string: "GET /health/live HTTP/1.1\r\nHost: slow\r\nX-Slow: ")).get()
            }
            channels.append(channel)
        }
        // Each connection's deadline runs from its own opening: the last one sets the latest.
        let lastOpened = ContinuousClock.now

        // Meanwhile, a complete request is answered.
        let status = try await TestClient.withClient(host: "127.0.0.1", port: service.port) {
            try await $0.get("/health/live").status
        }
        #expect(status == .ok)
        if ContinuousClock.now - opened < headerTimeout - .milliseconds(200) {
            #expect(closedAt.withLockedValue { $0.isEmpty }, "no connection may be closed before the timeout")
        }

        let allClosed = await eventually(timeout: headerTimeout + .seconds(10)) {
            closedAt.withLockedValue { $0.count } == channels.count
        }
        #expect(allClosed, "\(closedAt.withLockedValue { $0.count }) of \(channels.count) slow connections closed")
        let last = try #require(closedAt.withLockedValue { $0.max() })
        // Closed by the server after the timeout, not by anything earlier; the margin is for a busy machine.
        #expect(last - lastOpened < headerTimeout + .seconds(8))
        #expect(closedAt.withLockedValue { $0.min() }.map { $0 - opened >= headerTimeout - .milliseconds(200) } == true)
        // And the server still serves.
        let after = try await TestClient.withClient(host: "127.0.0.1", port: service.port) {
            try await $0.get("/health/live").status
        }
        #expect(after == .ok)
    }
}
