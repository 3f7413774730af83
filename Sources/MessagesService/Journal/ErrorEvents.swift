import Foundation
import Logging
import Postgres

/// Reads the error journal back: what `messages-service errors` lists.
public enum ErrorEvents {
    /// The levels the journal keeps, least severe first.
    public static let levels: [Logger.Level] = [.warning, .error, .critical]

    /// Entries of the last `since`, at `minimumLevel` or worse, newest first, at most `limit`.
    public static func list(
        _ client: PostgresClient, since: Duration, minimumLevel: Logger.Level, limit: Int
    ) async throws -> [JournalEntry] {
        let levels = levels.filter { $0 >= minimumLevel }.map(\.rawValue).joined(separator: ",")
        let rows = try await client.query(select, [Int(since.components.seconds), levels, limit])
        return try rows.rows.map { row in
            JournalEntry(
                time: Date(timeIntervalSince1970: Double(try row.decode("epoch", as: String.self)) ?? 0),
                level: try row.decode("level"), message: try row.decode("message"), source: try row.decode("source"),
                requestID: try row.decodeIfPresent("request_id"), userID: try row.decodeIfPresent("user_id"),
                channelID: try row.decodeIfPresent("channel_id"), metadata: try row.decode("metadata")
            )
        }
    }

    static let select = """
        SELECT extract(epoch FROM time)::text AS epoch, level, message, source, request_id, user_id, channel_id,
               metadata::text AS metadata
        FROM error_events
        WHERE time >= now() - make_interval(secs => $1) AND level = ANY (string_to_array($2, ','))
        ORDER BY time DESC, id DESC
        LIMIT $3
        """
}
