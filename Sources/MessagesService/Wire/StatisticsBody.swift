/// `GET /v1/channels/{channel_id}/stats`: `{"channel_id", "messages", "replies", "deleted",
/// "authors", "first_message_at", "last_message_at", "days": [{"day", "messages"}]}`.
struct ChannelStatisticsBody: Encodable {
    let statistics: ChannelStatistics

    init(_ statistics: ChannelStatistics) {
        self.statistics = statistics
    }

    enum CodingKeys: String, CodingKey {
        case channelID = "channel_id"
        case messages, replies, deleted, authors, days
        case firstMessageAt = "first_message_at"
        case lastMessageAt = "last_message_at"
    }

    struct Day: Encodable {
        let day: String
        let messages: Int64
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(statistics.channelID.lowercased, forKey: .channelID)
        try container.encode(statistics.messages, forKey: .messages)
        try container.encode(statistics.replies, forKey: .replies)
        try container.encode(statistics.deleted, forKey: .deleted)
        try container.encode(statistics.authors, forKey: .authors)
        // Explicit nulls before the first message.
        try container.encode(statistics.firstMessageAt, forKey: .firstMessageAt)
        try container.encode(statistics.lastMessageAt, forKey: .lastMessageAt)
        try container.encode(statistics.days.map { Day(day: $0.day, messages: $0.messages) }, forKey: .days)
    }
}

/// `GET /v1/stats`: `{"channels", "messages", "replies", "deleted", "events": {"published",
/// "waiting", "dead", "oldest_waiting_seconds"}, "days": [{"day", "messages",
/// "events_published", "events_dead"}]}`.
struct ServiceStatisticsBody: Encodable {
    let statistics: ServiceStatistics

    init(_ statistics: ServiceStatistics) {
        self.statistics = statistics
    }

    enum CodingKeys: String, CodingKey {
        case channels, messages, replies, deleted, events, days
    }

    struct Events: Encodable {
        let published: Int64
        let waiting: Int64
        let dead: Int64
        let oldestWaitingSeconds: Double

        enum CodingKeys: String, CodingKey {
            case published, waiting, dead
            case oldestWaitingSeconds = "oldest_waiting_seconds"
        }
    }

    struct Day: Encodable {
        let day: String
        let messages: Int64
        let eventsPublished: Int64
        let eventsDead: Int64

        enum CodingKeys: String, CodingKey {
            case day, messages
            case eventsPublished = "events_published"
            case eventsDead = "events_dead"
        }
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(statistics.channels, forKey: .channels)
        try container.encode(statistics.messages, forKey: .messages)
        try container.encode(statistics.replies, forKey: .replies)
        try container.encode(statistics.deleted, forKey: .deleted)
        try container.encode(
            Events(
                published: statistics.eventsPublished, waiting: statistics.eventsWaiting, dead: statistics.eventsDead,
                oldestWaitingSeconds: statistics.oldestWaitingSeconds),
            forKey: .events)
        try container.encode(
            statistics.days.map {
                Day(day: $0.day, messages: $0.messages, eventsPublished: $0.eventsPublished, eventsDead: $0.eventsDead)
            },
            forKey: .days)
    }
}
