import Hummingbird

/// The pages for people: the reference chat client at `/app/` (when `WEB_CLIENT` is on) and the
/// API reference at `/docs/` (Swagger UI over `/openapi.yaml`, with "try it out" against this
/// same origin). Both are static files from the module's resources; no CDN, no build step.
struct WebController: Sendable {
    /// Serve `/app/`.
    let servesApp: Bool
    /// Whether `POST /dev/token` exists, which the page needs to know to offer its button.
    let devTokens: Bool

    /// Only this origin: the page's scripts, styles and API calls; no inline script anywhere.
    static let appPolicy =
        "default-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    /// Swagger UI sets inline styles on the elements it builds.
    static let docsPolicy =
        "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"

    func addRoutes(to router: Router<AppRequestContext>) {
        if servesApp {
            let config = ByteBuffer(string: #"{"dev_tokens":\#(devTokens)}"#)
            addFolder("app", files: StaticFiles.app, policy: Self.appPolicy, to: router) { name in
                // What the page cannot know from its files: whether this server mints tokens.
                guard name == "config.json" else { return nil }
                return Response(
                    status: .ok, headers: [.contentType: "application/json", .cacheControl: "no-store"],
                    body: .init(byteBuffer: config)
                )
            }
        }
        addFolder("docs", files: StaticFiles.docs, policy: Self.docsPolicy, to: router) { _ in nil }
    }

    /// `/<folder>/` answers its `index.html`, `/<folder>/<name>` the file of that name, and
    /// `/<folder>` redirects to `/<folder>/`, so the pages' relative links resolve inside it.
    private func addFolder(
        _ folder: String, files: StaticFiles, policy: String, to router: Router<AppRequestContext>,
        dynamic: @escaping @Sendable (String) -> Response?
    ) {
        router.get(RouterPath(folder)) { request, _ in
            guard request.uri.path.hasSuffix("/") else {
                // Relative, so it stays right behind a gateway that serves the service under a prefix.
                return Response(status: .permanentRedirect, headers: [.location: "\(folder)/"])
            }
            return try Self.file("index.html", in: files, request: request, policy: policy)
        }
        router.get(RouterPath("\(folder)/**")) { request, context in
            let name = context.parameters.getCatchAll().joined(separator: "/")
            if let response = dynamic(name) { return response }
            return try Self.file(name.isEmpty ? "index.html" : name, in: files, request: request, policy: policy)
        }
    }

    private static func file(_ name: String, in files: StaticFiles, request: Request, policy: String) throws -> Response {
        guard let response = files.response(for: name, request: request, securityPolicy: policy) else {
            throw APIError.notFound("no such file")
        }
        return response
    }
}
