import Foundation

/// JSON columns travel as text between Swift and Postgres `jsonb`.
enum JSONText {
    static func encode(_ value: some Encodable) throws -> String {
        String(decoding: try JSONEncoder().encode(value), as: UTF8.self)
    }

    static func decode<T: Decodable>(_ type: T.Type, from text: String) throws -> T {
        try JSONDecoder().decode(type, from: Data(text.utf8))
    }

    /// `decode`, with the text of the empty value read without a decoder: most rows hold `[]`
    /// and `{}`, and a JSONDecoder per column per row showed in the profile of a page.
    static func decode<T: Decodable>(_ type: T.Type, from text: String, empty: String, as emptyValue: T) throws -> T {
        text == empty ? emptyValue : try decode(type, from: text)
    }
}
