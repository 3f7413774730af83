import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import ServiceLifecycle

/// The live streams of one pod (`GET /v1/channels/{id}/stream`) and the shared feed each of
/// their channels is read through.
///
/// A stream first catches up on its own from the changes feed (`readChanges`) to its channel's
/// live edge, then takes every later change from the channel's feed in this pod: one read of the
/// changes feed per channel and notice, however many streams follow that channel here. A notice
/// (`notice(channelID:)`) is a hint that the channel changed; it carries no data, so a lost or
/// repeated notice costs latency at worst, never a gap or a duplicate: what a stream sends is
/// always what the changes feed answered, in version order, each version once. Notices come from
/// the events every pod's relay publishes (`ChangeNoticeConsumer`), and every feed is also read
/// again every `pollInterval` in case one was lost.
///
/// A feed keeps the changes its slowest stream has not taken yet. A stream with more than
/// `buffer` changes not taken when the next read comes (its client reads too slowly) is closed,
/// so it holds no memory and slows no one; its client reconnects with `Last-Event-ID` and catches
/// up from the changes feed.
public final class ChannelStreams: Service, Sendable {
    public struct Configuration: Sendable, Equatable {
        /// Open streams per pod; the next one is refused (503).
        public var maxStreams = 1000
        /// Open streams per caller and pod, so that no caller takes a pod's `maxStreams`; the
        /// next one is refused (429).
        public var maxStreamsPerUser = 10
        /// Changes a stream may leave untaken (its client reads slower than they come) before it is
        /// closed.
        public var buffer = 256
        /// A stream with nothing to send writes a comment this often, so proxies keep it open.
        public var heartbeat: Duration = .seconds(15)
        /// Each followed channel is read again this often even without a notice.
        public var pollInterval: Duration = .seconds(5)
        /// Changes read per call of the changes feed.
        public var batch = 200
        /// How long a client waits before it reconnects (the stream's `retry:` field).
        public var retryHint: Duration = .seconds(2)

        public init() {}
    }

    /// Counts for `/metrics`.
    public struct Statistics: Sendable, Equatable {
        public var openStreams = 0
        public var followedChannels = 0
        public var eventsSent = 0
        public var slowReadersClosed = 0
        public var refusedStreams = 0
        public var feedReads = 0
        public var feedReadFailures = 0
    }

    public typealias ReadChanges = @Sendable (_ channelID: UUID, _ since: Int64, _ limit: Int) async throws -> MessageChanges

    /// Why a stream ended, other than its client leaving.
    public enum EndReason: Sendable, Equatable {
        /// It left more than `buffer` changes untaken, or its writer was stuck for two heartbeats.
        case slowReader
        /// The pod is shutting down.
        case shutdown
    }

    /// What a stream does next (`take`).
    enum Step: Equatable {
        /// Send these events (ascending versions), then continue from `through`.
        case send([Change], through: Int64)
        /// The stream is behind what the feed keeps: read the changes feed after its position.
        case catchUp
        /// Nothing new: wait for the next signal.
        case wait
        case end(EndReason)
    }

    /// One change as the feed keeps it: its version and its server-sent event, encoded once.
    struct Change: Equatable {
        var version: Int64
        var event: ByteBuffer
    }

    /// One open stream; `signals` wakes its writer when its channel's feed moved, it is due a
    /// heartbeat, or it must end.
    public final class Subscription: Sendable {
        let id: Int
        let channelID: UUID
        let userID: UUID
        let signals: AsyncStream<Void>
        fileprivate let signal: AsyncStream<Void>.Continuation

        fileprivate init(id: Int, channelID: UUID, userID: UUID) {
            self.id = id
            self.channelID = channelID
            self.userID = userID
            (signals, signal) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        }
    }

