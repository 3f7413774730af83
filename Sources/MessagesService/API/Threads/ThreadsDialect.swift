import Foundation
import Hummingbird

/// The legacy `/threads` API's conventions, as its FastAPI service had them: ids and `limit` read
/// the way pydantic reads them, bodies taken as JSON whatever they declare, and errors as
/// `{"detail": ...}`, with validation errors as 422 lists (`INF326Error`).
enum ThreadsDialect: APIDialect {
    /// A path id in every form pydantic accepted (`{...}`, `urn:uuid:...`, 32 hex digits, any case).
    static func pathID(_ encoded: String, name: String) throws -> UUID {
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
        func problem(_ type: String, _ msg: String) -> INF326Error {
            INF326Error.unprocessable(type: type, loc: ["query", "limit"], msg: msg, input: raw)
        }
        let limit: Int
        switch PythonParsing.laxInteger(raw) {
        case .value(let value): limit = value
        case .invalid: throw problem("int_parsing", "Input should be a valid integer, unable to parse string as an integer")
        case .tooLong: throw problem("int_parsing_size", "Unable to parse input string as an integer, exceeded maximum size")
        }
        if limit < 1 { throw problem("greater_than_equal", "Input should be greater than or equal to 1") }
        if limit > limits.maxINF326PageSize {
            throw problem("less_than_equal", "Input should be less than or equal to \(limits.maxINF326PageSize)")
        }
        return limit
    }

    static let requiresJSONContentType = false

    static func response(for failure: ValidationFailure) -> any HTTPResponseError {
        let location = failure.field == "body" ? ["body"] : ["body"] + failure.field.split(separator: ".").map(String.init)
        return INF326Error.unprocessable(type: failure.kind, loc: location, msg: failure.message, input: nil)
    }

    static func response(for refusal: MessageStoreError) -> any HTTPResponseError {
        switch refusal {
        case .notAuthor: INF326Error(status: .forbidden, detail: "Only the author may modify this message")
        case .messageNotFound, .messageDeleted, .parentNotFound, .positionOutOfRange: INF326Error.messageNotFound
        case .invalidTimestamp: INF326Error(status: .badRequest, detail: "Invalid cursor")
        case .emptyMessage:
            INF326Error.unprocessable(
                type: "string_too_short", loc: ["body", "content"], msg: "String should have at least 1 character",
                input: ""
            )
        case .versionMismatch, .idempotencyKeyReused, .tooManyReactions: INF326Error(status: .conflict, detail: "Conflict")
        }
    }

    static func channelNotFound(_ channelID: UUID) -> any HTTPResponseError {
        INF326Error(status: .notFound, detail: "Thread not found")
    }

    static func response(for error: APIError) -> any HTTPResponseError {
        INF326Error(status: error.status, detail: error.message, headers: error.headers)
    }
}
