import Foundation
import Hummingbird

/// The membership API for the channels service, which owns memberships:
/// `/v1/channels/{channel_id}/members...`, for tokens with the `service` role only.
struct MembersController: Sendable {
    /// The memberships, and this pod's cache of them.
    let access: ChannelAccess
    let authenticator: Authenticator

    private var store: any MembershipStore { access.store }

    /// The most members one page lists.
    static let maxPageSize = 1000

    /// The member routes under `v1` (a group that answers errors in v1's words). Service calls
    /// are not rate-limited: they come from a trusted service, in bursts when it resyncs.
    func addRoutes(to v1: RouterGroup<AppRequestContext>) {
        let members = v1.group("channels/:channel_id/members")
            .add(middleware: CallerMiddleware(authenticator: authenticator, rateLimiter: nil))
            .add(middleware: RoleMiddleware(role: "service"))
        members.get(use: list)
        members.put(":user_id", use: put)
        members.delete(":user_id", use: delete)
    }

    /// Adds a member or changes their role: 201 for a new member, 200 otherwise (also when
    /// nothing changed, so a retry is harmless).
    @Sendable func put(_ request: Request, context: AppRequestContext) async throws -> Response {
        let channelID = try V1Dialect.channelID("channel_id", context)
        let userID = try V1Dialect.pathID("user_id", context)
        let body = try await V1Dialect.body(MembershipBody.self, request)
        guard let role = ChannelRole(rawValue: body.role) else {
            throw ValidationFailure(field: "role", message: "role must be one of member, moderator", kind: "enum")
        }
        let created = try await store.setRole(role, of: userID, in: channelID)
        // This pod at once; the others when they hear the change.
        access.cache.invalidate(MembershipCache.Key(channelID: channelID, userID: userID))
        return try JSONResponse.make(
            MemberBody(channelID: channelID, ChannelMember(userID: userID, role: role)), status: created ? .created : .ok
        )
    }

    /// Ends a membership; 204 whether or not there was one.
    @Sendable func delete(_ request: Request, context: AppRequestContext) async throws -> Response {
        let channelID = try V1Dialect.channelID("channel_id", context)
        let userID = try V1Dialect.pathID("user_id", context)
        try await store.remove(userID, from: channelID)
        access.cache.invalidate(MembershipCache.Key(channelID: channelID, userID: userID))
        return Response(status: .noContent)
    }

    /// A page of members in user id order: `limit` (1...1000, 100), `after` a user id.
    @Sendable func list(_ request: Request, context: AppRequestContext) async throws -> Response {
        let channelID = try V1Dialect.channelID("channel_id", context)
        let query = request.uri.queryParameters
        let limit = try V1Dialect.limit(query.get("limit"), default: 100, max: Self.maxPageSize)
        var after: UUID?
        if let raw = query.get("after") {
            guard let id = UUID(uuidString: raw) else { throw APIError.invalidArgument("after must be a user id") }
            after = id
        }
        let members = try await store.members(of: channelID, after: after, limit: limit + 1)
        let page = members.prefix(limit)
        return try JSONResponse.make(
            MemberListBody(
                items: page.map { MemberBody(channelID: channelID, $0) },
                nextAfter: members.count > limit ? page.last?.userID.lowercased : nil
            )
        )
    }
}
