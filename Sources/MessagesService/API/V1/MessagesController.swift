import Foundation
import HTTPTypes
import Hummingbird

/// The v1 messages API: `/v1/channels/{channel_id}/messages...`.
struct MessagesController<Store: MessageStore>: Sendable {
    let store: Store
    /// Answers the newest page of a timeline when set; nil reads every page from the store.
    let timeline: TimelineCache?
    let authenticator: Authenticator
    /// Limits each user's requests when set.
    let rateLimiter: RateLimiter?
    /// Signs the page cursors this API hands out and checks the ones it is given.
    let cursorCodec: CursorCodec
    let validator: MessageValidator
    /// Who may use which channel; nil lets every caller use every channel.
    let access: ChannelAccess?

    init(
        store: Store, timeline: TimelineCache?, validator: MessageValidator, authenticator: Authenticator,
        rateLimiter: RateLimiter?, cursorCodec: CursorCodec, access: ChannelAccess?
    ) {
        self.access = access
        self.store = store
        self.timeline = timeline
        self.validator = validator
        self.authenticator = authenticator
        self.rateLimiter = rateLimiter
        self.cursorCodec = cursorCodec
    }

    private var limits: MessageLimits { validator.limits }

    /// The message routes under `v1` (a group that answers errors in v1's words): the caller
    /// established first, then their access to the channel (when `access` is set).
    func addRoutes(to v1: RouterGroup<AppRequestContext>) {
        v1.get("limits") { _, _ in try JSONResponse.make(limits) }
        let messages = channelGroup("messages", of: v1)
        messages.post(use: create)
        messages.get(use: list)
        messages.get(":message_id", use: get)
        messages.patch(":message_id", use: edit)
        messages.delete(":message_id", use: delete)
        messages.get(":message_id/replies", use: replies)
        messages.get(":message_id/history", use: history)
        channelGroup("changes", of: v1).get(use: changes)
        let read = channelGroup("read", of: v1)
        read.get(use: readState)
        read.put(use: markRead)
    }

    private func channelGroup(_ path: String, of v1: RouterGroup<AppRequestContext>) -> RouterGroup<AppRequestContext> {
        v1.channelGroup(path, caller: CallerMiddleware(authenticator: authenticator, rateLimiter: rateLimiter), access: access)
    }

    @Sendable func create(_ request: Request, context: AppRequestContext) async throws -> Response {
        let user = try context.verifiedCaller()
        let channelID = try V1Dialect.channelID("channel_id", context)
        let body = try await V1Dialect.body(CreateMessageBody.self, request)
        let attachments = try validator.attachments(body.attachments ?? [])
        let new = NewMessage(
            channelID: channelID, authorID: user.userID, type: try validator.type(body.type) ?? .text,
            content: try validator.content(body.content, allowEmpty: !attachments.isEmpty), attachments: attachments,
            parentID: try validator.uuid(body.parent_id, field: "parent_id"),
            idempotencyKey: try validator.idempotencyKey(request.headers[.idempotencyKey], field: "Idempotency-Key")
                ?? validator.idempotencyKey(body.client_message_id, field: "client_message_id")
        )
        switch try await store.create(new) {
        case .created(let write):
            let message = write.message
            var headers = Self.etag(message)
            headers[.location] = "/v1/channels/\(channelID.lowercased)/messages/\(message.id.lowercased)"
            return JSONResponse.make(bytes: ByteBuffer(bytes: MessageBody.json(message)), status: .created, headers: headers)
        case .replayed(let message):
            var headers = Self.etag(message)
            headers[.idempotentReplayed] = "true"
            return JSONResponse.make(bytes: ByteBuffer(bytes: MessageBody.json(message)), status: .ok, headers: headers)
        }
    }

    @Sendable func list(_ request: Request, context: AppRequestContext) async throws -> Response {
        let channelID = try V1Dialect.channelID("channel_id", context)
        return try await page(request, channelID: channelID, scope: .timeline)
    }

