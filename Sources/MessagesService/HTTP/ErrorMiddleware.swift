import Hummingbird
import Logging
import NIOCore
import Postgres

/// Turns every error a handler throws into a JSON response in the style of the API it belongs to.
///
/// Errors that know their response (`HTTPResponseError`) answer for themselves; a Postgres outage
/// or an exhausted pool becomes 503 with `Retry-After` (load shedding); anything else is logged
/// and becomes a bare 500 that says nothing about internals.
struct ErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    /// Told about every request that failed for a Postgres outage (it logs the outage once).
    var outageWatch: StoreOutageWatch?

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        do {
            return try await next(request, context)
        } catch {
            let mapped = Self.map(error, path: request.uri.path)
            // A pool timeout is load shedding, not an outage: Postgres answers, just not fast enough.
            if let error = error as? PostgresError, error.isUnavailable, error.code != .poolTimeout {
                outageWatch?.reportUnavailable(error)
            }
            if mapped.status.code >= 500 {
                let level: Logger.Level = mapped.status == .serviceUnavailable ? .warning : .error
                context.logger.log(level: level, "request failed", metadata: ["error": "\(String(reflecting: error))"])
            }
            return try mapped.response(from: request, context: context)
        }
    }

    /// The response an error stands for.
    static func map(_ error: any Error, path: String) -> any HTTPResponseError {
        let isINF326 = path.hasPrefix("/threads")
        // Hummingbird's own errors (HTTPError, and NIOTooManyBytesError whose response is an empty
        // 413) are rewritten below into the JSON error of the API; ours answer for themselves.
        if let error = error as? HTTPResponseError, !(error is HTTPError), !(error is NIOTooManyBytesError) {
            return error
        }
        let apiError: APIError
        switch error {
        case let error as HTTPError:
            apiError = APIError(
                status: error.status, code: Self.code(for: error.status), message: error.body ?? error.status.reasonPhrase)
        case is NIOTooManyBytesError:
            apiError = .payloadTooLarge("request body is larger than \(MessageLimits.maxBodyBytes) bytes")
        case let error as RateLimitExceeded:
            apiError = APIError(
                status: .tooManyRequests, code: "resource_exhausted",
                message: "too many requests; retry in \(error.retryAfterSeconds) s",
                headers: [
                    .retryAfter: String(error.retryAfterSeconds), .rateLimitLimit: String(error.limit),
                    .rateLimitRemaining: "0", .rateLimitReset: String(error.retryAfterSeconds),
                ]
            )
        case let error as PostgresError where error.isUnavailable:
            apiError = .unavailable("the message store is unavailable; retry later")
        default:
            apiError = .internal
        }
        return isINF326 ? INF326Error(status: apiError.status, detail: apiError.message, headers: apiError.headers) : apiError
    }

    private static func code(for status: HTTPResponse.Status) -> String {
        switch status {
        case .notFound: "not_found"
        case .methodNotAllowed: "method_not_allowed"
        case .contentTooLarge: "payload_too_large"
        case .badRequest: "invalid_argument"
        default: status.code >= 500 ? "internal" : "invalid_argument"
        }
    }
}
