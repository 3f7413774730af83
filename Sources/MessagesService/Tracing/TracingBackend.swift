import Logging
import NIOConcurrencyHelpers
import OTel
import ServiceLifecycle
import Tracing

/// The process's tracer: spans of HTTP requests, Postgres statements, Redis calls and event
/// publishes, exported over OTLP/HTTP by swift-otel, configured by the standard `OTEL_*`
/// variables (docs/tracing.md). Off unless an OTLP endpoint is set: then every span is a no-op.
///
/// Exporting never holds up a request: finished spans go to a bounded queue
/// (`OTEL_BSP_MAX_QUEUE_SIZE`, 2048) that a background task sends in batches; when it is full,
/// spans are dropped, and counted (`droppedSpans`).
public enum TracingBackend {
    /// Spans dropped because the export queue was full, since start.
    public static var droppedSpans: Int { dropped.withLockedValue { $0 } }
    private static let dropped = NIOLockedValueBox(0)

    /// Whether `environment` asks for traces: an OTLP endpoint (`OTEL_EXPORTER_OTLP_ENDPOINT` or
    /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`), and neither `OTEL_SDK_DISABLED=true` nor
    /// `OTEL_TRACES_EXPORTER=none`.
    public static func isRequested(by environment: [String: String]) -> Bool {
        let endpoint = ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"].contains {
            !(environment[$0] ?? "").isEmpty
        }
        return endpoint && environment["OTEL_SDK_DISABLED"]?.lowercased() != "true"
            && environment["OTEL_TRACES_EXPORTER"]?.lowercased() != "none"
    }

    /// Makes the tracer (traces only: the service logs and serves its metrics itself), makes it
    /// the process's, and returns the service that exports its spans, for the service group.
    /// `configure` adjusts swift-otel's configuration before the `OTEL_*` variables override it.
    public static func bootstrap(
        logger: Logger, configure: (inout OTel.Configuration) -> Void = { _ in }
    ) throws -> any Service {
        var configuration = OTel.Configuration.default
        configuration.serviceName = "messages-service"
        configuration.logs.enabled = false
        configuration.metrics.enabled = false
        configuration.traces.otlpExporter.protocol = .httpProtobuf
        configuration.diagnosticLogger = .custom(Logger(label: "otel") { label in DropCounter(forwardingTo: logger) })
        configure(&configuration)
        let (tracer, service) = try OTel.makeTracingBackend(configuration: configuration)
        InstrumentationSystem.bootstrap(tracer)
        return service
    }

    /// swift-otel's diagnostic log, passed on to the service's at `notice` at most: stdout, not
    /// the error journal, which a collector that is down would otherwise fill (a failed export
    /// every few seconds). Its batch processor reports the spans it dropped as a line with
    /// `dropped_count`, which is counted here (`messages_trace_spans_dropped_total`).
    struct DropCounter: LogHandler {
        let next: Logger
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .info

        init(forwardingTo next: Logger) {
            self.next = next
        }

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            if case .string(let count)? = event.metadata?["dropped_count"], let dropped = Int(count) {
                TracingBackend.dropped.withLockedValue { $0 += dropped }
            }
            next.log(
                level: min(event.level, .notice), event.message, metadata: metadata.merging(event.metadata ?? [:]) { $1 },
                source: "otel", file: event.file, function: event.function, line: event.line)
        }
    }
}
