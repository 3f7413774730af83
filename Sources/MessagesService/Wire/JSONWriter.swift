import Foundation

/// Appends JSON to a byte array exactly as `WireJSON.encoder` writes it (the same string escapes,
/// slashes unescaped; callers write keys in sorted order), for the message bodies written on
/// every request: Foundation's encoder costs several times more (measured: two thirds of an
/// older page's CPU went to it). The message tests hold the two byte-equal.
struct JSONWriter {
    private(set) var bytes: [UInt8] = []

    /// Lowercase, as the encoder writes `\u00xx` and as ids are spelled.
    private static let hexDigits = Array("0123456789abcdef".utf8)

    init(capacity: Int = 512) {
        bytes.reserveCapacity(capacity)
    }

    /// Writes `text` as it is: punctuation and keys, which callers spell as JSON.
    mutating func raw(_ text: StaticString) {
        text.withUTF8Buffer { bytes.append(contentsOf: $0) }
    }

    mutating func null() {
        raw("null")
    }

    mutating func bool(_ value: Bool) {
        value ? raw("true") : raw("false")
    }

    mutating func integer(_ value: Int64) {
        if value < 0 {
            bytes.append(UInt8(ascii: "-"))
        }
        // The magnitude as unsigned: Int64.min has no positive Int64. Digits are appended least
        // significant first, then put in order where they stand: no array per number.
        var magnitude = value.magnitude
        let start = bytes.count
        repeat {
            bytes.append(UInt8(ascii: "0") + UInt8(magnitude % 10))
            magnitude /= 10
        } while magnitude > 0
        bytes[start...].reverse()
    }

    mutating func integer(_ value: Int64?) {
        if let value { integer(value) } else { null() }
    }

    /// A UUID in lowercase, the form every id takes in the API.
    mutating func uuid(_ value: UUID) {
        bytes.append(UInt8(ascii: "\""))
        value.appendLowercased(to: &bytes)
        bytes.append(UInt8(ascii: "\""))
    }

    /// A time as `Timestamp.rfc3339` spells it, quoted, written digit by digit: a message has
    /// up to three and a page fifty messages (building the strings was 4% of an older page).
    mutating func timestamp(_ value: Timestamp?) {
        guard let value else { return null() }
        let fields = value.civilFields
        guard (0...9999).contains(fields.year) else { return string(value.rfc3339) }
        /// `separator` (when given), then `number` in `width` digits.
        func put(_ separator: Unicode.Scalar?, _ number: Int64, _ width: Int) {
            if let separator { bytes.append(UInt8(ascii: separator)) }
            var divisor: Int64 = 1
            for _ in 1..<width { divisor *= 10 }
            while divisor > 0 {
                bytes.append(UInt8(ascii: "0") + UInt8(truncatingIfNeeded: number / divisor % 10))
                divisor /= 10
            }
        }
        bytes.append(UInt8(ascii: "\""))
        put(nil, fields.year, 4)
        put("-", fields.month, 2)
        put("-", fields.day, 2)
        put("T", fields.hour, 2)
        put(":", fields.minute, 2)
        put(":", fields.second, 2)
        put(".", fields.microsecond / 1000, 3)
        bytes.append(UInt8(ascii: "Z"))
        bytes.append(UInt8(ascii: "\""))
    }

    mutating func uuid(_ value: UUID?) {
        if let value { uuid(value) } else { null() }
    }

    /// A JSON string: `"` and `\` escaped, controls as `\b \t \n \f \r` or `\u00xx`, everything
    /// else (slashes, DEL, every non-ASCII scalar) as its UTF-8 bytes.
    mutating func string(_ value: String) {
        bytes.append(UInt8(ascii: "\""))
        var value = value
        value.withUTF8 { utf8 in
            var start = 0
            for (index, byte) in utf8.enumerated() where byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") {
                bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[start..<index]))
                start = index + 1
                switch byte {
                case UInt8(ascii: "\""): raw(#"\""#)
                case UInt8(ascii: "\\"): raw(#"\\"#)
                case 0x08: raw(#"\b"#)
                case 0x09: raw(#"\t"#)
                case 0x0a: raw(#"\n"#)
                case 0x0c: raw(#"\f"#)
                case 0x0d: raw(#"\r"#)
                default:
                    raw(#"\u00"#)
                    bytes.append(Self.hexDigits[Int(byte >> 4)])
                    bytes.append(Self.hexDigits[Int(byte & 0x0f)])
                }
            }
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[start...]))
        }
        bytes.append(UInt8(ascii: "\""))
    }

    mutating func string(_ value: String?) {
        if let value { string(value) } else { null() }
    }

    /// `[a,b,...]`, each element written by `element`.
    mutating func array<Element>(_ elements: some Sequence<Element>, _ element: (inout JSONWriter, Element) -> Void) {
        bytes.append(UInt8(ascii: "["))
        var first = true
        for value in elements {
            if !first { bytes.append(UInt8(ascii: ",")) }
            first = false
            element(&self, value)
        }
        bytes.append(UInt8(ascii: "]"))
    }

    /// Bytes that already are JSON.
    mutating func json(_ value: some Collection<UInt8>) {
        bytes.append(contentsOf: value)
    }
}
