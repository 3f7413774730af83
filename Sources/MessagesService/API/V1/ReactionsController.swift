import Foundation
import Hummingbird

/// Reactions: `/v1/channels/{channel_id}/messages/{message_id}/reactions/{emoji}`.
///
/// `PUT` adds the caller's reaction, `DELETE` removes it; both are idempotent and answer the
/// message with its counts. `GET` lists who reacted with that emoji. The emoji is the path
/// segment, percent-encoded as any URL carries it (`%F0%9F%91%8D` for 👍).
struct ReactionsController<Store: MessageStore>: Sendable {
    let store: Store
    let authenticator: Authenticator
    let rateLimiter: RateLimiter?
    let access: ChannelAccess?
    let limits: MessageLimits

    func addRoutes(to v1: RouterGroup<AppRequestContext>) {
        let caller = CallerMiddleware(authenticator: authenticator, rateLimiter: rateLimiter)
        let reactions = v1.channelGroup("messages/:message_id/reactions/:emoji", caller: caller, access: access)
        reactions.put { request, context in try await react(request, context, adding: true) }
        reactions.delete { request, context in try await react(request, context, adding: false) }
        reactions.get(use: reactors)
    }

    func react(_ request: Request, _ context: AppRequestContext, adding: Bool) async throws -> Response {
        let user = try context.verifiedCaller()
        let channelID = try V1Dialect.channelID("channel_id", context)
        let messageID = try V1Dialect.pathID("message_id", context)
        let emoji = try Self.emoji(context)
        let write = try await store.react(
            emoji, adding: adding, messageID: messageID, channelID: channelID, userID: user.userID)
        return JSONResponse.make(
            bytes: ByteBuffer(bytes: MessageBody.json(write.message)), headers: MessagesController<Store>.etag(write.message))
    }

    /// Who reacted with the emoji, `limit` at a time, ascending by user id after `after`.
    @Sendable func reactors(_ request: Request, context: AppRequestContext) async throws -> Response {
        let channelID = try V1Dialect.channelID("channel_id", context)
        let messageID = try V1Dialect.pathID("message_id", context)
        let emoji = try Self.emoji(context)
        let limit = try V1Dialect.limit(request, limits: limits)
        let after = try request.uri.queryParameters.get("after").map { raw in
            guard let id = UUID(uuidString: raw) else {
                throw APIError.invalidArgument("after must be a user id (the next_after of the previous page)")
            }
            return id
        }
        let page = try await store.reactors(emoji, messageID: messageID, channelID: channelID, after: after, limit: limit)
        return try JSONResponse.make(ReactorsBody(page, emoji: emoji))
    }

    private static func emoji(_ context: AppRequestContext) throws -> ReactionEmoji {
        guard let emoji = ReactionEmoji(percentEncoded: context.parameters.get("emoji") ?? "") else {
            throw APIError.invalidArgument(
                "emoji must be one emoji (a single grapheme cluster, e.g. %F0%9F%91%8D) or a :short_code: of "
                    + "lower-case letters, digits, _, + and -, at most \(ReactionEmoji.maxBytes) bytes"
            )
        }
        return emoji
    }
}
