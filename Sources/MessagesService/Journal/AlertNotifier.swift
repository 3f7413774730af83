import Foundation
import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// Posts critical log lines as JSON to `ALERT_WEBHOOK_URL`, at most one every `minimumInterval`.
///
/// Raising an alert only stores it (the newest one wins) and never waits; the service's loop
/// sends it, then waits out the interval, so a storm of critical lines becomes one POST per
/// interval whose `suppressed` field counts the lines it stands for. A failed POST is logged
/// (at error, so it does not alert about itself) and not retried: the next alert carries on.
public final class AlertNotifier: Service, Sendable {
    public struct Configuration: Sendable, Equatable {
        public var url: URL
        public var minimumInterval = Duration.seconds(60)
        public var timeout = Duration.seconds(5)

        public init(url: URL) {
            self.url = url
        }
    }

    public struct Statistics: Sendable, Equatable {
        public var sent = 0
        public var suppressed = 0
        public var failed = 0
    }

    public let configuration: Configuration
    private let logger: Logger
    private let version: String
    /// Read once: `ProcessInfo.hostName` resolves the name (a DNS lookup) on every call.
    private let host = ProcessInfo.processInfo.environment["HOSTNAME"] ?? ProcessInfo.processInfo.hostName
    private let state = NIOLockedValueBox<(pending: JournalEntry?, waiting: Int, statistics: Statistics)>((nil, 0, .init()))
    private let wakeUp: AsyncStream<Void>.Continuation
    private let wakeUps: AsyncStream<Void>

    public init(configuration: Configuration, version: String, logger: Logger) {
        self.configuration = configuration
        self.version = version
        self.logger = logger
        (wakeUps, wakeUp) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    /// Queues `entry` as the next alert (replacing an unsent one, which is then counted as suppressed).
    public func raise(_ entry: JournalEntry) {
        state.withLockedValue { state in
            if state.pending != nil {
                state.waiting += 1
                state.statistics.suppressed += 1
            }
            state.pending = entry
        }
        wakeUp.yield()
    }

    public var statistics: Statistics { state.withLockedValue { $0.statistics } }

    public func run() async throws {
        for await _ in wakeUps.cancelOnGracefulShutdown() {
            guard let (entry, suppressed) = takePending() else { continue }
            await send(entry, suppressed: suppressed)
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: self.configuration.minimumInterval) }
        }
    }

    private func takePending() -> (JournalEntry, Int)? {
        state.withLockedValue { state in
            guard let entry = state.pending else { return nil }
            defer { (state.pending, state.waiting) = (nil, 0) }
            return (entry, state.waiting)
        }
    }

    /// Posts `{"service", "version", "host", "suppressed", "entry": {...}}`; `suppressed` counts
    /// the critical lines since the previous alert that this one stands for.
    private func send(_ entry: JournalEntry, suppressed: Int) async {
        var request = URLRequest(url: configuration.url, timeoutInterval: configuration.timeout.inSeconds)
        request.httpMethod = "POST"
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        let alert: [String: Any] = [
            "service": "messages-service", "version": version, "host": host,
            "suppressed": suppressed, "entry": entry.jsonObject(),
        ]
        do {
            request.httpBody = try JSONSerialization.data(withJSONObject: alert, options: [.sortedKeys, .withoutEscapingSlashes])
            let (_, response) = try await URLSession.shared.data(for: request)
            let status = (response as? HTTPURLResponse)?.statusCode ?? 0
            guard (200..<300).contains(status) else { throw URLError(.badServerResponse) }
            state.withLockedValue { $0.statistics.sent += 1 }
        } catch {
            state.withLockedValue { $0.statistics.failed += 1 }
            logger.error("alert webhook failed", metadata: ["error": "\(error)"])
        }
    }
}
