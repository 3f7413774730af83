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

    /// One grapheme cluster that is an emoji sequence, and not plain ASCII (`1` and `#` have the
    /// Emoji property, as bases of keycaps like `1️⃣`). Read as Unicode's emoji sequences are
    /// built: emoji joined by ZWJ, each with at most one skin-tone modifier, one variation selector
    /// and one keycap mark; two regional indicators make a flag; tag characters only in a flag
    /// that starts with 🏴 and ends with the cancel tag. So nothing invisible rides on an emoji
    /// (`👍` followed by tags, a trailing joiner or a second selector is refused): what looks
    /// like one reaction is one.
    private static func isEmoji(_ text: String) -> Bool {
        guard text.count == 1, text.unicodeScalars.contains(where: { !$0.isASCII }) else { return false }
        var element = EmojiElement()
        var expectsBase = true
        for scalar in text.unicodeScalars {
            if expectsBase {
                guard scalar.properties.isEmoji, !scalar.properties.isEmojiModifier else { return false }
                element = EmojiElement(base: scalar)
                expectsBase = false
            } else if scalar.value == 0x200D {
                guard !element.inTags else { return false }
                expectsBase = true
            } else {
                guard element.take(scalar) else { return false }
            }
        }
        return !expectsBase && !element.inTags
    }

    /// What may follow the base of one element of an emoji sequence, each at most once.
    private struct EmojiElement {
        var base: Unicode.Scalar = " "
        var modified = false
        var selected = false
        var keycap = false
        var flagged = false
        var inTags = false
        var tagged = false

        static func isRegionalIndicator(_ scalar: Unicode.Scalar) -> Bool { (0x1F1E6...0x1F1FF).contains(scalar.value) }

        /// Takes the next scalar of this element; false when it cannot follow what came before.
        mutating func take(_ scalar: Unicode.Scalar) -> Bool {
            let value = scalar.value
            if inTags {
                if value == 0xE007F {
                    inTags = false
                    tagged = true
                    return true
                }
                return (0xE0020...0xE007E).contains(value)
            }
            switch value {
            case 0xE0020...0xE007E where base.value == 0x1F3F4 && !tagged && !modified && !selected:
                inTags = true
            case 0xFE0E...0xFE0F where !selected && !keycap && !tagged:  // one range: a `where` binds only the last of several patterns
                selected = true
            case 0x20E3 where !keycap && !tagged:
                keycap = true
            case _ where scalar.properties.isEmojiModifier && !modified && !selected && !keycap && !tagged:
                modified = true
            case _ where Self.isRegionalIndicator(scalar) && Self.isRegionalIndicator(base) && !flagged:
                flagged = true
            default:
                return false
            }
            return true
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
