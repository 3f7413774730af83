import Hummingbird

/// Establishes who calls before any handler of its route group runs: the caller is verified
/// (`Authenticator`), put in `context.caller` and on every log line of the request, and takes a
/// token from their rate-limit bucket. Handlers read `context.verifiedCaller()`.
struct CallerMiddleware: RouterMiddleware {
    typealias Context = AppRequestContext

    let authenticator: Authenticator
    /// Limits each user's requests when set.
    let rateLimiter: RateLimiter?
    /// A further check of a verified caller against the request, before the rate limit (the
    /// legacy API refuses an `X-User-Id` naming someone else).
    var confirm: @Sendable (Request, UserIdentity) throws -> Void = { _, _ in }
    /// Takes the token from `?access_token=` too (the live stream, for `EventSource`).
    var acceptsQueryToken = false

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        let user = try await authenticator.authenticate(request, acceptsQueryToken: acceptsQueryToken)
        RequestScope.current?.userID = user.userID
        try confirm(request, user)
        try await rateLimiter?.admit(.user(user.userID))
        var context = context
        context.caller = user
        return try await next(request, context)
    }
}

extension AppRequestContext {
    /// The caller a `CallerMiddleware` verified; a route without one is a wiring fault (500).
    func verifiedCaller() throws -> UserIdentity {
        guard let caller else { throw CallerMissing() }
        return caller
    }
}

/// A handler that needs a verified caller ran in a route group without `CallerMiddleware`.
struct CallerMissing: Error {}
