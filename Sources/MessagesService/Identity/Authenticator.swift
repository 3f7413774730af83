import Foundation
import HTTPTypes
import Hummingbird

/// Establishes who calls the v1 API, as `AUTH_MODE` says.
public struct Authenticator: Sendable {
    enum Mode: Sendable {
        /// Trust `X-User-Id`: only behind a gateway that sets it.
        case userHeader
        /// Verify `Authorization: Bearer` tokens.
        case jwt(JWTVerifier)
    }

    let mode: Mode

    /// Trusts `X-User-Id`.
    public static let userHeader = Authenticator(mode: .userHeader)

    /// Verifies bearer tokens.
    public static func jwt(_ verifier: JWTVerifier) -> Authenticator {
        Authenticator(mode: .jwt(verifier))
    }

    /// The caller, or an `AuthenticationFailure` (401). With `acceptsQueryToken`, a token may
    /// also come as `?access_token=` when there is no `Authorization` header: browsers'
    /// `EventSource` cannot send headers. (The access log writes the path without the query.)
    func authenticate(_ request: Request, acceptsQueryToken: Bool = false) async throws -> UserIdentity {
        switch mode {
        case .userHeader:
            return try UserIdentity.fromUserHeader(request)
        case .jwt(let verifier):
            guard let authorization = request.headers[.authorization] else {
                if acceptsQueryToken, let token = request.uri.queryParameters.get("access_token") {
                    return try await verify(token, with: verifier)
                }
                throw Self.unauthorized("an Authorization: Bearer token is required", error: nil)
            }
            let parts = authorization.split(separator: " ", maxSplits: 1)
            guard parts.count == 2, parts[0].lowercased() == "bearer" else {
                throw Self.unauthorized("the Authorization header must be 'Bearer <token>'", error: "invalid_request")
            }
            return try await verify(String(parts[1]).trimmingCharacters(in: .whitespaces), with: verifier)
        }
    }

    private func verify(_ token: String, with verifier: JWTVerifier) async throws -> UserIdentity {
        do {
            return try await verifier.verify(token)
        } catch let rejection as JWTVerifier.Rejection {
            throw Self.unauthorized(rejection.reason, error: "invalid_token")
        }
    }

    private static func unauthorized(_ message: String, error: String?) -> AuthenticationFailure {
        var challenge = #"Bearer realm="messages-service""#
        if let error { challenge += #", error="\#(error)", error_description="\#(message)""# }
        return AuthenticationFailure(message: message, challenge: challenge)
    }
}
