import Foundation
import JWTKit

/// Verifies `Authorization: Bearer` tokens: signature with the one configured key and algorithm,
/// then `exp`, `nbf`, `iss` and `aud` with a small clock skew, and `sub` as the user's UUID.
///
/// The algorithm is an allow-list of one: a token whose header names another algorithm (`none`,
/// or HS256 against an RS256 public key) is refused before any key is used.
public struct JWTVerifier: Sendable {
    /// Where the verification key comes from.
    public enum Key: Sendable, Equatable {
        /// HS256 with a shared secret.
        case hmacSecret(String)
        /// RS256 or ES256 with a PEM public key (the algorithm is read from the key type).
        case publicKeyPEM(String)
    }

    /// What the claims must say.
    public struct Expectations: Sendable, Equatable {
        public var issuer: String
        public var audience: String
        /// Tolerated difference between our clock and the issuer's.
        public var clockSkew: TimeInterval = 60
        /// Longest lifetime a token may have: `exp` minus `iat`, or minus now when it has no `iat`
        /// (`JWT_MAX_TTL`). A stolen token must not stay useful for years.
        public var maxLifetime: TimeInterval = 86_400

        public init(issuer: String, audience: String, maxLifetime: TimeInterval = 86_400) {
            self.issuer = issuer
            self.audience = audience
            self.maxLifetime = maxLifetime
        }
    }

    /// Why a token was refused; the message helps an honest client and says nothing more.
    public struct Rejection: Error, Equatable {
        public let reason: String
    }

    private let keys: JWTKeyCollection
    private let algorithm: String
    private let expectations: Expectations

    /// Builds a verifier, or throws when the key cannot be read.
    public init(key: Key, expectations: Expectations) async throws {
        let keys = JWTKeyCollection()
        switch key {
        case .hmacSecret(let secret):
            await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
            algorithm = "HS256"
        case .publicKeyPEM(let pem):
            if let ecdsa = try? ES256PublicKey(pem: pem) {
                await keys.add(ecdsa: ecdsa)
                algorithm = "ES256"
            } else {
                await keys.add(rsa: try Insecure.RSA.PublicKey(pem: pem), digestAlgorithm: .sha256)
                algorithm = "RS256"
            }
        }
        self.keys = keys
        self.expectations = expectations
    }

    /// The algorithm tokens must be signed with.
    public var acceptedAlgorithm: String { algorithm }

    /// The identity a valid token names, or a `Rejection`.
    public func verify(_ token: String, now: Date = Date()) async throws -> UserIdentity {
        guard Self.headerAlgorithm(of: token) == algorithm else {
            throw Rejection(reason: "token must be signed with \(algorithm)")
        }
        let claims: Claims
        do {
            claims = try await keys.verify(token, as: Claims.self)
        } catch {
            throw Rejection(reason: "token signature or format is invalid")
        }
        if claims.exp.value.addingTimeInterval(expectations.clockSkew) < now {
            throw Rejection(reason: "token has expired")
        }
        if let notBefore = claims.nbf?.value, notBefore.addingTimeInterval(-expectations.clockSkew) > now {
            throw Rejection(reason: "token is not valid yet")
        }
        // Without iat, nbf bounds the lifetime too; without either, now does.
        let issuedAt = claims.iat?.value ?? claims.nbf?.value ?? now
        if issuedAt.addingTimeInterval(-expectations.clockSkew) > now {
            throw Rejection(reason: "token is issued in the future")
        }
        if claims.exp.value.timeIntervalSince(issuedAt) > expectations.maxLifetime + expectations.clockSkew {
            throw Rejection(reason: "token lifetime exceeds \(Int(expectations.maxLifetime)) seconds")
        }
        guard claims.iss.value == expectations.issuer else { throw Rejection(reason: "token issuer is not accepted") }
        guard claims.aud.value.contains(expectations.audience) else {
            throw Rejection(reason: "token audience is not accepted")
        }
        guard let userID = UUID(uuidString: claims.sub.value) else {
            throw Rejection(reason: "token subject must be a user UUID")
        }
        return UserIdentity(userID: userID, roles: Set(claims.roles ?? []))
    }

    /// The `alg` of a token's header, without trusting anything else in it.
    static func headerAlgorithm(of token: String) -> String? {
        guard let header = token.split(separator: ".", omittingEmptySubsequences: false).first else { return nil }
        guard let data = Base64URL.decode(header),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else { return nil }
        return object["alg"] as? String
    }

    /// The claims this service reads. Time checks happen in `verify`, with the clock skew.
    struct Claims: JWTPayload {
        let sub: SubjectClaim
        let exp: ExpirationClaim
        let nbf: NotBeforeClaim?
        let iat: IssuedAtClaim?
        let iss: IssuerClaim
        let aud: AudienceClaim
        let roles: [String]?

        func verify(using algorithm: some JWTAlgorithm) async throws {}
    }

    /// Mints a token with the same claims this verifier checks; for `messages-service token`.
    public static func mint(
        secret: String, subject: UUID, roles: [String], issuer: String, audience: String, lifetime: TimeInterval,
        now: Date = Date()
    ) async throws -> String {
        let keys = JWTKeyCollection()
        await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
        // Whole seconds: some verifiers (Kong's among them) expect NumericDate without a fraction.
        let now = Date(timeIntervalSince1970: now.timeIntervalSince1970.rounded(.down))
        let claims = Claims(
            sub: .init(value: subject.uuidString.lowercased()), exp: .init(value: now.addingTimeInterval(lifetime)),
            nbf: .init(value: now), iat: .init(value: now), iss: .init(value: issuer), aud: .init(value: [audience]),
            roles: roles.isEmpty ? nil : roles
        )
        return try await keys.sign(claims)
    }
}
