import Logging
import Testing

@testable import MessagesService

/// W3C `traceparent` and `tracestate` as the service reads them from requests.
@Suite struct TraceContextTests {
    let valid = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

    @Test func aValidTraceparentReadsBackAsItself() throws {
        let context = try #require(TraceContext(traceparent: valid, tracestate: "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"))
        #expect(context.traceID == "4bf92f3577b34da6a3ce929d0e0e4736")
        #expect(context.parentID == "00f067aa0ba902b7")
        #expect(context.isSampled)
        #expect(context.traceparent == valid)
        #expect(context.state == "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE")
        #expect(TraceContext(traceparent: valid.replacingOccurrences(of: "-01", with: "-00"))?.isSampled == false)
    }

    @Test func aLaterVersionIsReadAsVersion00WhenItsFieldsFit() {
        let future = "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra"
        #expect(TraceContext(traceparent: future)?.traceparent == valid)
        #expect(TraceContext(traceparent: "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x") == nil)
    }

    @Test(arguments: [
        "", "00", "garbage", "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
        "0X-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\u{0}",
        "00-4bf92f3577b34da6a3ce929d0e0e47é-00f067aa0ba902b7-01",
    ])
    func anInvalidTraceparentIsIgnored(_ header: String) {
        #expect(TraceContext(traceparent: header) == nil)
    }

    @Test(arguments: [
        "=x", "Rojo=1", "rojo", "rojo=", "rojo=a,b", "rojo=a=b", "rojo=\u{7f}",
        String(repeating: "a=b,", count: 33), "k=" + String(repeating: "v", count: 600),
    ])
    func anInvalidTracestateIsDroppedAndItsTraceparentKept(_ state: String) throws {
        let context = try #require(TraceContext(traceparent: valid, tracestate: state))
        #expect(context.state == nil)
        #expect(context.traceparent == valid)
    }

    @Test func anyTextIsReadWithoutATrapAndWhatParsesReadsBack() {
        // Arbitrary strings around the valid form: cut, extended, with one byte replaced.
        var generator = SystemRandomNumberGenerator()
        let alphabet = Array("0123456789abcdefABCDEF-xyz ,=\u{0}é")
        for _ in 0..<5000 {
            var bytes = Array(valid)
            switch Int.random(in: 0..<3, using: &generator) {
            case 0: bytes = Array(bytes.prefix(Int.random(in: 0...bytes.count, using: &generator)))
            case 1:
                bytes += (0..<Int.random(in: 1...8, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! }
            default: bytes[Int.random(in: 0..<bytes.count, using: &generator)] = alphabet.randomElement(using: &generator)!
            }
            let text = String(bytes)
            guard let context = TraceContext(traceparent: text) else { continue }
            #expect(TraceContext(traceparent: context.traceparent) == context, "\(text)")
            #expect(context.traceID.count == 32 && context.parentID.count == 16, "\(text)")
        }
    }

    @Test func everyLogLineOfATracedRequestCarriesItsTraceID() throws {
        let context = try #require(TraceContext(traceparent: valid))
        let traced = RequestScope.$current.withValue(RequestScope(requestID: "r1", trace: context)) {
            RequestScope.metadataProvider.get()
        }
        #expect(traced["trace_id"] == .string("4bf92f3577b34da6a3ce929d0e0e4736"))
        #expect(traced["request_id"] == .string("r1"))
        let untraced = RequestScope.$current.withValue(RequestScope(requestID: "r2")) { RequestScope.metadataProvider.get() }
        #expect(untraced["trace_id"] == nil)
    }

    @Test func tracingIsOnOnlyWithAnOTLPEndpointAndNotDisabled() {
        #expect(!TracingBackend.isRequested(by: [:]))
        #expect(!TracingBackend.isRequested(by: ["OTEL_EXPORTER_OTLP_ENDPOINT": ""]))
        #expect(!TracingBackend.isRequested(by: ["OTEL_SERVICE_NAME": "x"]))
        #expect(TracingBackend.isRequested(by: ["OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"]))
        #expect(TracingBackend.isRequested(by: ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"]))
        #expect(
            !TracingBackend.isRequested(by: ["OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "TRUE"]))
        #expect(
            !TracingBackend.isRequested(by: ["OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"]))
    }

    @Test func spansTheExporterReportsDroppedAreCounted() {
        let before = TracingBackend.droppedSpans
        let diagnostics = Logger(label: "otel") { _ in TracingBackend.DropCounter(forwardingTo: Logger(label: "sink")) }
        diagnostics.warning("Spans were dropped this iteration because queue was full", metadata: ["dropped_count": "7"])
        diagnostics.info("Configuration updated from environment")
        #expect(TracingBackend.droppedSpans - before == 7)
    }
}
