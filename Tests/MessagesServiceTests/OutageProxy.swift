import Foundation
import NIOConcurrencyHelpers

struct OutageProxyError: Error {}

/// A TCP proxy in front of a server (RabbitMQ, Postgres) that a test can take down and bring
/// back: for the client exactly an outage of the server (connections cut, new ones refused),
/// while the server itself, shared with the other tests, keeps running.
final class OutageProxy: @unchecked Sendable {
    let port: Int
    private let targetHost: String
    private let targetPort: Int
    private let lock = NIOLock()
    private var process: Process?

    init(host: String, port: Int) {
        targetHost = host
        targetPort = port
        // Below Linux' ephemeral range (32768...), so no outgoing connection holds it.
        self.port = Int.random(in: 30000...32700)
    }

    /// Starts forwarding (again), once the port accepts connections.
    func up() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", Self.script, String(port), targetHost, String(targetPort)]
        try process.run()
        lock.withLock { self.process = process }
        for _ in 0..<100 {
            if Self.accepts(port: port) { return }
            Thread.sleep(forTimeInterval: 0.05)
        }
        throw OutageProxyError()
    }

    /// Kills the proxy: every connection through it breaks and new ones are refused.
    func down() {
        guard let process = lock.withLock({ self.process }) else { return }
        kill(process.processIdentifier, SIGKILL)
        while process.isRunning { Thread.sleep(forTimeInterval: 0.01) }
        lock.withLock { self.process = nil }
    }

    private static func accepts(port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
    }

    private static let script = """
        import asyncio, sys
        port, host, target = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
        async def pipe(reader, writer):
            try:
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            except Exception:
                pass
            finally:
                writer.close()
        async def handle(client_reader, client_writer):
            try:
                server_reader, server_writer = await asyncio.open_connection(host, target)
            except Exception:
                client_writer.close()
                return
            await asyncio.gather(pipe(client_reader, server_writer), pipe(server_reader, client_writer))
        async def main():
            server = await asyncio.start_server(handle, "127.0.0.1", port, reuse_address=True)
            async with server:
                await server.serve_forever()
        asyncio.run(main())
        """
}
