import Foundation
import Testing

@testable import Postgres

/// Reading column text: no server needed.
@Suite struct PostgresDecodingTests {
    @Test func aUUIDInPostgresFormIsReadAsFoundationReadsIt() {
        for _ in 0..<1_000 {
            let id = UUID()
            #expect(UUID(postgresText: id.uuidString.lowercased()) == id)
            // Other spellings go to Foundation's parser, which reads uppercase too.
            #expect(UUID(postgresText: id.uuidString) == id)
        }
    }

    @Test(arguments: [
        "", "0", "00000000-0000-0000-0000-00000000000", "00000000-0000-0000-0000-0000000000000",
        "00000000_0000-0000-0000-000000000000", "0000000g-0000-0000-0000-000000000000",
        "{00000000-0000-0000-0000-000000000000}", "00000000-0000-0000-0000-00000000000é",
    ])
    func anythingElseIsNotAUUID(_ text: String) {
        #expect(UUID(postgresText: text) == nil)
    }

    @Test func uuidArraysAreRead() {
        let ids = [UUID(), UUID()]
        #expect([UUID](postgresText: "{}") == [])
        #expect([UUID](postgresText: "{" + ids.map { $0.uuidString.lowercased() }.joined(separator: ",") + "}") == ids)
        #expect([UUID](postgresText: "{nope}") == nil)
    }
}
