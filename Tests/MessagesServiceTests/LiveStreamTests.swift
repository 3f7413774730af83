import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOConcurrencyHelpers
import NIOCore
import TestSupport
import Testing

@testable import MessagesService

/// A response body that keeps what is written; `blockAt` makes that write (0-based) wait until
/// `release` is called, as a write to a client that stopped reading does until its connection
/// is closed.
private struct CollectingWriter: ResponseBodyWriter, Sendable {
    let sink: NIOLockedValueBox<[ByteBuffer]>
    var blockAt: Int?
    var release: AsyncStream<Void>?

    mutating func write(_ buffer: ByteBuffer) async throws {
        if let blockAt, sink.withLockedValue({ $0.count }) == blockAt, let release {
            for await _ in release { break }
            throw CancellationError()
        }
        sink.withLockedValue { $0.append(buffer) }
    }

    consuming func finish(_ trailingHeaders: HTTPFields?) async throws {}
}

/// The events in what a stream wrote: the version of each change (from its JSON), its `id:` if
/// it has one, and its JSON.
private func changeEvents(_ buffers: [ByteBuffer]) -> [(version: Int64, id: Int64?, messageID: String, json: String)] {
    buffers.map { String(buffer: $0) }.joined().components(separatedBy: "\n\n").compactMap { block in
        let lines = block.split(separator: "\n")
        guard let data = lines.first(where: { $0.hasPrefix("data: ") }).map({ String($0.dropFirst(6)) }),
            let object = try? JSONSerialization.jsonObject(with: Data(data.utf8)) as? [String: Any],
            let version = (object["version"] as? NSNumber)?.int64Value,
            let messageID = (object["message"] as? [String: Any])?["id"] as? String
        else { return nil }
        return (version, lines.first(where: { $0.hasPrefix("id: ") }).flatMap { Int64($0.dropFirst(4)) }, messageID, data)
    }
}

/// The hub of the live streams, over the in-memory store: the seam between catching up and live,
/// slow readers, limits. No servers.
@Suite struct ChannelStreamsTests {
    let logger = Logger(label: "test")

    private func makeStreams(
        _ store: InMemoryMessageStore, buffer: Int = 10_000, maxStreams: Int = 100, heartbeat: Duration = .seconds(60)
    ) -> ChannelStreams {
        var configuration = ChannelStreams.Configuration()
        configuration.buffer = buffer
        configuration.maxStreams = maxStreams
        configuration.heartbeat = heartbeat
        configuration.pollInterval = .seconds(60)
        configuration.batch = 7
        return ChannelStreams(configuration: configuration, logger: logger) { channel, since, limit in
            try await store.changes(channelID: channel, since: since, limit: limit)
        }
    }

    /// Opens a stream as the handler does and writes it into `sink` until it ends.
    private func stream(
        _ streams: ChannelStreams, channel: UUID, since: Int64?, sink: NIOLockedValueBox<[ByteBuffer]>,
        close: @escaping @Sendable () -> Void = {}, writer: CollectingWriter? = nil
    ) async throws -> (ChannelStreams.Subscription, Int64, Task<Void, any Error>) {
        let subscription = try streams.open(channelID: channel, userID: UUID(), close: close)
        let first = try await streams.readChanges(channel, since ?? Int64.max, streams.configuration.batch)
        let start = since ?? first.channelVersion
        let task = Task {
            defer { streams.leave(subscription) }
            var body: any ResponseBodyWriter = writer ?? CollectingWriter(sink: sink)
            try await streams.send(subscription, first: first, after: start, to: &body)
        }
        return (subscription, start, task)
    }

