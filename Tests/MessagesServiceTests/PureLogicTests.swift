import Crypto
import Foundation
import NIOCore
import TestSupport
import Testing

@testable import MessagesService

/// Cursors, mentions, ids and validation: no server needed.
@Suite struct PureLogicTests {
    @Test func pageCursorRoundTripsOnlyInItsOwnChannelAndScope() throws {
        let codec = CursorCodec.ephemeral()
        let channel = UUID()
        let root = UUID()
        let timeline = codec.cursors(channelID: channel, scope: .timeline)
        let edges: [Int64] = [0, 1, 42, 9_999_999_999, Int64(Int32.max), CursorCodec.maxSeq]
        for seq in edges {
            let cursor = timeline.encode(seq)
            #expect(timeline.seq(of: cursor) == seq)
            // Bound to its page sequence: another channel, the replies of a message, another key.
            #expect(codec.cursors(channelID: UUID(), scope: .timeline).seq(of: cursor) == nil)
            #expect(codec.cursors(channelID: channel, scope: .replies(to: root)).seq(of: cursor) == nil)
            #expect(CursorCodec.ephemeral().cursors(channelID: channel, scope: .timeline).seq(of: cursor) == nil)
        }
        // Positions outside what a cursor may carry are held at its bounds, never trapped on.
        #expect(timeline.seq(of: timeline.encode(-1)) == 0)
        #expect(timeline.seq(of: timeline.encode(.max)) == CursorCodec.maxSeq)
        for foreign in [
            "", "not-a-cursor", Base64URL.encode(Data("s1:9223372036854775807".utf8)), String(repeating: "A", count: 100),
        ] {
            #expect(timeline.seq(of: foreign) == nil)
        }
    }

