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

/// One create followed from the HTTP request to the consumer's event by its trace id.
@Suite(.tags(.servers), .serialized) struct TracingTests {
    let alice = UUID()

    @Test func oneCreateIsOneTraceFromTheRequestThroughPostgresToThePublishAndTheEventCarriesIt() async throws {
        let receiver = try await TestTracing.receiver.value
        let consumer = try TestConsumer(pattern: MessageEvent.Kind.created.rawValue)
        try await consumer.start()
        let channel = UUID()
        // The gateway's span: the request continues its trace.
        let traceID = UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        let gatewaySpan = "00f067aa0ba902b7"
        var configuration = ServiceConfiguration.forTests
        configuration.tracing = true
        try await withService(configuration: configuration) { api, _ in
            let reply = try await api.send(
                .post, "/v1/channels/\(channel)/messages", user: alice, json: #"{"content":"traced"}"#,
                headers: [HTTPField.Name("traceparent")!: "00-\(traceID)-\(gatewaySpan)-01"])
            #expect(reply.status == .created)
        }
        let events = try await withRunningRelay(try TestBroker.relay()) {
            try await consumer.events(of: [channel], count: 1)
        }
        await consumer.stop()
        let header = try #require(events.first?.delivery.properties.headers["traceparent"])
        let received = try #require(TraceContext(traceparent: header))
        #expect(received.traceID == traceID)

        var spans: [OTLPReceiver.Span] = []
        let complete = await eventually(timeout: .seconds(15)) {
            spans = receiver.spans(ofTrace: traceID)
            return spans.contains { $0.kind == 4 } && spans.contains { $0.kind == 2 } && spans.contains { $0.kind == 3 }
        }
        #expect(complete, "spans of the trace: \(spans.map(\.name))")
        let http = try #require(spans.first { $0.kind == 2 })
        #expect(http.parentSpanID == gatewaySpan)
        #expect(http.name.contains("/v1/channels/"))
        let statements = spans.filter { $0.kind == 3 && $0.attributes["db.system.name"] == "postgresql" }
        #expect(
            statements.contains {
                $0.parentSpanID == http.spanID && ($0.attributes["db.query.text"] ?? "").contains("create_message")
            })
        let publish = try #require(spans.first { $0.kind == 4 })
        #expect(publish.parentSpanID == http.spanID)
        #expect(publish.attributes["messaging.message.id"] == events.first?.id)
        // The consumer continues from the publish span.
        #expect(received.parentID == publish.spanID)
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
