import Foundation
import HTTPTypes
import Hummingbird

/// The INF326 messages API (`/threads/{thread_id}/messages`), answered exactly as that FastAPI
/// service answers, so its web client and load tools keep working. A thread is a channel.
///
/// Its conventions differ from v1 on purpose: lists are newest first and leave deleted messages
/// out, errors are `{"detail": ...}` and validation errors are 422 lists. Deliberate tightenings:
/// only the author (or a moderator) may edit or delete (403), and identity comes from a verified
/// token wherever one exists (`INF326_AUTH=jwt`): then every call needs a bearer token, its `sub`
/// is the author, and an `X-User-Id` that names someone else is a 403. With `INF326_AUTH=header`
/// the service trusts `X-User-Id` as the original did; reads need no identity, and requests are
/// rate-limited by client address, since the header proves nothing.
struct ThreadsController<Store: MessageStore>: Sendable {
    let store: Store
    /// Answers the newest page when set; nil reads every page from the store.
    let timeline: TimelineCache?
    /// Limits requests when set: per verified user, else per client address.
    let rateLimiter: RateLimiter?
    let validator: MessageValidator
    /// `.jwt`: identity from bearer tokens; `.userHeader`: from `X-User-Id`, unverified.
    let authenticator: Authenticator
    let clientAddress: ClientAddressResolver
    /// Who may use which thread; nil lets every caller use every thread.
    let access: ChannelAccess?

    init(
        store: Store, timeline: TimelineCache?, rateLimiter: RateLimiter?, validator: MessageValidator,
        authenticator: Authenticator, clientAddress: ClientAddressResolver, access: ChannelAccess?
    ) {
        self.access = access
        self.store = store
        self.timeline = timeline
        self.rateLimiter = rateLimiter
        self.validator = validator
        self.authenticator = authenticator
        self.clientAddress = clientAddress
    }

    private var limits: MessageLimits { validator.limits }

    /// The message routes under `threads` (a group that answers errors in the legacy API's
    /// words): the path's ids checked first, as FastAPI did; then the caller (verified, or in
    /// `header` mode only required on writes and limited per client address); then their access
    /// to the thread (in `members` mode; in `header` mode the user `X-User-Id` names).
    func addRoutes(to threads: RouterGroup<AppRequestContext>) {
        let messages = threads.group(":thread_id/messages")
            .add(middleware: PathIDMiddleware(dialect: ThreadsDialect.self, parameters: ["thread_id", "message_id"]))
        switch authenticator.mode {
        case .jwt:
            messages.add(
                middleware: CallerMiddleware(authenticator: authenticator, rateLimiter: rateLimiter) { request, user in
                    // A client of the original sends its user in X-User-Id too: it must be the token's.
                    if request.headers[.userID] != nil, try Self.userID(request) != user.userID {
                        throw INF326Error(status: .forbidden, detail: "X-User-Id does not match the authenticated user")
                    }
                })
        case .userHeader:
            messages.add(middleware: ClaimedCallerMiddleware(rateLimiter: rateLimiter, clientAddress: clientAddress))
        }
        if let access, access.mode == .members {
            messages.add(
                middleware: ChannelAccessMiddleware(access: access, dialect: ThreadsDialect.self, channelParameter: "thread_id") {
                    request, context in
                    // In header mode the member is whoever X-User-Id names; a malformed one is the
                    // 400 the original gave it, a missing one names nobody (404).
                    if let caller = context.caller { return caller.userID }
                    return request.headers[.userID] == nil ? nil : try Self.userID(request)
                })
        }
        messages.post(use: create)
        messages.get(use: list)
        messages.put(":message_id", use: update)
        messages.delete(":message_id", use: delete)
    }

    @Sendable func create(_ request: Request, context: AppRequestContext) async throws -> Response {
        let threadID = try ThreadsDialect.channelID("thread_id", context)
        let body = try await ThreadsDialect.body(ThreadCreateBody.self, request)
        // A file message may come with its paths only, as the original allowed.
        let attachments = try validator.attachments((body.paths ?? []).map { Attachment(path: $0) }, field: "paths")
        let type = try validator.type(body.type)
        let content = try validator.content(body.content, allowEmpty: !attachments.isEmpty)
        let authored = NewMessage(
            channelID: threadID, authorID: try Self.author(request, context).userID, type: type, content: content,
            attachments: attachments, parentID: nil, idempotencyKey: nil
        )
        guard case .created(let write) = try await store.create(authored) else {
            throw INF326Error(status: .internalServerError, detail: "Internal Server Error")
        }
        return JSONResponse.make(bytes: ByteBuffer(bytes: ThreadMessageBody.json(write.message)), status: .created)
    }

