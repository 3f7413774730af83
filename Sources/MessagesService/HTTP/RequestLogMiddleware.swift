import Foundation
import HTTPTypes
import Hummingbird

/// Gives every request an id and a log scope, and writes its access line.
///
/// The caller's `X-Request-ID` is kept when it is short printable ASCII (a gateway's correlation
/// id); anything else is replaced, so log lines and headers never carry hostile bytes. The id is
/// in the response, error responses included, and, through `RequestScope`, on every log line
/// written while serving the request. The access line (method, route, status, duration) is `info`,
/// but `debug` for probes and scrapes, which would otherwise drown the log.
struct RequestLogMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        let requestID = request.headers[.requestID].flatMap(Self.acceptable) ?? UUID().uuidString.lowercased()
        let scope = RequestScope(
            requestID: requestID,
            trace: TraceContext(
                traceparent: request.headers[values: .traceparent],
                tracestate: request.headers[values: .tracestate].joined(separator: ",")))
        let started = ContinuousClock.now
        // Ours is the id of the request (the response's X-Request-ID); Hummingbird's own would be a second one.
        var context = context
        context.logger[metadataKey: "hb.request.id"] = nil
        return try await RequestScope.$current.withValue(scope) {
            // Hummingbird answers an error that got past every APIErrorMiddleware with a 500.
            var status = 500
            defer { Self.logAccess(request, context: context, status: status, duration: ContinuousClock.now - started) }
            var response = try await next(request, context)
            response.headers[.requestID] = requestID
            status = response.status.code
            return response
        }
    }

    private static func logAccess(_ request: Request, context: Context, status: Int, duration: Duration) {
        let path = request.uri.path
        let quiet = path.hasPrefix("/health/") || path == "/metrics"
        context.logger.log(
            level: quiet ? .debug : .info, "request",
            metadata: [
                "method": .string(request.method.rawValue),
                // The route template, not the path: ids stay out of the grouping key.
                "route": .string(context.endpointPath ?? "unmatched"),
                "path": .string(path),
                "status": .stringConvertible(status),
                "duration_ms": .stringConvertible((duration.inSeconds * 1_000_000).rounded() / 1000),
            ]
        )
    }

    private static func acceptable(_ id: String) -> String? {
        guard (1...128).contains(id.utf8.count), id.utf8.allSatisfy({ (0x21...0x7E).contains($0) }) else { return nil }
        return id
    }
}

extension HTTPField.Name {
    static let requestID = Self("X-Request-ID")!
    static let traceparent = Self("traceparent")!
    static let tracestate = Self("tracestate")!
    static let userID = Self("X-User-Id")!
    static let idempotencyKey = Self("Idempotency-Key")!
    static let idempotentReplayed = Self("Idempotent-Replayed")!
    static let cacheStatus = Self("X-Cache")!
    static let rateLimitLimit = Self("RateLimit-Limit")!
    static let rateLimitRemaining = Self("RateLimit-Remaining")!
    static let rateLimitReset = Self("RateLimit-Reset")!
    /// The addresses a request was forwarded from, appended to by each proxy.
    static let xForwardedFor = Self("X-Forwarded-For")!
}
