import Foundation

/// Users mentioned in a message's text, written `@<user uuid>` as chat clients insert them.
enum Mentions {
    /// The distinct user ids mentioned in `content`, in order of first appearance.
    static func extract(from content: String) -> [UUID] {
        var found: [UUID] = []
        var rest = content[...]
        while let at = rest.firstIndex(of: "@") {
            let candidate = rest[rest.index(after: at)...].prefix(36)
            if candidate.count == 36, let id = UUID(uuidString: String(candidate)), !found.contains(id) {
                found.append(id)
            }
            rest = rest[rest.index(after: at)...]
        }
        return found
    }
}
