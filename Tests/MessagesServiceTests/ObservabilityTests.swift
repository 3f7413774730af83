import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOConcurrencyHelpers
import Postgres
import Testing

@testable import MessagesService

/// The lines a `ServiceLog` wrote, captured instead of going to stdout.
final class CapturedLog: Sendable {
    private let lines = NIOLockedValueBox<[Data]>([])

    var output: JSONLogHandler.Output {
        { line in self.lines.withLockedValue { $0.append(line) } }
    }

    /// Every line as a JSON object; a line that is not one fails the test.
    func objects() -> [[String: Any]] {
        lines.withLockedValue { $0 }.compactMap { line in
            let object = (try? JSONSerialization.jsonObject(with: line)) as? [String: Any]
            if object == nil { Issue.record("not a JSON object: \(String(decoding: line, as: UTF8.self))") }
            return object
        }
    }

    func lines(withMessage message: String) -> [[String: Any]] {
        objects().filter { ($0["message"] as? String)?.contains(message) == true }
    }
}

/// The environment of an application under test: the test database, no Redis and no relay
/// unless asked, header identities.
func testEnvironment(_ overrides: [String: String] = [:]) -> [String: String] {
    TestDatabase.environment().merging([
        "REDIS_URL": "", "AMQP_URL": "", "AUTH_MODE": "header", "RATE_LIMIT_RPS": "0", "CHANNEL_ACCESS": "open",
    ]) { _, new in new }
    .merging(overrides) { _, new in new }
}

