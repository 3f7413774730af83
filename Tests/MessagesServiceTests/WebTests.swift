import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

@testable import MessagesService

/// The chat page and API reference files, and development tokens: no server needed.
@Suite struct WebTests {
    static let secret = "web-tests-secret-0123456789-0123456789"

    static func devConfiguration(devTokens: Bool = true, webClient: Bool = true) throws -> ServiceConfiguration {
        var environment = ["AUTH_MODE": "jwt", "JWT_SECRET": secret, "WEB_CLIENT": "\(webClient)"]
        if devTokens { environment["DEV_TOKENS"] = "true" }
        return try ServiceConfiguration(environment: environment)
    }

    static func verifier() async throws -> JWTVerifier {
        try await JWTVerifier(
            key: .hmacSecret(secret), expectations: .init(issuer: "messages-service", audience: "messages-api")
        )
    }

    @Test func thePageItsFilesAndTheReferenceAreServedWithTheirTypes() async throws {
        try await withMemoryService(configuration: try Self.devConfiguration()) { api in
            for (path, type, marker) in [
                ("/app/", "text/html", "<title>messages-service chat</title>"),
                ("/app/app.js", "text/javascript", "Idempotency-Key"),
                ("/app/app.css", "text/css", "#messages"),
                ("/docs/", "text/html", "swagger-ui-bundle.js"),
                ("/docs/docs.js", "text/javascript", "../openapi.yaml"),
                ("/docs/swagger-ui/swagger-ui-bundle.js", "text/javascript", "SwaggerUIBundle"),
                ("/docs/swagger-ui/swagger-ui.css", "text/css", ".swagger-ui"),
            ] {
                let reply = try await api.send(.get, path)
                #expect(reply.status == .ok, "\(path)")
                #expect(reply.headers[.contentType]?.hasPrefix(type) == true, "\(path)")
                #expect(String(decoding: reply.bytes, as: UTF8.self).contains(marker), "\(path)")
                #expect(reply.headers[.contentSecurityPolicy]?.contains("default-src 'self'") == true, "\(path)")
                #expect(reply.headers[.xContentTypeOptions] == "nosniff")
            }
        }
    }

    @Test func aFolderWithoutItsSlashRedirectsSoRelativeLinksResolve() async throws {
        try await withMemoryService(configuration: try Self.devConfiguration()) { api in
            for folder in ["app", "docs"] {
                let reply = try await api.send(.get, "/\(folder)")
                #expect(reply.status == .permanentRedirect)
                #expect(reply.headers[.location] == "\(folder)/")
            }
        }
    }

    @Test func aCurrentCopyIsA304AndAChangedOneTheFile() async throws {
        try await withMemoryService(configuration: try Self.devConfiguration()) { api in
            let first = try await api.send(.get, "/app/app.js")
            let etag = try #require(first.headers[.eTag])
            #expect(first.headers[.cacheControl] == "no-cache")
            let again = try await api.send(.get, "/app/app.js", headers: [.ifNoneMatch: etag])
            #expect(again.status == .notModified)
            #expect(again.bytes.isEmpty)
            let stale = try await api.send(.get, "/app/app.js", headers: [.ifNoneMatch: "\"0000\""])
            #expect(stale.status == .ok)
            #expect(stale.bytes == first.bytes)
        }
    }

    /// Only the folder's own files, whatever the path says: no traversal, no unserved kinds.
    @Test func namesOutsideTheFolderOrOfUnservedKindsAre404() async throws {
        try await withMemoryService(configuration: try Self.devConfiguration()) { api in
            for path in [
                "/app/../openapi.yaml", "/app/%2e%2e/%2e%2e/etc/passwd", "/app/nothing.js", "/docs/swagger-ui/LICENSE",
                "/docs/swagger-ui/VERSION.md", "/app/app.js/x", "/docs/..%2fapp%2fapp.js",
            ] {
                let reply = try await api.send(.get, path)
                #expect(reply.status == .notFound, "\(path): \(reply.status)")
            }
        }
    }

    @Test func thePageIsOffWhenWebClientIsFalseAndTheReferenceStays() async throws {
        try await withMemoryService(configuration: try Self.devConfiguration(devTokens: false, webClient: false)) { api in
            for (method, path, status) in [
                (HTTPRequest.Method.get, "/app/", HTTPResponse.Status.notFound), (.get, "/app/app.js", .notFound),
                (.get, "/docs/", .ok), (.post, "/dev/token", .notFound),
            ] {
                let reply = try await api.send(method, path, json: method == .post ? "{}" : nil)
                #expect(reply.status == status, "\(path)")
            }
        }
    }

