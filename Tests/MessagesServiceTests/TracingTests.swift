import AMQP
import Foundation
import HTTPTypes
import Logging
import OTel
import Testing
import Tracing

@testable import MessagesService

/// The process's tracer, bootstrapped once (a process has one) for the tests that need it,
/// exporting over OTLP/HTTP JSON to a receiver of the tests. Other tests' spans reach it too;
/// each test reads its own trace.
enum TestTracing {
    static let receiver = Task<OTLPReceiver, any Error> {
        let receiver = try await OTLPReceiver.start()
        let exporter = try TracingBackend.bootstrap(logger: Logger(label: "otel")) { configuration in
            configuration.traces.otlpExporter.endpoint = "http://127.0.0.1:\(receiver.port)/v1/traces"
            configuration.traces.otlpExporter.protocol = .httpJSON
            configuration.traces.batchSpanProcessor.scheduleDelay = .milliseconds(100)
        }
        Task { try await exporter.run() }
        return receiver
    }
}

/// Spans as the tracer exports them (the trace of a create through its event is in
/// `EventRelayTests`, whose tests run the relay one at a time).
@Suite(.tags(.servers), .serialized) struct TracingTests {

    @Test func aTokenInTheQueryNeverReachesASpanAndProbesMakeNone() async throws {
        let receiver = try await TestTracing.receiver.value
        let ids = [UUID(), UUID()].map { $0.uuidString.lowercased().replacingOccurrences(of: "-", with: "") }
        var configuration = ServiceConfiguration.forTests
        configuration.tracing = true
        try await withService(configuration: configuration) { api, _ in
            let limits = try await api.send(
                .get, "/v1/limits?access_token=secret-token-value&lang=es",
                headers: [HTTPField.Name("traceparent")!: "00-\(ids[0])-00f067aa0ba902b7-01"])
            #expect(limits.status == .ok)
            _ = try await api.send(
                .get, "/health/live", headers: [HTTPField.Name("traceparent")!: "00-\(ids[1])-00f067aa0ba902b7-01"])
        }
        var spans: [OTLPReceiver.Span] = []
        #expect(
            await eventually(timeout: .seconds(15)) {
                spans = receiver.spans(ofTrace: ids[0])
                return !spans.isEmpty
            })
        let values = spans.flatMap(\.attributes.values)
        #expect(!values.contains { $0.contains("secret-token-value") })
        #expect(values.contains { $0.contains("lang=es") })
        // Exported by now if it had been made: the batch goes every 100 ms.
        try await Task.sleep(for: .milliseconds(500))
        #expect(receiver.spans(ofTrace: ids[1]).isEmpty)
    }

    @Test func logLinesInsideASpanCarryItsTraceAndSpanIDs() async throws {
        _ = try await TestTracing.receiver.value
        let provider = OTel.makeLoggingMetadataProvider()
        let metadata = withSpan("test") { span in (provider.get(), span.context) }
        let context = try #require(TraceContext.of(metadata.1))
        #expect(metadata.0["trace_id"] == .string(context.traceID))
        #expect(metadata.0["span_id"] == .string(context.parentID))
    }
}
