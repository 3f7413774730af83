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
    /// Lowercase hex written directly: most statements carry several ids, and Foundation's
    /// `uuidString` formats with `snprintf`, then `lowercased()` copies it again.
    public var postgresText: String? {
        withUnsafeBytes(of: uuid) { raw in
            String(unsafeUninitializedCapacity: 36) { text in
                let digits: StaticString = "0123456789abcdef"
                var count = 0
                for (index, byte) in raw.enumerated() {
                    if index == 4 || index == 6 || index == 8 || index == 10 {
                        text[count] = UInt8(ascii: "-")
                        count += 1
                    }
                    text[count] = digits.utf8Start[Int(byte >> 4)]
                    text[count + 1] = digits.utf8Start[Int(byte & 0x0f)]
                    count += 2
                }
                return count
            }
        }
    }
}

extension Optional: PostgresEncodable where Wrapped: PostgresEncodable {
    // A closure, not `\.postgresText`: a key path used as a function here was built at run time
    // on every call (swift_getKeyPath, a few percent of a create's CPU in perf).
    public var postgresText: String? { self.flatMap { $0.postgresText } }
}

extension Array: PostgresEncodable where Element == UUID {
    /// A `uuid[]` literal.
    public var postgresText: String? { "{" + map { $0.postgresText ?? "" }.joined(separator: ",") + "}" }
}
