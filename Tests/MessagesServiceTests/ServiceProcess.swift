import Foundation
import HummingbirdTesting
import NIOConcurrencyHelpers
import Testing

/// The `messages-service` executable of this build, run as a separate process: for what only a
/// real process shows (signals, exit status, stdout, subcommands).
struct ServiceProcess {
    static let executable = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent(".build/debug/messages-service")

    let process: Process
    let port: Int
    private let stdout: URL

    /// Starts `serve` on a free port with `environment` (over the test servers' URLs).
    static func serve(environment: [String: String]) throws -> ServiceProcess {
        // Below Linux' ephemeral range and apart from OutageProxy's ports.
        let port = Int.random(in: 20000...29999)
        var variables = TestDatabase.environment().merging([
            "REDIS_URL": TestRedis.url, "AMQP_URL": TestBroker.url,
            "AUTH_MODE": "header", "RATE_LIMIT_RPS": "0", "HOST": "127.0.0.1", "PORT": String(port), "CHANNEL_ACCESS": "open",
            "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin",
        ]) { _, new in new }
        variables.merge(environment) { _, new in new }
        let stdout = FileManager.default.temporaryDirectory.appendingPathComponent("messages-service-\(UUID()).log")
        FileManager.default.createFile(atPath: stdout.path, contents: nil)
        let process = Process()
        process.executableURL = executable
        process.arguments = ["serve"]
        process.environment = variables
        process.standardOutput = try FileHandle(forWritingTo: stdout)
        // Runs in a scratch directory, so a developer's .env does not leak in.
        process.currentDirectoryURL = FileManager.default.temporaryDirectory
        try process.run()
        return ServiceProcess(process: process, port: port, stdout: stdout)
    }

    /// Runs a subcommand to its end; its exit status and stdout.
    static func run(_ arguments: [String], environment: [String: String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        process.environment = environment.merging(["PATH": "/usr/bin:/bin"]) { current, _ in current }
        process.currentDirectoryURL = FileManager.default.temporaryDirectory
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: output, as: UTF8.self))
    }

    /// Waits until `/health/ready` answers 200.
    func waitUntilReady(timeout: Duration = .seconds(30)) async throws {
        let ready = await eventually(timeout: timeout) {
            (try? await TestClient.withClient(host: "127.0.0.1", port: port) { try await $0.get("/health/ready").status }) == .ok
        }
        try #require(ready, "the service did not become ready")
    }

    /// Waits for the process to end; its exit status, or nil if it still runs after `timeout`.
    func waitForExit(timeout: Duration) async -> Int32? {
        let ended = await eventually(timeout: timeout) { !process.isRunning }
        return ended ? process.terminationStatus : nil
    }

    /// Every line the process wrote to stdout.
    var lines: [String] {
        ((try? String(contentsOf: stdout, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    func kill(_ signal: Int32) {
        Foundation.kill(process.processIdentifier, signal)
    }

    /// Stops the process if a test left it running, and removes its log.
    func cleanUp() {
        if process.isRunning {
            Foundation.kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: stdout)
    }
}