    private struct Follower {
        let subscription: Subscription
        /// Closes the stream's connection: a writer stuck on a client that does not read is
        /// released only by that.
        let close: @Sendable () -> Void
        /// Everything up to this version was handed to the stream (nil while it catches up).
        var position: Int64?
        /// When its writer last asked for more: a writer signalled every tick that has not asked
        /// for `2 × heartbeat` is stuck writing to a client that stopped reading.
        var lastTake: ContinuousClock.Instant
        var ended: EndReason?
    }

    private struct Feed {
        var followers: [Int: Follower] = [:]
        /// Every change up to this version is known (nil until the first read answered).
        var version: Int64?
        /// The changes after `keptFrom`, ascending.
        var changes: [Change] = []
        var keptFrom: Int64 = 0
        var reading = false
        /// A notice came while a read was under way: read again after it.
        var noticed = false
        var lastRead: ContinuousClock.Instant = .now
    }

    private struct State {
        var feeds: [UUID: Feed] = [:]
        var nextID = 0
        var streamsByUser: [UUID: Int] = [:]
        var statistics = Statistics()
    }

    let configuration: Configuration
    let readChanges: ReadChanges
    private let logger: Logger
    private let state = NIOLockedValueBox(State())

    public init(configuration: Configuration, logger: Logger, readChanges: @escaping ReadChanges) {
        var configuration = configuration
        // A read brings at most a buffer's worth: a client that keeps up is never closed by one read.
        configuration.batch = min(configuration.batch, configuration.buffer)
        self.configuration = configuration
        self.logger = logger
        self.readChanges = readChanges
    }

    public var statistics: Statistics {
        state.withLockedValue { state in
            var statistics = state.statistics
            statistics.followedChannels = state.feeds.count
            return statistics
        }
    }

    /// A stream past `maxStreams`.
    struct TooManyStreams: Error {}

    /// A stream past `maxStreamsPerUser`.
    struct TooManyStreamsForUser: Error {}

    /// Opens a stream of `channelID` for `userID`; `close` closes its connection. The caller must
    /// `leave` it.
    func open(channelID: UUID, userID: UUID, close: @escaping @Sendable () -> Void) throws -> Subscription {
        let (subscription, isNewFeed): (Subscription, Bool) = try state.withLockedValue { state in
            guard state.statistics.openStreams < configuration.maxStreams else {
                state.statistics.refusedStreams += 1
                throw TooManyStreams()
            }
            guard state.streamsByUser[userID, default: 0] < configuration.maxStreamsPerUser else {
                state.statistics.refusedStreams += 1
                throw TooManyStreamsForUser()
            }
            state.nextID += 1
            state.statistics.openStreams += 1
            state.streamsByUser[userID, default: 0] += 1
            let subscription = Subscription(id: state.nextID, channelID: channelID, userID: userID)
            let isNew = state.feeds[channelID] == nil
            // A new feed's first read starts below; it is under way from now on.
            if isNew { state.feeds[channelID] = Feed(reading: true) }
            state.feeds[channelID]!.followers[subscription.id] = Follower(
                subscription: subscription, close: close, position: nil, lastTake: .now)
            return (subscription, isNew)
        }
        if isNewFeed { startRead(channelID) }
        return subscription
    }

    /// Removes a stream; its channel's feed goes with its last stream.
    func leave(_ subscription: Subscription) {
        state.withLockedValue { state in
            guard state.feeds[subscription.channelID]?.followers.removeValue(forKey: subscription.id) != nil else { return }
            state.statistics.openStreams -= 1
            state.streamsByUser[subscription.userID, default: 1] -= 1
            if state.streamsByUser[subscription.userID] == 0 { state.streamsByUser[subscription.userID] = nil }
            if state.feeds[subscription.channelID]?.followers.isEmpty == true {
                state.feeds[subscription.channelID] = nil
            }
        }
        subscription.signal.finish()
    }

