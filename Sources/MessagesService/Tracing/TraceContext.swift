/// A W3C Trace Context (`traceparent` and `tracestate`, https://www.w3.org/TR/trace-context/):
/// the trace a request belongs to, as the gateway (Kong's opentelemetry plugin) or a client
/// sent it. The service keeps it with the events a request writes and sends it on as AMQP
/// headers, so a consumer continues the same trace.
///
/// Parsing is strict and never fails a request: a header that is not a valid context is
/// ignored (the specification's rule: start a new trace), and a bad `tracestate` is dropped
/// while its `traceparent` is kept.
public struct TraceContext: Sendable, Equatable {
    /// 32 lower-case hex digits, not all zero.
    public let traceID: String
    /// The caller's span: 16 lower-case hex digits, not all zero.
    public let parentID: String
    /// Bit 0: sampled.
    public let flags: UInt8
    /// The vendor entries, as sent (at most 512 bytes, 32 entries); nil when absent or invalid.
    public let state: String?

    /// The most `tracestate` the service keeps (the specification asks to propagate at least this).
    static let maxStateBytes = 512
    static let maxStateEntries = 32

    /// The `traceparent` header value, version 00.
    public var traceparent: String {
        "00-\(traceID)-\(parentID)-\(Self.hex(flags))"
    }

    public var isSampled: Bool { flags & 1 == 1 }

    init(traceID: String, parentID: String, flags: UInt8, state: String?) {
        self.traceID = traceID
        self.parentID = parentID
        self.flags = flags
        self.state = state
    }

    /// The context of `traceparent` (with `tracestate`), or nil when `traceparent` is not valid.
    /// A version above 00 is read as 00 when its first four fields have version 00's form (the
    /// specification's forward compatibility); version ff is invalid.
    public init?(traceparent: String, tracestate: String? = nil) {
        let bytes = Array(traceparent.utf8)
        guard bytes.count >= 55, bytes[2] == UInt8(ascii: "-"), bytes[35] == UInt8(ascii: "-"),
            bytes[52] == UInt8(ascii: "-")
        else { return nil }
        guard let version = Self.byte(bytes[0], bytes[1]), version != 0xff else { return nil }
        // Version 00 is exactly 55 bytes; a later version may append fields after a dash.
        if version == 0 {
            guard bytes.count == 55 else { return nil }
        } else if bytes.count > 55 {
            guard bytes[55] == UInt8(ascii: "-") else { return nil }
        }
        let traceID = bytes[3..<35]
        let parentID = bytes[36..<52]
        guard Self.isLowerHex(traceID), Self.isLowerHex(parentID), traceID.contains(where: { $0 != UInt8(ascii: "0") }),
            parentID.contains(where: { $0 != UInt8(ascii: "0") }), let flags = Self.byte(bytes[53], bytes[54])
        else { return nil }
        self.init(
            traceID: String(decoding: traceID, as: UTF8.self), parentID: String(decoding: parentID, as: UTF8.self),
            flags: flags, state: tracestate.flatMap(Self.acceptableState))
    }

    /// The context of a request's `traceparent` header lines: none when there is none or more
    /// than one (the specification's rule), else that line's. `tracestate` may come in several
    /// lines, joined with commas.
    public init?(traceparent lines: [String], tracestate: String?) {
        guard lines.count == 1 else { return nil }
        self.init(traceparent: lines[0], tracestate: tracestate.flatMap { $0.isEmpty ? nil : $0 })
    }

    /// `tracestate` when it is a list the service may pass on: at most 512 bytes of printable
    /// ASCII, at most 32 entries of `key=value` with a key of lower-case letters, digits and
    /// `_-*/@` starting with a letter or digit, and a value without `,` or `=`.
    static func acceptableState(_ state: String) -> String? {
        let bytes = Array(state.utf8)
        guard !bytes.isEmpty, bytes.count <= maxStateBytes, bytes.allSatisfy({ (0x20...0x7E).contains($0) }) else {
            return nil
        }
        let entries = bytes.split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false)
        guard entries.count <= maxStateEntries else { return nil }
        let isSpace = { (byte: UInt8) in byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
        for raw in entries {
            // Optional white space around each member.
            var entry = raw.drop(while: isSpace)
            while let last = entry.last, isSpace(last) { entry = entry.dropLast() }
            guard !entry.isEmpty else { continue }  // empty list members are allowed
            guard let equals = entry.firstIndex(of: UInt8(ascii: "=")) else { return nil }
            let key = entry[entry.startIndex..<equals]
            let value = entry[entry.index(after: equals)...]
            guard let first = key.first, isKeyStart(first), key.count <= 256, key.allSatisfy(isKeyByte),
                !value.isEmpty, value.count <= 256, !value.contains(UInt8(ascii: ",")), !value.contains(UInt8(ascii: "="))
            else { return nil }
        }
        return state
    }

    private static func isKeyStart(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
    }

    private static func isKeyByte(_ byte: UInt8) -> Bool {
        isKeyStart(byte)
            || [UInt8(ascii: "_"), UInt8(ascii: "-"), UInt8(ascii: "*"), UInt8(ascii: "/"), UInt8(ascii: "@")]
                .contains(byte)
    }

    private static func isLowerHex(_ bytes: ArraySlice<UInt8>) -> Bool {
        bytes.allSatisfy {
            (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains($0)
        }
    }

    /// Two lower-case hex digits (the form of version and flags) as a byte.
    private static func byte(_ high: UInt8, _ low: UInt8) -> UInt8? {
        guard isLowerHex([high, low][...]), let high = high.hexDigitValue, let low = low.hexDigitValue else { return nil }
        return high << 4 | low
    }

    private static func hex(_ byte: UInt8) -> String {
        let digits = Array("0123456789abcdef")
        return String([digits[Int(byte >> 4)], digits[Int(byte & 0xf)]])
    }
}
