import Foundation
import Logging

/// The service's log: every line to stdout (JSON, or text for humans) at `LOG_LEVEL`; warnings
/// and worse also to the error journal; critical lines also to the alert webhook. Every line
/// written while serving a request carries its `request_id` (and user and channel once known).
public struct ServiceLog: Sendable {
    public let journal: ErrorJournal
    public let alerts: AlertNotifier?
    private let level: Logger.Level
    private let format: ServiceConfiguration.LogFormat
    private let output: JSONLogHandler.Output

    /// `output` receives the JSON lines (stdout unless a test captures them).
    public init(configuration: ServiceConfiguration, output: @escaping JSONLogHandler.Output = JSONLogHandler.standardOutput) {
        level = configuration.logLevel
        format = configuration.logFormat
        self.output = output
        journal = ErrorJournal(capacity: configuration.errorJournal.capacity)
        let (level, format) = (level, format)
        alerts = configuration.alertWebhook.map { webhook in
            // Its own failures go to stdout only: an alert about the alerting would go nowhere.
            let logger = Logger(label: "alerts") { Self.stdoutHandler(label: $0, level: level, format: format, output: output) }
            return AlertNotifier(configuration: webhook, version: serviceVersion, logger: logger)
        }
    }

    /// A logger writing where this log does, without the global bootstrap (tests).
    public func logger(label: String) -> Logger {
        Logger(label: label) { handler(label: $0) }
    }

    /// Makes every `Logger(label:)` of the process write here.
    public func bootstrap() {
        LoggingSystem.bootstrap { label in handler(label: label) }
    }

    func handler(label: String) -> any LogHandler {
        // Warnings are journaled whatever LOG_LEVEL lets through to stdout.
        let journalHandler = JournalLogHandler(label: label, journal: journal, alerts: alerts)
        let stdout = Self.stdoutHandler(label: label, level: level, format: format, output: output)
        return MultiplexLogHandler([stdout, journalHandler], metadataProvider: RequestScope.metadataProvider)
    }

    private static func stdoutHandler(
        label: String, level: Logger.Level, format: ServiceConfiguration.LogFormat, output: @escaping JSONLogHandler.Output
    ) -> any LogHandler {
        switch format {
        case .json:
            var handler = JSONLogHandler(label: label, output: output)
            handler.logLevel = level
            return handler
        case .text:
            var handler = StreamLogHandler.standardOutput(label: label)
            handler.logLevel = level
            return handler
        }
    }
}