    @Test func everyAlteredCursorIsRefused() throws {
        let timeline = CursorCodec.ephemeral().cursors(channelID: UUID(), scope: .timeline)
        let bytes = [UInt8](try #require(Base64URL.decode(timeline.encode(12345))))
        for index in bytes.indices {
            for bit in 0..<8 {
                var altered = bytes
                altered[index] ^= UInt8(1) << bit
                #expect(timeline.seq(of: Base64URL.encode(Data(altered))) == nil)
            }
        }
        #expect(timeline.seq(of: Base64URL.encode(Data(bytes.dropLast()))) == nil)
        #expect(timeline.seq(of: Base64URL.encode(Data(bytes + [0]))) == nil)
    }

    @Test func cursorsSurviveAKeyRotation() {
        let old = SymmetricKey(size: .bits256)
        let new = SymmetricKey(size: .bits256)
        let channel = UUID()
        let issued = CursorCodec(current: old).cursors(channelID: channel, scope: .timeline).encode(77)
        let rotated = CursorCodec(current: new, previous: old).cursors(channelID: channel, scope: .timeline)
        #expect(rotated.seq(of: issued) == 77)
        #expect(rotated.seq(of: rotated.encode(78)) == 78)
        // Once the old key is dropped, its cursors are gone.
        #expect(CursorCodec(current: new).cursors(channelID: channel, scope: .timeline).seq(of: issued) == nil)
    }

    @Test func pageLinksSaturateAtTheEdgesOfInt64() {
        let after = PageLinks(position: .after(seq: .max), firstSeq: nil, lastSeq: nil, hasBefore: false, hasAfter: false)
        #expect(after.before == .max)
        let before = PageLinks(position: .before(seq: .min), firstSeq: nil, lastSeq: nil, hasBefore: false, hasAfter: false)
        #expect(before.after == .min)
        #expect(Int64.max.saturatingAdd(1) == .max)
        #expect(Int64.min.saturatingAdd(-1) == .min)
        #expect(Int64(5).saturatingAdd(-1) == 4)
    }

    @Test func attachmentPathsAreStorageKeysOrAllowedHTTPSURLs() {
        let hosts = ["files.example.com"]
        for allowed in [
            "a/b.png", "uploads/2024/x y.pdf", "/uploads/a.png", "a/b:c", "https://files.example.com/a.png",
            "HTTPS://FILES.example.com/x",
        ] {
            #expect(AttachmentPath.isAllowed(allowed, urlHosts: hosts), "\(allowed)")
        }
        let refused = [
            "javascript:alert(1)", "JaVaScRiPt:alert(1)", "data:text/html;base64,PHNjcmlwdD4=", "//evil.example/x",
            "\\\\evil\\x", "/\\evil.example", "../etc/passwd", "a/../../b", "a/%2e%2e/b", "a\\..\\b", "./a", "a\u{0}b",
            "a\nb", "a\u{202E}gnp.exe", " javascript:x", "x ", "http://files.example.com/a", "https://other.example/a",
            "https://user@files.example.com/a", "vbscript:x", "file:///etc/passwd", "1ab:x", "",
            // A combining mark joins a separator into one Character; the separator is still there.
            "../\u{301}etc/passwd", "javascript:\u{301}alert(1)", "//\u{301}evil.example", "https:\u{301}//files.example.com/a",
            // Valid escapes count even beside broken ones, as a browser decodes them.
            "a/%2e%2e/%2E%2e/x%zz", "a/.%2e/b", "%2e%2e/x%",
        ]
        for path in refused {
            #expect(!AttachmentPath.isAllowed(path, urlHosts: hosts), "\(path)")
        }
        #expect(!AttachmentPath.isAllowed("https://files.example.com/a.png", urlHosts: []))
    }

    @Test func mediaTypesParseAsRFC9110Says() {
        for valid in ["image/png", "text/plain; charset=utf-8", "application/vnd.api+json", #"text/plain;a="b c""#] {
            #expect(MediaType.isValid(valid), "\(valid)")
        }
        for invalid in [
            "", "image", "image/", "/png", "image/png/x", "image png", "text/plain; charset", "<script>/x", "a/b;c=\"d",
        ] {
            #expect(!MediaType.isValid(invalid), "\(invalid)")
        }
    }

    @Test func durationsAreWholeSecondsWithinBounds() {
        #expect(DurationText.seconds("3600") == 3600)
        #expect(DurationText.seconds("24h") == 86_400)
        #expect(DurationText.seconds("90s") == 90)
        #expect(DurationText.seconds("7d") == 604_800)
        for invalid in ["", "h", "-1", "1.5h", "9223372036854775807d", "99999999999999999999", "١h", "1w"] {
            #expect(DurationText.seconds(invalid) == nil, "\(invalid)")
        }
    }

    @Test func clientAddressesOfIPv6AreKeyedByTheirNetwork() {
        #expect(ClientAddressResolver.network(of: "2001:db8:1:2:aaaa::1") == "2001:db8:1:2::/64")
        #expect(ClientAddressResolver.network(of: "2001:db8:1:2::ffff") == "2001:db8:1:2::/64")
        #expect(ClientAddressResolver.network(of: "::1") == "0:0:0:0::/64")
        #expect(ClientAddressResolver.network(of: "10.1.2.3") == "10.1.2.3")
        #expect(ClientAddressResolver.network(of: "not:an:address") == "not:an:address")
    }

    @Test func aFloodOfNewKeysResetsNoBucket() {
        let buckets = LocalTokenBuckets(rate: 1, burst: 1)
        let start = ContinuousClock.now
        let attacker = RateLimitKey.clientAddress("10.0.0.1")
        #expect(buckets.take(attacker, now: start) == 0)
        for index in 0..<LocalTokenBuckets.capacity {
            _ = buckets.take(.clientAddress("k\(index)"), now: start)
        }
        #expect(buckets.take(attacker, now: start) > 0)
    }

    @Test func localBucketsLimitEachKeyAndRefill() {
        let buckets = LocalTokenBuckets(rate: 2, burst: 2)
        let start = ContinuousClock.now
        let user = RateLimitKey.user(UUID())
        #expect(buckets.take(user, now: start) == 0)
        #expect(buckets.take(user, now: start) == 0)
        #expect(buckets.take(user, now: start) == 500)
        #expect(buckets.take(.clientAddress("10.0.0.1"), now: start) == 0)
        #expect(buckets.take(user, now: start + .milliseconds(500)) == 0)
    }

    @Test func timestampsAreWrittenInEachAPIsForm() {
        let cases: [(Int64, String, String, String)] = [
            (0, "1970-01-01T00:00:00.000Z", "1970-01-01T00:00:00", "1970-01-01 00:00:00"),
            (1_764_474_706_235_349, "2025-11-30T03:51:46.235Z", "2025-11-30T03:51:46.235349", "2025-11-30 03:51:46.235349"),
            (951_782_400_000_001, "2000-02-29T00:00:00.000Z", "2000-02-29T00:00:00.000001", "2000-02-29 00:00:00.000001"),
            (-1, "1969-12-31T23:59:59.999Z", "1969-12-31T23:59:59.999999", "1969-12-31 23:59:59.999999"),
            (4_102_444_799_999_999, "2099-12-31T23:59:59.999Z", "2099-12-31T23:59:59.999999", "2099-12-31 23:59:59.999999"),
        ]
        for (microseconds, rfc3339, isoformat, string) in cases {
            let time = Timestamp(microsecondsSinceEpoch: microseconds)
            #expect(time.rfc3339 == rfc3339)
            #expect(time.pythonISOFormat == isoformat)
            #expect(time.pythonString == string)
        }
    }

    @Test func iso8601TimesAreReadAsPostgresReadsThem() {
        #expect(Timestamp(iso8601: "1970-01-01")?.microsecondsSinceEpoch == 0)
        #expect(Timestamp(iso8601: "2025-11-30T03:51:46.235349")?.microsecondsSinceEpoch == 1_764_474_706_235_349)
        #expect(Timestamp(iso8601: "2025-11-30 05:51:46.235349+02:00")?.microsecondsSinceEpoch == 1_764_474_706_235_349)
        #expect(Timestamp(iso8601: "2000-02-29T00:00:00.0000005Z")?.microsecondsSinceEpoch == 951_782_400_000_001)
        #expect(Timestamp(iso8601: "2024-01-01T24:00:00") == Timestamp(iso8601: "2024-01-02"))
        for invalid in [
            "2023-02-29", "2024-13-01", "0000-01-01", "2024-01-01T24:00:01", "2024-01-01T10:60", "x", "2024-01-01T00:00+16:00",
            "2024-01-01T٠٥:00", "2024-01-01T24:00:00.5",
        ] {
            #expect(Timestamp(iso8601: invalid) == nil, "\(invalid)")
        }
    }

    /// Answers Python 3.11's uuid.UUID() gave for these inputs.
    @Test func userIdsParseAsPythonsUUIDParsesThem() throws {
        let accepted: [(String, String)] = [
            ("{{0123456789abcdef0123456789ABCDEF}}", "01234567-89ab-cdef-0123-456789abcdef"),
            ("0x_23456789abcdef0123456789abcde", "00023456-789a-bcde-f012-3456789abcde"),
            (" 123456789abcdef0123456789abcde ", "00123456-789a-bcde-f012-3456789abcde"),
            ("٠١٢٣٤٥٦٧٨٩abcdef0123456789abcdef", "01234567-89ab-cdef-0123-456789abcdef"),
            ("urn:uuid:01234567-89ab-cdef-0123-456789abcdef", "01234567-89ab-cdef-0123-456789abcdef"),
            ("{uuid:urn:0123456789abcdef0123456789abcdef}", "01234567-89ab-cdef-0123-456789abcdef"),
        ]
        for (input, canonical) in accepted {
            #expect(try PythonParsing.uuid(input).get().lowercased == canonical, "\(input)")
        }
        let refused: [(String, String)] = [
            ("+x123456789abcdef0123456789abcde", "invalid literal for int() with base 16: '+x123456789abcdef0123456789abcde'"),
            (
                "12345678-1234-1234-1234-1234567890éb",
                "invalid literal for int() with base 16: '123456781234123412341234567890éb'"
            ),
            ("nope", "badly formed hexadecimal UUID string"),
            // Python removes the dash even with a combining mark after it: 32 code points remain.
            (
                "0123456789abcdef0123456789abcde-\u{301}",
                "invalid literal for int() with base 16: '0123456789abcdef0123456789abcde\u{301}'"
            ),
            ("", "badly formed hexadecimal UUID string"),
            (
                "it's\u{1}0123456789abcdef0123456789a",
                #"invalid literal for int() with base 16: "it's\x010123456789abcdef0123456789a""#
            ),
        ]
        for (input, message) in refused {
            #expect(throws: PythonValueError(message: message)) { try PythonParsing.uuid(input).get() }
        }
    }

    @Test func pathIdsParseAsPydanticParsesThem() {
        let id = UUID()
        let canonical = id.uuidString.lowercased()
        for form in [
            canonical, id.uuidString, canonical.replacingOccurrences(of: "-", with: ""), "{\(canonical)}",
            "urn:uuid:\(canonical)",
        ] {
            #expect(PythonParsing.pydanticUUID(form) == id, "\(form)")
        }
        for form in [
            "{\(canonical.replacingOccurrences(of: "-", with: ""))}", "URN:UUID:\(canonical)", " \(canonical)", "",
            "z" + canonical.dropFirst(),
        ] {
            #expect(PythonParsing.pydanticUUID(form) == nil, "\(form)")
        }
    }

    @Test func laxIntegersParseAsPydanticParsesThem() {
        let cases: [(String, PythonParsing.LaxInteger)] = [
            ("5", .value(5)), (" 5 ", .value(5)), ("2.0", .value(2)), ("4.", .value(4)), ("1_0", .value(10)), ("+3", .value(3)),
            ("-7", .value(-7)), ("99999999999999999999", .value(.max)), ("-99999999999999999999", .value(.min)),
            ("2.5", .invalid), ("1__0", .invalid), ("_1", .invalid), ("1_", .invalid), ("", .invalid), ("0x10", .invalid),
            ("٣", .invalid), (".0", .invalid), ("1e3", .invalid), (String(repeating: "9", count: 4301), .tooLong),
        ]
        for (input, expected) in cases {
            #expect(PythonParsing.laxInteger(input) == expected, "\(input)")
        }
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
        let base = NewMessage(
            channelID: UUID(), authorID: UUID(), type: .text, content: "x", attachments: [], parentID: nil, idempotencyKey: "k")
        var other = base
        other.content = "y"
        var sameButOtherKey = base
        sameButOtherKey.idempotencyKey = "other"
        #expect(PostgresMessageStore.requestHash(of: base) == PostgresMessageStore.requestHash(of: sameButOtherKey))
        #expect(PostgresMessageStore.requestHash(of: base) != PostgresMessageStore.requestHash(of: other))
    }
}

@Suite struct HotPagesTests {
    func page(_ revision: String, bytes: Int) -> HotPages.Page {
        HotPages.Page(revision: Array(revision.utf8), body: ByteBuffer(repeating: 0x78, count: bytes))
    }

