import Tracing

/// W3C trace headers in a `[String: String]` (AMQP headers, the outbox's columns): how the
/// tracer's propagator reads a context from them and writes one into them.
public struct TraceHeaderExtractor: Extractor {
    public init() {}

    public func extract(key: String, from carrier: [String: String]) -> String? {
        carrier[key]
    }
}

public struct TraceHeaderInjector: Injector {
    public init() {}

    public func inject(_ value: String, forKey key: String, into carrier: inout [String: String]) {
        carrier[key] = value
    }
}

extension TraceContext {
    /// The context of `context`'s span as the process's tracer writes it (`traceparent`,
    /// `tracestate`); nil without a tracer (every span a no-op) or without a span.
    public static func of(_ context: ServiceContext) -> TraceContext? {
        var headers: [String: String] = [:]
        InstrumentationSystem.instrument.inject(context, into: &headers, using: TraceHeaderInjector())
        return TraceContext(headers: headers)
    }

    /// The context of `traceparent` and `tracestate` in `headers` (AMQP headers, a propagator's
    /// output); nil without a valid `traceparent`.
    public init?(headers: [String: String]) {
        guard let traceparent = headers["traceparent"] else { return nil }
        self.init(traceparent: traceparent, tracestate: headers["tracestate"])
    }

    /// `traceparent`, and `tracestate` when there is one: the headers that carry `self` on.
    public var headers: [String: String] {
        var headers = ["traceparent": traceparent]
        if let state { headers["tracestate"] = state }
        return headers
    }

    /// `self` as the context a span continues: the tracer reads it from the headers it would send.
    public var serviceContext: ServiceContext {
        var context = ServiceContext.topLevel
        InstrumentationSystem.instrument.extract(headers, into: &context, using: TraceHeaderExtractor())
        return context
    }
}
