import Foundation
import HTTPTypes
import JWTKit
import Testing

@testable import MessagesService

/// `AUTH_MODE=jwt`: token verification and who may change what.
@Suite struct AuthenticationTests {
    static let secret = "test-secret-0123456789-0123456789-abcdef"
    let alice = UUID()
    let bob = UUID()
    let expectations = JWTVerifier.Expectations(issuer: "messages-service", audience: "messages-api")

    func claims(
        _ user: UUID, expires: TimeInterval = 3600, notBefore: TimeInterval = 0, issuer: String = "messages-service",
        audience: String = "messages-api", roles: [String]? = nil
    ) -> JWTVerifier.Claims {
        JWTVerifier.Claims(
            sub: .init(value: user.uuidString.lowercased()), exp: .init(value: Date().addingTimeInterval(expires)),
            nbf: .init(value: Date().addingTimeInterval(notBefore)), iss: .init(value: issuer),
            aud: .init(value: [audience]), roles: roles
        )
    }

    func hs256(_ claims: JWTVerifier.Claims, secret: String = Self.secret) async throws -> String {
        let keys = JWTKeyCollection()
        await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
        return try await keys.sign(claims)
    }

    func bearer(_ token: String) -> HTTPFields {
        [.authorization: "Bearer \(token)"]
    }

    func withJWTService(_ body: @escaping @Sendable (APIClient) async throws -> Void) async throws {
        let verifier = try await JWTVerifier(key: .hmacSecret(Self.secret), expectations: expectations)
        try await withService(authenticator: .jwt(verifier)) { api, _ in try await body(api) }
    }

    @Test func validTokenCreates() async throws {
        let token = try await hs256(claims(alice))
        try await withJWTService { api in
            let reply = try await api.send(.post, "/v1/channels/\(UUID())/messages", json: #"{"content":"hi"}"#, headers: bearer(token))
            #expect(reply.status == .created)
            #expect(reply.json["author_id"] as? String == alice.uuidString.lowercased())
        }
    }

    @Test func mintedDevelopmentTokensAreAccepted() async throws {
        let token = try await JWTVerifier.mint(
            secret: Self.secret, subject: alice, roles: ["moderator"], issuer: "messages-service", audience: "messages-api",
            lifetime: 60
        )
        let verifier = try await JWTVerifier(key: .hmacSecret(Self.secret), expectations: expectations)
        let identity = try await verifier.verify(token)
        #expect(identity.userID == alice)
        #expect(identity.isModerator)
    }

    @Test func everyBadTokenIs401WithAChallenge() async throws {
        let forged = try await hs256(claims(alice), secret: "another-secret-0123456789-0123456789-xyz")
        let expired = try await hs256(claims(alice, expires: -600))
        let early = try await hs256(claims(alice, notBefore: 600))
        let wrongIssuer = try await hs256(claims(alice, issuer: "evil"))
        let wrongAudience = try await hs256(claims(alice, audience: "other-api"))
        let valid = try await hs256(claims(alice))
        let parts = valid.split(separator: ".")
        let noneHeader = Base64URL.encode(Data(#"{"alg":"none","typ":"JWT"}"#.utf8))
        let algNone = "\(noneHeader).\(parts[1])."
        let cases: [(String, String)] = [
            (forged, "token signature or format is invalid"),
            (expired, "token has expired"),
            (early, "token is not valid yet"),
            (wrongIssuer, "token issuer is not accepted"),
            (wrongAudience, "token audience is not accepted"),
            (algNone, "token must be signed with HS256"),
            ("garbage", "token must be signed with HS256"),
        ]
        try await withJWTService { api in
            for (token, reason) in cases {
                let reply = try await api.send(.get, "/v1/channels/\(UUID())/messages", headers: bearer(token))
                #expect(reply.status == .unauthorized, "\(reason)")
                #expect(reply.errorMessage == reason)
                #expect(reply.headers[.wwwAuthenticate]?.contains(#"error="invalid_token""#) == true)
            }
            let missing = try await api.send(.get, "/v1/channels/\(UUID())/messages")
            #expect(missing.status == .unauthorized)
            #expect(missing.headers[.wwwAuthenticate] == #"Bearer realm="messages-service""#)
            // X-User-Id is not trusted in jwt mode.
            let header = try await api.send(.get, "/v1/channels/\(UUID())/messages", user: alice)
            #expect(header.status == .unauthorized)
        }
    }

    @Test func hs256TokenSignedWithThePublicKeyIsRefused() async throws {
        let privateKey = ES256PrivateKey()
        let publicPEM = privateKey.publicKey.pemRepresentation
        let verifier = try await JWTVerifier(key: .publicKeyPEM(publicPEM), expectations: expectations)
        #expect(verifier.acceptedAlgorithm == "ES256")
        // The classic confusion attack: HMAC keyed with the public key's text.
        let confused = try await hs256(claims(alice), secret: publicPEM)
        await #expect(throws: JWTVerifier.Rejection(reason: "token must be signed with ES256")) {
            try await verifier.verify(confused)
        }
        let keys = JWTKeyCollection()
        await keys.add(ecdsa: privateKey)
        let genuine = try await keys.sign(claims(alice))
        #expect(try await verifier.verify(genuine).userID == alice)
    }

    @Test func onlyTheAuthorEditsAndTheAuthorOrAModeratorDeletes() async throws {
        let channel = UUID()
        let aliceToken = try await hs256(claims(alice))
        let bobToken = try await hs256(claims(bob))
        let moderatorToken = try await hs256(claims(UUID(), roles: ["moderator"]))
        try await withJWTService { api in
            let path = "/v1/channels/\(channel)/messages"
            let created = try await api.send(.post, path, json: #"{"content":"mine"}"#, headers: bearer(aliceToken))
            let id = try #require(created.json["id"] as? String)
            let edit = try await api.send(.patch, "\(path)/\(id)", json: #"{"content":"bob's"}"#, headers: bearer(bobToken))
            #expect(edit.status == .forbidden)
            let moderatorEdit = try await api.send(.patch, "\(path)/\(id)", json: #"{"content":"mod"}"#, headers: bearer(moderatorToken))
            #expect(moderatorEdit.status == .forbidden)
            #expect(try await api.send(.delete, "\(path)/\(id)", headers: bearer(bobToken)).status == .forbidden)
            #expect(try await api.send(.delete, "\(path)/\(id)", headers: bearer(moderatorToken)).status == .noContent)
            let tombstone = try await api.send(.get, "\(path)/\(id)", headers: bearer(bobToken))
            #expect(tombstone.json["deleted_at"] is String)
        }
    }
}
