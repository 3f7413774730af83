import ArgumentParser
import Foundation
import MessagesService

struct Token: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a development JWT signed with JWT_SECRET (HS256).",
        discussion: """
            The token carries sub, roles, iss = JWT_ISSUER, aud = JWT_AUDIENCE, iat = nbf = now
            and exp = now + ttl (at most JWT_MAX_TTL): what `serve` with AUTH_MODE=jwt (and Kong's
            jwt plugin) accept.
            Use it as `Authorization: Bearer <token>`.
            """
    )

    @Option(help: "The user's UUID (the token's sub).")
    var sub: String

    @Option(help: "Comma-separated roles, e.g. moderator.")
    var roles: String = ""

    @Option(help: "Lifetime: a number of seconds, or with a unit: 90s, 15m, 1h, 7d.")
    var ttl: String = "1h"

    func run() async throws {
        let configuration = try loadConfiguration()
        guard let subject = UUID(uuidString: sub) else {
            throw ValidationError("--sub must be a UUID")
        }
        guard let lifetime = DurationText.seconds(ttl), lifetime > 0 else {
            throw ValidationError("--ttl must be like 3600, 90s, 15m, 1h or 7d")
        }
        guard Duration.seconds(lifetime) <= configuration.jwtMaxTTL else {
            throw ValidationError(
                "--ttl must not exceed JWT_MAX_TTL (\(configuration.jwtMaxTTL.components.seconds) s): serve refuses longer-lived tokens"
            )
        }
        guard case .hmacSecret(let secret) = configuration.jwtKey else {
            throw ValidationError("JWT_SECRET must be set to mint a token (a public key cannot sign)")
        }
        let roleList = roles.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        let token = try await JWTVerifier.mint(
            secret: secret, subject: subject, roles: roleList, issuer: configuration.jwtIssuer,
            audience: configuration.jwtAudience, lifetime: TimeInterval(lifetime)
        )
        print(token)
    }
}
