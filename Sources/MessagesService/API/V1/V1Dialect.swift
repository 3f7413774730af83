import Foundation
import Hummingbird

/// The v1 API's conventions: canonical UUIDs, `limit` 1...`maxPageSize`, JSON bodies declared as
/// such, and errors as `{"error": {"code", "message", "request_id"}}` (`APIError`).
enum V1Dialect: APIDialect {
    static func pathID(_ encoded: String, name: String) throws -> UUID {
        guard let id = UUID(uuidString: encoded) else { throw APIError.invalidArgument("\(name) must be a UUID") }
        return id
    }

    /// A position in a channel's changes (`since`, `Last-Event-ID`): a version 0...Int64.max.
    static func channelVersion(_ raw: String, field: String) throws -> Int64 {
        guard let version = Int64(raw), version >= 0 else {
            throw APIError.invalidArgument("\(field) must be a channel version, an integer 0..\(Int64.max)")
        }
        return version
    }

    static func limit(_ raw: String?, limits: MessageLimits) throws -> Int {
        try limit(raw, default: limits.defaultPageSize, max: limits.maxPageSize)
    }

    /// A `limit` of 1...`max`, `defaultLimit` when absent.
    static func limit(_ raw: String?, default defaultLimit: Int, max: Int) throws -> Int {
        guard let raw else { return defaultLimit }
        guard let limit = Int(raw), (1...max).contains(limit) else {
            throw APIError.invalidArgument("limit must be an integer 1..\(max)")
        }
        return limit
    }

    static let requiresJSONContentType = true

    static func response(for failure: ValidationFailure) -> any HTTPResponseError {
        APIError.invalidArgument(failure.message)
    }

    static func response(for refusal: MessageStoreError) -> any HTTPResponseError {
        switch refusal {
        case .messageNotFound: APIError.notFound("message not found in this channel")
        case .parentNotFound: APIError.invalidArgument("parent_id names no live root message of this channel")
        case .notAuthor:
            APIError.permissionDenied("only the author may edit this message, and only the author or a moderator delete it")
        case .versionMismatch(let current):
            APIError(
                status: .preconditionFailed, code: "failed_precondition",
                message: "If-Match does not match the current version \(current)",
                headers: [.eTag: "\"\(current)\""]
            )
        case .idempotencyKeyReused: APIError.conflict("the idempotency key was already used with a different request")
        case .messageDeleted: APIError.conflict("the message is deleted")
        case .positionOutOfRange: APIError.invalidArgument("the cursor lies outside this channel's messages")
        case .emptyMessage: APIError.invalidArgument("content must not be empty when the message has no attachments")
        case .invalidTimestamp: APIError.invalidArgument("the time is not a valid ISO 8601 time")
        case .tooManyReactions:
            APIError.conflict("the message already has \(MessageLimits.maxReactionsPerMessage) different reactions")
        }
    }

    static func channelNotFound(_ channelID: UUID) -> any HTTPResponseError {
        APIError.notFound("channel \(channelID.lowercased) not found")
    }

    static func response(for error: APIError) -> any HTTPResponseError {
        error
    }
}

extension RouterGroup<AppRequestContext> {
    /// `channels/:channel_id/<path>` of the v1 API, behind `caller` and (when `access` is set)
    /// the channel's access check.
    func channelGroup(_ path: String, caller: CallerMiddleware, access: ChannelAccess?) -> RouterGroup<AppRequestContext> {
        let group = self.group(RouterPath("channels/:channel_id/\(path)")).add(middleware: caller)
        if let access, access.mode == .members {
            group.add(
                middleware: ChannelAccessMiddleware(access: access, dialect: V1Dialect.self, channelParameter: "channel_id"))
        }
        return group
    }
}
