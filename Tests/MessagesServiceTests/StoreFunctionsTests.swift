import Foundation
import Postgres
import TestSupport
import Testing

@testable import MessagesService

/// The write functions of migration 6 format times and JSON in SQL; they must say what the
/// service's own encoders say for the same values.
@Suite(.tags(.servers)) struct StoreFunctionsTests {
    /// Microsecond instants around the edges of both formats (a zero fraction, which Python's
    /// str() drops; 999,999; before 1970; leap days) and seeded random ones.
    static let instants: [Int64] = {
        var generator = SeededGenerator(seed: 326)
        let edges: [Int64] = [
            0, 1, 999_999, 1_000_000, -1, -1_000_000, 951_782_400_000_000, 1_796_036_400_123_000,
            1_796_036_400_000_999, 4_102_444_799_999_999,
        ]
        return edges + (0..<200).map { _ in Int64.random(in: 0...4_102_444_799_999_999, using: &generator) }
    }()

    @Test func timesInSQLAreTheTimestampFormats() async throws {
        let client = try await TestDatabase.shared.migratedClient()
        let rows = try await client.query(
            """
            SELECT t, api_time(to_timestamp(0) + t * interval '1 microsecond') AS api,
                inf326_event_time(to_timestamp(0) + t * interval '1 microsecond') AS inf326
            FROM unnest($1::bigint[]) AS t
            """,
            ["{" + Self.instants.map(String.init).joined(separator: ",") + "}"]
        )
        #expect(rows.count == Self.instants.count)
        for row in rows.rows {
            let time = Timestamp(microsecondsSinceEpoch: try row.decode("t"))
            #expect(try row.decode("api", as: String.self) == time.rfc3339)
            #expect(try row.decode("inf326", as: String.self) == time.pythonString)
        }
    }
}

extension Timestamp {
    /// Python's `str(datetime)` of a naive UTC time (`2026-11-30 03:51:46.235349`): what the
    /// INF326 service published, and what migration 6's `inf326_event_time` writes.
    var pythonString: String { pythonForm(separator: " ") }
}
