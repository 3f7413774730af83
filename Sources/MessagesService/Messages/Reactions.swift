import Foundation

/// A reaction as a message's `reactions` map keys it: one emoji (a single grapheme cluster, e.g.
/// `👍` or `👩🏽‍💻`) or a `:short_code:` (lower-case letters, digits, `_`, `+`, `-`), at most
/// `maxBytes` bytes of UTF-8 either way. Kept exactly as sent: `❤` and `❤️` are two reactions.
public struct ReactionEmoji: Sendable, Hashable {
    public static let maxBytes = 64

    public let text: String

    /// The emoji of a path segment (still percent-encoded), or nil when it is not one.
    public init?(percentEncoded segment: some StringProtocol) {
        guard segment.utf8.count <= Self.maxBytes * 3, let text = String(segment).removingPercentEncoding else {
            return nil
        }
        self.init(text)
    }

    /// `text` as an emoji, or nil when it is not one.
    public init?(_ text: String) {
        guard (1...Self.maxBytes).contains(text.utf8.count), Self.isShortCode(text) || Self.isEmoji(text) else {
            return nil
        }
        self.text = text
    }

    private static func isShortCode(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard bytes.count >= 3, bytes.first == UInt8(ascii: ":"), bytes.last == UInt8(ascii: ":") else { return false }
        return bytes.dropFirst().dropLast().allSatisfy { byte in
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
                || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "+") || byte == UInt8(ascii: "-")
        }
    }

    /// One grapheme cluster made only of what emoji sequences are made of, starting with an emoji
    /// and not plain ASCII (`1` and `#` have the Emoji property, as bases of keycaps like `1️⃣`).
    private static func isEmoji(_ text: String) -> Bool {
        let scalars = text.unicodeScalars
        guard text.count == 1, let first = scalars.first, first.properties.isEmoji,
            scalars.contains(where: { !$0.isASCII })
        else { return false }
        return scalars.allSatisfy { scalar in
            scalar.properties.isEmoji || scalar.properties.isEmojiModifier
                || [0x200D, 0xFE0E, 0xFE0F, 0x20E3].contains(scalar.value)  // ZWJ, variation selectors, keycap
                || (0xE0020...0xE007F).contains(scalar.value)  // tags, as in subdivision flags
        }
    }
}

/// One user's reaction with one emoji.
public struct Reactor: Sendable, Equatable {
    public var userID: UUID
    public var reactedAt: Timestamp
}

/// The users who reacted to a message with one emoji, ascending by user id.
public struct ReactorPage: Sendable, Equatable {
    /// How many users reacted with this emoji, all pages together.
    public var count: Int64
    public var items: [Reactor]
    /// True when users after the last item reacted too.
    public var hasMore: Bool
}

extension ReactorPage {
    /// The page of `limit` out of `reactors` (every reactor after the position asked for, in any
    /// order), so that every store pages alike.
    static func first(_ limit: Int, of reactors: [Reactor], count: Int64) -> ReactorPage {
        let sorted = reactors.sorted { $0.userID.uuidString < $1.userID.uuidString }
        return ReactorPage(count: count, items: Array(sorted.prefix(limit)), hasMore: sorted.count > limit)
    }
}
