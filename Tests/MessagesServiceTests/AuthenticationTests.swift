import Foundation
import HTTPTypes
import JWTKit
import Testing

@testable import MessagesService

/// `AUTH_MODE=jwt`: token verification and who may change what.
@Suite(.tags(.servers)) struct AuthenticationTests {
    static let secret = "test-secret-0123456789-0123456789-abcdef"
    let alice = UUID()
    let bob = UUID()
    let expectations = JWTVerifier.Expectations(issuer: "messages-service", audience: "messages-api")

    func claims(
        _ user: UUID, expires: TimeInterval = 3600, notBefore: TimeInterval = 0, issuer: String = "messages-service",
        audience: String = "messages-api", roles: [String]? = nil, issuedAt: TimeInterval? = 0
    ) -> JWTVerifier.Claims {
        JWTVerifier.Claims(
            sub: .init(value: user.uuidString.lowercased()), exp: .init(value: Date().addingTimeInterval(expires)),
            nbf: .init(value: Date().addingTimeInterval(notBefore)),
            iat: issuedAt.map { .init(value: Date().addingTimeInterval($0)) }, iss: .init(value: issuer),
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
            let reply = try await api.send(
                .post, "/v1/channels/\(UUID())/messages", json: #"{"content":"hi"}"#, headers: bearer(token))
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
        let tooLong = try await hs256(claims(alice, expires: 25 * 3600))
        let tooLongWithoutIssuedAt = try await hs256(claims(alice, expires: 25 * 3600, issuedAt: nil))
        let issuedInTheFuture = try await hs256(claims(alice, expires: 365 * 86_400 + 3600, issuedAt: 365 * 86_400))
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
            (tooLong, "token lifetime exceeds 86400 seconds"),
            (tooLongWithoutIssuedAt, "token lifetime exceeds 86400 seconds"),
            (issuedInTheFuture, "token is issued in the future"),
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
            let moderatorEdit = try await api.send(
                .patch, "\(path)/\(id)", json: #"{"content":"mod"}"#, headers: bearer(moderatorToken))
            #expect(moderatorEdit.status == .forbidden)
            #expect(try await api.send(.delete, "\(path)/\(id)", headers: bearer(bobToken)).status == .forbidden)
            #expect(try await api.send(.delete, "\(path)/\(id)", headers: bearer(moderatorToken)).status == .noContent)
            let tombstone = try await api.send(.get, "\(path)/\(id)", headers: bearer(bobToken))
            #expect(tombstone.json["deleted_at"] is String)
        }
    }

    @Test func aTokenIssuedLongAgoIsFineWhileItsLifetimeIsWithinTheLimit() async throws {
        let verifier = try await JWTVerifier(key: .hmacSecret(Self.secret), expectations: expectations)
        let token = try await hs256(claims(alice, expires: 1800, issuedAt: -23 * 3600))
        #expect(try await verifier.verify(token).userID == alice)
    }

    @Test func editHistoryIsForTheAuthorAndModeratorsOnly() async throws {
        let channel = UUID()
        let aliceToken = try await hs256(claims(alice))
        let bobToken = try await hs256(claims(bob))
        let moderatorToken = try await hs256(claims(UUID(), roles: ["moderator"]))
        try await withJWTService { api in
            let path = "/v1/channels/\(channel)/messages"
            let created = try await api.send(.post, path, json: #"{"content":"first draft"}"#, headers: bearer(aliceToken))
            let id = try #require(created.json["id"] as? String)
            #expect(
                try await api.send(.patch, "\(path)/\(id)", json: #"{"content":"final"}"#, headers: bearer(aliceToken)).status
                    == .ok)
            let forBob = try await api.send(.get, "\(path)/\(id)/history", headers: bearer(bobToken))
            #expect(forBob.status == .forbidden)
            #expect(!String(decoding: forBob.bytes, as: UTF8.self).contains("first draft"))
            for token in [aliceToken, moderatorToken] {
                let history = try await api.send(.get, "\(path)/\(id)/history", headers: bearer(token))
                #expect(history.status == .ok)
                #expect(history.items.first?["content"] as? String == "first draft")
            }
        }
    }

    @Test func legacyAPIWithTokensTakesTheAuthorFromTheToken() async throws {
        let thread = UUID()
        let aliceToken = try await hs256(claims(alice))
        let bobToken = try await hs256(claims(bob))
        try await withJWTService { api in
            let path = "/threads/\(thread)/messages"
            // No token: nothing is written, whoever X-User-Id names.
            let anonymous = try await api.send(.post, path, user: alice, json: #"{"content":"forged"}"#)
            #expect(anonymous.status == .unauthorized)
            #expect(anonymous.json["detail"] as? String == "an Authorization: Bearer token is required")
            #expect(anonymous.headers[.wwwAuthenticate] != nil)
            #expect(try await api.send(.get, path).status == .unauthorized)
            // X-User-Id naming someone else than the token's subject.
            var headers = bearer(bobToken)
            headers[.testUserID] = alice.uuidString
            let impersonation = try await api.send(.post, path, json: #"{"content":"as alice"}"#, headers: headers)
            #expect(impersonation.status == .forbidden)
            // The token alone, or with a matching X-User-Id, writes as its subject.
            let created = try await api.send(.post, path, json: #"{"content":"mine"}"#, headers: bearer(aliceToken))
            #expect(created.status == .created)
            #expect(created.json["user_id"] as? String == alice.uuidString.lowercased())
            let id = try #require(created.json["id"] as? String)
            headers = bearer(aliceToken)
            headers[.testUserID] = alice.uuidString.lowercased()
            #expect(try await api.send(.put, "\(path)/\(id)", json: #"{"content":"edited"}"#, headers: headers).status == .ok)
            // Bob's token cannot touch Alice's message, whatever header he adds.
            headers = bearer(bobToken)
            headers[.testUserID] = bob.uuidString
            #expect(try await api.send(.delete, "\(path)/\(id)", headers: headers).status == .forbidden)
            let list = try await api.send(.get, path, headers: bearer(bobToken))
            #expect(list.status == .ok)
            #expect(list.items.map { $0["content"] as? String } == ["edited"])
        }
    }
}