    @Sendable func replies(_ request: Request, context: AppRequestContext) async throws -> Response {
        let channelID = try V1Dialect.channelID("channel_id", context)
        let rootID = try V1Dialect.pathID("message_id", context)
        guard try await store.seq(ofMessage: rootID, channelID: channelID) != nil else {
            throw APIError.notFound("message \(rootID.lowercased) not found in this channel")
        }
        return try await page(request, channelID: channelID, scope: .replies(to: rootID))
    }

    @Sendable func get(_ request: Request, context: AppRequestContext) async throws -> Response {
        let channelID = try V1Dialect.channelID("channel_id", context)
        let messageID = try V1Dialect.pathID("message_id", context)
        let message = try await store.message(id: messageID, channelID: channelID)
        return JSONResponse.make(bytes: ByteBuffer(bytes: MessageBody.json(message)), headers: Self.etag(message))
    }

    @Sendable func edit(_ request: Request, context: AppRequestContext) async throws -> Response {
        let user = try context.verifiedCaller()
        let channelID = try V1Dialect.channelID("channel_id", context)
        let messageID = try V1Dialect.pathID("message_id", context)
        let expectedVersion = try Self.ifMatchVersion(request)
        let body = try await V1Dialect.body(EditMessageBody.self, request)
        guard body.content != nil || body.attachments != nil else {
            throw APIError.invalidArgument("the body must change content or attachments")
        }
        // Whether the message keeps any text or attachment the store decides, which knows both.
        let edit = MessageEdit(
            content: try body.content.map { try validator.content($0, allowEmpty: true) },
            attachments: try body.attachments.map { try validator.attachments($0) },
            expectedVersion: expectedVersion
        )
        let message = try await store.edit(id: messageID, channelID: channelID, by: user.userID, edit).message
        return JSONResponse.make(bytes: ByteBuffer(bytes: MessageBody.json(message)), headers: Self.etag(message))
    }

    @Sendable func delete(_ request: Request, context: AppRequestContext) async throws -> Response {
        let user = try context.verifiedCaller()
        let channelID = try V1Dialect.channelID("channel_id", context)
        let messageID = try V1Dialect.pathID("message_id", context)
        _ = try await store.delete(id: messageID, channelID: channelID, by: user.userID, asModerator: context.callerModerates)
        return Response(status: .noContent)
    }

    /// Earlier versions are for the author and moderators: an edit may have removed what its
    /// author did not want others to read.
    @Sendable func history(_ request: Request, context: AppRequestContext) async throws -> Response {
        let user = try context.verifiedCaller()
        let channelID = try V1Dialect.channelID("channel_id", context)
        let messageID = try V1Dialect.pathID("message_id", context)
        let message = try await store.message(id: messageID, channelID: channelID)
        guard message.authorID == user.userID || context.callerModerates else {
            throw APIError.permissionDenied("only the author or a moderator may read the edit history of a message")
        }
        let revisions = try await store.history(id: messageID, channelID: channelID)
        return try JSONResponse.make(["items": revisions.map(RevisionBody.init)])
    }

    /// Every change after `since` (a channel version, 0 by default), in version order, `limit` at
    /// a time; a `since` ahead of the channel is a client that must reload (410).
    @Sendable func changes(_ request: Request, context: AppRequestContext) async throws -> Response {
        let channelID = try V1Dialect.channelID("channel_id", context)
        let since = try Self.since(request)
        let limit = try V1Dialect.limit(request, limits: limits)
        let changes = try await store.changes(channelID: channelID, since: since, limit: limit)
        guard since <= changes.channelVersion else {
            throw APIError.reloadRequired(
                "since \(since) is ahead of this channel's version \(changes.channelVersion): "
                    + "reload the newest page and follow the changes from its channel version"
            )
        }
        return JSONResponse.make(bytes: ChangesJSON.v1(changes, since: since))
    }

