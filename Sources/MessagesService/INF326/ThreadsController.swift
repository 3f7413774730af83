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

    init(
        store: Store, timeline: TimelineCache?, rateLimiter: RateLimiter?, validator: MessageValidator,
        authenticator: Authenticator, clientAddress: ClientAddressResolver
    ) {
        self.store = store
        self.timeline = timeline
        self.rateLimiter = rateLimiter
        self.validator = validator
        self.authenticator = authenticator
        self.clientAddress = clientAddress
    }

    private var limits: MessageLimits { validator.limits }

    func addRoutes(to router: Router<AppRequestContext>) {
        let messages = router.group("threads/:thread_id/messages")
        messages.post(use: create)
        messages.get(use: list)
        messages.put(":message_id", use: update)
        messages.delete(":message_id", use: delete)
    }

    /// The INF326 create body.
    struct CreateBody: Decodable {
        let content: String
        let type: String?
        let paths: [String]?
    }

    /// The INF326 update body.
    struct UpdateBody: Decodable {
        let content: String?
        let paths: [String]?
    }

    @Sendable func create(_ request: Request, context: AppRequestContext) async throws -> Response {
        let threadID = try Self.threadID(context)
        let caller = try await writer(request, context)
        let body = try await decodeBody(CreateBody.self, request)
        let (type, content, attachments) = try validated {
            // A file message may come with its paths only, as the original allowed.
            let attachments = try validator.attachments((body.paths ?? []).map { Attachment(path: $0) }, field: "paths")
            return (
                try validator.type(body.type), try validator.content(body.content, allowEmpty: !attachments.isEmpty),
                attachments
            )
        }
        let authored = NewMessage(
            channelID: threadID, authorID: try identity(of: caller, request).userID, type: type,
            content: content,
            attachments: attachments, parentID: nil, idempotencyKey: nil
        )
        guard case .created(let write) = try await storeCall({ try await store.create(authored) }) else {
            throw INF326Error(status: .internalServerError, detail: "Internal Server Error")
        }
        return try JSONResponse.make(ThreadMessageBody(write.message), status: .created)
    }

    @Sendable func list(_ request: Request, context: AppRequestContext) async throws -> Response {
        let threadID = try Self.threadID(context)
        try await reader(request, context)
        let limit = try Self.limit(request.uri.queryParameters.get("limit"), limits: limits)
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
        if let seq = try await storeCall({ try await store.seq(ofMessage: parsed.messageID, channelID: threadID) }) {
            return try await page(threadID: threadID, position: .before(seq: seq), limit: limit)
        } else if let seq = try await storeCall({ try await store.lastSeq(createdBefore: parsed.createdAt, channelID: threadID) })
        {
            return try await page(threadID: threadID, position: .before(seq: seq.saturatingAdd(1)), limit: limit)
        }
        let empty = PageJSON.thread(newestFirst: [], nextCursor: nil, hasMore: false)
        return JSONResponse.make(bytes: empty, headers: [.cacheStatus: TimelineCache.Status.bypass.rawValue])
    }

    /// A page read from the store, past the cache.
    private func page(threadID: UUID, position: PagePosition, limit: Int) async throws -> Response {
        let page = try await storeCall {
            try await store.page(channelID: threadID, scope: .liveTimeline, position: position, limit: limit)
        }
        return JSONResponse.make(
            bytes: try PageJSON.thread(page: page, limit: limit), headers: [.cacheStatus: TimelineCache.Status.bypass.rawValue]
        )
    }

    @Sendable func update(_ request: Request, context: AppRequestContext) async throws -> Response {
        let threadID = try Self.threadID(context)
        let messageID = try Self.pathUUID("message_id", context)
        let caller = try await writer(request, context)
        let body = try await decodeBody(UpdateBody.self, request)
        let edit = try validated {
            MessageEdit(
                content: try body.content.map { try validator.content($0, allowEmpty: true) },
                attachments: try body.paths.map { try validator.attachments($0.map { Attachment(path: $0) }, field: "paths") },
                expectedVersion: nil
            )
        }
        let user = try identity(of: caller, request)
        let current = try await storeCall { try await store.message(id: messageID, channelID: threadID) }
        guard !current.isDeleted else { throw Self.notFound }
        guard edit.content != nil || edit.attachments != nil else {
            guard current.authorID == user.userID else { throw Self.apiError(for: .notAuthor) }
            return try JSONResponse.make(ThreadMessageBody(current))
        }
        let message = try await storeCall {
            try await store.edit(id: messageID, channelID: threadID, by: user.userID, edit).message
        }
        return try JSONResponse.make(ThreadMessageBody(message))
    }

    @Sendable func delete(_ request: Request, context: AppRequestContext) async throws -> Response {
        let threadID = try Self.threadID(context)
        let messageID = try Self.pathUUID("message_id", context)
        let user = try identity(of: try await writer(request, context), request)
        let current = try await storeCall { try await store.message(id: messageID, channelID: threadID) }
        guard !current.isDeleted else { throw Self.notFound }
        _ = try await storeCall {
            try await store.delete(id: messageID, channelID: threadID, by: user.userID, asModerator: user.isModerator)
        }
        return Response(status: .noContent)
    }

    // MARK: - FastAPI-compatible request handling

    private static var notFound: INF326Error { INF326Error(status: .notFound, detail: "Message not found") }

    /// The thread (channel) of the path, which from here on is on every log line of the request.
    static func threadID(_ context: AppRequestContext) throws -> UUID {
        let id = try pathUUID("thread_id", context)
        RequestScope.current?.channelID = id
        return id
    }

    /// A path id in every form pydantic accepted (`{...}`, `urn:uuid:...`, 32 hex digits, any case).
    static func pathUUID(_ name: String, _ context: AppRequestContext) throws -> UUID {
        let encoded = context.parameters.get(name) ?? ""
        let raw = encoded.removingPercentEncoding ?? encoded
        guard let id = PythonParsing.pydanticUUID(raw) else {
            throw INF326Error.unprocessable(
                type: "uuid_parsing", loc: ["path", name],
                msg: "Input should be a valid UUID, invalid character or length", input: raw
            )
        }
        return id
    }

    /// `limit` as pydantic read it: lax integers (` 5`, `2.0`, `1_0`), then its range.
    static func limit(_ raw: String?, limits: MessageLimits) throws -> Int {
        guard let raw else { return limits.defaultINF326PageSize }
        let limit: Int
        switch PythonParsing.laxInteger(raw) {
        case .value(let value):
            limit = value
        case .invalid:
            throw INF326Error.unprocessable(
                type: "int_parsing", loc: ["query", "limit"],
                msg: "Input should be a valid integer, unable to parse string as an integer", input: raw
            )
        case .tooLong:
            throw INF326Error.unprocessable(
                type: "int_parsing_size", loc: ["query", "limit"],
                msg: "Unable to parse input string as an integer, exceeded maximum size", input: raw
            )
        }
        if limit < 1 {
            throw INF326Error.unprocessable(
                type: "greater_than_equal", loc: ["query", "limit"], msg: "Input should be greater than or equal to 1",
                input: raw
            )
        }
        if limit > limits.maxINF326PageSize {
            throw INF326Error.unprocessable(
                type: "less_than_equal", loc: ["query", "limit"],
                msg: "Input should be less than or equal to \(limits.maxINF326PageSize)", input: raw
            )
        }
        return limit
    }

    /// FastAPI validates that the header exists (422) before the dependency parses it (400).
    static func requireUserHeader(_ request: Request) throws {
        guard request.headers[.userID] != nil else {
            throw INF326Error.unprocessable(type: "missing", loc: ["header", "X-User-Id"], msg: "Field required", input: nil)
        }
    }

    /// Who a write says it is from, checked before the body is read.
    enum Caller {
        /// A verified token's user, already within their rate limit.
        case verified(UserIdentity)
        /// `INF326_AUTH=header`: an `X-User-Id` is present; it is parsed once the body is valid.
        case claimed
    }

    /// The first check of a write: the bearer token (`jwt`), or that `X-User-Id` exists
    /// (`header`: FastAPI answers a missing header with 422 before anything else).
    func writer(_ request: Request, _ context: AppRequestContext) async throws -> Caller {
        switch authenticator.mode {
        case .jwt:
            return .verified(try await verifiedCaller(request))
        case .userHeader:
            try Self.requireUserHeader(request)
            // Before the body is read: refused writes count too.
            try await rateLimiter?.admit(.clientAddress(clientAddress.address(of: request, context: context)))
            return .claimed
        }
    }

    /// The author of a write: the token's subject, or the parsed `X-User-Id` (400 when it is no
    /// UUID, after body errors, as the original).
    func identity(of caller: Caller, _ request: Request) throws -> UserIdentity {
        switch caller {
        case .verified(let user):
            return user
        case .claimed:
            let user = UserIdentity(userID: try Self.userID(request))
            RequestScope.current?.userID = user.userID
            return user
        }
    }

    /// A reader, after the rate limit: verified like a writer (`jwt`), or anyone (`header`).
    func reader(_ request: Request, _ context: AppRequestContext) async throws {
        switch authenticator.mode {
        case .jwt:
            _ = try await verifiedCaller(request)
        case .userHeader:
            try await rateLimiter?.admit(.clientAddress(clientAddress.address(of: request, context: context)))
        }
    }

    /// The bearer token's user; an `X-User-Id` sent along must name the same user.
    private func verifiedCaller(_ request: Request) async throws -> UserIdentity {
        let user: UserIdentity
        do {
            user = try await authenticator.authenticate(request)
        } catch let error as APIError {
            throw INF326Error(status: error.status, detail: error.message, headers: error.headers)
        }
        RequestScope.current?.userID = user.userID
        if request.headers[.userID] != nil, try Self.userID(request) != user.userID {
            throw INF326Error(status: .forbidden, detail: "X-User-Id does not match the authenticated user")
        }
        try await rateLimiter?.admit(.user(user.userID))
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

    func decodeBody<T: Decodable>(_ type: T.Type, _ request: Request) async throws -> T {
        let buffer = try await request.body.collect(upTo: MessageLimits.maxBodyBytes)
        return try validated { try JSONBody.decode(type, from: Data(buffer.readableBytesView)) }
    }

    func validated<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as ValidationFailure {
            let location = error.field == "body" ? ["body"] : ["body"] + error.field.split(separator: ".").map(String.init)
            throw INF326Error.unprocessable(type: error.kind, loc: location, msg: error.message, input: nil)
        }
    }

    func storeCall<T>(_ call: () async throws -> T) async throws -> T {
        do {
            return try await call()
        } catch let error as MessageStoreError {
            throw Self.apiError(for: error)
        }
    }

    static func apiError(for error: MessageStoreError) -> INF326Error {
        switch error {
        case .notAuthor: INF326Error(status: .forbidden, detail: "Only the author may modify this message")
        case .messageNotFound, .messageDeleted, .parentNotFound, .positionOutOfRange: notFound
        case .invalidTimestamp: INF326Error(status: .badRequest, detail: "Invalid cursor")
        case .emptyMessage:
            INF326Error.unprocessable(
                type: "string_too_short", loc: ["body", "content"], msg: "String should have at least 1 character",
                input: ""
            )
        case .versionMismatch, .idempotencyKeyReused: INF326Error(status: .conflict, detail: "Conflict")
        }
    }
}

