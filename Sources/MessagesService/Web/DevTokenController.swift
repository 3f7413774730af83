import Foundation
import Hummingbird

/// `POST /dev/token`: mints a token for any user, for the chat page's sign-in button in local
/// development. It exists only with `DEV_TOKENS=true`, which the configuration accepts only with
/// `AUTH_MODE=jwt` and an HS256 `JWT_SECRET`; `make run` and compose turn it on with their
/// development secrets, the Kubernetes manifests never do.
struct DevTokenController: Sendable {
    let secret: String
    let issuer: String
    let audience: String
    /// One hour, or less when `JWT_MAX_TTL` is shorter.
    let lifetime: Duration

    /// The roles a development token may carry.
    static let grantableRoles: Set<String> = ["moderator", "service"]

    func addRoutes(to router: Router<AppRequestContext>) {
        router.post("dev/token", use: mint)
    }

    @Sendable func mint(_ request: Request, context: AppRequestContext) async throws -> Response {
        let body = try await V1Dialect.body(DevTokenRequestBody.self, request)
        var subject = UUID()
        if let raw = body.userID {
            guard let id = UUID(uuidString: raw) else {
                throw ValidationFailure(field: "user_id", message: "user_id must be a UUID", kind: "uuid")
            }
            subject = id
        }
        let roles = body.roles ?? []
        guard roles.count <= Self.grantableRoles.count, roles.allSatisfy(Self.grantableRoles.contains) else {
            throw ValidationFailure(field: "roles", message: "roles may hold moderator and service only", kind: "enum")
        }
        let seconds = TimeInterval(lifetime.components.seconds)
        let now = Date()
        let token = try await JWTVerifier.mint(
            secret: secret, subject: subject, roles: roles, issuer: issuer, audience: audience, lifetime: seconds,
            now: now
        )
        return try JSONResponse.make(
            DevTokenBody(
                token: token, userID: subject.uuidString.lowercased(), roles: roles,
                expiresAt: Date(timeIntervalSince1970: now.timeIntervalSince1970.rounded(.down) + seconds)
            ),
            status: .created
        )
    }
}
