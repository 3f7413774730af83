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
/// stale channels are deleted from Redis before this process uses it again. A fill holds a lease
/// (a token in the timeline's meta): a deletion or another fill in between voids it, so a fill read
/// before a lost write can never mark the timeline filled.
///
/// Known bounds: a process that dies between its commit and its write-through, or whose write
/// failed while another replica keeps reading, leaves the channel stale for at most the TTL (or
/// until this process reaches Redis again).
final class TimelineCache: Sendable {
    struct Configuration: Sendable, Equatable {
        /// Entries kept per channel; at least the largest page.
        var capacity = 200
        var timeToLive = Duration.seconds(600)
        /// Bytes of newest pages each process keeps to answer without reading entries (`HotPages`).
        var hotPageBytes = 8 << 20
        /// Replicas that must confirm a write-through (`REDIS_WAIT_REPLICAS`), within
        /// `replicaTimeout`; otherwise the channel is marked stale, as after any failed write-through,
        /// so a failover to a replica that missed it never serves a page without it.
        var replicas = 0
        /// Half of the default `REDIS_COMMAND_TIMEOUT_MS`: `WAIT` must answer before the call times out.
        var replicaTimeout = Duration.milliseconds(125)
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
        /// Hits answered with a page this process kept (`HotPages`), Redis saying it is current.
        var hotHits = 0
    }

    /// The newest messages of a channel as Postgres had them, ready to answer and to cache.
    private struct Fill: Sendable {
        let entries: [TimelineEntry]
        let channel: ChannelState
        let isComplete: Bool
    }

    /// Reads the newest page of a scope from the store, past the cache: fills and bypasses use it.
    typealias NewestPages = @Sendable (_ channelID: UUID, _ scope: MessageScope, _ limit: Int) async throws -> MessagePage

    private let redis: RedisClient
    private let newestPages: NewestPages
    private let configuration: Configuration
    private let breaker: CircuitBreaker
    private let logger: Logger
    private let fills = SingleFlight<UUID, Fill>()
    private let hotPages: HotPages
    /// Channels whose writes may be missing from Redis, to delete there before the next call.
    private let staleChannels = NIOLockedValueBox(Set<UUID>())
    /// Whether the primary had `configuration.replicas` replicas connected when last asked
    /// (`ROLE`, at most once a second), and when that was.
    private let replicasSeen = NIOLockedValueBox<(connected: Bool, at: ContinuousClock.Instant?)>((false, nil))
    /// The deletion of stale timelines under way. Every Redis call waits for it: a call that went
    /// ahead could read a timeline that is about to be deleted, without a write this pod
    /// acknowledged.
    private let staleDeletion = NIOLockedValueBox<Task<Void, any Error>?>(nil)
    private let counters = NIOLockedValueBox(Statistics())
    /// Stale channels remembered at most; past that, they expire with the TTL.
    private static let staleLimit = 10_000

    init(
        redis: RedisClient, configuration: Configuration, breaker: CircuitBreaker, logger: Logger,
        newestPages: @escaping NewestPages
    ) {
        self.redis = redis
        self.newestPages = newestPages
        self.configuration = configuration
        self.breaker = breaker
        self.logger = logger
        self.hotPages = HotPages(byteBudget: configuration.hotPageBytes)
    }

    var statistics: Statistics { counters.withLockedValue { $0 } }
    var breakerState: CircuitBreaker.State { breaker.state }

    // MARK: - Reads

    /// What Redis holds for a channel.
    fileprivate enum Lookup {
        /// A filled timeline: its meta and its newest entries, newest first.
        case found(TimelineMeta, [TimelineEntry])
        /// A filled timeline still at the revision of the page this process keeps: its body.
        case unchanged(ByteBuffer)
        case notCached
        /// Redis failed, the breaker is open, or the timeline holds what this version cannot read.
        case unavailable
    }

