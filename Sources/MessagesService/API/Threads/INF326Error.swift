import HTTPTypes
import Hummingbird

/// An error in the INF326 API's own shape, `{"detail": ...}`, where `detail` is a string or, for
/// validation errors (422), FastAPI's list of `{type, loc, msg, input}`.
struct INF326Error: Error, HTTPResponseError {
    /// One entry of a 422 list.
    struct Problem: Encodable, Sendable {
        let type: String
        let loc: [String]
        let msg: String
        let input: String?

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(type, forKey: .type)
            try container.encode(loc, forKey: .loc)
            try container.encode(msg, forKey: .msg)
            try container.encode(input, forKey: .input)
        }

        enum CodingKeys: String, CodingKey { case type, loc, msg, input }
    }

    private enum Detail: Sendable {
        case message(String)
        case problems([Problem])
    }

    let status: HTTPResponse.Status
    private let detail: Detail
    var headers: HTTPFields = [:]

    /// An error with a plain `detail` string.
    init(status: HTTPResponse.Status, detail: String, headers: HTTPFields = [:]) {
        self.status = status
        self.detail = .message(detail)
        self.headers = headers
    }

    /// 404 for a message that does not exist, or no longer does (the API never shows deleted ones).
    static let messageNotFound = INF326Error(status: .notFound, detail: "Message not found")

    /// A 422 with FastAPI's validation list.
    static func unprocessable(_ problems: [Problem]) -> INF326Error {
        INF326Error(status: .unprocessableContent, detail: .problems(problems))
    }

    /// A 422 for one problem.
    static func unprocessable(type: String, loc: [String], msg: String, input: String?) -> INF326Error {
        unprocessable([Problem(type: type, loc: loc, msg: msg, input: input)])
    }

    private init(status: HTTPResponse.Status, detail: Detail) {
        self.status = status
        self.detail = detail
    }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        switch detail {
        case .message(let message):
            return try JSONResponse.make(["detail": message], status: status, headers: headers)
        case .problems(let problems):
            return try JSONResponse.make(["detail": problems], status: status, headers: headers)
        }
    }
}