    /// Streams opened at random moments, from random positions, while creates, replies, edits and
    /// deletes go on: each sends versions in ascending order, each once, and what it sent, message
    /// by message, is exactly the changes feed after its start.
    @Test func aStreamOpenedAtAnyMomentSendsEveryLaterChangeOnceInOrder() async throws {
        var random = SeededGenerator(seed: 2026)
        for round in 0..<6 {
            let store = InMemoryMessageStore()
            let streams = makeStreams(store)
            let channel = UUID()
            let author = UUID()
            var opened: [(ChannelStreams.Subscription, Int64, Task<Void, any Error>, NIOLockedValueBox<[ByteBuffer]>)] = []
            var ids: [UUID] = []
            for step in 0..<120 {
                let roll = Int.random(in: 0..<100, using: &random)
                if roll < 55 || ids.isEmpty {
                    let parent = roll < 10 && !ids.isEmpty ? ids.randomElement(using: &random) : nil
                    if case .created(let write) = try? await store.create(
                        NewMessage(
                            channelID: channel, authorID: author, type: .text, content: "m\(step)", attachments: [],
                            parentID: parent))
                    {
                        ids.append(write.message.id)
                    }
                } else if roll < 80 {
                    _ = try? await store.edit(
                        id: ids.randomElement(using: &random)!, channelID: channel, by: author,
                        MessageEdit(content: "e\(step)", attachments: nil, expectedVersion: nil))
                } else if roll < 88 {
                    _ = try? await store.delete(
                        id: ids.randomElement(using: &random)!, channelID: channel, by: author, asModerator: false)
                } else {
                    let version = try await store.changes(channelID: channel, since: Int64.max, limit: 1).channelVersion
                    let since: Int64? = Bool.random(using: &random) ? nil : Int64.random(in: 0...version, using: &random)
                    let sink = NIOLockedValueBox<[ByteBuffer]>([])
                    let (subscription, start, task) = try await stream(streams, channel: channel, since: since, sink: sink)
                    opened.append((subscription, start, task, sink))
                }
                // A notice per change, sometimes late, sometimes twice.
                if Bool.random(using: &random) { streams.notice(channelID: channel) }
                if Int.random(in: 0..<4, using: &random) == 0 { await Task.yield() }
            }
            streams.notice(channelID: channel)
            let final = try await store.changes(channelID: channel, since: Int64.max, limit: 1).channelVersion
            for (subscription, start, task, sink) in opened {
                let caughtUp = await eventually(timeout: .seconds(10)) {
                    start >= final || changeEvents(sink.withLockedValue { $0 }).last?.id == final
                }
                #expect(caughtUp, "round \(round): a stream from \(start) did not reach version \(final)")
                streams.end(subscription)
                try await task.value
                let sent = changeEvents(sink.withLockedValue { $0 })
                let versions = sent.map(\.version)
                #expect(versions == versions.sorted(), "round \(round): \(versions)")
                #expect(versions.allSatisfy { $0 > start }, "round \(round)")
                // Each change once; the id (what a client resumes after) only on a version's last change.
                let changes = sent.map { "\($0.version) \($0.messageID)" }
                #expect(Set(changes).count == changes.count, "round \(round)")
                for (index, event) in sent.enumerated() {
                    let endsVersion = index == sent.count - 1 || sent[index + 1].version != event.version
                    #expect(event.id == (endsVersion ? event.version : nil), "round \(round)")
                }
                // Message by message, the last event sent equals the feed's current state.
                var latest: [String: String] = [:]
                for event in sent {
                    latest[event.messageID] = event.json
                }
                let feed = try await store.changes(channelID: channel, since: start, limit: 10_000)
                var expected: [String: String] = [:]
                for message in feed.messages {
                    var buffer = ByteBuffer()
                    ChangesJSON.writeChange(message, to: &buffer)
                    expected[message.id.lowercased] = String(buffer: buffer)
                }
                #expect(latest == expected, "round \(round): the stream from \(start) differs from the changes feed")
            }
            #expect(streams.statistics.openStreams == 0)
            #expect(streams.statistics.followedChannels == 0)
        }
    }

