import Foundation
import Testing

@testable import MessagesService

/// Cursors, mentions, ids and validation: no server needed.
@Suite struct PureLogicTests {
    @Test func pageCursorRoundTripsAndRejectsForeignText() {
        for seq: Int64 in [0, 1, 42, 9_999_999_999] {
            #expect(PageCursor(encoded: PageCursor(seq: seq).encoded)?.seq == seq)
        }
        #expect(PageCursor(encoded: "") == nil)
        #expect(PageCursor(encoded: "not-a-cursor") == nil)
        #expect(PageCursor(encoded: Data("s1:-5".utf8).base64EncodedString()) == nil)
        #expect(PageCursor(encoded: String(repeating: "A", count: 100)) == nil)
    }

    @Test func inf326CursorAcceptsPythonAndOwnFormats() {
        let id = UUID()
        #expect(INF326Cursor("2024-05-01T10:20:30.123456+00:00|\(id.uuidString)")?.messageID == id)
        #expect(INF326Cursor("2024-05-01T10:20:30.123Z|\(id.uuidString.lowercased())")?.createdAt == "2024-05-01T10:20:30.123Z")
        #expect(INF326Cursor("2024-05-01 10:20:30|\(id.uuidString)") != nil)
        #expect(INF326Cursor("yesterday|\(id.uuidString)") == nil)
        #expect(INF326Cursor("2024-05-01T10:20:30Z|nope") == nil)
        #expect(INF326Cursor("2024-05-01T10:20:30Z") == nil)
    }

    @Test func mentionsAreDistinctUserIdsAfterAt() {
        let a = UUID()
        let b = UUID()
        let text = "hi @\(a.uuidString.lowercased()) and @\(b.uuidString) and again @\(a.uuidString) and @not-an-id @"
        #expect(Mentions.extract(from: text) == [a, b])
        #expect(Mentions.extract(from: "no mentions") == [])
    }

    @Test func uuidV7IsTimeOrderedWithVersionAndVariantBits() {
        let earlier = UUID.v7(now: Date(timeIntervalSince1970: 1_700_000_000))
        let later = UUID.v7(now: Date(timeIntervalSince1970: 1_700_000_001))
        #expect(earlier.lowercased < later.lowercased)
        let bytes = earlier.uuid
        #expect(bytes.6 >> 4 == 7)
        #expect(bytes.8 >> 6 == 0b10)
    }

    @Test func contentLengthCountsCharactersNotBytes() throws {
        let validator = MessageValidator(limits: MessageLimits(maxContentLength: 3))
        #expect(try validator.content("ñé😀") == "ñé😀")
        #expect(throws: ValidationFailure.self) { try validator.content("abcd") }
        #expect(throws: ValidationFailure.self) { try validator.content("") }
    }

    @Test func requestHashDiffersWhenTheRequestDiffers() {
        let base = NewMessage(channelID: UUID(), authorID: UUID(), type: .text, content: "x", attachments: [], parentID: nil, idempotencyKey: "k")
        var other = base
        other.content = "y"
        var sameButOtherKey = base
        sameButOtherKey.idempotencyKey = "other"
        #expect(PostgresMessageStore.requestHash(of: base) == PostgresMessageStore.requestHash(of: sameButOtherKey))
        #expect(PostgresMessageStore.requestHash(of: base) != PostgresMessageStore.requestHash(of: other))
    }
}
