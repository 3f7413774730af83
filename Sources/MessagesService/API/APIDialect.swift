import Foundation
import Hummingbird

/// What differs between the service's two HTTP APIs, v1 and the legacy `/threads` API: how each
/// reads a path id and `limit`, whether a body must say it is JSON, and how it words a failure.
///
/// Everything else about a request is shared: the readers below, the caller middleware, and
/// `APIErrorMiddleware`, which each API's route group installs with its dialect. Handlers throw
/// what went wrong in the terms of the part that found it (`ValidationFailure`,
/// `MessageStoreError`, `APIError`, `AuthenticationFailure`, `RateLimitExceeded`, ...) and never
/// translate it themselves.
protocol APIDialect: Sendable {
    /// The id in a path segment (still percent-encoded), or the API's error for it.
    static func pathID(_ encoded: String, name: String) throws -> UUID
    /// The `limit` query parameter (nil when absent), read and range-checked as the API does.
    static func limit(_ raw: String?, limits: MessageLimits) throws -> Int
    /// Whether a request body must come with a JSON `Content-Type`.
    static var requiresJSONContentType: Bool { get }

    /// The answer to a request value that failed validation.
    static func response(for failure: ValidationFailure) -> any HTTPResponseError
    /// The answer to a refusal of the store.
    static func response(for refusal: MessageStoreError) -> any HTTPResponseError
    /// The answer to a request for a channel the caller may not use (or that does not exist:
    /// the two look the same).
    static func channelNotFound(_ channelID: UUID) -> any HTTPResponseError
    /// The answer to any other failure, which `APIError` names in general terms.
    static func response(for error: APIError) -> any HTTPResponseError
}

extension APIDialect {
    /// The id in the path parameter `name`.
    static func pathID(_ name: String, _ context: AppRequestContext) throws -> UUID {
        try pathID(context.parameters.get(name) ?? "", name: name)
    }

    /// The channel id in the path parameter `name`, which from here on is on every log line of
    /// the request.
    static func channelID(_ name: String, _ context: AppRequestContext) throws -> UUID {
        let id = try pathID(name, context)
        RequestScope.current?.channelID = id
        return id
    }

    /// The request's `limit`.
    static func limit(_ request: Request, limits: MessageLimits) throws -> Int {
        try limit(request.uri.queryParameters.get("limit"), limits: limits)
    }

    /// The JSON body as `T`: at most `MessageLimits.maxBodyBytes` (413 past it), decoding
    /// failures as `ValidationFailure`s that name the field.
    static func body<T: Decodable>(_ type: T.Type, _ request: Request) async throws -> T {
        if requiresJSONContentType, let contentType = request.headers[.contentType]?.lowercased(),
            !(contentType.hasPrefix("application/json") || contentType.contains("+json"))
        {
            throw APIError.unsupportedMediaType("Content-Type must be application/json")
        }
        let buffer = try await request.body.collect(upTo: MessageLimits.maxBodyBytes)
        return try JSONBody.decode(type, from: Data(buffer.readableBytesView))
    }
}
