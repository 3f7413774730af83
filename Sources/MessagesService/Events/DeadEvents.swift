import Foundation
import Postgres

/// An event the broker refused `OUTBOX_MAX_ATTEMPTS` times, as `dead_events` keeps it.
public struct DeadEvent: Sendable, Equatable {
    public let eventID: String
    public let channelID: String
    public let routingKey: String
    /// When the change was written (RFC 3339, UTC).
    public let createdAt: String
    /// When the relay moved it out of the outbox.
    public let diedAt: String
    /// Failed publishes, refusals and other failures together.
    public let attempts: Int
    public let refusals: Int
    public let lastError: String?

    /// The fields as a JSON object, for `messages-service events dead --json`.
    public var json: [String: Any] {
        [
            "event_id": eventID, "channel_id": channelID, "routing_key": routingKey, "created_at": createdAt,
            "died_at": diedAt, "attempts": attempts, "refusals": refusals, "last_error": lastError ?? NSNull(),
        ]
    }
}

/// What `messages-service events dead` and `events replay` do: list the dead events, and put
/// them back into the outbox, where the relay publishes them again.
public enum DeadEvents {
    /// At most `limit` dead events, in the order they had in the outbox.
    public static func list(_ client: PostgresClient, limit: Int) async throws -> [DeadEvent] {
        let rows = try await client.query(select, [limit])
        return try rows.rows.map { row in
            DeadEvent(
                eventID: try row.decode("event_id"), channelID: try row.decode("channel_id"),
                routingKey: try row.decode("routing_key"), createdAt: try row.decode("created"),
                diedAt: try row.decode("died"), attempts: try row.decode("attempts"), refusals: try row.decode("refusals"),
                lastError: try row.decodeIfPresent("last_error"))
        }
    }

    /// Moves the dead events `eventIDs` (all of them when nil) back into the outbox, in their
    /// original outbox order and in one statement, so an event is in exactly one of the two
    /// tables at any time. They get new outbox ids: behind the events written since, which is
    /// the order consumers see them in (they order a channel's changes by `version`). Returns
    /// the ids put back, in that order.
    public static func replay(_ client: PostgresClient, eventIDs: [UUID]?) async throws -> [String] {
        let ids = eventIDs.map { "{" + $0.map { $0.uuidString.lowercased() }.joined(separator: ",") + "}" }
        let rows = try await client.query(replayRows, [ids])
        return try rows.rows.map { try $0.decode("event_id") }
    }

    static let select = """
        SELECT event_id::text AS event_id, channel_id::text AS channel_id, routing_key, api_time(created_at) AS created,
            api_time(died_at) AS died, attempts, refusals, last_error
        FROM dead_events ORDER BY outbox_id LIMIT $1
        """

    /// created_at is the replay's: the outbox's age metrics and the relay's lag measure the wait
    /// for the relay, not the time the event lay dead. The payload keeps `occurred_at`.
    static let replayRows = """
        WITH revived AS (
            DELETE FROM dead_events WHERE $1::uuid[] IS NULL OR event_id = ANY($1::uuid[]) RETURNING *
        )
        INSERT INTO outbox (event_id, channel_id, routing_key, payload, legacy_payload, correlation_id, traceparent,
            tracestate, created_at)
        SELECT event_id, channel_id, routing_key, payload, legacy_payload, correlation_id, traceparent, tracestate,
            clock_timestamp()
        FROM revived ORDER BY outbox_id
        RETURNING event_id::text AS event_id
        """
}
