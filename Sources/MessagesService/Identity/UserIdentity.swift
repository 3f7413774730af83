import Foundation
import Hummingbird

/// Who is calling. Until JWT verification lands, the service trusts `X-User-Id`, which is only safe
/// behind a gateway that sets it (`AUTH_MODE=header`).
public struct UserIdentity: Sendable, Equatable {
    /// The user's id.
    public let userID: UUID

    /// The caller named by `X-User-Id`, or 401 when it is missing or not a UUID.
    static func from(_ request: Request) throws -> UserIdentity {
        guard let header = request.headers[.userID] else {
            throw APIError.unauthenticated("X-User-Id header is required")
        }
        guard let id = UUID(uuidString: header.trimmingCharacters(in: .whitespaces)) else {
            throw APIError.unauthenticated("X-User-Id must be a UUID")
        }
        return UserIdentity(userID: id)
    }
}
