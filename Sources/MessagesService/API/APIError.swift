import HTTPTypes
import Hummingbird

/// An error a v1 client gets: a status and `{"error": {"code", "message", "request_id"}}`.
///
/// `message` says what was wrong with the request; it never carries SQL or C-library text.
public struct APIError: Error, HTTPResponseError, Equatable {
    public let status: HTTPResponse.Status
    /// A stable machine-readable code, e.g. `invalid_argument`.
    public let code: String
    /// What went wrong, for a person.
    public let message: String
    /// Extra response headers, e.g. `Retry-After`.
    public var headers: HTTPFields = [:]

    /// 400: a field, parameter or header is wrong; the message names it.
    public static func invalidArgument(_ message: String) -> APIError {
        APIError(status: .badRequest, code: "invalid_argument", message: message)
    }

    /// 401: no or bad credentials; `challenge` is the `WWW-Authenticate` header, if any.
    public static func unauthenticated(_ message: String, challenge: String? = nil) -> APIError {
        var error = APIError(status: .unauthorized, code: "unauthenticated", message: message)
        if let challenge { error.headers[.wwwAuthenticate] = challenge }
        return error
    }

    /// 403: the caller may not do this.
    public static func permissionDenied(_ message: String) -> APIError {
        APIError(status: .forbidden, code: "permission_denied", message: message)
    }

    /// 404.
    public static func notFound(_ message: String) -> APIError {
        APIError(status: .notFound, code: "not_found", message: message)
    }

    /// 409: the request conflicts with the current state.
    public static func conflict(_ message: String) -> APIError {
        APIError(status: .conflict, code: "conflict", message: message)
    }

    /// 412: `If-Match` did not match.
    public static func preconditionFailed(_ message: String) -> APIError {
        APIError(status: .preconditionFailed, code: "failed_precondition", message: message)
    }

    /// 410: the client's state cannot be continued (a changes-feed position this channel never
    /// reached); it must reload.
    public static func reloadRequired(_ message: String) -> APIError {
        APIError(status: .gone, code: "reload_required", message: message)
    }

    /// 413.
    public static func payloadTooLarge(_ message: String) -> APIError {
        APIError(status: .contentTooLarge, code: "payload_too_large", message: message)
    }

    /// 415.
    public static func unsupportedMediaType(_ message: String) -> APIError {
        APIError(status: .unsupportedMediaType, code: "unsupported_media_type", message: message)
    }

    /// 503 with `Retry-After`: a dependency is down or the service is saturated; try again later.
    public static func unavailable(_ message: String, retryAfterSeconds: Int = 1) -> APIError {
        APIError(
            status: .serviceUnavailable, code: "unavailable", message: message,
            headers: [.retryAfter: String(retryAfterSeconds)]
        )
    }

    /// 500: a fault of ours; details are only in the logs.
    public static let `internal` = APIError(
        status: .internalServerError, code: "internal", message: "internal error; the request id is in the logs"
    )

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        let body = APIErrorBody(error: .init(code: code, message: message, request_id: RequestScope.current?.requestID))
        return try JSONResponse.make(body, status: status, headers: headers)
    }
}
