import Hummingbird

/// Reads the ids of the path before anything else runs, so that a malformed id is the first
/// error a request gets, as the legacy API's FastAPI service answered it (it validated the path
/// before the caller) and before it takes from a rate-limit bucket. The handlers read the same ids
/// again, which cannot fail then.
struct PathIDMiddleware: RouterMiddleware {
    typealias Context = AppRequestContext

    let dialect: any APIDialect.Type
    /// The path parameters that hold ids, in the order they are checked.
    let parameters: [String]

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        for name in parameters where context.parameters.get(name) != nil {
            _ = try dialect.pathID(name, context)
        }
        return try await next(request, context)
    }
}
