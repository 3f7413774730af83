/// The authenticator of a mode (`AUTH_MODE`, `INF326_AUTH`). Checked here, when serving, so that
/// `migrate` and other commands need no key.
public func makeAuthenticator(
    _ mode: ServiceConfiguration.AuthMode, _ configuration: ServiceConfiguration
) async throws -> Authenticator {
    switch mode {
    case .header:
        return .userHeader
    case .jwt:
        guard let key = configuration.jwtKey else {
            throw ConfigurationError(
                variable: "JWT_SECRET", problem: "AUTH_MODE=jwt and INF326_AUTH=jwt need JWT_SECRET or JWT_PUBLIC_KEY_FILE"
            )
        }
        let expectations = JWTVerifier.Expectations(
            issuer: configuration.jwtIssuer, audience: configuration.jwtAudience,
            maxLifetime: configuration.jwtMaxTTL.inSeconds
        )
        do {
            return .jwt(try await JWTVerifier(key: key, expectations: expectations))
        } catch {
            throw ConfigurationError(variable: "JWT_PUBLIC_KEY_FILE", problem: "is not an RSA or P-256 public key")
        }
    }
}
