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
    public init?(postgresText: String) { self.init(uuidString: postgresText) }
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
            guard let uuid = UUID(uuidString: String(part)) else { return nil }
            values.append(uuid)
        }
        self = values
    }
}
