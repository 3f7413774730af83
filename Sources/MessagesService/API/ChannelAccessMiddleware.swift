import Foundation
import Hummingbird

/// Lets a request reach a channel's routes only when its caller may use the channel
/// (`ChannelAccess`); anyone else gets the 404 a channel that does not exist would get, so a
/// channel's existence does not leak. The caller's role in the channel goes into the context
/// (`context.channelRole`): channel moderators delete others' messages there. Callers whose token
/// has the `moderator` role (operators) use every channel, as moderators.
struct ChannelAccessMiddleware: RouterMiddleware {
    typealias Context = AppRequestContext

    let access: ChannelAccess
    /// How the API reads the channel id of the path.
    let dialect: any APIDialect.Type
    /// The path parameter that holds the channel id.
    let channelParameter: String
    /// Whose access is checked: the verified caller, or the legacy API's claimed one; nil when
    /// the request names nobody.
    var user: @Sendable (Request, AppRequestContext) throws -> UUID? = { _, context in context.caller?.userID }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        let channelID = try dialect.channelID(channelParameter, context)
        let role: ChannelRole?
        if context.caller?.isModerator == true {
            role = .moderator
        } else if let userID = try user(request, context) {
            role = try await access.role(of: userID, in: channelID)
        } else {
            role = nil
        }
        guard let role else { throw dialect.channelNotFound(channelID) }
        var context = context
        context.channelRole = role
        return try await next(request, context)
    }
}

extension AppRequestContext {
    /// Whether the caller moderates: the global `moderator` role (operators), or the channel's.
    var callerModerates: Bool {
        caller?.isModerator == true || channelRole == .moderator
    }
}
