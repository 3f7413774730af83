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

    init(
        store: Store, timeline: TimelineCache?, validator: MessageValidator, authenticator: Authenticator,
        rateLimiter: RateLimiter?, cursorCodec: CursorCodec
    ) {
        self.store = store
        self.timeline = timeline
        self.validator = validator
        self.authenticator = authenticator
        self.rateLimiter = rateLimiter
        self.cursorCodec = cursorCodec
    }

    private var limits: MessageLimits { validator.limits }

    func addRoutes(to router: Router<AppRequestContext>) {
        let messages = router.group("v1/channels/:channel_id/messages")
        messages.post(use: create)
        messages.get(use: list)
        messages.get(":message_id", use: get)
        messages.patch(":message_id", use: edit)
        messages.delete(":message_id", use: delete)
        messages.get(":message_id/replies", use: replies)
        messages.get(":message_id/history", use: history)
        router.get("v1/limits") { _, _ in try JSONResponse.make(limits) }
    }

    @Sendable func create(_ request: Request, context: AppRequestContext) async throws -> Response {
        let user = try await caller(request)
        let channelID = try Self.channelID(context)
        let body = try await Self.decodeBody(CreateMessageBody.self, request)
        let new = try Self.validated {
            let attachments = try validator.attachments(body.attachments ?? [])
            return NewMessage(
                channelID: channelID, authorID: user.userID, type: try validator.type(body.type) ?? .text,
                content: try validator.content(body.content, allowEmpty: !attachments.isEmpty), attachments: attachments,
                parentID: try validator.uuid(body.parent_id, field: "parent_id"),
                idempotencyKey: try validator.idempotencyKey(request.headers[.idempotencyKey], field: "Idempotency-Key")
                    ?? validator.idempotencyKey(body.client_message_id, field: "client_message_id")
            )
        }
        switch try await Self.storeCall({ try await store.create(new) }) {
        case .created(let write):
            let message = write.message
            var headers = Self.etag(message)
            headers[.location] = "/v1/channels/\(channelID.lowercased)/messages/\(message.id.lowercased)"
            return try JSONResponse.make(MessageBody(message: message), status: .created, headers: headers)
        case .replayed(let message):
            var headers = Self.etag(message)
            headers[.idempotentReplayed] = "true"
            return try JSONResponse.make(MessageBody(message: message), status: .ok, headers: headers)
        }
    }

    @Sendable func list(_ request: Request, context: AppRequestContext) async throws -> Response {
        _ = try await caller(request)
        let channelID = try Self.channelID(context)
        return try await page(request, channelID: channelID, scope: .timeline)
    }

    @Sendable func replies(_ request: Request, context: AppRequestContext) async throws -> Response {
        _ = try await caller(request)
        let channelID = try Self.channelID(context)
        let rootID = try Self.pathUUID("message_id", context)
        guard try await Self.storeCall({ try await store.seq(ofMessage: rootID, channelID: channelID) }) != nil else {
            throw APIError.notFound("message \(rootID.lowercased) not found in this channel")
        }
        return try await page(request, channelID: channelID, scope: .replies(to: rootID))
    }

    @Sendable func get(_ request: Request, context: AppRequestContext) async throws -> Response {
        _ = try await caller(request)
        let channelID = try Self.channelID(context)
        let messageID = try Self.pathUUID("message_id", context)
        let message = try await Self.storeCall { try await store.message(id: messageID, channelID: channelID) }
        return try JSONResponse.make(MessageBody(message: message), headers: Self.etag(message))
    }

    @Sendable func edit(_ request: Request, context: AppRequestContext) async throws -> Response {
        let user = try await caller(request)
        let channelID = try Self.channelID(context)
        let messageID = try Self.pathUUID("message_id", context)
        let expectedVersion = try Self.ifMatchVersion(request)
        let body = try await Self.decodeBody(EditMessageBody.self, request)
        guard body.content != nil || body.attachments != nil else {
            throw APIError.invalidArgument("the body must change content or attachments")
        }
        let edit = try Self.validated {
            // Whether the message keeps any text or attachment the store decides, which knows both.
            MessageEdit(
                content: try body.content.map { try validator.content($0, allowEmpty: true) },
                attachments: try body.attachments.map { try validator.attachments($0) },
                expectedVersion: expectedVersion
            )
        }
        let message = try await Self.storeCall {
            try await store.edit(id: messageID, channelID: channelID, by: user.userID, edit).message
        }
        return try JSONResponse.make(MessageBody(message: message), headers: Self.etag(message))
    }

    @Sendable func delete(_ request: Request, context: AppRequestContext) async throws -> Response {
        let user = try await caller(request)
        let channelID = try Self.channelID(context)
        let messageID = try Self.pathUUID("message_id", context)
        _ = try await Self.storeCall {
            try await store.delete(id: messageID, channelID: channelID, by: user.userID, asModerator: user.isModerator)
        }
        return Response(status: .noContent)
    }

    /// Earlier versions are for the author and moderators: an edit may have removed what its
    /// author did not want others to read.
    @Sendable func history(_ request: Request, context: AppRequestContext) async throws -> Response {
        let user = try await caller(request)
        let channelID = try Self.channelID(context)
        let messageID = try Self.pathUUID("message_id", context)
        let message = try await Self.storeCall { try await store.message(id: messageID, channelID: channelID) }
        guard message.authorID == user.userID || user.isModerator else {
            throw APIError.permissionDenied("only the author or a moderator may read the edit history of a message")
        }
        let revisions = try await Self.storeCall { try await store.history(id: messageID, channelID: channelID) }
        return try JSONResponse.make(["items": revisions.map(RevisionBody.init)])
    }

    // MARK: - Paging

    private func page(_ request: Request, channelID: UUID, scope: MessageScope) async throws -> Response {
        let query = request.uri.queryParameters
        let limit = try Self.limit(query.get("limit"), default: limits.defaultPageSize, max: limits.maxPageSize)
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
        let page = try await Self.storeCall {
            try await store.page(channelID: channelID, scope: scope, position: position, limit: limit)
        }
        return JSONResponse.make(
            bytes: try PageJSON.v1(page: page, position: position, cursors: cursors),
            headers: [.cacheStatus: TimelineCache.Status.bypass.rawValue]
        )
    }

    /// A message id or a cursor of this very page sequence, as a `seq`.
    private func anchorSeq(name: String, value: String, channelID: UUID, cursors: PageCursors) async throws -> Int64 {
        if let seq = cursors.seq(of: value) { return seq }
        if let id = UUID(uuidString: value) {
            guard let seq = try await Self.storeCall({ try await store.seq(ofMessage: id, channelID: channelID) }) else {
                throw APIError.invalidArgument("\(name) names no message of this channel")
            }
            return seq
        }
        throw APIError.invalidArgument("\(name) must be a message id or a cursor from an earlier page of this list")
    }

    // MARK: - Request helpers

    /// Who calls, once authenticated and within their rate limit.
    private func caller(_ request: Request) async throws -> UserIdentity {
        let user = try await authenticator.authenticate(request)
        RequestScope.current?.userID = user.userID
        try await rateLimiter?.admit(.user(user.userID))
        return user
    }

    static func limit(_ raw: String?, default defaultLimit: Int, max: Int) throws -> Int {
        guard let raw else { return defaultLimit }
        guard let limit = Int(raw), (1...max).contains(limit) else {
            throw APIError.invalidArgument("limit must be an integer 1..\(max)")
        }
        return limit
    }

    /// The channel of the path, which from here on is on every log line of the request.
    static func channelID(_ context: AppRequestContext) throws -> UUID {
        let id = try pathUUID("channel_id", context)
        RequestScope.current?.channelID = id
        return id
    }

    static func pathUUID(_ name: String, _ context: AppRequestContext) throws -> UUID {
        guard let raw = context.parameters.get(name), let id = UUID(uuidString: raw) else {
            throw APIError.invalidArgument("\(name) must be a UUID")
        }
        return id
    }

    static func decodeBody<T: Decodable>(_ type: T.Type, _ request: Request) async throws -> T {
        if let contentType = request.headers[.contentType]?.lowercased(),
            !(contentType.hasPrefix("application/json") || contentType.contains("+json"))
        {
            throw APIError.unsupportedMediaType("Content-Type must be application/json")
        }
        let buffer = try await request.body.collect(upTo: MessageLimits.maxBodyBytes)
        return try validated { try JSONBody.decode(type, from: Data(buffer.readableBytesView)) }
    }

    /// Runs a validation, turning its failure into a 400 that names the field.
    static func validated<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as ValidationFailure {
            throw APIError.invalidArgument(error.message)
        }
    }

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

    /// Runs a store call, turning the store's refusals into v1 errors.
    static func storeCall<T>(_ call: () async throws -> T) async throws -> T {
        do {
            return try await call()
        } catch let error as MessageStoreError {
            throw apiError(for: error)
        }
    }

    static func apiError(for error: MessageStoreError) -> APIError {
        switch error {
        case .messageNotFound: .notFound("message not found in this channel")
        case .parentNotFound: .invalidArgument("parent_id names no live root message of this channel")
        case .notAuthor: .permissionDenied("only the author may edit this message, and only the author or a moderator delete it")
        case .versionMismatch(let current):
            APIError(
                status: .preconditionFailed, code: "failed_precondition",
                message: "If-Match does not match the current version \(current)",
                headers: [.eTag: "\"\(current)\""]
            )
        case .idempotencyKeyReused: .conflict("the idempotency key was already used with a different request")
        case .messageDeleted: .conflict("the message is deleted")
        case .positionOutOfRange: .invalidArgument("the cursor lies outside this channel's messages")
        case .emptyMessage: .invalidArgument("content must not be empty when the message has no attachments")
        case .invalidTimestamp: .invalidArgument("the time is not a valid ISO 8601 time")
        }
    }
}

/// The v1 JSON of one entry of an edit history.
struct RevisionBody: Encodable {
    let version: Int64
    let content: String
    let attachments: [Attachment]
    let replaced_at: String
    let edited_by: String

    init(_ revision: MessageRevision) {
        version = revision.version
        content = revision.content
        attachments = revision.attachments
        replaced_at = revision.replacedAt
        edited_by = revision.editedBy.lowercased
    }
}
