import Foundation

/// The INF326 cursor, `<created_at ISO 8601>|<message id>` of the last item of a page.
struct INF326Cursor: Equatable {
    /// The timestamp as given, already checked to be ISO 8601.
    let createdAt: String
    let messageID: UUID

    static func make(createdAt: String, id: UUID) -> String {
        "\(createdAt)|\(id.lowercased)"
    }

    /// Parses a cursor, accepting what Python's `datetime.isoformat()` and this service produce.
    init?(_ raw: String) {
        let parts = raw.split(separator: "|", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2, let id = UUID(uuidString: String(parts[1])) else { return nil }
        let timestamp = String(parts[0])
        guard timestamp.wholeMatch(of: Self.isoTimestamp) != nil else { return nil }
        self.createdAt = timestamp
        self.messageID = id
    }

    nonisolated(unsafe) private static let isoTimestamp =
        /[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,9})?)?(Z|z|[+-][0-9]{2}(:?[0-9]{2})?)?)?/
}