/// Structured logs, the error journal and its `errors` command, alerts.
@Suite(.tags(.servers)) struct ObservabilityTests {
    let user = UUID()
    let channel = UUID()

    @Test func logLinesAreJSONAndCarryTheRequestScopeAndAnAccessLine() async throws {
        _ = try await TestDatabase.shared.migratedClient()
        let log = CapturedLog()
        let configuration = try ServiceConfiguration(environment: testEnvironment())
        let app = try await buildApplication(
            configuration: configuration, log: ServiceLog(configuration: configuration, output: log.output),
            metrics: TestMetrics.registry
        )
        let requestID = "log-test-\(UUID())"
        try await app.test(.router) { client in
            let api = APIClient(client: client)
            let created = try await api.send(
                .post, "/v1/channels/\(channel)/messages", user: user, json: #"{"content":"log me"}"#,
                headers: [HTTPField.Name("X-Request-ID")!: requestID]
            )
            #expect(created.status == .created)
            #expect(try await api.send(.get, "/health/live").status == .ok)
        }
        let access = log.lines(withMessage: "request").filter { $0["request_id"] as? String == requestID }
        #expect(access.count == 1)
        let line = try #require(access.first)
        #expect(line["level"] as? String == "info")
        #expect(line["method"] as? String == "POST")
        #expect(line["status"] as? Int == 201)
        #expect((line["duration_ms"] as? Double).map { $0 > 0 } == true)
        #expect(line["user_id"] as? String == user.lowercased)
        #expect(line["channel_id"] as? String == channel.lowercased)
        // The route is the template, ids are only in the path.
        let route = try #require(line["route"] as? String)
        #expect(route.contains("channel_id") && !route.contains(channel.lowercased))
        #expect(line["path"] as? String == "/v1/channels/\(channel)/messages")
        #expect(line["time"] is String && line["source"] is String)
        // Probes are logged at debug, below the default level.
        #expect(log.objects().allSatisfy { ($0["path"] as? String) != "/health/live" })
    }

    @Test func theJournalKeepsWarningsAndErrorsAndTheErrorsCommandListsThem() async throws {
        let client = try await TestDatabase.shared.migratedClient()
        let log = ServiceLog(configuration: ServiceConfiguration(), output: { _ in })
        let logger = log.logger(label: "journal-test")
        let marker = UUID().lowercased
        let scope = RequestScope(requestID: "journal-\(marker)")
        scope.userID = user
        scope.channelID = channel
        RequestScope.$current.withValue(scope) {
            logger.info("not journaled \(marker)")
            logger.warning("journal warning \(marker)")
            logger.error("journal error \(marker)", metadata: ["attempt": .stringConvertible(3), "detail": "nul\u{0}byte"])
        }
        #expect(log.journal.statistics.queued == 2)
        let writer = ErrorJournalWriter(journal: log.journal, postgres: client, configuration: .init(), logger: logger)
        #expect(await writer.flush() == 2)
        #expect(log.journal.statistics.written == 2)

        let entries = try await ErrorEvents.list(client, since: .seconds(600), minimumLevel: .warning, limit: 100_000)
            .filter { $0.message.contains(marker) }
        #expect(entries.map(\.level) == ["error", "warning"])
        let error = try #require(entries.first)
        #expect(error.requestID == "journal-\(marker)")
        #expect(error.userID == user && error.channelID == channel)
        #expect(error.source == "MessagesServiceTests")
        let metadata = try #require(try JSONSerialization.jsonObject(with: Data(error.metadata.utf8)) as? [String: Any])
        #expect(metadata["attempt"] as? Int == 3)
        #expect(metadata["logger"] as? String == "journal-test")

        let environment = TestDatabase.environment()
        let listed = try ServiceProcess.run(
            ["errors", "--since", "10m", "--level", "error", "--limit", "100000"], environment: environment)
        #expect(listed.status == 0)
        #expect(listed.output.contains("journal error \(marker)"))
        #expect(listed.output.contains("request_id=journal-\(marker)"))
        #expect(!listed.output.contains("journal warning \(marker)"))
        let json = try ServiceProcess.run(["errors", "--since", "10m", "--json", "--limit", "100000"], environment: environment)
        let objects = json.output.split(separator: "\n").compactMap {
            (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any]
        }
        let mine = objects.filter { ($0["message"] as? String)?.contains(marker) == true }
        #expect(mine.count == 2)
        #expect(mine.first?["channel_id"] as? String == channel.lowercased)
        #expect(try ServiceProcess.run(["errors", "--level", "info"], environment: environment).status != 0)
    }

    @Test func aFullJournalQueueDropsAndCountsInsteadOfBlocking() {
        let journal = ErrorJournal(capacity: 10)
        let logger = Logger(label: "drop") { JournalLogHandler(label: $0, journal: journal, alerts: nil) }
        for index in 0..<1000 { logger.error("entry \(index)") }
        var statistics = journal.statistics
        #expect(statistics.recorded == 10 && statistics.dropped == 990 && statistics.queued == 10)

        // A batch that failed to be written goes back in front while there is room...
        let batch = journal.take(4)
        journal.putBack(batch)
        #expect(journal.take(1).first?.message == "entry 0")
        // ...and is dropped (and counted) when there is none.
        let next = journal.take(3)
        for index in 0..<4 { logger.error("late \(index)") }
        journal.putBack(next)
        statistics = journal.statistics
        #expect(statistics.queued == 10 && statistics.dropped == 993 && statistics.writeFailures == 2)
    }

    @Test func entriesOlderThanTheRetentionAreDeleted() async throws {
        let client = try await TestDatabase.shared.migratedClient()
        let marker = UUID().lowercased
        let journal = ErrorJournal(capacity: 10)
        func entry(_ message: String, daysAgo: Double) -> JournalEntry {
            JournalEntry(
                time: Date(timeIntervalSinceNow: -daysAgo * 86_400), level: "warning", message: "\(message) \(marker)",
                source: "test", metadata: "{}"
            )
        }
        // A retention of 10 days, not the default 30: service processes that other tests start
        // purge with the default, and would otherwise delete "old" before this test looks.
        journal.record(entry("old", daysAgo: 11))
        journal.record(entry("recent", daysAgo: 9))
        var configuration = ErrorJournalWriter.Configuration()
        configuration.retention = .seconds(10 * 86_400)
        let writer = ErrorJournalWriter(
            journal: journal, postgres: client, configuration: configuration, logger: Logger(label: "test"))
        #expect(await writer.flush() == 2)
        func listed() async throws -> [String] {
            try await ErrorEvents.list(client, since: .seconds(40 * 86_400), minimumLevel: .warning, limit: 100_000)
                .map(\.message).filter { $0.contains(marker) }
        }
        #expect(try await listed().count == 2)
        try await writer.purge()
        #expect(try await listed() == ["recent \(marker)"])
    }

    @Test func criticalLinesPostAnAlertAtMostOncePerInterval() async throws {
        let received = NIOLockedValueBox<[Data]>([])
        let router = Router()
        router.post("alert") { request, _ -> HTTPResponse.Status in
            let body = try await request.body.collect(upTo: 1 << 20)
            received.withLockedValue { $0.append(Data(buffer: body)) }
            return .noContent
        }
        let receiver = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        try await receiver.test(.live) { client in
            let port = try #require(client.port)
            var configuration = AlertNotifier.Configuration(url: URL(string: "http://127.0.0.1:\(port)/alert")!)
            configuration.minimumInterval = .milliseconds(500)
            let alerts = AlertNotifier(configuration: configuration, version: "test", logger: Logger(label: "alerts"))
            let task = Task { try await alerts.run() }
            defer { task.cancel() }
            let logger = Logger(label: "critical") {
                JournalLogHandler(label: $0, journal: ErrorJournal(capacity: 100), alerts: alerts)
            }
            func bodies() -> [[String: Any]] {
                received.withLockedValue { $0 }.compactMap { (try? JSONSerialization.jsonObject(with: $0)) as? [String: Any] }
            }

            logger.critical("first outage", metadata: ["error": "connection refused"])
            #expect(await eventually { bodies().count == 1 })
            // A storm inside the interval becomes one more alert: the newest, counting the rest.
            for index in 2...5 { logger.critical("storm \(index)") }
            #expect(await eventually { bodies().count == 2 })
            try await Task.sleep(for: .seconds(1))
            let posted = bodies()
            #expect(posted.count == 2)
            let first = try #require(posted.first)
            #expect(first["service"] as? String == "messages-service" && first["suppressed"] as? Int == 0)
            let entry = try #require(first["entry"] as? [String: Any])
            #expect(entry["level"] as? String == "critical" && entry["message"] as? String == "first outage")
            #expect((entry["metadata"] as? [String: Any])?["error"] as? String == "connection refused")
            #expect(posted.last?["suppressed"] as? Int == 3)
            #expect((posted.last?["entry"] as? [String: Any])?["message"] as? String == "storm 5")
            #expect(alerts.statistics == .init(sent: 2, suppressed: 3, failed: 0))
        }
    }
}