    /// A stream whose client stopped reading falls behind by more than the buffer: its connection
    /// is closed, while another stream of the same channel keeps receiving everything.
    @Test func aReaderTooFarBehindIsClosedAndOthersKeepReceiving() async throws {
        let store = InMemoryMessageStore()
        let streams = makeStreams(store, buffer: 5)
        let channel = UUID()
        let (release, releaser) = AsyncStream.makeStream(of: Void.self)
        let closed = NIOLockedValueBox(false)
        let slowSink = NIOLockedValueBox<[ByteBuffer]>([])
        let (_, _, slowTask) = try await stream(
            streams, channel: channel, since: nil, sink: slowSink,
            close: {
                closed.withLockedValue { $0 = true }
                releaser.yield()
            },
            // Blocks at its fourth write: the retry hint and two events went through.
            writer: CollectingWriter(sink: slowSink, blockAt: 3, release: release))
        let fastSink = NIOLockedValueBox<[ByteBuffer]>([])
        let (fast, _, fastTask) = try await stream(streams, channel: channel, since: nil, sink: fastSink)
        for index in 0..<30 {
            _ = try await store.create(
                NewMessage(channelID: channel, authorID: UUID(), type: .text, content: "m\(index)", attachments: []))
            streams.notice(channelID: channel)
            try await Task.sleep(for: .milliseconds(2))
        }
        #expect(await eventually { closed.withLockedValue { $0 } }, "the slow stream's connection was not closed")
        await #expect(throws: CancellationError.self) { try await slowTask.value }
        #expect(await eventually { changeEvents(fastSink.withLockedValue { $0 }).count == 30 })
        streams.end(fast)
        try await fastTask.value
        #expect(changeEvents(fastSink.withLockedValue { $0 }).map(\.version) == Array(1...30))
        #expect(streams.statistics.slowReadersClosed == 1)
        #expect(streams.statistics.openStreams == 0)
    }

    /// On a channel where nothing happens the buffer rule never looks at a stream; a writer stuck
    /// on its client for two heartbeats is closed all the same, while an idle reading stream gets
    /// heartbeats and stays. Both start with the retry hint and their start as the last event id.
    @Test func aWriterStuckOnAQuietChannelIsClosedAfterTwoHeartbeats() async throws {
        let store = InMemoryMessageStore()
        // Long enough that the idle stream, on a machine busy with every other suite, still takes
        // within two heartbeats (at 200 ms it was once closed as stuck too).
        let streams = makeStreams(store, heartbeat: .milliseconds(800))
        let ticker = Task { try await streams.run() }
        defer { ticker.cancel() }
        let channel = UUID()
        _ = try await store.create(NewMessage(channelID: channel, authorID: UUID(), type: .text, content: "m", attachments: []))
        let (release, releaser) = AsyncStream.makeStream(of: Void.self)
        let closed = NIOLockedValueBox(false)
        let stuckSink = NIOLockedValueBox<[ByteBuffer]>([])
        let (_, _, stuckTask) = try await stream(
            streams, channel: channel, since: nil, sink: stuckSink,
            close: {
                closed.withLockedValue { $0 = true }
                releaser.yield()
            },
            // Blocks at its second write (its first heartbeat).
            writer: CollectingWriter(sink: stuckSink, blockAt: 1, release: release))
        let idleSink = NIOLockedValueBox<[ByteBuffer]>([])
        let (idle, _, idleTask) = try await stream(streams, channel: channel, since: nil, sink: idleSink)
        #expect(await eventually(timeout: .seconds(10)) { closed.withLockedValue { $0 } }, "the stuck stream was not closed")
        await #expect(throws: CancellationError.self) { try await stuckTask.value }
        #expect(stuckSink.withLockedValue { $0.map { String(buffer: $0) } } == ["retry: 2000\nid: 1\n\n"])
        #expect(
            await eventually(timeout: .seconds(10)) { idleSink.withLockedValue { $0.count } >= 3 },
            "the idle stream got no heartbeats")
        #expect(idleSink.withLockedValue { $0.dropFirst().allSatisfy { String(buffer: $0) == ": heartbeat\n\n" } })
        streams.end(idle)
        try await idleTask.value
        #expect(streams.statistics.slowReadersClosed == 1)
        #expect(streams.statistics.openStreams == 0)
    }

    @Test func aPodRefusesStreamsPastItsLimitAndACallerPastTheirShare() async throws {
        var configuration = ChannelStreams.Configuration()
        configuration.maxStreams = 3
        configuration.maxStreamsPerUser = 2
        let streams = ChannelStreams(configuration: configuration, logger: logger) { _, _, _ in
            MessageChanges(messages: [], channelVersion: 0)
        }
        let (alice, bob, carol) = (UUID(), UUID(), UUID())
        let first = try streams.open(channelID: UUID(), userID: alice) {}
        let second = try streams.open(channelID: UUID(), userID: alice) {}
        // Alice holds her share; others may still open.
        #expect(throws: ChannelStreams.TooManyStreamsForUser.self) { try streams.open(channelID: UUID(), userID: alice) {} }
        let third = try streams.open(channelID: UUID(), userID: bob) {}
        // The pod holds its maximum.
        #expect(throws: ChannelStreams.TooManyStreams.self) { try streams.open(channelID: UUID(), userID: carol) {} }
        streams.leave(first)
        let fourth = try streams.open(channelID: UUID(), userID: alice) {}
        #expect(streams.statistics.openStreams == 3)
        #expect(streams.statistics.refusedStreams == 2)
        for subscription in [second, third, fourth, fourth] { streams.leave(subscription) }
        #expect(streams.statistics.openStreams == 0)
        // Leaving gave every share back.
        _ = try streams.open(channelID: UUID(), userID: alice) {}
        _ = try streams.open(channelID: UUID(), userID: alice) {}
    }
}

