import Foundation

/// One message of a cached timeline, as its Redis sorted-set member: a fixed-width ASCII header,
/// then the message's v1 JSON, its INF326 JSON and its INF326 cursor, each ready to be joined into a
/// response.
///
///     version (19 digits) | L or D | seq (19 digits) | v1 length (10) | INF326 length (10) | bytes...
///
/// The version comes first so the Lua scripts compare two entries of one `seq` as strings and keep
/// the newer one; `D` marks a tombstone, which v1 lists show and INF326 lists leave out.
struct TimelineEntry: Equatable {
    static let headerLength = 59

    let seq: Int64
    let version: Int64
    let isDeleted: Bool
    /// The whole member.
    let member: [UInt8]
    private let v1Range: Range<Int>
    private let threadRange: Range<Int>

    var v1JSON: ArraySlice<UInt8> { member[v1Range] }
    var threadJSON: ArraySlice<UInt8> { member[threadRange] }
    var threadCursor: String { String(decoding: member[threadRange.upperBound...], as: UTF8.self) }

    /// Serializes a message once, in both APIs' shapes.
    init(message: Message) throws {
        let v1 = MessageBody.json(message)
        let thread = message.isDeleted ? [] : ThreadMessageBody.json(message)
        let cursor = message.isDeleted ? "" : INF326Cursor.make(createdAt: message.createdAt.pythonISOFormat, id: message.id)
        var member = Array(
            (Self.digits(message.version, 19) + (message.isDeleted ? "D" : "L") + Self.digits(message.seq, 19)
                + Self.digits(Int64(v1.count), 10) + Self.digits(Int64(thread.count), 10)).utf8
        )
        member.reserveCapacity(member.count + v1.count + thread.count + cursor.utf8.count)
        member += v1
        member += thread
        member += cursor.utf8
        guard let entry = TimelineEntry(member: member) else { throw MalformedEntry() }
        self = entry
    }

    /// A message whose serialized forms do not fit the header's fields (a fault of ours).
    struct MalformedEntry: Error {}

    /// Reads a member the scripts returned; nil when it is not an entry.
    init?(member: [UInt8]) {
        guard member.count >= Self.headerLength,
            let version = Self.number(member[0..<19]), let seq = Self.number(member[20..<39]),
            let v1Length = Self.number(member[39..<49]), let threadLength = Self.number(member[49..<59]),
            member[19] == UInt8(ascii: "L") || member[19] == UInt8(ascii: "D"),
            Self.headerLength + Int(v1Length) + Int(threadLength) <= member.count
        else { return nil }
        self.seq = seq
        self.version = version
        self.isDeleted = member[19] == UInt8(ascii: "D")
        self.member = member
        self.v1Range = Self.headerLength..<(Self.headerLength + Int(v1Length))
        self.threadRange = v1Range.upperBound..<(v1Range.upperBound + Int(threadLength))
    }

    /// Zero-padded, so that equal-width strings compare as the numbers do.
    static func digits(_ value: Int64, _ width: Int) -> String {
        let text = String(value)
        return String(repeating: "0", count: max(0, width - text.count)) + text
    }

    /// Reads ASCII digits in place: this runs for every entry of every cache hit.
    static func number(_ bytes: ArraySlice<UInt8>) -> Int64? {
        guard !bytes.isEmpty else { return nil }
        var value: Int64 = 0
        for byte in bytes {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            let (shifted, overflow) = value.multipliedReportingOverflow(by: 10)
            guard !overflow else { return nil }
            value = shifted + Int64(byte - UInt8(ascii: "0"))
        }
        return value
    }
}

/// The state a cached timeline carries besides its entries, kept as the member of score 0 in the
/// same sorted set, so that the entries and what they mean can only expire or be evicted together.
///
///     M | filled 0/1 | complete 0/1 | channel version (19 digits) | channel last_seq (19 digits) | lease (16)
///       | revision (16)
///
/// `filled`: a fill from Postgres landed, so the set holds the channel's newest entries (writers
/// that find no set start one with filled 0, which readers ignore). `complete`: the set holds every
/// root message of the channel, so nothing older exists. `lease`: the token of the fill under way;
/// a fill whose token is gone when it finishes (the set was deleted, or another fill began) lands
/// nothing. `revision`: a random token every merge writes, which `HotPages` compares. A meta
/// without one (57 bytes, as releases before it write, and rewrite, during a rolling update)
/// reads as a revision that matches no kept page; those releases read a 73-byte meta as
/// unreadable and answer from Postgres, so the two can share the key.
struct TimelineMeta: Equatable {
    let isFilled: Bool
    let isComplete: Bool
    let channel: ChannelState
    /// Set anew by every merge: equal revisions of one timeline hold the same entries. Empty when
    /// the meta has none.
    let revision: [UInt8]

    init?(member: [UInt8]) {
        guard member.count == 57 || member.count == 73, member[0] == UInt8(ascii: "M"),
            let version = TimelineEntry.number(member[3..<22]), let lastSeq = TimelineEntry.number(member[22..<41])
        else { return nil }
        isFilled = member[1] == UInt8(ascii: "1")
        isComplete = member[2] == UInt8(ascii: "1")
        channel = ChannelState(lastSeq: lastSeq, version: version)
        revision = Array(member[57...].prefix(16))
    }
}
