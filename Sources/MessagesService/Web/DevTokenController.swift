import Foundation
import Hummingbird
import NIOCore

/// `POST /dev/token`: mints a token for any user, for the chat page's sign-in button in local
/// development. It exists only with `DEV_TOKENS=true`, which the configuration accepts only with
/// `AUTH_MODE=jwt` and an HS256 `JWT_SECRET`, and answers only callers on this host (loopback),
/// so a development server reachable on the network mints nothing for others. `make run` turns it
/// on with its development secret; compose and the Kubernetes manifests never do (`make validate`
/// checks the latter). It grants `moderator` at most: never `service`, which manages memberships.
struct DevTokenController: Sendable {
    let secret: String
    let issuer: String
    let audience: String
    /// One hour, or less when `JWT_MAX_TTL` is shorter.
    let lifetime: Duration

    /// The roles a development token may carry.
    static let grantableRoles: Set<String> = ["moderator"]

    func addRoutes(to router: Router<AppRequestContext>) {
        router.post("dev/token", use: mint)
    }

    @Sendable func mint(_ request: Request, context: AppRequestContext) async throws -> Response {
        guard Self.isLoopback(context.remoteAddress) else {
            throw APIError.permissionDenied("development tokens are only minted for callers on the service's own host")
        }
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
            throw ValidationFailure(field: "roles", message: "roles may hold moderator only", kind: "enum")
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

    /// 127.0.0.0/8 and ::1; an unknown peer (in-process tests have none) counts as local.
    static func isLoopback(_ address: SocketAddress?) -> Bool {
        guard let address else { return true }
        switch address {
        case .v4(let v4): return (UInt32(bigEndian: v4.address.sin_addr.s_addr) >> 24) == 127
        case .v6: return address.ipAddress == "::1" || address.ipAddress?.hasPrefix("::ffff:127.") == true
        case .unixDomainSocket: return true
        }
    }
}
