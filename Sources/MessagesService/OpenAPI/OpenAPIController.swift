import Foundation
import Hummingbird

/// Serves the OpenAPI 3.1 description of the service at `/openapi.yaml`.
struct OpenAPIController: Sendable {
    /// The spec, read once from the module's resources.
    static let specification: Data? = Bundle.module.url(forResource: "openapi", withExtension: "yaml")
        .flatMap { try? Data(contentsOf: $0) }

    func addRoutes(to router: Router<AppRequestContext>) {
        router.get("openapi.yaml") { _, _ in
            guard let spec = Self.specification else { throw APIError.notFound("the OpenAPI spec is not installed") }
            return Response(
                status: .ok, headers: [.contentType: "application/yaml"], body: .init(byteBuffer: ByteBuffer(bytes: spec))
            )
        }
    }
}
