import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import Redis

/// The newest messages of each channel in Redis, pre-serialized, so that the most read page of a
/// chat (the newest one) is answered by joining bytes.
///
/// Reads try Redis, fill it from Postgres on a miss (concurrent misses of one channel share one
/// query), and answer from Postgres when Redis is down: Redis can make reads faster, never make
/// them fail. Writers apply every committed change (`apply`) in one round trip. While Redis fails,
/// a circuit breaker stops calling it; writes it could not apply mark their channel stale, and the
/// stale channels are deleted from Redis before it is used again, so it never answers with a
/// timeline that missed a write. (A process that dies between its commit and its write-through
/// leaves the channel stale for at most the TTL.)
final class TimelineCache: Sendable {
    struct Configuration: Sendable, Equatable {
        /// Entries kept per channel; at least the largest page.
        var capacity = 200
        var timeToLive = Duration.seconds(600)
    }

    /// Where a list response came from, for the `X-Cache` header.
    enum Status: String, Sendable {
        case hit, miss, bypass
    }

    /// A list response body and where it came from.
    struct Page: Sendable {
        let body: ByteBuffer
        let status: Status
    }

    /// Counters for operators and tests.
    struct Statistics: Sendable, Equatable {
        var hits = 0
        var misses = 0
        var bypasses = 0
        /// Newest pages read from Postgres to fill the cache.
        var fills = 0
        /// Redis calls that failed (timeouts, lost connections, refused by the breaker not counted).
        var errors = 0
    }

    /// The newest messages of a channel as Postgres had them, ready to answer and to cache.
    private struct Fill: Sendable {
        let entries: [TimelineEntry]
        let channel: ChannelState
        let isComplete: Bool
    }

    private let redis: RedisClient
    private let store: any MessageStore
    private let configuration: Configuration
    private let breaker: CircuitBreaker
    private let logger: Logger
    private let fills = SingleFlight<UUID, Fill>()
    private let staleChannels = NIOLockedValueBox(Set<UUID>())
    private let counters = NIOLockedValueBox(Statistics())
    /// Stale channels remembered at most; past that, they expire with the TTL.
    private static let staleLimit = 10_000

    init(redis: RedisClient, store: any MessageStore, configuration: Configuration, breaker: CircuitBreaker, logger: Logger) {
        self.redis = redis
        self.store = store
        self.configuration = configuration
        self.breaker = breaker
        self.logger = logger
    }

    var statistics: Statistics { counters.withLockedValue { $0 } }
    var breakerState: CircuitBreaker.State { breaker.state }

    // MARK: - Reads

    /// What Redis holds for a channel.
    private enum Lookup {
        /// A filled timeline: its meta and its newest entries, newest first.
        case found(TimelineMeta, [TimelineEntry])
        case notCached
        /// Redis failed, or the breaker is open.
        case unavailable
    }

    /// The newest v1 page of a channel's timeline (tombstones included).
    func newestPage(channelID: UUID, limit: Int) async throws -> Page {
        switch await lookup(channelID: channelID, count: limit + 1, live: false) {
        case .found(let meta, let newestFirst) where newestFirst.count > limit || meta.isComplete:
            return answer(.hit, v1Page(ascending: newestFirst.reversed(), channel: meta.channel, isComplete: meta.isComplete, limit: limit))
        case .unavailable:
            let page = try await store.page(channelID: channelID, scope: .timeline, position: .newest, limit: limit)
            return answer(.bypass, try PageJSON.v1(page: page, position: .newest))
        case .found, .notCached:
            let fill = try await fill(channelID: channelID)
            return answer(.miss, v1Page(ascending: fill.entries, channel: fill.channel, isComplete: fill.isComplete, limit: limit))
        }
    }

    /// The newest INF326 page of a channel: live root messages, newest first.
    func newestThreadPage(channelID: UUID, limit: Int) async throws -> Page {
        switch await lookup(channelID: channelID, count: limit, live: true) {
        case .found(let meta, let newestFirst) where newestFirst.count == limit || meta.isComplete:
            return answer(.hit, threadPage(newestFirst: newestFirst, limit: limit))
        case .unavailable:
            return answer(.bypass, try await threadPageFromStore(channelID: channelID, limit: limit))
        case .found, .notCached:
            let fill = try await fill(channelID: channelID)
            let live = Array(fill.entries.reversed().lazy.filter { !$0.isDeleted }.prefix(limit))
            // Tombstones can crowd live messages out of the cached window: then ask Postgres.
            guard live.count == limit || fill.isComplete else {
                return answer(.miss, try await threadPageFromStore(channelID: channelID, limit: limit))
            }
            return answer(.miss, threadPage(newestFirst: live, limit: limit))
        }
    }

    // MARK: - Writes

    /// Applies a committed write to the channel's cached timeline. Never throws: a write that cannot
    /// reach Redis marks the channel stale instead.
    func apply(_ write: MessageWrite) async {
        guard let channel = write.channel else { return }
        let channelID = write.message.channelID
        do {
            let encoder = JSONResponse.encoder
            // Replies are not in the timeline; the root whose reply count they changed is.
            let changed = [write.message, write.parent].compactMap { $0 }.filter { $0.parentID == nil }
            let entries = try changed.map { try TimelineEntry(message: $0, encoder: encoder) }
            try await merge(entries, channelID: channelID, channel: channel, fill: nil)
        } catch {
            markStale(channelID, because: error)
        }
    }

