import Tracing

/// A statement made inside a span (a request's, an event's publish) runs in a client span of the
/// process's tracer (a no-op unless the service bootstrapped one): named by its first keyword,
/// with its text, never its parameters. One outside any span (the relay's polls, lock attempts,
/// the journal's inserts) makes none: each would be a trace of its own, many a second.
enum StatementSpan {
    static func run<T: Sendable>(_ sql: String, _ body: () async throws -> T) async throws -> T {
        guard ServiceContext.current != nil else { return try await body() }
        return try await withSpan(operation(of: sql), ofKind: .client) { span in
            span.attributes["db.system.name"] = "postgresql"
            span.attributes["db.query.text"] = sql
            return try await body()
        }
    }

    /// `SELECT`, `INSERT`, `WITH`...: the statement's first word, upper-cased.
    static func operation(of sql: String) -> String {
        let word = sql.drop { $0.isWhitespace }.prefix { $0.isLetter }
        return word.isEmpty ? "SQL" : word.uppercased()
    }
}