/// The stream route's answers before any event: who may open it, where it starts, limits.
@Suite struct StreamRouteTests {
    let alice = UUID()

    func withStreams(
        maxStreams: Int, authenticator: Authenticator = .userHeader,
        _ body: @escaping @Sendable (APIClient, InMemoryMessageStore) async throws -> Void
    ) async throws {
        let store = InMemoryMessageStore()
        var configuration = ChannelStreams.Configuration()
        configuration.maxStreams = maxStreams
        let streams = ChannelStreams(configuration: configuration, logger: Logger(label: "test")) { channel, since, limit in
            try await store.changes(channelID: channel, since: since, limit: limit)
        }
        let app = Application(
            router: buildRouter(
                store: store, timeline: nil, rateLimiter: nil, authenticator: authenticator, streams: streams,
                configuration: .forTests
            ))
        try await app.test(.router) { client in try await body(APIClient(client: client), store) }
    }

    @Test func badPositionsAre400AndAPositionAheadOfTheChannelIs410() async throws {
        try await withStreams(maxStreams: 10) { api, store in
            let channel = UUID()
            _ = try await store.create(
                NewMessage(channelID: channel, authorID: alice, type: .text, content: "one", attachments: []))
            let path = "/v1/channels/\(channel)/stream"
            for bad in ["abc", "-1", "99999999999999999999", "1.5", ""] {
                let reply = try await api.send(.get, path, user: alice, headers: [.lastEventID: bad])
                #expect(reply.status == .badRequest, "Last-Event-ID \(bad)")
                #expect(reply.errorMessage?.contains("Last-Event-ID") == true)
            }
            #expect(try await api.send(.get, path + "?since=x", user: alice).status == .badRequest)
            let ahead = try await api.send(.get, path, user: alice, headers: [.lastEventID: "2"])
            #expect(ahead.status == .gone)
            #expect((ahead.json["error"] as? [String: Any])?["code"] as? String == "reload_required")
        }
    }

    /// Past `STREAM_MAX_CONNECTIONS` a stream is 503 with Retry-After; with a limit of 0 every
    /// stream is, which also shows whether a request got past authentication.
    @Test func streamsPastTheLimitAre503AndTokensMayComeInTheQuery() async throws {
        let secret = "stream-secret-0123456789-0123456789"
        let verifier = try await JWTVerifier(
            key: .hmacSecret(secret), expectations: .init(issuer: "messages-service", audience: "messages-api"))
        let token = try await JWTVerifier.mint(
            secret: secret, subject: alice, roles: [], issuer: "messages-service", audience: "messages-api", lifetime: 60)
        try await withStreams(maxStreams: 0, authenticator: .jwt(verifier)) { api, _ in
            let path = "/v1/channels/\(UUID())/stream"
            #expect(try await api.send(.get, path).status == .unauthorized)
            #expect(try await api.send(.get, path + "?access_token=not-a-token").status == .unauthorized)
            let refused = try await api.send(.get, path + "?access_token=\(token)")
            #expect(refused.status == .serviceUnavailable)
            #expect(refused.headers[.retryAfter] != nil)
            #expect(try await api.send(.get, path, headers: [.authorization: "Bearer \(token)"]).status == .serviceUnavailable)
            // Only the stream takes a token from the query.
            #expect(try await api.send(.get, "/v1/channels/\(UUID())/messages?access_token=\(token)").status == .unauthorized)
        }
    }
}
