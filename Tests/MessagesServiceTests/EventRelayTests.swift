import AMQP
import Foundation
import HTTPTypes
import Logging
import NIOConcurrencyHelpers
import Postgres
import Testing
import Tracing

@testable import MessagesService

/// Events through the outbox and the relay to the real RabbitMQ. Serialized: relays compete for one
/// advisory lock, so two tests' relays would take turns.
@Suite(.tags(.servers), .serialized) struct EventRelayTests {
    let alice = UUID()
    let moderator = UUID()

    func path(_ channel: UUID) -> String { "/v1/channels/\(channel)/messages" }

    func outboxRows(of channels: [UUID]) async throws -> Int {
        let client = try await TestDatabase.shared.migratedClient()
        let rows = try await client.query(
            "SELECT count(*) AS n FROM outbox WHERE channel_id = ANY($1::uuid[])", [channels]
        )
        return try rows.first!.decode("n")
    }

    @Test func everyChangeYieldsExactlyOneEventWithTheDocumentedFieldsInOrderPerChannel() async throws {
        let consumer = try TestConsumer(pattern: "message.*")
        try await consumer.start()
        let channels = [UUID(), UUID()]
        let requestIDs = NIOLockedValueBox<[String]>([])
        // The message JSON the API answered after each change, by "<type> <message id>".
        let answered = NIOLockedValueBox<[String: Data]>([:])
        let bodies = [
            #"{"content":"m0 ✓ \"quoted\" \\ 🧵 <@\#(moderator)>"}"#,
            #"{"content":"","type":"file","attachments":[{"path":"a/b c.png","name":"b","mime_type":"image/png","size":3},{"path":"x"}]}"#,
            #"{"content":"m2"}"#,
        ]
        try await withService { api, _ in
            for channel in channels {
                var ids: [String] = []
                for body in bodies {
                    let reply = try await api.send(.post, path(channel), user: alice, json: body)
                    #expect(reply.status == .created)
                    ids.append(reply.json["id"] as! String)
                    answered.withLockedValue {
                        $0["message.created \(ids.last!)"] = try? JSONSerialization.data(withJSONObject: reply.json)
                    }
                    requestIDs.withLockedValue { $0.append(reply.headers[HTTPField.Name("X-Request-ID")!] ?? "") }
                }
                let reply = try await api.send(
                    .post, path(channel), user: alice, json: #"{"content":"r","parent_id":"\#(ids[0])"}"#)
                #expect(reply.status == .created)
                answered.withLockedValue {
                    $0["message.created \(reply.json["id"] as! String)"] = try? JSONSerialization.data(withJSONObject: reply.json)
                }
                let edited = try await api.send(
                    .patch, "\(path(channel))/\(ids[1])", user: alice, json: #"{"content":"edited"}"#)
                #expect(edited.status == .ok)
                answered.withLockedValue {
                    $0["message.updated \(ids[1])"] = try? JSONSerialization.data(withJSONObject: edited.json)
                }
                #expect(try await api.send(.delete, "\(path(channel))/\(ids[2])", user: alice).status == .noContent)
                // Replays and repeated deletes change nothing and publish nothing.
                #expect(try await api.send(.delete, "\(path(channel))/\(ids[2])", user: alice).status == .noContent)
                let tombstone = try await api.send(.get, "\(path(channel))/\(ids[2])", user: alice)
                answered.withLockedValue {
                    $0["message.deleted \(ids[2])"] = try? JSONSerialization.data(withJSONObject: tombstone.json)
                }
            }
        }
        let lags = NIOLockedValueBox<[Duration]>([])
        let events = try await withRunningRelay(try TestBroker.relay { lag in lags.withLockedValue { $0.append(lag) } }) {
            try await consumer.events(of: Set(channels), count: 12)
        }
        await consumer.stop()
        #expect(events.count == 12)
        // Each confirmed event's lag was recorded (other tests' events may be among them); these
        // were written before the relay started, so they waited at least that long.
        #expect(lags.withLockedValue { $0.count } >= 12)
        #expect(lags.withLockedValue { $0.allSatisfy { $0 >= .zero && $0 < .seconds(120) } })
        #expect(Set(events.map(\.id)).count == 12)
        for channel in channels {
            let ofChannel = events.filter { $0.channelID == channel.lowercased }
            #expect(
                ofChannel.map(\.type) == [
                    "message.created", "message.created", "message.created", "message.created", "message.updated",
                    "message.deleted",
                ])
            #expect(ofChannel.map(\.version) == Array(1...6))
            #expect(ofChannel.map(\.seq) == [1, 2, 3, 4, 2, 3])
        }
        // The event's message is the JSON the API answered for the same change, field for field.
        let answers = answered.withLockedValue { $0 }
        #expect(answers.count == 12)
        for event in events {
            let message = try #require(event.json["message"] as? [String: Any])
            let answer = try answers["\(event.type) \(event.messageID)"].map { try JSONSerialization.jsonObject(with: $0) }
            #expect(answer as? NSDictionary == message as NSDictionary, "\(event.type)")
        }
        let first = try #require(events.first)
        #expect(Set(first.json.keys) == ["id", "type", "occurred_at", "channel_id", "seq", "version", "actor_id", "message"])
        #expect(first.json["actor_id"] as? String == alice.lowercased)
        #expect(first.messageID == (first.json["message"] as? [String: Any])?["id"] as? String)
        #expect((first.json["occurred_at"] as? String)?.hasSuffix("Z") == true)
        let properties = first.delivery.properties
        #expect(properties.messageID == first.id)
        #expect(properties.type == "message.created")
        #expect(properties.contentType == "application/json")
        #expect(properties.persistent)
        #expect(properties.timestamp.map { abs($0 - Int64(Date().timeIntervalSince1970)) < 600 } == true)
        #expect(properties.correlationID == requestIDs.withLockedValue { $0.first })
        #expect(first.delivery.exchange == "messages.events" && first.delivery.routingKey == "message.created")
        let deleted = try #require(events.first { $0.type == "message.deleted" })
        #expect((deleted.json["message"] as? [String: Any])?["deleted_at"] is String)
        // Confirmed rows leave the outbox.
        #expect(try await eventually { try await outboxRows(of: channels) == 0 })
    }

    /// Reactions are published as reaction.added / reaction.removed, with the emoji and the
    /// message's JSON as the API answered it; twenty identical PUTs at once publish one event.
    @Test func reactionChangesArePublishedOncePerChange() async throws {
        let consumer = try TestConsumer(pattern: "reaction.*")
        try await consumer.start()
        let channel = UUID()
        let answers = NIOLockedValueBox<[String: Data]>([:])
        try await withService { api, _ in
            let created = try await api.send(.post, path(channel), user: alice, json: #"{"content":"react"}"#)
            let id = try #require(created.json["id"] as? String)
            let reaction = "\(path(channel))/\(id)/reactions/%F0%9F%8E%89"
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<20 {
                    group.addTask {
                        let reply = try await api.send(.put, reaction, user: moderator)
                        #expect(reply.status == .ok)
                    }
                }
                try await group.waitForAll()
            }
            let added = try await api.send(.get, "\(path(channel))/\(id)", user: alice)
            let removed = try await api.send(.delete, reaction, user: moderator)
            #expect(removed.status == .ok)
            answers.withLockedValue {
                $0["reaction.added"] = try? JSONSerialization.data(withJSONObject: added.json)
                $0["reaction.removed"] = try? JSONSerialization.data(withJSONObject: removed.json)
            }
        }
        let events = try await withRunningRelay(try TestBroker.relay()) {
            try await consumer.events(of: [channel], count: 2)
        }
        await consumer.stop()
        #expect(events.map(\.type) == ["reaction.added", "reaction.removed"])
        #expect(events.map(\.version) == [2, 3])
        for event in events {
            #expect(event.json["emoji"] as? String == "🎉")
            #expect(event.json["actor_id"] as? String == moderator.lowercased)
            #expect(event.delivery.routingKey == event.type && event.delivery.properties.type == event.type)
            let message = try #require(event.json["message"] as? [String: Any])
            let answer = try answers.withLockedValue { $0[event.type] }.map { try JSONSerialization.jsonObject(with: $0) }
            #expect(answer as? NSDictionary == message as NSDictionary, "\(event.type)")
        }
        #expect(try await eventually { try await outboxRows(of: [channel]) == 0 })
    }

    @Test func anEventNoQueueIsBoundToLandsInMessagesUnrouted() async throws {
        // The unrouted queue is durable and shared: only this test's channel counts.
        let unrouted = try TestConsumer(exchange: "", queue: OutboxRelay.unroutedQueue, exclusive: false, purge: true)
        try await unrouted.start()
        let channel = UUID()
        try await withService { api, _ in
            let reply = try await api.send(.post, path(channel), user: alice, json: #"{"content":"nobody listens"}"#)
            #expect(reply.status == .created)
        }
        let events = try await withRunningRelay(try TestBroker.relay()) {
            try await unrouted.events(of: [channel], count: 1)
        }
        await unrouted.stop()
        #expect(events.map(\.type) == ["message.created"])
        #expect(events.first?.delivery.routingKey == "message.created")
    }

    @Test func durableQueuesAreQuorumQueuesAndOneThatExistsWithAnotherTypeIsKept() async throws {
        let client = AMQPClient(configuration: .init(endpoint: try TestBroker.endpoint()), logger: Logger(label: "queues"))
        let logger = Logger(label: "queues")
        let fresh = "test.quorum.\(UUID().uuidString.lowercased())"
        let classic = "test.classic.\(UUID().uuidString.lowercased())"
        try await client.withTopology { try DurableQueue.declare(fresh, kind: .quorum, on: $0, logger: logger) }
        // The broker tells a quorum queue by refusing to declare it again as a plain one.
        let plain = await #expect(throws: AMQPError.self) {
            try await client.withTopology { try $0.declareQueue(fresh) }
        }
        #expect(plain?.replyCode == 406)
        #expect(plain?.serverMessage?.contains("quorum") == true)
        // The service's own topology: messages.unrouted is one too, unless an earlier release made it.
        try await client.withTopology { try DurableQueue.declare(fresh, kind: .quorum, on: $0, logger: logger) }

        // A classic queue made by someone else: the first declaration is refused and the
        // connection starts again; every later one only checks that it exists.
        try await client.withTopology { try $0.declareQueue(classic) }
        let refused = await #expect(throws: AMQPError.self) {
            try await client.withTopology { try DurableQueue.declare(classic, kind: .quorum, on: $0, logger: logger) }
        }
        #expect(refused?.replyCode == 406)
        for _ in 1...2 {
            try await client.withTopology { try DurableQueue.declare(classic, kind: .quorum, on: $0, logger: logger) }
        }
        // Still the classic queue it was.
        try await client.withTopology { try $0.declareQueue(classic) }
        // Deleted (an operator moving it to quorum): the check fails once, then it is declared anew.
        try await client.withTopology { try $0.deleteQueue(classic) }
        let gone = await #expect(throws: AMQPError.self) {
            try await client.withTopology { try DurableQueue.declare(classic, kind: .quorum, on: $0, logger: logger) }
        }
        #expect(gone?.replyCode == 404)
        try await client.withTopology { try DurableQueue.declare(classic, kind: .quorum, on: $0, logger: logger) }
        let quorum = await #expect(throws: AMQPError.self) {
            try await client.withTopology { try $0.declareQueue(classic) }
        }
        // (the broker names the first argument that differs: the type, or the dead-letter exchange)
        #expect(quorum?.replyCode == 406)
        #expect(quorum?.serverMessage.map { $0.contains("quorum") || $0.contains("x-dead-letter-exchange") } == true)
        try await client.withTopology {
            try $0.deleteQueue(fresh)
            try $0.deleteQueue(classic)
        }
        await client.shutdown()
    }

    @Test func theLegacyQueueGetsTheINF326MessageJSONOfNewMessagesOnly() async throws {
        let legacyQueue = "test.legacy.\(UUID().uuidString.lowercased())"
        let channel = UUID()
        let relay = try TestBroker.relay(legacyQueue: legacyQueue)
        let consumer = try TestConsumer(exchange: "", queue: legacyQueue, exclusive: false)
        let deliveries = try await withRunningRelay(relay) {
            // The relay declares the legacy queue when it connects, before the first publish.
            try await consumer.start()
            let createdID = NIOLockedValueBox("")
            let createdAt = NIOLockedValueBox("")
            try await withService { api, _ in
                let reply = try await api.send(
                    .post, "/threads/\(channel)/messages", user: alice,
                    json: #"{"content":"hola","type":"text","paths":["a.png"]}"#
                )
                #expect(reply.status == .created)
                let id = reply.json["id"] as! String
                createdID.withLockedValue { $0 = id }
                createdAt.withLockedValue { $0 = reply.json["created_at"] as? String ?? "" }
                #expect(
                    try await api.send(.put, "/threads/\(channel)/messages/\(id)", user: alice, json: #"{"content":"edit"}"#)
                        .status == .ok)
            }
            // Other tests create messages too: only this thread's count. After the first, nothing
            // more may come (the edit is not published there).
            let ofThread: @Sendable (AMQPDelivery) -> Bool = {
                TestConsumer.json($0)?["thread_id"] as? String == channel.lowercased
            }
            let first = try await consumer.receive(quiet: .seconds(15), keep: ofThread) { $0.count >= 1 }
            let deliveries = try await first + consumer.receive(quiet: .seconds(2), keep: ofThread) { _ in false }
            #expect(deliveries.count == 1)
            let json = try #require(deliveries.first.flatMap(TestConsumer.json))
            #expect(
                Set(json.keys) == [
                    "id", "thread_id", "user_id", "type", "content", "paths", "created_at", "updated_at", "deleted_at",
                ]
            )
            // Python's str(datetime) of the time the API answered as isoformat(); updated_at
            // repeats created_at.
            let published = try #require(json["created_at"] as? String)
            #expect(published.wholeMatch(of: /\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{6})?/) != nil)
            #expect(published == createdAt.withLockedValue { $0 }.replacingOccurrences(of: "T", with: " "))
            #expect(json["updated_at"] as? String == published)
            #expect(json["type"] as? String == "text")
            #expect(json["deleted_at"] is NSNull)
            #expect(json["id"] as? String == createdID.withLockedValue { $0 })
            #expect(json["thread_id"] as? String == channel.lowercased)
            #expect(json["content"] as? String == "hola")
            #expect(json["paths"] as? [String] == ["a.png"])
            return deliveries
        }
        #expect(deliveries.first?.properties.type == "message.created")
        await consumer.stop(deleteQueue: true)
    }

    @Test func anEventTheBrokerRefusesEveryTimeEndsDeadWhileTheOthersFlowAndAReplayDeliversItOnce() async throws {
        // A queue that refuses every delete event: full at length 0, it nacks what it cannot take.
        // Other suites' deletes die too while it is bound; only this channel's events count.
        let refusing = "test.refusing.\(UUID().uuidString.lowercased())"
        let broker = AMQPClient(configuration: .init(endpoint: try TestBroker.endpoint()), logger: Logger(label: "refusing"))
        try await broker.withTopology {
            try OutboxRelay.declareEventExchange(on: $0, logger: Logger(label: "refusing"))
            try $0.declareQueue(
                refusing, durable: false, exclusive: true,
                arguments: ["x-max-length": .int(0), "x-overflow": .string("reject-publish")])
            try $0.bindQueue(refusing, exchange: OutboxRelay.exchange, routingKey: MessageEvent.Kind.deleted.rawValue)
        }
        // A message is refused when one of its queues refuses it, though the others got it: the
        // creates have a queue of their own here, and the refusing queue stands for the
        // consumer the deletes are for.
        let consumer = try TestConsumer(pattern: MessageEvent.Kind.created.rawValue)
        try await consumer.start()
        let channel = UUID()
        let created = NIOLockedValueBox<[String]>([])
        try await withService { api, _ in
            for content in ["one", "two", "three"] {
                let reply = try await api.send(.post, path(channel), user: alice, json: #"{"content":"\#(content)"}"#)
                #expect(reply.status == .created)
                let id = try #require(reply.json["id"] as? String)
                created.withLockedValue { $0.append(id) }
            }
            for index in 0..<2 {
                let deleted = try await api.send(
                    .delete, path(channel) + "/\(created.withLockedValue { $0[index] })", user: alice)
                #expect(deleted.status == .noContent)
            }
            let after = try await api.send(.post, path(channel), user: alice, json: #"{"content":"four"}"#)
            #expect(after.status == .created)
        }
        let ids = created.withLockedValue { $0 }
        let client = try await TestDatabase.shared.migratedClient()
        let relay = try TestBroker.relay(maxAttempts: 3)
        let (flowed, dead) = try await withRunningRelay(relay) {
            let flowed = try await consumer.events(of: [channel], count: 4)
            _ = try await eventually { try await outboxRows(of: [channel]) == 0 }
            return (flowed, try await DeadEvents.list(client, limit: 100_000).filter { $0.channelID == channel.lowercased })
        }
        #expect(flowed.map(\.type) == Array(repeating: "message.created", count: 4))
        #expect(dead.map(\.routingKey) == Array(repeating: MessageEvent.Kind.deleted.rawValue, count: 2))
        #expect(dead.map(\.refusals) == [3, 3])
        #expect(dead.first?.lastError == "nacked by the broker")
        #expect(relay.statistics.deadEvents >= 2)
        let deadIDs = dead.map(\.eventID)
        let daily = try await client.query("SELECT dead FROM event_days WHERE day = (now() AT TIME ZONE 'UTC')::date")
        #expect(try daily.first?.decode("dead", as: Int.self) ?? 0 >= 2)

        // The fix: the deletes' queue takes messages again. A replay puts the event back once;
        // naming it again finds nothing.
        await consumer.stop()
        try await broker.withTopology { try $0.deleteQueue(refusing) }
        await broker.shutdown()
        let fixed = try TestConsumer(pattern: MessageEvent.Kind.deleted.rawValue)
        try await fixed.start()
        // Named in any order, they go back in the order they had.
        let named = deadIDs.reversed().compactMap(UUID.init(uuidString:))
        #expect(try await DeadEvents.replay(client, eventIDs: named) == deadIDs)
        #expect(try await DeadEvents.replay(client, eventIDs: named) == [])
        #expect(try await DeadEvents.list(client, limit: 100_000).allSatisfy { !deadIDs.contains($0.eventID) })
        let replayed = try await withRunningRelay(try TestBroker.relay(maxAttempts: 3)) {
            let events = try await fixed.receive(quiet: .seconds(2), keep: { deadIDs.contains($0.properties.messageID ?? "") }) {
                _ in false
            }
            _ = try await eventually { try await outboxRows(of: [channel]) == 0 }
            return events
        }
        await fixed.stop()
        #expect(replayed.compactMap(\.properties.messageID) == deadIDs)
        let deletedIDs = replayed.compactMap { (TestConsumer.json($0)?["message"] as? [String: Any])?["id"] as? String }
        #expect(deletedIDs == Array(ids[0..<2]))
        #expect(try await outboxRows(of: [channel]) == 0)
    }

    @Test func theEventOfARequestCarriesItsTraceContextAsAMQPHeaders() async throws {
        let consumer = try TestConsumer()
        try await consumer.start()
        let channel = UUID()
        let traceparent = "00-\(UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: ""))-00f067aa0ba902b7-01"
        try await withService { api, _ in
            let traced = try await api.send(
                .post, path(channel), user: alice, json: #"{"content":"traced"}"#,
                headers: [HTTPField.Name("traceparent")!: traceparent, HTTPField.Name("tracestate")!: "vendor=abc"])
            #expect(traced.status == .created)
            let id = try #require(traced.json["id"] as? String)
            // A reaction, an edit and a delete carry theirs too; a bad traceparent is ignored, not refused.
            #expect(
                try await api.send(
                    .delete, path(channel) + "/\(id)", user: alice,
                    headers: [HTTPField.Name("traceparent")!: traceparent.replacingOccurrences(of: "-01", with: "-00")]
                ).status == .noContent)
            #expect(try await api.send(.post, path(channel), user: alice, json: #"{"content":"plain"}"#).status == .created)
            #expect(
                try await api.send(
                    .post, path(channel), user: alice, json: #"{"content":"bad"}"#,
                    headers: [HTTPField.Name("traceparent")!: "00-zz-bad"]
                ).status == .created)
        }
        let events = try await withRunningRelay(try TestBroker.relay()) {
            try await consumer.events(of: [channel], count: 4)
        }
        await consumer.stop()
        #expect(events.map(\.type) == ["message.created", "message.deleted", "message.created", "message.created"])
        // Without a tracer the request's context goes on as it came; with one (a test before this
        // one bootstrapped the process's), its trace, flags and state go on with the relay's
        // publish span as the parent.
        let probe = startSpan("probe")
        let tracing = TraceContext.of(probe.context) != nil
        probe.end()
        let headers = events.map(\.delivery.properties.headers)
        if !tracing {
            #expect(headers.first == ["traceparent": traceparent, "tracestate": "vendor=abc"])
            #expect(headers.dropFirst().first == ["traceparent": traceparent.replacingOccurrences(of: "-01", with: "-00")])
            #expect(headers.dropFirst(2).allSatisfy { $0.isEmpty })
        }
        let contexts = headers.map { $0["traceparent"].flatMap { TraceContext(traceparent: $0, tracestate: nil) } }
        let sent = try #require(TraceContext(traceparent: traceparent))
        #expect(contexts.first??.traceID == sent.traceID)
        #expect((contexts.first??.parentID == sent.parentID) == !tracing)
        #expect(contexts.first??.isSampled == true)
        #expect(headers.first?["tracestate"] == "vendor=abc")
        #expect(contexts.dropFirst().first??.traceID == sent.traceID)
        #expect(contexts.dropFirst().first??.isSampled == false)
        #expect(headers.dropFirst().first?["tracestate"] == nil)
        // No context, or a bad one: no headers, or (with the process's tracer) a trace of its own.
        #expect(contexts.dropFirst(2).allSatisfy { $0 == nil || $0?.traceID != sent.traceID })
        #expect(headers.dropFirst(2).allSatisfy { !($0["traceparent"] ?? "").contains("zz") })
    }

    /// One create followed from the HTTP request to the consumer's event by its trace id.
    @Test func oneCreateIsOneTraceFromTheRequestThroughPostgresToThePublishAndTheEventCarriesIt() async throws {
        let receiver = try await TestTracing.receiver.value
        let consumer = try TestConsumer(pattern: MessageEvent.Kind.created.rawValue)
        try await consumer.start()
        let channel = UUID()
        // The gateway's span: the request continues its trace.
        let traceID = UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        let gatewaySpan = "00f067aa0ba902b7"
        var configuration = ServiceConfiguration.forTests
        configuration.tracing = true
        try await withService(configuration: configuration) { api, _ in
            let reply = try await api.send(
                .post, "/v1/channels/\(channel)/messages", user: alice, json: #"{"content":"traced"}"#,
                headers: [HTTPField.Name("traceparent")!: "00-\(traceID)-\(gatewaySpan)-01"])
            #expect(reply.status == .created)
        }
        let events = try await withRunningRelay(try TestBroker.relay()) {
            try await consumer.events(of: [channel], count: 1)
        }
        await consumer.stop()
        let header = try #require(events.first?.delivery.properties.headers["traceparent"])
        let received = try #require(TraceContext(traceparent: header))
        #expect(received.traceID == traceID)

        var spans: [OTLPReceiver.Span] = []
        let complete = await eventually(timeout: .seconds(15)) {
            spans = receiver.spans(ofTrace: traceID)
            return spans.contains { $0.kind == 4 } && spans.contains { $0.kind == 2 } && spans.contains { $0.kind == 3 }
        }
        #expect(complete, "spans of the trace: \(spans.map(\.name))")
        let http = try #require(spans.first { $0.kind == 2 })
        #expect(http.parentSpanID == gatewaySpan)
        #expect(http.name.contains("/v1/channels/"))
        let statements = spans.filter { $0.kind == 3 && $0.attributes["db.system.name"] == "postgresql" }
        #expect(
            statements.contains {
                $0.parentSpanID == http.spanID && ($0.attributes["db.query.text"] ?? "").contains("create_message")
            })
        let publish = try #require(spans.first { $0.kind == 4 })
        #expect(publish.parentSpanID == http.spanID)
        #expect(publish.attributes["messaging.message.id"] == events.first?.id)
        // The consumer continues from the publish span.
        #expect(received.parentID == publish.spanID)
    }

    @Test func aRefusedEventWaitsABackoffOfItsOwnAndDiesAtTheLimit() async throws {
        try await withScratchSchema { session in
            let event = UUID()
            let id = try #require(
                try await session.query(
                    """
                    INSERT INTO outbox (event_id, channel_id, routing_key, payload) VALUES ($1, $2, 'message.created', '{}')
                    RETURNING id
                    """, [event, UUID()]
                ).first?.decode("id", as: Int64.self))
            func row() async throws -> (refusals: Int, waitMs: Double)? {
                guard
                    let row = try await session.query(
                        """
                        SELECT refusals, extract(epoch FROM retry_at - clock_timestamp()) * 1000 AS wait FROM outbox WHERE id = $1
                        """, [id]
                    ).first
                else { return nil }
                return (try row.decode("refusals"), Double(try row.decode("wait", as: String.self)) ?? -1)
            }
            func refuse() async throws -> Int {
                try await session.query(OutboxRelay.recordRefusal, ["{\(id)}", "nacked by the broker", 3]).count
            }
            let due = { try await session.query(OutboxRelay.selectBatch, [100]).count }
            #expect(try await due() == 1)
            #expect(try await refuse() == 0)
            let first = try #require(try await row())
            #expect(first.refusals == 1 && (300...500).contains(first.waitMs), "\(first)")
            #expect(try await due() == 0)  // not before its time
            #expect(try await refuse() == 0)
            let second = try #require(try await row())
            #expect(second.refusals == 2 && (800...1000).contains(second.waitMs), "\(second)")
            // The third refusal reaches the limit: the row moves, in the same statement.
            #expect(try await refuse() == 1)
            #expect(try await row() == nil)
            let dead = try await session.query("SELECT refusals FROM dead_events WHERE event_id = $1", [event])
            #expect(try dead.first?.decode("refusals", as: Int.self) == 3)
        }
    }

    @Test func aMessageAConsumerRejectsFromAQueueOfTheServiceGoesToMessagesDead() async throws {
        let queue = "test.quorum.\(UUID().uuidString.lowercased())"
        let dead = try TestConsumer(exchange: "", queue: OutboxRelay.deadLetterQueue, exclusive: false)
        try await dead.start()
        let client = AMQPClient(configuration: .init(endpoint: try TestBroker.endpoint()), logger: Logger(label: "rejecting"))
        try await client.withTopology {
            try OutboxRelay.declareEventExchange(on: $0, logger: Logger(label: "rejecting"))
            try DurableQueue.declare(queue, kind: .quorum, on: $0, logger: Logger(label: "rejecting"))
            try $0.enableConfirms()
        }
        let id = UUID().uuidString.lowercased()
        let confirmed = try await client.publish(
            [AMQPOutgoingMessage(exchange: "", routingKey: queue, body: Array("poison".utf8), properties: .init(messageID: id))],
            timeout: .seconds(5))
        #expect(confirmed == [.ack])
        try await client.withTopology { try $0.consume(queue) }
        let delivery = try #require(try await client.nextDelivery(timeout: .seconds(5)))
        try await client.reject(delivery, requeue: false)
        let arrived = try await dead.receive(keep: { $0.properties.messageID == id }) { !$0.isEmpty }
        #expect(arrived.map(\.body) == [Array("poison".utf8)])
        try await client.withTopology { try $0.deleteQueue(queue) }
        await client.shutdown()
        await dead.stop()
    }

    @Test func eventsCommittedWhileNoRelayRanArePublishedByTheNextOne() async throws {
        // A pod killed between commit and publish leaves its events in the outbox: they are
        // there, and the next relay (its restart, or another pod) publishes them.
        let channel = UUID()
        try await withService { api, _ in
            for index in 0..<5 {
                let reply = try await api.send(.post, path(channel), user: alice, json: #"{"content":"k\#(index)"}"#)
                #expect(reply.status == .created)
            }
        }
        #expect(try await outboxRows(of: [channel]) == 5)
        let consumer = try TestConsumer()
        try await consumer.start()
        let events = try await withRunningRelay(try TestBroker.relay()) {
            try await consumer.events(of: [channel], count: 5)
        }
        await consumer.stop()
        #expect(events.map(\.seq) == [1, 2, 3, 4, 5])
        #expect(try await eventually { try await outboxRows(of: [channel]) == 0 })
    }

    @Test func aBrokerOutageFailsNoRequestAndEveryEventArrivesAfterItEnds() async throws {
        let broker = try TestBroker.endpoint()
        let proxy = OutageProxy(host: broker.host, port: broker.port)
        try proxy.up()
        var proxied = broker
        (proxied.host, proxied.port) = ("127.0.0.1", proxy.port)
        let relay = try TestBroker.relay(endpoint: proxied)
        let consumer = try TestConsumer()
        try await consumer.start()
        let channels = (0..<4).map { _ in UUID() }
        let events = try await withRunningRelay(relay) {
            try await withService { api, _ in
                for index in 0..<200 {
                    if index == 50 {
                        proxy.down()
                    }
                    let reply = try await api.send(
                        .post, path(channels[index % 4]), user: alice, json: #"{"content":"o\#(index)"}"#)
                    #expect(reply.status == .created)
                }
            }
            #expect(try await eventually { relay.statistics.isActive && !relay.statistics.brokerReachable })
            #expect(try await outboxRows(of: channels) > 0)
            try proxy.up()
            return try await consumer.events(of: Set(channels), count: 200, quiet: .seconds(20))
        }
        proxy.down()
        await consumer.stop()
        #expect(Set(events.map(\.id)).count == 200)
        Self.expectInOrderPerChannel(events)
        #expect(relay.statistics.publishFailures > 0)
        #expect(try await eventually { try await outboxRows(of: channels) == 0 })
    }

    @Test func withTwoRelaysOneIsActiveAndAnotherTakesOverWhenItsSessionDies() async throws {
        let consumer = try TestConsumer()
        try await consumer.start()
        let first = try TestBroker.relay(label: "first")
        let second = try TestBroker.relay(label: "second")
        let channels = (0..<5).map { _ in UUID() }
        let firstTask = Task { try await first.run() }
        let secondTask = Task { try await second.run() }
        #expect(try await eventually { first.statistics.isActive != second.statistics.isActive })
        try await withService { api, _ in
            try await withThrowingTaskGroup(of: Void.self) { group in
                for channel in channels {
                    group.addTask {
                        for index in 0..<40 {
                            let reply = try await api.send(.post, path(channel), user: alice, json: #"{"content":"t\#(index)"}"#)
                            #expect(reply.status == .created)
                        }
                    }
                }
                // The active relay's session dies mid-way, as when its pod is killed: Postgres
                // drops its lock with it, and the standby takes over.
                try await Task.sleep(for: .milliseconds(300))
                let client = try await TestDatabase.shared.migratedClient()
                let terminated = try await client.query(
                    """
                    SELECT pg_terminate_backend(pid) AS terminated FROM pg_locks
                    WHERE locktype = 'advisory' AND granted AND ((classid::bigint << 32) | objid::bigint) = $1
                        AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
                    """,
                    [OutboxRelay.lockKey]
                )
                #expect(terminated.count == 1)
                try await group.waitForAll()
            }
        }
        #expect(try await eventually { first.statistics.isActive || second.statistics.isActive })
        let events = try await consumer.events(of: Set(channels), count: 200, quiet: .seconds(15))
        firstTask.cancel()
        secondTask.cancel()
        _ = await (firstTask.result, secondTask.result)
        await consumer.stop()
        #expect(Set(events.map(\.id)).count == 200)
        Self.expectInOrderPerChannel(events)
    }

    /// After dropping redeliveries (same event id), each channel's events come in version order.
    static func expectInOrderPerChannel(_ events: [ReceivedEvent]) {
        var seen = Set<String>()
        var lastVersion: [String: Int] = [:]
        for event in events where seen.insert(event.id).inserted {
            #expect(event.version > lastVersion[event.channelID, default: 0], "channel \(event.channelID)")
            lastVersion[event.channelID] = event.version
        }
    }
}