/// An INF326 message, as the original service wrote it: times naive UTC with microseconds, and
/// `updated_at` equal to `created_at` until the message is edited.
struct ThreadMessageBody: Encodable {
    /// Where the JSON goes: the original answered `datetime.isoformat()` times, and published
    /// `str(datetime)` times with a `deleted_at` (always null: it published new messages only).
    enum Form {
        case api, event
    }

    let message: Message
    let form: Form

    init(_ message: Message, as form: Form = .api) {
        self.message = message
        self.form = form
    }

    enum CodingKeys: String, CodingKey {
        case id, thread_id, user_id, type, content, paths, created_at, updated_at, deleted_at
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(message.id.lowercased, forKey: .id)
        try container.encode(message.channelID.lowercased, forKey: .thread_id)
        try container.encode(message.authorID.lowercased, forKey: .user_id)
        try container.encode(message.type, forKey: .type)
        try container.encode(message.content, forKey: .content)
        try container.encode(message.attachments.map(\.path), forKey: .paths)
        let time: (Timestamp) -> String = form == .api ? \.pythonISOFormat : \.pythonString
        try container.encode(time(message.createdAt), forKey: .created_at)
        try container.encode(time(message.editedAt ?? message.createdAt), forKey: .updated_at)
        if form == .event { try container.encode(message.deletedAt.map(time), forKey: .deleted_at) }
    }
}

/// The INF326 cursor, `<created_at ISO 8601>|<message id>` of the last item of a page.
struct INF326Cursor: Equatable {
    /// The timestamp as given, already checked to be ISO 8601.
    let createdAt: String
    let messageID: UUID

    static func make(createdAt: String, id: UUID) -> String {
        "\(createdAt)|\(id.lowercased)"
    }

    /// Parses a cursor, accepting what Python's `datetime.isoformat()` and this service produce.
    init?(_ raw: String) {
        let parts = raw.split(separator: "|", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2, let id = UUID(uuidString: String(parts[1])) else { return nil }
        let timestamp = String(parts[0])
        guard timestamp.wholeMatch(of: Self.isoTimestamp) != nil else { return nil }
        self.createdAt = timestamp
        self.messageID = id
    }

    nonisolated(unsafe) private static let isoTimestamp =
        /[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,9})?)?(Z|z|[+-][0-9]{2}(:?[0-9]{2})?)?)?/
}
