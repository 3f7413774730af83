import Foundation
import HTTPTypes
import Hummingbird

/// Gives every request an id and puts it in the logs and in the response, error responses included.
///
/// The caller's `X-Request-ID` is kept when it is short printable ASCII (a gateway's correlation
/// id); anything else is replaced, so log lines and headers never carry hostile bytes.
struct RequestIDMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        let requestID = request.headers[.requestID].flatMap(Self.acceptable) ?? UUID().uuidString.lowercased()
        var context = context
        context.logger[metadataKey: LogKey.requestID] = .string(requestID)
        var response = try await RequestCorrelation.$requestID.withValue(requestID) { try await next(request, context) }
        response.headers[.requestID] = requestID
        return response
    }

    private static func acceptable(_ id: String) -> String? {
        guard (1...128).contains(id.utf8.count), id.utf8.allSatisfy({ (0x21...0x7E).contains($0) }) else { return nil }
        return id
    }
}

extension HTTPField.Name {
    static let requestID = Self("X-Request-ID")!
    static let userID = Self("X-User-Id")!
    static let idempotencyKey = Self("Idempotency-Key")!
    static let idempotentReplayed = Self("Idempotent-Replayed")!
    static let cacheStatus = Self("X-Cache")!
    static let rateLimitLimit = Self("RateLimit-Limit")!
    static let rateLimitRemaining = Self("RateLimit-Remaining")!
    static let rateLimitReset = Self("RateLimit-Reset")!
}