    /// What the stream, having sent everything up to `position`, does next.
    func take(_ subscription: Subscription, after position: Int64) -> Step {
        state.withLockedValue { state in
            // In place: a copy of the feed would copy every follower of the channel.
            guard let follower = state.feeds[subscription.channelID]?.followers[subscription.id] else {
                return .end(.shutdown)
            }
            if let reason = follower.ended { return .end(reason) }
            state.feeds[subscription.channelID]!.followers[subscription.id]!.lastTake = .now
            guard let version = state.feeds[subscription.channelID]!.version else { return .wait }
            // The feed keeps what came after `keptFrom`: a stream behind it reads the changes feed.
            guard position >= state.feeds[subscription.channelID]!.keptFrom else { return .catchUp }
            state.feeds[subscription.channelID]!.followers[subscription.id]!.position = position
            guard position < version else { return .wait }
            let changes = state.feeds[subscription.channelID]!.changes.drop { $0.version <= position }
            state.statistics.eventsSent += changes.count
            return .send(Array(changes), through: version)
        }
    }

    /// `channelID` changed (an event said so): its feed, if this pod follows it, reads the change.
    public func notice(channelID: UUID) {
        let start = state.withLockedValue { state -> Bool in
            guard state.feeds[channelID] != nil else { return false }
            return Self.claimRead(&state.feeds[channelID]!)
        }
        if start { startRead(channelID) }
    }

    /// Every followed channel may have changed (the notices were interrupted).
    public func noticeAll() {
        let channels = state.withLockedValue { state in
            state.feeds.keys.filter { Self.claimRead(&state.feeds[$0]!) }
        }
        for channel in channels { startRead(channel) }
    }

    /// Ends one stream because the server is shutting down.
    func end(_ subscription: Subscription) {
        state.withLockedValue { state in
            state.feeds[subscription.channelID]?.followers[subscription.id]?.ended = .shutdown
        }
        subscription.signal.yield()
    }

    /// Marks a read as under way, or as wanted again after the one under way; true to start one.
    private static func claimRead(_ feed: inout Feed) -> Bool {
        if feed.reading {
            feed.noticed = true
            return false
        }
        feed.reading = true
        return true
    }

    private func startRead(_ channelID: UUID) {
        Task { await read(channelID) }
    }

    /// Reads the channel's changes after the feed's version until none are left, and wakes its
    /// streams; the first read only learns the version the feed starts from.
    private func read(_ channelID: UUID) async {
        while true {
            guard let since = state.withLockedValue({ state in state.feeds[channelID].map { $0.version ?? Int64.max } })
            else { return }
            let changes: MessageChanges
            do {
                changes = try await readChanges(channelID, since, configuration.batch)
            } catch {
                logger.warning(
                    "reading a stream's changes failed; the next notice or poll reads again",
                    metadata: ["channel_id": "\(channelID.lowercased)", "error": "\(error)"]
                )
                state.withLockedValue { state in
                    state.statistics.feedReadFailures += 1
                    state.feeds[channelID]?.reading = false
                    state.feeds[channelID]?.lastRead = .now
                }
                return
            }
            let (again, wake, slow) = state.withLockedValue { state in
                state.statistics.feedReads += 1
                guard state.feeds[channelID] != nil else {
                    return (false, [Subscription](), [Follower]())
                }
                return Self.apply(
                    changes, since: since, to: &state.feeds[channelID]!, statistics: &state.statistics,
                    buffer: configuration.buffer)
            }
            for follower in slow {
                logger.info(
                    "closing a stream whose client reads too slowly",
                    metadata: ["channel_id": "\(channelID.lowercased)", "stream.position": "\(follower.position ?? 0)"]
                )
                follower.close()
            }
            for subscription in wake { subscription.signal.yield() }
            if !again { return }
        }
    }

