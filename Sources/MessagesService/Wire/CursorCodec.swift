import Crypto
import Foundation

/// Signs and reads the opaque cursors of v1 pages.
///
/// A cursor is a `seq` with an HMAC over it and over the page it belongs to (channel and scope):
/// a client can pass back what it was given and nothing else. A cursor altered by a single bit,
/// or taken from another channel or from a reply thread into the timeline, is not a cursor.
/// Signing uses the current key; reading accepts the previous one too, so a key can be rotated
/// without breaking the cursors clients hold (set the old key as previous, then drop it once
/// pages served with it are no longer paged through).
///
/// Layout, base64url: version (1 byte, 2) · seq (8 bytes, big-endian) · tag (first 16 bytes of
/// HMAC-SHA256(key, version · seq · channel id · scope)).
struct CursorCodec: Sendable {
    private let signing: SymmetricKey
    private let verifying: [SymmetricKey]

    private static let version: UInt8 = 2
    private static let tagLength = 16
    private static let byteLength = 1 + 8 + tagLength
    /// The largest seq a cursor carries: paging arithmetic (`seq + 1`) on it cannot overflow.
    static let maxSeq = Int64.max - 1

    /// A codec signing with `current` and also reading cursors signed with `previous`.
    init(current: SymmetricKey, previous: SymmetricKey? = nil) {
        signing = current
        verifying = [current] + (previous.map { [$0] } ?? [])
    }

    /// A codec with a key of its own, for a process that was given none: its cursors last as long
    /// as the process, and only it can read them.
    static func ephemeral() -> CursorCodec {
        CursorCodec(current: SymmetricKey(size: .bits256))
    }

    /// The cursors of one page sequence: a channel's timeline, or the replies to one message.
    func cursors(channelID: UUID, scope: MessageScope) -> PageCursors {
        PageCursors(codec: self, binding: Self.binding(channelID: channelID, scope: scope))
    }

    func encode(seq: Int64, binding: [UInt8]) -> String {
        let seq = min(max(seq, 0), Self.maxSeq)
        var bytes = [Self.version]
        withUnsafeBytes(of: seq.bigEndian) { bytes += $0 }
        bytes += Self.tag(bytes, binding, key: signing)
        return Base64URL.encode(Data(bytes))
    }

    func decode(_ text: String, binding: [UInt8]) -> Int64? {
        // Shorter than any encoding of a longer input: nothing longer is worth decoding.
        guard text.utf8.count <= 64, let data = Base64URL.decode(text), data.count == Self.byteLength else { return nil }
        let bytes = [UInt8](data)
        guard bytes[0] == Self.version else { return nil }
        let signed = Array(bytes[0..<9])
        let tag = bytes[9...]
        guard verifying.contains(where: { Self.constantTimeEqual(Self.tag(signed, binding, key: $0), tag) }) else {
            return nil
        }
        let seq = signed[1...].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        guard seq <= UInt64(Self.maxSeq) else { return nil }
        return Int64(seq)
    }

    private static func tag(_ signed: [UInt8], _ binding: [UInt8], key: SymmetricKey) -> [UInt8] {
        var mac = HMAC<SHA256>(key: key)
        mac.update(data: signed)
        mac.update(data: binding)
        return Array(mac.finalize().prefix(tagLength))
    }

    private static func constantTimeEqual(_ a: [UInt8], _ b: ArraySlice<UInt8>) -> Bool {
        guard a.count == b.count else { return false }
        return zip(a, b).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
    }

    /// The channel id, then a scope tag and the root message id of a reply thread (zeros for the timeline).
    private static func binding(channelID: UUID, scope: MessageScope) -> [UInt8] {
        var bytes = channelID.bytes
        switch scope {
        case .timeline: bytes += [1] + [UInt8](repeating: 0, count: 16)
        case .replies(let root): bytes += [2] + root.bytes
        case .liveTimeline: bytes += [3] + [UInt8](repeating: 0, count: 16)
        }
        return bytes
    }
}
