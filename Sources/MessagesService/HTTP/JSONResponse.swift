import Foundation
import HTTPTypes
import Hummingbird

/// Builds JSON responses.
enum JSONResponse {
    /// A response whose body is `value` as JSON.
    static func make(_ value: some Encodable, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) throws
        -> Response
    {
        make(bytes: ByteBuffer(bytes: try WireJSON.encoder.encode(value)), status: status, headers: headers)
    }

    /// A response whose body is already JSON.
    static func make(bytes: ByteBuffer, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) -> Response {
        var headers = headers
        headers[.contentType] = "application/json; charset=utf-8"
        return Response(status: status, headers: headers, body: .init(byteBuffer: bytes))
    }
}