    /// Applies a read of the changes feed (after `since`) to `feed`, in place; whether to read
    /// again, the streams to wake and those closed as slow.
    private static func apply(
        _ changes: MessageChanges, since: Int64, to feed: inout Feed, statistics: inout Statistics, buffer: Int
    ) -> (again: Bool, wake: [Subscription], slow: [Follower]) {
        feed.lastRead = .now
        var slow: [Follower] = []
        if let version = feed.version, since != Int64.max {
            // Slow: still more than `buffer` changes behind from before this read.
            slow = Self.endSlowFollowers(&feed, buffer: buffer)
            let new = changes.messages.filter { $0.version > version }
            for (message, event) in zip(new, ServerSentEvent.changes(new)) {
                feed.changes.append(Change(version: message.version, event: event))
            }
            feed.version = max(version, changes.nextSince(after: since))
        } else if feed.version == nil {
            feed.version = changes.channelVersion
            feed.keptFrom = changes.channelVersion
        }
        Self.forgetTaken(&feed)
        statistics.slowReadersClosed += slow.count
        let again = changes.hasMore || feed.noticed
        feed.noticed = false
        feed.reading = again
        return (again, feed.followers.values.map(\.subscription), slow)
    }

    /// Ends the live streams with more than `buffer` changes not yet taken; returns them.
    private static func endSlowFollowers(_ feed: inout Feed, buffer: Int) -> [Follower] {
        var slow: [Follower] = []
        for (id, follower) in feed.followers where follower.ended == nil {
            guard let position = follower.position else { continue }
            let pending = feed.changes.count - (feed.changes.firstIndex { $0.version > position } ?? feed.changes.count)
            guard pending > buffer else { continue }
            feed.followers[id]?.ended = .slowReader
            slow.append(follower)
        }
        return slow
    }

    /// Forgets the changes every live stream took: the feed keeps only what one still needs
    /// (at most `buffer` changes, plus one read's worth, for the slowest).
    private static func forgetTaken(_ feed: inout Feed) {
        guard let version = feed.version else { return }
        let positions = feed.followers.values.compactMap { $0.ended == nil ? $0.position : nil }
        let floor = min(positions.min() ?? version, version)
        guard floor > feed.keptFrom else { return }
        feed.keptFrom = floor
        feed.changes.removeAll { $0.version <= floor }
    }

    /// Every tick: reads each followed channel due its poll, signals every stream (a writer
    /// with nothing to send writes its heartbeat once `heartbeat` passed since its last write, so
    /// heartbeats are at most a tick late), and closes the streams whose writer has not asked for
    /// more for two heartbeats: stuck writing to a client that stopped reading, on a channel too
    /// quiet for the buffer rule to find it.
    public func run() async throws {
        let tick = min(.seconds(1), configuration.heartbeat / 4, configuration.pollInterval)
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            try? await Task.sleep(for: tick)
            let now = ContinuousClock.now
            let (due, signalled, stuck) = state.withLockedValue { state in
                var due: [UUID] = []
                var signalled: [Subscription] = []
                var stuck: [Follower] = []
                for channelID in state.feeds.keys {
                    if now - state.feeds[channelID]!.lastRead >= configuration.pollInterval,
                        Self.claimRead(&state.feeds[channelID]!)
                    {
                        due.append(channelID)
                    }
                    for (id, follower) in state.feeds[channelID]!.followers where follower.ended == nil {
                        if now - follower.lastTake >= configuration.heartbeat * 2 {
                            state.feeds[channelID]!.followers[id]!.ended = .slowReader
                            stuck.append(follower)
                        } else {
                            signalled.append(follower.subscription)
                        }
                    }
                }
                state.statistics.slowReadersClosed += stuck.count
                return (due, signalled, stuck)
            }
            for channelID in due { startRead(channelID) }
            for subscription in signalled { subscription.signal.yield() }
            for follower in stuck {
                logger.info(
                    "closing a stream whose client stopped reading",
                    metadata: ["channel_id": "\(follower.subscription.channelID.lowercased)"]
                )
                follower.close()
            }
        }
    }
}
