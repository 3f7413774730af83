import Foundation
import Postgres

/// `StatisticsStore` on the counters the write functions keep (migration 10) and the relay's
/// `event_days` (migration 9). Neither statement reads `messages` beyond two index probes: the
/// plans are in docs/statistics.md.
public struct PostgresStatisticsStore: StatisticsStore {
    let client: PostgresClient

    public init(client: PostgresClient) {
        self.client = client
    }

    public func channel(_ channelID: UUID) async throws -> ChannelStatistics {
        try Self.channelStatistics(channelID, from: try await client.query(Self.selectChannel, [channelID]))
    }

    /// The answer of `selectChannel`: one row per day, each with the totals.
    static func channelStatistics(_ channelID: UUID, from rows: PostgresRows) throws -> ChannelStatistics {
        guard let first = rows.first else { throw StoreInvariantViolation() }
        return ChannelStatistics(
            channelID: channelID, messages: try first.decode("messages"), replies: try first.decode("replies"),
            deleted: try first.decode("deleted"), authors: try first.decode("authors"),
            firstMessageAt: try first.decodeIfPresent("first_message_at"),
            lastMessageAt: try first.decodeIfPresent("last_message_at"),
            days: try rows.rows.map { DayCount(day: try $0.decode("day"), messages: try $0.decode("day_messages")) })
    }

    public func service() async throws -> ServiceStatistics {
        // One date for both statements: a call across midnight must not lose the day that just
        // became two days past between them.
        let today = try await client.query(Self.selectToday).first?.decode("today", as: String.self) ?? ""
        try await client.query(Self.rollUpDays, [today])
        return try Self.serviceStatistics(from: try await client.query(Self.selectService, [today]))
    }

    /// The answer of `selectService`: one row per day, each with the totals.
    static func serviceStatistics(from rows: PostgresRows) throws -> ServiceStatistics {
        guard let first = rows.first else { throw StoreInvariantViolation() }
        return ServiceStatistics(
            channels: try first.decode("channels"), messages: try first.decode("messages"),
            replies: try first.decode("replies"), deleted: try first.decode("deleted"),
            eventsPublished: try first.decode("published"), eventsWaiting: try first.decode("waiting"),
            eventsDead: try first.decode("dead"),
            oldestWaitingSeconds: Double(try first.decode("oldest_waiting_seconds", as: String.self)) ?? 0,
            days: try rows.rows.map {
                DayCount(
                    day: try $0.decode("day"), messages: try $0.decode("day_messages"),
                    eventsPublished: try $0.decode("day_published"), eventsDead: try $0.decode("day_dead"))
            })
    }

    static let selectToday = "SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS today"

    /// The UTC days of the counts: today and the 29 before it.
    private static let dayRange = """
        generate_series((now() AT TIME ZONE 'UTC')::date - \(Self.dayCount - 1), (now() AT TIME ZONE 'UTC')::date,
            interval '1 day') AS d(day)
        """

    /// The same days up to $1, a UTC date.
    private static let dayRangeTo = """
        generate_series($1::date - \(Self.dayCount - 1), $1::date, interval '1 day') AS d(day)
        """

    /// One row per day, each with the channel's totals (computed once: the subqueries are not
    /// correlated). First and last message are the ends of the (channel_id, seq) index.
    static let selectChannel = """
        SELECT to_char(d.day, 'YYYY-MM-DD') AS day, coalesce(cd.messages, 0) AS day_messages,
            coalesce(c.message_count, 0) AS messages, coalesce(c.reply_count, 0) AS replies,
            coalesce(c.deleted_count, 0) AS deleted,
            (SELECT count(*) FROM channel_authors a WHERE a.channel_id = $1) AS authors,
            (SELECT api_time(m.created_at) FROM messages m WHERE m.channel_id = $1 ORDER BY m.seq LIMIT 1)
                AS first_message_at,
            (SELECT api_time(m.created_at) FROM messages m WHERE m.channel_id = $1 ORDER BY m.seq DESC LIMIT 1)
                AS last_message_at
        FROM \(dayRange)
        LEFT JOIN channels c ON c.id = $1
        LEFT JOIN channel_days cd ON cd.channel_id = $1 AND cd.day = d.day::date
            AND cd.day >= (now() AT TIME ZONE 'UTC')::date - \(Self.dayCount - 1)
        ORDER BY d.day
        """

    /// Sums the days of the window that are at least two days past and not summed yet into
    /// `message_days`: one probe per day once they are, a pass over one day of `channel_days`
    /// (by its day index) for each that is not. A create counts its day under its channel's lock
    /// before it commits, so a day two days past gets no more counts; a day without messages
    /// gets its 0, so it is not summed again.
    static let rollUpDays = """
        INSERT INTO message_days (day, messages)
        SELECT d.day::date, coalesce((SELECT sum(cd.messages) FROM channel_days cd WHERE cd.day = d.day::date), 0)
        FROM generate_series($1::date - \(Self.dayCount - 1), $1::date - 2, interval '1 day') AS d(day)
        WHERE NOT EXISTS (SELECT 1 FROM message_days md WHERE md.day = d.day::date)
        ON CONFLICT (day) DO NOTHING
        """

    /// One row per day with the service's totals: a pass over `channels` (one row per channel,
    /// not per message), `message_days` for the days past, `channel_days` of yesterday and today
    /// by its day index, and the outbox.
    static let selectService = """
        WITH totals AS (
            SELECT count(*) AS channels, coalesce(sum(message_count), 0)::bigint AS messages,
                coalesce(sum(reply_count), 0)::bigint AS replies, coalesce(sum(deleted_count), 0)::bigint AS deleted
            FROM channels
        ), posted AS (
            SELECT day, messages FROM message_days
            WHERE day >= $1::date - \(Self.dayCount - 1) AND day < $1::date - 1
            UNION ALL
            SELECT day, sum(messages)::bigint FROM channel_days
            WHERE day >= $1::date - 1 AND day <= $1::date GROUP BY day
        )
        SELECT to_char(d.day, 'YYYY-MM-DD') AS day, coalesce(p.messages, 0) AS day_messages,
            coalesce(e.published, 0) AS day_published, coalesce(e.dead, 0) AS day_dead,
            t.channels, t.messages, t.replies, t.deleted,
            (SELECT coalesce(sum(published), 0)::bigint FROM event_days) AS published,
            (SELECT count(*) FROM outbox) AS waiting,
            (SELECT count(*) FROM dead_events) AS dead,
            (SELECT coalesce(extract(epoch FROM clock_timestamp() - min(created_at)), 0)::float8 FROM outbox)::text
                AS oldest_waiting_seconds
        FROM totals t CROSS JOIN \(dayRangeTo)
        LEFT JOIN posted p ON p.day = d.day::date
        LEFT JOIN event_days e ON e.day = d.day::date
        ORDER BY d.day
        """
}