    @Sendable func list(_ request: Request, context: AppRequestContext) async throws -> Response {
        let threadID = try ThreadsDialect.channelID("thread_id", context)
        let limit = try ThreadsDialect.limit(request, limits: limits)
        guard let cursor = request.uri.queryParameters.get("cursor") else {
            if let timeline {
                let page = try await timeline.newestThreadPage(channelID: threadID, limit: limit)
                return JSONResponse.make(bytes: page.body, headers: [.cacheStatus: page.status.rawValue])
            }
            return try await page(threadID: threadID, position: .newest, limit: limit)
        }
        guard let parsed = INF326Cursor(cursor) else {
            throw INF326Error(status: .badRequest, detail: "Invalid cursor")
        }
        if let seq = try await store.seq(ofMessage: parsed.messageID, channelID: threadID) {
            return try await page(threadID: threadID, position: .before(seq: seq), limit: limit)
        } else if let seq = try await store.lastSeq(createdBefore: parsed.createdAt, channelID: threadID) {
            return try await page(threadID: threadID, position: .before(seq: seq.saturatingAdd(1)), limit: limit)
        }
        let empty = PageJSON.thread(newestFirst: [], nextCursor: nil, hasMore: false)
        return JSONResponse.make(bytes: empty, headers: [.cacheStatus: TimelineCache.Status.bypass.rawValue])
    }

    /// A page read from the store, past the cache.
    private func page(threadID: UUID, position: PagePosition, limit: Int) async throws -> Response {
        let page = try await store.page(channelID: threadID, scope: .liveTimeline, position: position, limit: limit)
        return JSONResponse.make(
            bytes: try PageJSON.thread(page: page, limit: limit), headers: [.cacheStatus: TimelineCache.Status.bypass.rawValue]
        )
    }

    @Sendable func update(_ request: Request, context: AppRequestContext) async throws -> Response {
        let threadID = try ThreadsDialect.channelID("thread_id", context)
        let messageID = try ThreadsDialect.pathID("message_id", context)
        let body = try await ThreadsDialect.body(ThreadUpdateBody.self, request)
        let edit = MessageEdit(
            content: try body.content.map { try validator.content($0, allowEmpty: true) },
            attachments: try body.paths.map { try validator.attachments($0.map { Attachment(path: $0) }, field: "paths") },
            expectedVersion: nil
        )
        let user = try Self.author(request, context)
        let current = try await store.message(id: messageID, channelID: threadID)
        guard !current.isDeleted else { throw INF326Error.messageNotFound }
        guard edit.content != nil || edit.attachments != nil else {
            guard current.authorID == user.userID else { throw MessageStoreError.notAuthor }
            return JSONResponse.make(bytes: ByteBuffer(bytes: ThreadMessageBody.json(current)))
        }
        let message = try await store.edit(id: messageID, channelID: threadID, by: user.userID, edit).message
        return JSONResponse.make(bytes: ByteBuffer(bytes: ThreadMessageBody.json(message)))
    }

    @Sendable func delete(_ request: Request, context: AppRequestContext) async throws -> Response {
        let threadID = try ThreadsDialect.channelID("thread_id", context)
        let messageID = try ThreadsDialect.pathID("message_id", context)
        let user = try Self.author(request, context)
        let current = try await store.message(id: messageID, channelID: threadID)
        guard !current.isDeleted else { throw INF326Error.messageNotFound }
        _ = try await store.delete(id: messageID, channelID: threadID, by: user.userID, asModerator: context.callerModerates)
        return Response(status: .noContent)
    }

    // MARK: - Identity as the original took it

    /// The author of a write: the verified caller, or (`header` mode) the `X-User-Id` the
    /// middleware saw present, parsed only now: the original answered a malformed one with 400
    /// after the body's errors.
    static func author(_ request: Request, _ context: AppRequestContext) throws -> UserIdentity {
        if let caller = context.caller { return caller }
        let user = UserIdentity(userID: try userID(request))
        RequestScope.current?.userID = user.userID
        return user
    }

    /// `X-User-Id` in every form Python's `uuid.UUID()` accepted; its error text otherwise, which
    /// the INF326 service passed through.
    static func userID(_ request: Request) throws -> UUID {
        switch PythonParsing.uuid(request.headers[.userID] ?? "") {
        case .success(let id): return id
        case .failure(let error): throw INF326Error(status: .badRequest, detail: error.message)
        }
    }
}
