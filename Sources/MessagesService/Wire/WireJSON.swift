import Foundation

/// The one JSON encoder of every body the service writes: responses, cache entries, events.
enum WireJSON {
    /// Sorted keys make equal values serialize to equal bytes (cache entries compare byte for byte,
    /// and `PageJSON` writes its keys in that same order).
    static var encoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }
}
