import Foundation

/// A Swift value that can be sent as a statement parameter, in Postgres text format.
public protocol PostgresEncodable: Sendable {
    /// The parameter in Postgres text format, or nil for SQL NULL.
    var postgresText: String? { get }
}

extension String: PostgresEncodable {
    public var postgresText: String? { self }
}

extension Int: PostgresEncodable {
    public var postgresText: String? { String(self) }
}

extension Int64: PostgresEncodable {
    public var postgresText: String? { String(self) }
}

extension Bool: PostgresEncodable {
    public var postgresText: String? { self ? "t" : "f" }
}

extension UUID: PostgresEncodable {
    public var postgresText: String? { uuidString.lowercased() }
}

extension Optional: PostgresEncodable where Wrapped: PostgresEncodable {
    public var postgresText: String? { self.flatMap(\.postgresText) }
}

extension Array: PostgresEncodable where Element == UUID {
    /// A `uuid[]` literal.
    public var postgresText: String? { "{" + map { $0.uuidString.lowercased() }.joined(separator: ",") + "}" }
}
