import Hummingbird

/// The legacy API's caller with `INF326_AUTH=header`, where `X-User-Id` is taken on trust as the
/// original service took it: a write must carry the header (FastAPI answered a missing one with
/// 422 before anything else), reads need none, and every request takes a token from its client
/// address's bucket before its body is read, since the header proves nothing. The header itself
/// is parsed later: by the access check in `members` mode, else by the handler after the body
/// (`ThreadsController.author`), as the original did; `context.caller` stays nil.
struct ClaimedCallerMiddleware: RouterMiddleware {
    typealias Context = AppRequestContext

    let rateLimiter: RateLimiter?
    let clientAddress: ClientAddressResolver

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        if request.method != .get, request.method != .head, request.headers[.userID] == nil {
            throw INF326Error.unprocessable(type: "missing", loc: ["header", "X-User-Id"], msg: "Field required", input: nil)
        }
        try await rateLimiter?.admit(.clientAddress(clientAddress.address(of: request, peer: context.remoteAddress)))
        return try await next(request, context)
    }
}
