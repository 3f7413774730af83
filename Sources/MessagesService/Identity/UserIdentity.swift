import Foundation
import Hummingbird

/// Who is calling.
public struct UserIdentity: Sendable, Equatable {
    /// The user's id.
    public let userID: UUID
    /// Roles from the token, e.g. `moderator`.
    public var roles: Set<String> = []

    /// True when the caller may delete other users' messages.
    public var isModerator: Bool { roles.contains("moderator") }

    /// The caller named by `X-User-Id` (INF326 clients, `AUTH_MODE=header`), or 401.
    static func fromUserHeader(_ request: Request) throws -> UserIdentity {
        guard let header = request.headers[.userID] else {
            throw AuthenticationFailure(message: "X-User-Id header is required", challenge: nil)
        }
        guard let id = UUID(uuidString: header.trimmingCharacters(in: .whitespaces)) else {
            throw AuthenticationFailure(message: "X-User-Id must be a UUID", challenge: nil)
        }
        return UserIdentity(userID: id)
    }
}
