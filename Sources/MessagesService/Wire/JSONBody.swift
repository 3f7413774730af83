import Foundation

/// Reads JSON request bodies, turning decoding errors into failures that name the field.
enum JSONBody {
    /// Decodes `T` from `bytes`, or throws a `ValidationFailure` naming the field that was wrong.
    static func decode<T: Decodable>(_ type: T.Type, from bytes: Data) throws -> T {
        do {
            return try JSONDecoder().decode(type, from: bytes)
        } catch let error as DecodingError {
            throw failure(for: error)
        } catch {
            throw ValidationFailure(field: "body", message: "request body is not valid JSON", kind: "json_invalid")
        }
    }

    private static func failure(for error: DecodingError) -> ValidationFailure {
        switch error {
        case .keyNotFound(let key, let context):
            let field = path(context.codingPath + [key])
            return ValidationFailure(field: field, message: "\(field) is required", kind: "missing")
        case .valueNotFound(_, let context):
            let field = path(context.codingPath)
            return ValidationFailure(field: field, message: "\(field) must not be null", kind: "missing")
        case .typeMismatch(let expected, let context):
            if context.codingPath.isEmpty {
                return ValidationFailure(field: "body", message: "request body must be a JSON object", kind: "type")
            }
            let field = path(context.codingPath)
            return ValidationFailure(field: field, message: "\(field) must be \(describe(expected))", kind: "type")
        case .dataCorrupted(let context) where !context.codingPath.isEmpty:
            let field = path(context.codingPath)
            return ValidationFailure(field: field, message: "\(field) has an invalid value", kind: "value")
        default:
            return ValidationFailure(field: "body", message: "request body is not valid JSON", kind: "json_invalid")
        }
    }

    private static func path(_ keys: [any CodingKey]) -> String {
        var result = ""
        for key in keys {
            if let index = key.intValue {
                result += "[\(index)]"
            } else {
                result += result.isEmpty ? key.stringValue : ".\(key.stringValue)"
            }
        }
        return result.isEmpty ? "body" : result
    }

    private static func describe(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Int64.Type, is Int.Type: "an integer"
        case is Bool.Type: "a boolean"
        case is [Any].Type: "an array"
        default: type == [Attachment].self ? "an array" : "an object"
        }
    }
}
