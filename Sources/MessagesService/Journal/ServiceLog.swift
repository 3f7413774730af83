import Foundation
import Logging
import OTel

/// The service's log: every line to stdout (JSON, or text for humans) at `LOG_LEVEL`; warnings
/// and worse also to the error journal; critical lines also to the alert webhook. Every line
/// written while serving a request carries its `request_id` (and user and channel once known).
public struct ServiceLog: Sendable {
    public let journal: ErrorJournal
    public let alerts: AlertNotifier?
    private let level: Logger.Level
    private let format: LogFormat
    private let output: JSONLogHandler.Output

    /// A log writing lines of `level` and worse to `output` (stdout unless a test captures them)
    /// in `format`, journaling up to `journalCapacity` entries, and alerting `alertWebhook` (with
    /// the service's `version`) when one is set.
    public init(
        level: Logger.Level, format: LogFormat, journalCapacity: Int, alertWebhook: AlertNotifier.Configuration?,
        version: String, output: @escaping JSONLogHandler.Output = JSONLogHandler.standardOutput
    ) {
        self.level = level
        self.format = format
        self.output = output
        journal = ErrorJournal(capacity: journalCapacity)
        alerts = alertWebhook.map { webhook in
            // Its own failures go to stdout only: an alert about the alerting would go nowhere.
            let logger = Logger(label: "alerts") { Self.stdoutHandler(label: $0, level: level, format: format, output: output) }
            return AlertNotifier(configuration: webhook, version: version, logger: logger)
        }
    }

    /// A logger writing where this log does, without the global bootstrap (tests).
    public func logger(label: String) -> Logger {
        Logger(label: label) { handler(label: $0) }
    }

    /// Waits (at most 2 s) until the JSON lines queued for stdout are written: the executable calls
    /// it before it exits.
    public func flush() {
        AsyncLineWriter.standardOutput.flush()
    }

    /// Makes every `Logger(label:)` of the process write here.
    public func bootstrap() {
        LoggingSystem.bootstrap { label in handler(label: label) }
    }

    func handler(label: String) -> any LogHandler {
        // Warnings are journaled whatever LOG_LEVEL lets through to stdout.
        let journalHandler = JournalLogHandler(label: label, journal: journal, alerts: alerts)
        let stdout = Self.stdoutHandler(label: label, level: level, format: format, output: output)
        // trace_id and span_id of the current span, when a tracer made one (OTel's keys).
        let metadata = Logger.MetadataProvider.multiplex([RequestScope.metadataProvider, OTel.makeLoggingMetadataProvider()])
        return MultiplexLogHandler([stdout, journalHandler], metadataProvider: metadata)
    }

    private static func stdoutHandler(
        label: String, level: Logger.Level, format: LogFormat, output: @escaping JSONLogHandler.Output
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
