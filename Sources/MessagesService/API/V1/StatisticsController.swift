import Foundation
import Hummingbird

/// Statistics: `GET /v1/channels/{channel_id}/stats` for whoever may read the channel, and
/// `GET /v1/stats` for tokens with the `moderator` role (operators).
struct StatisticsController: Sendable {
    let statistics: any StatisticsStore
    let authenticator: Authenticator
    let rateLimiter: RateLimiter?
    let access: ChannelAccess?

    func addRoutes(to v1: RouterGroup<AppRequestContext>) {
        let caller = CallerMiddleware(authenticator: authenticator, rateLimiter: rateLimiter)
        v1.channelGroup("stats", caller: caller, access: access).get(use: channel)
        v1.group("stats").add(middleware: caller).add(middleware: RoleMiddleware(role: "moderator")).get(use: service)
    }

    @Sendable func channel(_ request: Request, context: AppRequestContext) async throws -> Response {
        let channelID = try V1Dialect.channelID("channel_id", context)
        return try JSONResponse.make(ChannelStatisticsBody(try await statistics.channel(channelID)))
    }

    @Sendable func service(_ request: Request, context: AppRequestContext) async throws -> Response {
        try JSONResponse.make(ServiceStatisticsBody(try await statistics.service()))
    }
}