    @Test func thePageLearnsWhetherTheServerMintsTokens() async throws {
        for devTokens in [true, false] {
            try await withMemoryService(configuration: try Self.devConfiguration(devTokens: devTokens)) { api in
                let reply = try await api.send(.get, "/app/config.json")
                #expect(reply.json["dev_tokens"] as? Bool == devTokens)
            }
        }
    }

    @Test func aDevelopmentTokenNamesTheUserAndRolesAndWorksOnTheAPI() async throws {
        let verifier = try await Self.verifier()
        let user = UUID()
        try await withMemoryService(configuration: try Self.devConfiguration(), authenticator: .jwt(verifier)) { api in
            let minted = try await api.send(
                .post, "/dev/token", json: #"{"user_id":"\#(user.uuidString)","roles":["moderator"]}"#)
            #expect(minted.status == .created)
            let token = try #require(minted.json["token"] as? String)
            #expect(minted.json["user_id"] as? String == user.uuidString.lowercased())
            let identity = try await verifier.verify(token)
            #expect(identity.userID == user)
            #expect(identity.roles == ["moderator"])
            let expiry = try #require(minted.json["expires_at"] as? String)
            let expires = try #require(try? Date(expiry, strategy: .iso8601))
            #expect(abs(expires.timeIntervalSinceNow - 3600) < 5)
            let write = try await api.send(
                .post, "/v1/channels/\(UUID())/messages", json: #"{"content":"signed in"}"#,
                headers: [.authorization: "Bearer \(token)"])
            #expect(write.status == .created)
            #expect(write.json["author_id"] as? String == user.uuidString.lowercased())

            let anyone = try await api.send(.post, "/dev/token", json: "{}")
            let other = try await verifier.verify(try #require(anyone.json["token"] as? String))
            #expect(other.userID != user)
            #expect(other.roles.isEmpty)
        }
    }

    @Test(arguments: [
        (#"{"user_id":"nobody"}"#, "user_id must be a UUID"),
        (#"{"roles":["admin"]}"#, "roles may hold moderator only"),
        (#"{"roles":["service"]}"#, "roles may hold moderator only"),
        (#"{"roles":["moderator","moderator"]}"#, "roles may hold moderator only"),
        (#"{"roles":"moderator"}"#, "roles must be an array"),
        (#"[]"#, "request body must be a JSON object"),
    ])
    func aBadTokenRequestNamesItsField(body: String, message: String) async throws {
        try await withMemoryService(configuration: try Self.devConfiguration()) { api in
            let reply = try await api.send(.post, "/dev/token", json: body)
            #expect(reply.status == .badRequest)
            #expect(reply.errorMessage == message)
        }
    }

    /// Anyone who reaches the port could mint any identity: never beside a public key or headers.
    @Test func developmentTokensNeedJWTWithASecret() throws {
        let keyFile = FileManager.default.temporaryDirectory.appendingPathComponent("web-tests-\(UUID()).pem")
        try P256.Signing.PrivateKey().publicKey.pemRepresentation.write(to: keyFile, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: keyFile) }
        for environment in [
            ["AUTH_MODE": "header", "DEV_TOKENS": "true"],
            ["AUTH_MODE": "jwt", "DEV_TOKENS": "true"],
            ["AUTH_MODE": "jwt", "JWT_PUBLIC_KEY_FILE": keyFile.path, "DEV_TOKENS": "true"],
        ] {
            #expect(throws: ConfigurationError.self) { try ServiceConfiguration(environment: environment) }
            do {
                _ = try ServiceConfiguration(environment: environment)
            } catch {
                #expect(error.variable == "DEV_TOKENS", "\(environment)")
            }
        }
        var withoutTokens = ["AUTH_MODE": "jwt", "JWT_PUBLIC_KEY_FILE": keyFile.path]
        #expect(try ServiceConfiguration(environment: withoutTokens).devTokens == false)
        withoutTokens["DEV_TOKENS"] = "false"
        #expect(try ServiceConfiguration(environment: withoutTokens).devTokens == false)
    }

    @Test func onlyCallersOnThisHostGetATokenFromAServerOnTheNetwork() throws {
        #expect(DevTokenController.isLoopback(try SocketAddress(ipAddress: "127.0.0.1", port: 1)))
        #expect(DevTokenController.isLoopback(try SocketAddress(ipAddress: "127.8.9.10", port: 1)))
        #expect(DevTokenController.isLoopback(try SocketAddress(ipAddress: "::1", port: 1)))
        #expect(!DevTokenController.isLoopback(try SocketAddress(ipAddress: "10.0.0.7", port: 1)))
        #expect(!DevTokenController.isLoopback(try SocketAddress(ipAddress: "192.168.1.127", port: 1)))
        #expect(!DevTokenController.isLoopback(try SocketAddress(ipAddress: "2001:db8::1", port: 1)))
    }
}