    /// The newest v1 page of a channel's timeline (tombstones included).
    func newestPage(channelID: UUID, limit: Int, cursors: PageCursors) async throws -> Page {
        func answers(_ lookup: Lookup) -> ByteBuffer? {
            // `limit` entries of a trimmed window also answer: older ones exist, has_before is true.
            guard case .found(let meta, let newestFirst) = lookup, newestFirst.count >= limit || meta.isComplete else {
                return nil
            }
            return v1Page(
                ascending: newestFirst.reversed(), channel: meta.channel, isComplete: meta.isComplete, limit: limit,
                cursors: cursors
            )
        }
        let hotKey = HotPages.Key(channelID: channelID, form: .v1, limit: limit)
        let lookup = await lookup(channelID: channelID, count: limit + 1, live: false, holding: hotKey)
        if let body = answer(lookup, hotKey: hotKey, answers(lookup)) { return answer(.hit, body) }
        guard case .notCached = lookup else {
            let page = try await newestPages(channelID, .timeline, limit)
            return answer(
                lookup.isUnavailable ? .bypass : .miss, try PageJSON.v1(page: page, position: .newest, cursors: cursors))
        }
        let (fill, joined) = try await fill(channelID: channelID)
        // A fill joined midway may have read Postgres before this caller's own last write; Redis
        // has both by now.
        if joined, let body = answers(await self.lookup(channelID: channelID, count: limit + 1, live: false)) {
            return answer(.miss, body)
        }
        return answer(
            .miss,
            v1Page(ascending: fill.entries, channel: fill.channel, isComplete: fill.isComplete, limit: limit, cursors: cursors)
        )
    }

    /// The newest INF326 page of a channel: live root messages, newest first.
    func newestThreadPage(channelID: UUID, limit: Int) async throws -> Page {
        func answers(_ lookup: Lookup) -> ByteBuffer? {
            guard case .found(let meta, let newestFirst) = lookup, newestFirst.count == limit || meta.isComplete else {
                return nil
            }
            return threadPage(newestFirst: newestFirst, limit: limit)
        }
        let hotKey = HotPages.Key(channelID: channelID, form: .thread, limit: limit)
        let lookup = await lookup(channelID: channelID, count: limit, live: true, holding: hotKey)
        if let body = answer(lookup, hotKey: hotKey, answers(lookup)) { return answer(.hit, body) }
        // Cached, but tombstones crowd live messages out of the window: only Postgres has the page.
        guard case .notCached = lookup else {
            return answer(
                lookup.isUnavailable ? .bypass : .miss, try await threadPageFromStore(channelID: channelID, limit: limit))
        }
        let (fill, joined) = try await fill(channelID: channelID)
        if joined, let body = answers(await self.lookup(channelID: channelID, count: limit, live: true)) {
            return answer(.miss, body)
        }
        let live = Array(fill.entries.reversed().lazy.filter { !$0.isDeleted }.prefix(limit))
        guard live.count == limit || fill.isComplete else {
            return answer(.miss, try await threadPageFromStore(channelID: channelID, limit: limit))
        }
        return answer(.miss, threadPage(newestFirst: live, limit: limit))
    }

    // MARK: - Writes

    /// Applies a committed write to the channel's cached timeline. Never throws: a write that cannot
    /// reach Redis marks the channel stale instead.
    func apply(_ write: MessageWrite) async {
        guard let channel = write.channel else { return }
        let channelID = write.message.channelID
        do {
            // Replies are not in the timeline; the root whose reply count they changed is.
            let changed = [write.message, write.parent].compactMap { $0 }.filter { $0.parentID == nil }
            let entries = try changed.map { try TimelineEntry(message: $0) }
            try await merge(entries, channelID: channelID, channel: channel, lease: nil)
        } catch {
            markStale(channelID)
        }
    }

    /// Forgets the channel's cached timeline before Redis is used again: for writes whose outcome
    /// is unknown (the connection broke around COMMIT) and writes that could not be applied.
    func markStale(_ channelID: UUID) {
        let remembered = staleChannels.withLockedValue { stale in
            guard stale.count < Self.staleLimit else { return false }
            stale.insert(channelID)
            return true
        }
        if !remembered {
            logger.error(
                "too many stale timelines to remember; they expire with the TTL",
                metadata: [LogKey.channelID: "\(channelID.lowercased)"]
            )
        }
    }

    // MARK: - Redis

    /// The format is in the key: entries written by another release are never read as this one's.
    /// One key per channel, and every script names one key, so a sharded Redis may hash the whole
    /// key. Pods of two releases share this key during a rolling update, so it does not change
    /// without a new format: the next one also makes the channel its hash tag
    /// (`timeline:v3:{<channel>}`, docs/scaling.md).
    static func key(_ channelID: UUID) -> String {
        "timeline:v2:" + channelID.lowercased
    }

