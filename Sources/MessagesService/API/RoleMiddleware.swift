import Hummingbird

/// Admits only verified callers whose token carries `role` (after `CallerMiddleware`); others
/// get 403.
struct RoleMiddleware: RouterMiddleware {
    typealias Context = AppRequestContext

    let role: String

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        guard try context.verifiedCaller().roles.contains(role) else {
            throw APIError.permissionDenied("only a token with the \(role) role may do this")
        }
        return try await next(request, context)
    }
}