    // MARK: - Redis

    private static func key(_ channelID: UUID) -> String {
        "timeline:" + channelID.lowercased
    }

    private func lookup(channelID: UUID, count: Int, live: Bool) async -> Lookup {
        do {
            let reply = try await callRedis {
                try await self.redis.evaluate(
                    TimelineScripts.newest, keys: [Self.key(channelID)], arguments: [count, live ? "live" : "all"]
                )
            }
            guard let parts = reply.array, parts.count == 2, let metaBytes = parts[0].bytes,
                let meta = TimelineMeta(member: metaBytes), let members = parts[1].array
            else { return .notCached }
            let entries = members.compactMap { $0.bytes.flatMap(TimelineEntry.init(member:)) }
            // An entry this version cannot read (a newer release wrote it): let a fill replace it.
            guard entries.count == members.count else { return .notCached }
            return .found(meta, entries)
        } catch {
            return .unavailable
        }
    }

    /// Reads the newest `capacity` messages from Postgres and merges them into Redis (best effort);
    /// concurrent callers for one channel share one read.
    private func fill(channelID: UUID) async throws -> Fill {
        let capacity = configuration.capacity
        return try await fills.run(channelID) { [self] in
            let page = try await store.page(channelID: channelID, scope: .timeline, position: .newest, limit: capacity)
            count(\.fills)
            let encoder = JSONResponse.encoder
            let fill = Fill(
                entries: try page.items.map { try TimelineEntry(message: $0, encoder: encoder) },
                channel: page.channel, isComplete: !page.hasBefore
            )
            // A channel with no message yet is not cached: unknown ids must not fill Redis.
            if page.channel.version > 0 {
                try? await merge(fill.entries, channelID: channelID, channel: page.channel, fill: fill.isComplete)
            }
            return fill
        }
    }

    /// Runs the merge script; `fill` is the completeness a fill read, nil for a write-through.
    private func merge(_ entries: [TimelineEntry], channelID: UUID, channel: ChannelState, fill isComplete: Bool?) async throws {
        var arguments: [any RedisArgument] = [
            configuration.capacity, Int(configuration.timeToLive.components.seconds),
            TimelineEntry.digits(channel.version, 19), TimelineEntry.digits(channel.lastSeq, 19),
            isComplete == nil ? "write" : "fill", isComplete == false ? "0" : "1",
        ]
        arguments += entries.map(\.member)
        try await callRedis {
            try await self.redis.evaluate(TimelineScripts.merge, keys: [Self.key(channelID)], arguments: arguments)
        }
    }

    /// Calls Redis through the breaker, after deleting the timelines of channels whose writes
    /// could not be applied, so that no stale timeline is read or extended.
    private func callRedis<T>(_ operation: () async throws -> T) async throws -> T {
        try await breaker.run(isFailure: Self.isOutage) {
            let stale = staleChannels.withLockedValue { $0 }
            if !stale.isEmpty {
                try await redis.send(RedisCommand("DEL", stale.map(Self.key)))
                staleChannels.withLockedValue { $0.subtract(stale) }
            }
            do {
                return try await operation()
            } catch {
                count(\.errors)
                logger.warning("redis call failed", metadata: ["error": "\(error)"])
                throw error
            }
        }
    }

    private func markStale(_ channelID: UUID, because error: any Error) {
        let remembered = staleChannels.withLockedValue { stale in
            guard stale.count < Self.staleLimit else { return false }
            stale.insert(channelID)
            return true
        }
        if !remembered {
            logger.error("too many stale timelines to remember; they expire with the TTL", metadata: [LogKey.channelID: "\(channelID.lowercased)"])
        }
    }

    /// Timeouts and lost connections open the breaker; an error reply means Redis is up.
    private static func isOutage(_ error: any Error) -> Bool {
        guard let error = error as? RedisError else { return true }
        return error.code != .server && error.code != .unexpectedReply
    }

    // MARK: - Responses

    private func answer(_ status: Status, _ body: ByteBuffer) -> Page {
        count(status == .hit ? \.hits : status == .miss ? \.misses : \.bypasses)
        return Page(body: body, status: status)
    }

    /// A v1 newest page from entries ascending by seq.
    private func v1Page(ascending entries: [TimelineEntry], channel: ChannelState, isComplete: Bool, limit: Int) -> ByteBuffer {
        let items = entries.suffix(limit)
        let links = PageLinks(
            position: .newest, firstSeq: items.first?.seq, lastSeq: items.last?.seq,
            hasBefore: entries.count > limit || !isComplete, hasAfter: false
        )
        return PageJSON.v1(items: items.map(\.v1JSON), links: links, channel: channel)
    }

    private func threadPage(newestFirst entries: [TimelineEntry], limit: Int) -> ByteBuffer {
        PageJSON.thread(
            newestFirst: entries.map(\.threadJSON), nextCursor: entries.last?.threadCursor, hasMore: entries.count == limit
        )
    }

    private func threadPageFromStore(channelID: UUID, limit: Int) async throws -> ByteBuffer {
        let page = try await store.page(channelID: channelID, scope: .liveTimeline, position: .newest, limit: limit)
        return try PageJSON.thread(page: page, limit: limit)
    }

    private func count(_ counter: WritableKeyPath<Statistics, Int>) {
        counters.withLockedValue { $0[keyPath: counter] += 1 }
    }
}