    /// The caller's read marker in the channel and how many root messages of others came after it.
    @Sendable func readState(_ request: Request, context: AppRequestContext) async throws -> Response {
        let user = try context.verifiedCaller()
        let channelID = try V1Dialect.channelID("channel_id", context)
        return try JSONResponse.make(ReadStateBody(try await store.readState(channelID: channelID, userID: user.userID)))
    }

    /// Moves the caller's read marker forward to `seq` (a marker never moves back, so a late or
    /// repeated call changes nothing) and answers the read state after it.
    @Sendable func markRead(_ request: Request, context: AppRequestContext) async throws -> Response {
        let user = try context.verifiedCaller()
        let channelID = try V1Dialect.channelID("channel_id", context)
        let body = try await V1Dialect.body(ReadMarkerBody.self, request)
        guard body.seq >= 0 else { throw APIError.invalidArgument("seq must be a message seq, an integer 0..\(Int64.max)") }
        guard let state = try await store.markRead(channelID: channelID, userID: user.userID, seq: body.seq) else {
            throw APIError.invalidArgument("seq \(body.seq) is after the channel's last message")
        }
        return try JSONResponse.make(ReadStateBody(state))
    }

    private static func since(_ request: Request) throws -> Int64 {
        try request.uri.queryParameters.get("since").map { try V1Dialect.channelVersion($0, field: "since") } ?? 0
    }

    // MARK: - Paging

    private func page(_ request: Request, channelID: UUID, scope: MessageScope) async throws -> Response {
        let query = request.uri.queryParameters
        let limit = try V1Dialect.limit(request, limits: limits)
        let anchors = ["before", "after", "around"].compactMap { name in query.get(name).map { (name, $0) } }
        guard anchors.count <= 1 else {
            throw APIError.invalidArgument("give at most one of before, after, around")
        }
        let cursors = cursorCodec.cursors(channelID: channelID, scope: scope)
        var position = PagePosition.newest
        if let (name, value) = anchors.first {
            let seq = try await anchorSeq(name: name, value: value, channelID: channelID, cursors: cursors)
            position =
                switch name {
                case "before": .before(seq: seq)
                case "after": .after(seq: seq)
                default: .around(seq: seq)
                }
        }
        if let timeline, scope == .timeline, position == .newest {
            let page = try await timeline.newestPage(channelID: channelID, limit: limit, cursors: cursors)
            return JSONResponse.make(bytes: page.body, headers: [.cacheStatus: page.status.rawValue])
        }
        let page = try await store.page(channelID: channelID, scope: scope, position: position, limit: limit)
        return JSONResponse.make(
            bytes: try PageJSON.v1(page: page, position: position, cursors: cursors),
            headers: [.cacheStatus: TimelineCache.Status.bypass.rawValue]
        )
    }

    /// A message id or a cursor of this very page sequence, as a `seq`.
    private func anchorSeq(name: String, value: String, channelID: UUID, cursors: PageCursors) async throws -> Int64 {
        if let seq = cursors.seq(of: value) { return seq }
        if let id = UUID(uuidString: value) {
            guard let seq = try await store.seq(ofMessage: id, channelID: channelID) else {
                throw APIError.invalidArgument("\(name) names no message of this channel")
            }
            return seq
        }
        throw APIError.invalidArgument("\(name) must be a message id or a cursor from an earlier page of this list")
    }

    // MARK: - Request helpers

    /// `If-Match: "3"`, `W/"3"`, `3` or `*`.
    static func ifMatchVersion(_ request: Request) throws -> Int64? {
        guard var value = request.headers[.ifMatch]?.trimmingCharacters(in: .whitespaces) else { return nil }
        if value == "*" { return nil }
        if value.hasPrefix("W/") { value.removeFirst(2) }
        value = value.trimmingCharacters(in: CharacterSet(charactersIn: "\""))
        guard let version = Int64(value) else {
            throw APIError.invalidArgument("If-Match must be a message version, e.g. \"3\"")
        }
        return version
    }

    static func etag(_ message: Message) -> HTTPFields {
        [.eTag: "\"\(message.version)\""]
    }
}
