import Foundation

/// A Swift value that can be read from a column in Postgres text format.
public protocol PostgresDecodable {
    /// Reads the value, or returns nil when the text is not a valid value of this type.
    init?(postgresText: String)
}

extension String: PostgresDecodable {
    public init?(postgresText: String) { self = postgresText }
}

extension Int: PostgresDecodable {
    public init?(postgresText: String) { self.init(postgresText) }
}

extension Int64: PostgresDecodable {
    public init?(postgresText: String) { self.init(postgresText) }
}

extension Bool: PostgresDecodable {
    public init?(postgresText: String) {
        switch postgresText {
        case "t": self = true
        case "f": self = false
        default: return nil
        }
    }
}

extension UUID: PostgresDecodable {
    /// Reads Postgres' output form, `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` in lowercase hex, in
    /// place (every row has several; Foundation's parser goes through sscanf); any other
    /// spelling goes to Foundation's parser.
    public init?(postgresText: String) {
        var text = postgresText
        let parsed: uuid_t? = text.withUTF8 { utf8 in
            guard utf8.count == 36 else { return nil }
            // Into the tuple itself: an array here was a heap allocation per id read.
            var value: uuid_t = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
            let complete = withUnsafeMutableBytes(of: &value) { bytes -> Bool in
                var index = 0
                var high: UInt8?
                for (position, character) in utf8.enumerated() {
                    if position == 8 || position == 13 || position == 18 || position == 23 {
                        guard character == UInt8(ascii: "-") else { return false }
                        continue
                    }
                    let nibble: UInt8
                    switch character {
                    case UInt8(ascii: "0")...UInt8(ascii: "9"): nibble = character - UInt8(ascii: "0")
                    case UInt8(ascii: "a")...UInt8(ascii: "f"): nibble = character - UInt8(ascii: "a") + 10
                    default: return false
                    }
                    if let first = high {
                        bytes[index] = first << 4 | nibble
                        index += 1
                        high = nil
                    } else {
                        high = nibble
                    }
                }
                return index == 16
            }
            return complete ? value : nil
        }
        if let parsed {
            self.init(uuid: parsed)
        } else {
            self.init(uuidString: postgresText)
        }
    }
}

extension Array: PostgresDecodable where Element == UUID {
    /// Reads a `uuid[]` in text format: `{a,b,c}` (uuids never need quoting).
    public init?(postgresText: String) {
        guard postgresText.hasPrefix("{"), postgresText.hasSuffix("}") else { return nil }
        let inner = postgresText.dropFirst().dropLast()
        if inner.isEmpty {
            self = []
            return
        }
        var values: [UUID] = []
        for part in inner.split(separator: ",") {
            guard let uuid = UUID(postgresText: String(part)) else { return nil }
            values.append(uuid)
        }
        self = values
    }
}
