import Foundation

/// The opaque cursor of a v1 page: a position in the channel's `seq` order.
///
/// Clients must treat it as opaque; it is base64url so that it can change shape later without
/// breaking anyone who only passes it back.
struct PageCursor: Equatable {
    let seq: Int64

    private static let prefix = "s1:"

    var encoded: String {
        Data((Self.prefix + String(seq)).utf8).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    init(seq: Int64) {
        self.seq = seq
    }

    /// Reads a cursor this service made, or returns nil.
    init?(encoded: String) {
        guard encoded.utf8.count <= 64 else { return nil }
        var base64 = encoded.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
        guard let data = Data(base64Encoded: base64), let text = String(data: data, encoding: .utf8),
            text.hasPrefix(Self.prefix), let seq = Int64(text.dropFirst(Self.prefix.count)), seq >= 0
        else { return nil }
        self.seq = seq
    }
}