    /// Reads the newest entries of a channel's timeline; when `hotKey` names a page this process
    /// keeps, Redis answers `unchanged` instead while the timeline is at that page's revision.
    private func lookup(channelID: UUID, count: Int, live: Bool, holding hotKey: HotPages.Key? = nil) async -> Lookup {
        let held = hotKey.flatMap(hotPages.page(for:))
        let heldRevision = held?.revision ?? []
        do {
            let reply = try await callRedis {
                try await self.redis.evaluate(
                    TimelineScripts.newest, keys: [Self.key(channelID)],
                    arguments: [count, live ? "live" : "all", heldRevision]
                )
            }
            if let held, let parts = reply.array, parts.count == 1,
                parts[0].bytes.flatMap(TimelineMeta.init(member:))?.revision == held.revision
            {
                return .unchanged(held.body)
            }
            guard let parts = reply.array, parts.count == 2 else { return .notCached }
            guard let meta = parts[0].bytes.flatMap(TimelineMeta.init(member:)), let members = parts[1].array else {
                return .unavailable
            }
            let entries = members.compactMap { $0.bytes.flatMap(TimelineEntry.init(member:)) }
            guard entries.count == members.count else { return .unavailable }
            return .found(meta, entries)
        } catch {
            return .unavailable
        }
    }

    /// Reads the newest `capacity` messages from Postgres and merges them into Redis under a lease
    /// (best effort). Concurrent callers for one channel share one read; `joined` tells a caller
    /// that it did not start the read.
    private func fill(channelID: UUID) async throws -> (value: Fill, joined: Bool) {
        let capacity = configuration.capacity
        return try await fills.run(channelID) { [self] in
            let lease = Self.newToken()
            let leased =
                (try? await callRedis {
                    try await self.redis.evaluate(
                        TimelineScripts.lease, keys: [Self.key(channelID)],
                        arguments: [lease, Int(configuration.timeToLive.components.seconds)]
                    )
                }) != nil
            let page = try await newestPages(channelID, .timeline, capacity)
            counters.withLockedValue { $0.fills += 1 }
            let fill = Fill(
                entries: try page.items.map { try TimelineEntry(message: $0) },
                channel: page.channel, isComplete: !page.hasBefore
            )
            // A channel with no message yet is not cached: unknown ids must not fill Redis.
            if leased, page.channel.version > 0 {
                try? await merge(fill.entries, channelID: channelID, channel: page.channel, lease: (lease, fill.isComplete))
            }
            return fill
        }
    }

    /// Runs the merge script: a write-through without `lease`, or a fill with its lease and the
    /// completeness it read.
    private func merge(
        _ entries: [TimelineEntry], channelID: UUID, channel: ChannelState, lease: (token: String, isComplete: Bool)?
    ) async throws {
        var arguments: [any RedisArgument] = [
            configuration.capacity, Int(configuration.timeToLive.components.seconds),
            TimelineEntry.digits(channel.version, 19), TimelineEntry.digits(channel.lastSeq, 19),
            lease == nil ? "write" : "fill", lease?.isComplete == false ? "0" : "1", lease?.token ?? "",
            Self.newToken(),
        ]
        arguments += entries.map { $0.member }
        // A fill needs no replica: one that a failover loses is a miss on the new primary.
        let replicas = lease == nil ? configuration.replicas : 0
        if replicas > 0, !(await replicasConnected()) {
            // WAIT would hold the connection, and every call pipelined behind it, for its whole
            // timeout. The write is not made: its channel is marked stale instead, as for any
            // write that no replica confirmed.
            throw RedisError(code: .notReplicated, serverMessage: "fewer than \(replicas) replicas connected")
        }
        do {
            try await callRedis {
                try await self.redis.evaluate(
                    TimelineScripts.merge, keys: [Self.key(channelID)], arguments: arguments, replicas: replicas,
                    replicaTimeout: self.configuration.replicaTimeout)
            }
        } catch let error as RedisError where error.code == .notReplicated {
            // A replica fell behind or went: ask again before the next WAIT holds a connection.
            replicasSeen.withLockedValue { $0 = (false, .now) }
            throw error
        }
    }

    /// Whether the primary has the replicas a write-through must wait for; asks it (`ROLE`: its
    /// connected replicas) at most once a second.
    private func replicasConnected() async -> Bool {
        let now = ContinuousClock.now
        let seen = replicasSeen.withLockedValue { $0 }
        if let at = seen.at, now - at < .seconds(1) { return seen.connected }
        replicasSeen.withLockedValue { $0.at = now }
        let role: RedisValue?
        do {
            role = try await callRedis { try await self.redis.send("ROLE") }
        } catch {
            // Without an answer (a Redis that refuses ROLE, or none reachable) no write-through is
            // confirmed: each marks its channel stale.
            logger.warning("could not ask Redis for its replicas (ROLE)", metadata: ["error": "\(error)"])
            role = nil
        }
        let connected = (role?.array?.dropFirst(2).first?.array?.count ?? 0) >= configuration.replicas
        replicasSeen.withLockedValue { $0 = (connected, now) }
        return connected
    }

