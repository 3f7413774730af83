import Hummingbird
import Logging
import NIOCore
import Postgres

/// Hears of each request that failed because Postgres is unavailable (`StoreOutageWatch`).
typealias StoreOutageReporter = @Sendable (PostgresError) -> Void

/// Answers every error thrown below it in the words of one API (`dialect`): each API's route
/// group installs one, and one more outside every group answers the requests no route matched
/// and the service's own endpoints (health, metrics, spec).
///
/// Store refusals, validation failures and `APIError`s go through the dialect; so do the failures
/// of the parts every request passes (authentication, the rate limit, Hummingbird's own errors,
/// an oversized body); a Postgres outage or an exhausted pool becomes 503 with `Retry-After`
/// (load shedding); an error that already knows its response answers for itself; anything else
/// is logged and becomes a bare 500 that says nothing about internals.
struct APIErrorMiddleware: RouterMiddleware {
    typealias Context = AppRequestContext

    let dialect: any APIDialect.Type
    /// Told about every request that failed for a Postgres outage (it logs the outage once).
    var onStoreUnavailable: StoreOutageReporter?
    /// Requests that reached no route are answered in the dialect of the API whose path prefix
    /// they carry (a legacy client gets its `{"detail": "Not Found"}`), others in `dialect`.
    var unroutedDialects: [(pathPrefix: String, dialect: any APIDialect.Type)] = []

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        do {
            return try await next(request, context)
        } catch {
            let path = request.uri.path
            let dialect = unroutedDialects.first { path.hasPrefix($0.pathPrefix) }?.dialect ?? self.dialect
            let mapped = Self.response(for: error, in: dialect)
            // A pool timeout is load shedding, not an outage: Postgres answers, just not fast enough.
            if let error = error as? PostgresError, error.isUnavailable, error.code != .poolTimeout {
                onStoreUnavailable?(error)
            }
            if mapped.status.code >= 500 {
                let level: Logger.Level = mapped.status == .serviceUnavailable ? .warning : .error
                context.logger.log(level: level, "request failed", metadata: ["error": "\(String(reflecting: error))"])
            }
            return try mapped.response(from: request, context: context)
        }
    }

    /// The response `error` stands for in `dialect`.
    static func response(for error: any Error, in dialect: any APIDialect.Type) -> any HTTPResponseError {
        switch error {
        case let refusal as MessageStoreError: return dialect.response(for: refusal)
        case let failure as ValidationFailure: return dialect.response(for: failure)
        case let error as APIError: return dialect.response(for: error)
        // Hummingbird's own errors (HTTPError, and NIOTooManyBytesError whose response is an empty
        // 413) are rewritten below into the API's error; ours answer for themselves.
        case let error as HTTPResponseError where !(error is HTTPError) && !(error is NIOTooManyBytesError): return error
        default: return dialect.response(for: apiError(for: error))
        }
    }

    /// A failure of a part every request passes, in general terms.
    private static func apiError(for error: any Error) -> APIError {
        switch error {
        case let error as HTTPError:
            APIError(status: error.status, code: code(for: error.status), message: error.body ?? error.status.reasonPhrase)
        case is NIOTooManyBytesError:
            .payloadTooLarge("request body is larger than \(MessageLimits.maxBodyBytes) bytes")
        case let error as AuthenticationFailure:
            .unauthenticated(error.message, challenge: error.challenge)
        case let error as RateLimitExceeded:
            APIError(
                status: .tooManyRequests, code: "resource_exhausted",
                message: "too many requests; retry in \(error.retryAfterSeconds) s",
                headers: [
                    .retryAfter: String(error.retryAfterSeconds), .rateLimitLimit: String(error.limit),
                    .rateLimitRemaining: "0", .rateLimitReset: String(error.retryAfterSeconds),
                ]
            )
        case let error as PostgresError where error.isUnavailable:
            .unavailable("the message store is unavailable; retry later")
        default:
            .internal
        }
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
