import Foundation

/// One UTC day's count of messages posted (and, service-wide, of events).
public struct DayCount: Sendable, Equatable {
    /// `YYYY-MM-DD`.
    public var day: String
    public var messages: Int64
    public var eventsPublished: Int64 = 0
    public var eventsDead: Int64 = 0
}

/// What `GET /v1/channels/{id}/stats` answers: counters the writes keep, so reading them costs
/// a few index probes whatever the channel's size.
public struct ChannelStatistics: Sendable, Equatable {
    public var channelID: UUID
    /// Messages ever posted: replies and deleted ones included.
    public var messages: Int64
    /// Of those, replies in threads.
    public var replies: Int64
    /// Of those, deleted since.
    public var deleted: Int64
    /// Distinct users who posted.
    public var authors: Int64
    /// RFC 3339 times of the first and the last message posted; nil before the first.
    public var firstMessageAt: String?
    public var lastMessageAt: String?
    /// The last `StatisticsStore.dayCount` UTC days, oldest first, today last; days without a message count 0.
    public var days: [DayCount]
}

/// What `GET /v1/stats` answers, for operators.
public struct ServiceStatistics: Sendable, Equatable {
    /// Channels with at least one message.
    public var channels: Int64
    public var messages: Int64
    public var replies: Int64
    public var deleted: Int64
    /// Events the broker confirmed, since the statistics began (migration 9).
    public var eventsPublished: Int64
    /// Events in the outbox, not yet confirmed.
    public var eventsWaiting: Int64
    /// Events in `dead_events`, waiting for a replay.
    public var eventsDead: Int64
    /// Age of the oldest waiting event; 0 when none waits.
    public var oldestWaitingSeconds: Double
    /// The last `StatisticsStore.dayCount` UTC days, oldest first: messages posted, events published and dead.
    public var days: [DayCount]
}

/// Reads the statistics.
public protocol StatisticsStore: Sendable {
    func channel(_ channelID: UUID) async throws -> ChannelStatistics
    func service() async throws -> ServiceStatistics
}

extension StatisticsStore {
    /// How many days the per-day counts cover.
    public static var dayCount: Int { 30 }
}
