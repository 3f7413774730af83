import Hummingbird

/// A server span for every request but the probes and scrapes (`/health/...`, `/metrics`),
/// which would each be a trace of their own every few seconds per pod. First in the chain, so
/// that the request's log lines carry its span. Stream clients send their token as
/// `?access_token=` (`EventSource` has no headers): it never reaches a span.
struct RequestTracingMiddleware<Context: RequestContext>: RouterMiddleware {
    private let tracing = TracingMiddleware<Context>(redactingQueryParameters: ["access_token"])

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        let path = request.uri.path
        if path.hasPrefix("/health/") || path == "/metrics" { return try await next(request, context) }
        return try await tracing.handle(request, context: context, next: next)
    }
}
