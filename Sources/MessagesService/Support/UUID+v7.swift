import Foundation

extension UUID {
    /// A UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then random bits, so ids created later
    /// sort later and inserts land at the right edge of the primary-key index.
    static func v7(now: Date = Date()) -> UUID {
        let milliseconds = UInt64(now.timeIntervalSince1970 * 1000)
        // Two 64-bit draws (a getrandom call each), not one per byte: ids are made on every write.
        var random = SystemRandomNumberGenerator()
        var bytes = withUnsafeBytes(of: (random.next() as UInt64, random.next() as UInt64)) { Array($0) }
        for index in 0..<6 {
            bytes[index] = UInt8(truncatingIfNeeded: milliseconds >> (8 * (5 - index)))
        }
        bytes[6] = 0x70 | (bytes[6] & 0x0F)  // version 7
        bytes[8] = 0x80 | (bytes[8] & 0x3F)  // variant 10
        return UUID(
            uuid: (
                bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7],
                bytes[8], bytes[9], bytes[10], bytes[11], bytes[12], bytes[13], bytes[14], bytes[15]
            )
        )
    }

    /// The canonical lowercase form used in JSON, SQL and cache keys.
    var lowercased: String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(36)
        appendLowercased(to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Appends the lowercase form, hex written directly (Foundation's `uuidString` formats with
    /// `snprintf`, and the ids of every message of every page are written).
    func appendLowercased(to bytes: inout [UInt8]) {
        withUnsafeBytes(of: uuid) { raw in
            for (index, byte) in raw.enumerated() {
                if index == 4 || index == 6 || index == 8 || index == 10 { bytes.append(UInt8(ascii: "-")) }
                bytes.append(Self.hexDigits[Int(byte >> 4)])
                bytes.append(Self.hexDigits[Int(byte & 0x0f)])
            }
        }
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)
}

extension UUID {
    /// The 16 bytes of the UUID.
    var bytes: [UInt8] {
        withUnsafeBytes(of: uuid) { Array($0) }
    }
}