    /// Calls Redis through the breaker, after deleting the timelines of stale channels, so that no
    /// stale timeline is read or extended.
    @discardableResult
    private func callRedis<T>(_ operation: () async throws -> T) async throws -> T {
        try await breaker.run(isFailure: RedisError.isOutage) {
            do {
                try await deleteStaleTimelines()
                return try await operation()
            } catch {
                counters.withLockedValue { $0.errors += 1 }
                logger.warning("redis call failed", metadata: ["error": "\(error)"])
                throw error
            }
        }
    }

    /// Takes the stale channels out of the set before deleting them, so that a channel marked
    /// stale meanwhile stays marked (and is deleted by the next round); puts them back when the
    /// deletion fails. A caller that finds a deletion under way waits for it. While the replicas a
    /// write-through waits for are connected, the deletion waits for them too (`WAIT`), so a
    /// failover cannot bring back a timeline this pod deleted.
    private func deleteStaleTimelines() async throws {
        // The last answer only: asking now would wait for this very deletion.
        let replicas = replicasSeen.withLockedValue { $0.connected } ? configuration.replicas : 0
        let replicaTimeout = configuration.replicaTimeout
        while true {
            let deletion: Task<Void, any Error>? = staleDeletion.withLockedValue { current in
                if let current { return current }
                let stale = staleChannels.withLockedValue { stale in
                    defer { stale.removeAll() }
                    return stale
                }
                guard !stale.isEmpty else { return nil }
                let task = Task { [redis, staleChannels, staleDeletion] in
                    defer { staleDeletion.withLockedValue { $0 = nil } }
                    do {
                        // One key per command, pipelined: a sharded Redis refuses a DEL whose
                        // keys lie in different slots.
                        let wait = RedisCommand.wait(replicas: replicas, timeout: replicaTimeout)
                        let replies = try await redis.pipeline(stale.map { RedisCommand("DEL", [Self.key($0)]) } + wait)
                        for case .error(let message) in replies {
                            throw RedisError(code: .server, serverMessage: message)
                        }
                        if replicas > 0, let confirmation = replies.last { try confirmation.requireReplicas(replicas) }
                    } catch {
                        staleChannels.withLockedValue { $0.formUnion(stale) }
                        throw error
                    }
                }
                current = task
                return task
            }
            guard let deletion else { return }
            try await deletion.value
        }
    }

    /// 16 hex digits, the width the meta keeps for a lease or a revision.
    private static func newToken() -> String {
        String(format: "%016llx", UInt64.random(in: 1...UInt64.max))
    }

    // MARK: - Responses

    /// The body of a hit: the page this process keeps when Redis says it is current, else the one
    /// built from the entries it read (kept for the next read).
    private func answer(_ lookup: Lookup, hotKey: HotPages.Key, _ built: ByteBuffer?) -> ByteBuffer? {
        switch lookup {
        case .unchanged(let kept):
            counters.withLockedValue { $0.hotHits += 1 }
            return kept
        case .found(let meta, _):
            if let built, !meta.revision.isEmpty {
                hotPages.store(HotPages.Page(revision: meta.revision, body: built), for: hotKey)
            }
            return built
        case .notCached, .unavailable:
            return nil
        }
    }

    private func answer(_ status: Status, _ body: ByteBuffer) -> Page {
        counters.withLockedValue { counters in
            switch status {
            case .hit: counters.hits += 1
            case .miss: counters.misses += 1
            case .bypass: counters.bypasses += 1
            }
        }
        return Page(body: body, status: status)
    }

    /// A v1 newest page from entries ascending by seq.
    private func v1Page(
        ascending entries: [TimelineEntry], channel: ChannelState, isComplete: Bool, limit: Int, cursors: PageCursors
    ) -> ByteBuffer {
        let items = entries.suffix(limit)
        let links = PageLinks(
            position: .newest, firstSeq: items.first?.seq, lastSeq: items.last?.seq,
            hasBefore: entries.count > limit || !isComplete, hasAfter: false
        )
        return PageJSON.v1(items: items.map { $0.v1JSON }, links: links, channel: channel, cursors: cursors)
    }

    private func threadPage(newestFirst entries: [TimelineEntry], limit: Int) -> ByteBuffer {
        PageJSON.thread(
            newestFirst: entries.map { $0.threadJSON }, nextCursor: entries.last?.threadCursor, hasMore: entries.count == limit
        )
    }

    private func threadPageFromStore(channelID: UUID, limit: Int) async throws -> ByteBuffer {
        let page = try await newestPages(channelID, .liveTimeline, limit)
        return try PageJSON.thread(page: page, limit: limit)
    }

}

extension TimelineCache.Lookup {
    fileprivate var isUnavailable: Bool {
        if case .unavailable = self { return true }
        return false
    }
}