    func key(_ channel: UUID, _ limit: Int = 50) -> HotPages.Key {
        HotPages.Key(channelID: channel, form: .v1, limit: limit)
    }

    @Test func keepsPagesWithinItsBytesFirstStoredFirstEvicted() {
        let pages = HotPages(byteBudget: 1_000)
        let channels = (0..<4).map { _ in UUID() }
        for channel in channels.prefix(3) { pages.store(page("a", bytes: 300), for: key(channel)) }
        #expect(pages.usage.pages == 3 && pages.usage.bytes == 900)
        // Replacing a page counts its new size only.
        pages.store(page("b", bytes: 350), for: key(channels[1]))
        #expect(pages.usage.bytes == 950)
        #expect(pages.page(for: key(channels[1]))?.revision == Array("b".utf8))
        // Past the budget the first stored goes.
        pages.store(page("a", bytes: 300), for: key(channels[3]))
        #expect(pages.page(for: key(channels[0])) == nil)
        #expect(pages.usage.pages == 3 && pages.usage.bytes == 950)
        // Keys differ by limit and form.
        #expect(pages.page(for: key(channels[1], 10)) == nil)
        #expect(pages.page(for: HotPages.Key(channelID: channels[1], form: .thread, limit: 50)) == nil)
    }

    @Test func aPageLargerThanTheBudgetOrABudgetOfZeroKeepsNothing() {
        let small = HotPages(byteBudget: 100)
        small.store(page("a", bytes: 101), for: key(UUID()))
        #expect(small.usage.pages == 0)
        let off = HotPages(byteBudget: 0)
        off.store(page("a", bytes: 1), for: key(UUID()))
        #expect(off.usage.pages == 0 && !off.isEnabled)
    }
}

@Suite struct Base64URLTests {
    @Test func encodesAsFoundationsBase64WithTheURLAlphabetAndNoPadding() {
        var random = SeededGenerator(seed: 64)
        for count in 0..<100 {
            let data = Data((0..<count).map { _ in UInt8.random(in: 0...255, using: &random) })
            let expected = data.base64EncodedString().replacingOccurrences(of: "+", with: "-")
                .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
            #expect(Base64URL.encode(data) == expected)
            #expect(Base64URL.decode(Base64URL.encode(data)) == data)
        }
    }
}

@Suite struct TimelineMetaTests {
    static let base = "M11" + TimelineEntry.digits(7, 19) + TimelineEntry.digits(5, 19) + "00000000000000aa"

    @Test func aMetaWithARevisionCarriesIt() throws {
        let meta = try #require(TimelineMeta(member: Array((Self.base + "0123456789abcdef").utf8)))
        #expect(meta.revision == Array("0123456789abcdef".utf8))
        #expect(meta.channel == ChannelState(lastSeq: 5, version: 7) && meta.isFilled && meta.isComplete)
    }

    @Test func aMetaOfTheReleaseBeforeReadsWithoutOne() throws {
        // 57 bytes, as releases before the revision write it: readable, and no kept page matches.
        let meta = try #require(TimelineMeta(member: Array(Self.base.utf8)))
        #expect(meta.revision.isEmpty)
        #expect(meta.channel == ChannelState(lastSeq: 5, version: 7))
        #expect(TimelineMeta(member: Array((Self.base + "0123").utf8)) == nil)
    }
}
