import Foundation

/// The opaque cursor of a v1 page: a position in the channel's `seq` order.
///
/// Clients must treat it as opaque; it is base64url so that it can change shape later without
/// breaking anyone who only passes it back.
struct PageCursor: Equatable {
    let seq: Int64

    private static let prefix = "s1:"

    var encoded: String {
        Base64URL.encode(Data((Self.prefix + String(seq)).utf8))
    }

    init(seq: Int64) {
        self.seq = seq
    }

    /// Reads a cursor this service made, or returns nil.
    init?(encoded: String) {
        guard encoded.utf8.count <= 64 else { return nil }
        guard let data = Base64URL.decode(encoded), let text = String(data: data, encoding: .utf8),
            text.hasPrefix(Self.prefix), let seq = Int64(text.dropFirst(Self.prefix.count)), seq >= 0
        else { return nil }
        self.seq = seq
    }
}
