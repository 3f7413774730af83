import AMQP
import Logging
import NIOConcurrencyHelpers
import Pooling
import Postgres
import ServiceLifecycle
import Tracing

/// Publishes the outbox to RabbitMQ in order and deletes each row once the broker confirmed it.
///
/// Every pod runs one relay; one at a time is active: the one holding a Postgres advisory lock on
/// its own connection. When that pod dies its connection closes, Postgres releases the lock, and
/// the relay of another pod, which asks for the lock every `lockRetryInterval`, takes over. The
/// active relay reads the outbox again as soon as a batch was full, and otherwise every
/// `pollInterval` (50 ms): writes do not `NOTIFY`, because a notifying transaction holds a
/// database-wide lock through its commit and would serialize every write. A `NOTIFY` on
/// `messages_outbox` (an operator's) still wakes it at once.
///
/// Delivery is at least once: a row is deleted only after its publish was acked; a nack, a lost
/// connection or a confirm timeout keeps the rows, which are published again after a backoff.
/// Consumers deduplicate on `message_id` (the event id).
///
/// The idle relay waits on its connection in slices of at most a second, between which it lets
/// rabbitmq-c service heartbeats (it only does so inside library calls).
final class OutboxRelay: Service {
    static let notificationChannel = "messages_outbox"
    /// The advisory lock every pod's relay asks for ("msgsoutb" in ASCII).
    static let lockKey: Int64 = 0x6d73_6773_6f75_7462
    static let exchange = "messages.events"
    static let unroutedExchange = "messages.unrouted"
    static let unroutedQueue = "messages.unrouted"
    static let legacyExchange = "messages.legacy"
    /// Where the queues the service declares send the messages their consumers reject (and
    /// where consumers may point their own queues): a fanout exchange and the quorum queue that
    /// keeps what it gets (docs/events.md, "Dead letters").
    static let deadLetterExchange = "messages.dead"
    static let deadLetterQueue = "messages.dead"
    /// Where each published batch is announced, for the pods' live streams (`ChannelStreams`):
    /// a fanout exchange without an alternate, so an announcement no pod listens to is dropped,
    /// while `messages.events` keeps routing what no consumer is bound to into `messages.unrouted`.
    static let noticeExchange = "messages.notices"

    struct Configuration: Sendable, Equatable {
        /// Rows read and published per round; also the bound on unconfirmed publishes.
        var batchSize = 100
        var pollInterval: Duration = .milliseconds(50)
        var lockRetryInterval: Duration = .seconds(2)
        var confirmTimeout: Duration = .seconds(5)
        /// The delay after a round the broker refused, and between reconnects; it grows with
        /// consecutive failures.
        var retry = Backoff(initial: .milliseconds(200), maximum: .seconds(5))
        /// A durable queue that gets the INF326 message JSON of every new message, if set.
        var legacyQueue: String?
        /// The type of `legacyQueue`: classic by default, since INF326 consumers that declare it
        /// themselves (durable, no arguments) are refused by a quorum queue.
        var legacyQueueKind = DurableQueue.Kind.classic
        /// Refusals (nacks) after which an event is moved to `dead_events`. Each refusal makes
        /// the event wait a backoff of its own (0.5 s doubling to 60 s, in `recordRefusal`), so
        /// the default 10 take about 3 minutes. Failed connections and confirm timeouts do not count.
        var maxAttempts = 10
    }

    /// What the relay of this pod is doing, for readiness and metrics.
    struct Statistics: Sendable, Equatable {
        /// True while this pod holds the lock and publishes.
        var isActive = false
        /// False after a failed publish or broker check, true again after a successful one.
        var brokerReachable = true
        var publishedEvents = 0
        var publishFailures = 0
        var nackedEvents = 0
        /// Events this pod's relay moved to `dead_events`.
        var deadEvents = 0
    }

    private let postgres: PostgresClient.Configuration
    private let amqp: AMQPClient
    private let configuration: Configuration
    private let logger: Logger
    private let recordLag: @Sendable (Duration) -> Void
    private let state = NIOLockedValueBox(Statistics())

    /// `recordLag` receives, for every event the broker confirmed, the time from its write into
    /// the outbox (inside the change's transaction, just before its commit) to the confirm: its
    /// age by Postgres' clock when the batch was read, plus this process' time since.
    init(
        postgres: PostgresClient.Configuration, amqp: AMQPClient, configuration: Configuration, logger: Logger,
        recordLag: @escaping @Sendable (Duration) -> Void = { _ in }
    ) {
        self.postgres = postgres
        self.amqp = amqp
        self.configuration = configuration
        self.logger = logger
        self.recordLag = recordLag
    }

    var statistics: Statistics {
        state.withLockedValue { $0 }
    }

    /// Declares what the relay publishes to, on every new broker connection: the durable topic
    /// exchange, its alternate exchange and queue (so an event no queue is bound to is kept), and
    /// the legacy queue; then enables publisher confirms.
    static func declareTopology(on connection: AMQPTopology, configuration: Configuration, logger: Logger) throws {
        try declareEventExchange(on: connection, logger: logger)
        if let legacyQueue = configuration.legacyQueue {
            try connection.declareExchange(legacyExchange, type: "direct")
            try DurableQueue.declare(legacyQueue, kind: configuration.legacyQueueKind, on: connection, logger: logger)
            try connection.bindQueue(legacyQueue, exchange: legacyExchange, routingKey: MessageEvent.Kind.created.rawValue)
        }
        try connection.enableConfirms()
    }

    /// The durable topic exchange of the events, with its alternate exchange and (quorum) queue,
    /// which keep the events no queue is bound to. Whoever declares it first (a relay, a stream
    /// consumer) declares it as every other does.
    static func declareEventExchange(on connection: AMQPTopology, logger: Logger) throws {
        try connection.declareExchange(deadLetterExchange, type: "fanout")
        try DurableQueue.declare(deadLetterQueue, kind: .quorum, deadLetters: false, on: connection, logger: logger)
        try connection.bindQueue(deadLetterQueue, exchange: deadLetterExchange, routingKey: "")
        try connection.declareExchange(unroutedExchange, type: "fanout")
        try DurableQueue.declare(unroutedQueue, kind: .quorum, on: connection, logger: logger)
        try connection.bindQueue(unroutedQueue, exchange: unroutedExchange, routingKey: "")
        try connection.declareExchange(exchange, type: "topic", arguments: ["alternate-exchange": .string(unroutedExchange)])
        try connection.declareExchange(noticeExchange, type: "fanout", durable: false)
    }

    func run() async throws {
        while !isStopping {
            do {
                let session = try await PostgresDedicatedConnection.connect(postgres)
                do {
                    try await lead(on: session)
                } catch {
                    await session.close()
                    throw error
                }
                await session.close()
            } catch {
                logger.warning("outbox relay lost its Postgres connection", metadata: ["error": "\(error)"])
                await pause(configuration.lockRetryInterval)
            }
        }
        await amqp.shutdown()
    }

    private var isStopping: Bool {
        Task.isShuttingDownGracefully || Task.isCancelled
    }

    /// Waits for the lock, then publishes until shutdown; throws when the connection fails.
    private func lead(on session: PostgresDedicatedConnection) async throws {
        while !isStopping {
            let rows = try await session.query("SELECT pg_try_advisory_lock($1) AS acquired", [Self.lockKey])
            if try rows.first?.decode("acquired") == true { break }
            await pause(configuration.lockRetryInterval)
        }
        guard !isStopping else { return }
        try await session.query("LISTEN \(Self.notificationChannel)")
        state.withLockedValue { $0.isActive = true }
        defer { state.withLockedValue { $0.isActive = false } }
        logger.info("outbox relay is active")
        var refusals = 0
        while !isStopping {
            let roundStart = ContinuousClock.now
            let round = try await publishBatch(on: session)
            // A lost connection or timeout needs no pause here: the AMQP client already waits out
            // its reconnect backoff. A round the broker refused entirely does.
            if round.refused {
                refusals += 1
                await pause(configuration.retry.delay(attempt: refusals))
                continue
            }
            refusals = 0
            if round.published < configuration.batchSize {
                // Caught up: read again one poll interval after this round's read (or when a
                // NOTIFY comes). Counted from the read, not from the round's end: under load a
                // round (read, publish, confirms, delete) takes tens of milliseconds, and waiting
                // a whole interval after it made events wait a round plus an interval.
                let wakeUp = roundStart + configuration.pollInterval
                while !isStopping, ContinuousClock.now < wakeUp {
                    let notified = try await session.waitForNotifications(timeout: min(.seconds(1), wakeUp - .now))
                    await checkBroker()
                    if !notified.isEmpty { break }
                }
            }
        }
        logger.info("outbox relay stopped")
    }

    private struct Round {
        var published = 0
        /// True when the broker nacked every event of the round.
        var refused = false
    }

    /// Publishes the oldest rows with confirms and deletes the acked ones.
    private func publishBatch(on session: PostgresDedicatedConnection) async throws -> Round {
        let readAt = ContinuousClock.now
        let rows = try await session.query(Self.selectBatch, [configuration.batchSize])
        guard !rows.isEmpty else { return Round() }
        var messages: [AMQPOutgoingMessage] = []
        var rowOfMessage: [Int] = []
        // One producer span per event, child of the span that wrote it (its stored context), ended
        // when the broker answered; the event carries the publish span's context (or, with no
        // tracer, the stored one as it came).
        var spans: [any Span] = []
        defer { spans.forEach { $0.end() } }
        for (index, row) in rows.rows.enumerated() {
            let routingKey: String = try row.decode("routing_key")
            let eventID: String = try row.decode("event_id")
            let stored = try Self.traceContext(of: row)
            let span = startSpan("publish \(Self.exchange)", context: stored?.serviceContext ?? .topLevel, ofKind: .producer)
            span.attributes["messaging.system"] = "rabbitmq"
            span.attributes["messaging.destination.name"] = Self.exchange
            span.attributes["messaging.rabbitmq.destination.routing_key"] = routingKey
            span.attributes["messaging.message.id"] = eventID
            spans.append(span)
            let properties = AMQPProperties(
                contentType: "application/json", persistent: true, messageID: eventID,
                type: routingKey, timestamp: try row.decode("created_epoch"),
                correlationID: try row.decodeIfPresent("correlation_id"),
                // The headers a consumer continues the trace from (docs/tracing.md).
                headers: (TraceContext.of(span.context) ?? stored)?.headers ?? [:]
            )
            messages.append(
                AMQPOutgoingMessage(
                    exchange: Self.exchange, routingKey: routingKey, body: Array(try row.decode("payload", as: String.self).utf8),
                    properties: properties
                )
            )
            rowOfMessage.append(index)
            if configuration.legacyQueue != nil, let legacy: String = try row.decodeIfPresent("legacy_payload") {
                messages.append(
                    AMQPOutgoingMessage(
                        exchange: Self.legacyExchange, routingKey: routingKey, body: Array(legacy.utf8), properties: properties)
                )
                rowOfMessage.append(index)
            }
        }
        let ids: [Int64] = try rows.rows.map { try $0.decode("id") }
        // Last, after the events it announces; its confirm is not waited for by any row.
        messages.append(try Self.notice(of: rows))
        let confirmations: [AMQPConfirmation]
        do {
            let (batch, timeout) = (messages, configuration.confirmTimeout)
            confirmations = try await amqp.publish(batch, timeout: timeout)
        } catch {
            spans.forEach { $0.recordError(error) }
            try await session.query(Self.recordFailure, [Self.array(ids), "\(error)"])
            state.withLockedValue {
                $0.publishFailures += 1
                $0.brokerReachable = false
            }
            logger.warning(
                "publishing outbox events failed; they stay in the outbox",
                metadata: ["error": "\(error)", "outbox.batch": "\(ids.count)"]
            )
            return Round()
        }
        // A row is done once all its publishes were acked; nacked rows stay and are published
        // again in a later round, after the rows acked now (see docs/events.md: a nack is the one
        // case where a channel's events can arrive out of order).
        var nacked = Set<Int>()
        for (index, confirmation) in confirmations.enumerated() where confirmation == .nack && index < rowOfMessage.count {
            nacked.insert(rowOfMessage[index])
        }
        for index in nacked { spans[index].setStatus(SpanStatus(code: .error, message: "nacked by the broker")) }
        // Each publish ends with the broker's answer (the `defer` ends them on the error paths).
        spans.forEach { $0.end() }
        spans.removeAll()
        let done = ids.indices.filter { !nacked.contains($0) }.map { ids[$0] }
        let kept = nacked.sorted().map { ids[$0] }
        let sinceRead = ContinuousClock.now - readAt
        for index in ids.indices where !nacked.contains(index) {
            if let age: Int64 = try rows.rows[index].decodeIfPresent("age_us") {
                recordLag(.microseconds(max(0, age)) + sinceRead)
            }
        }
        if !done.isEmpty {
            try await session.query(Self.deleteRows, [Self.array(done)])
        }
        var died = 0
        if !kept.isEmpty {
            died = try await recordRefusals(of: kept, on: session)
        }
        state.withLockedValue {
            $0.publishedEvents += done.count
            $0.nackedEvents += kept.count
            $0.deadEvents += died
            $0.brokerReachable = true
            if !kept.isEmpty { $0.publishFailures += 1 }
        }
        // Back off only when nothing went through: a refused event must not hold up the others.
        return Round(published: ids.count, refused: done.isEmpty)
    }

    /// The W3C trace context the row was written with.
    private static func traceContext(of row: PostgresRow) throws -> TraceContext? {
        guard let traceparent: String = try row.decodeIfPresent("traceparent") else { return nil }
        return TraceContext(traceparent: traceparent, tracestate: try row.decodeIfPresent("tracestate"))
    }

    /// Counts a refusal of each of `ids`; moves those refused `maxAttempts` times to
    /// `dead_events`, saying so in the error journal; returns how many died.
    private func recordRefusals(of ids: [Int64], on session: PostgresDedicatedConnection) async throws -> Int {
        let dead = try await session.query(
            Self.recordRefusal, [Self.array(ids), "nacked by the broker", configuration.maxAttempts])
        for row in dead.rows {
            let (event, channel, routingKey): (String, String, String) = (
                try row.decode("event_id"), try row.decode("channel_id"), try row.decode("routing_key")
            )
            logger.error(
                "the broker refused an event \(configuration.maxAttempts) times: it is dead, kept in dead_events",
                metadata: [
                    "event_id": "\(event)", "channel_id": "\(channel)", "routing_key": "\(routingKey)",
                    "fix": "see docs/events.md, 'Dead events'",
                ])
        }
        if ids.count > dead.count {
            logger.warning(
                "the broker nacked outbox events; they will be published again",
                metadata: ["outbox.nacked": "\(ids.count - dead.count)"])
        }
        return dead.count
    }

    /// The announcement of a batch: `{"changes":[{"channel_id","written_us"}...]}`, each channel
    /// once with the time its oldest event of the batch was written (microseconds since the epoch,
    /// by Postgres' clock), from which a stream's pod measures the fan-out lag.
    private static func notice(of rows: PostgresRows) throws -> AMQPOutgoingMessage {
        var oldest: [String: Int64] = [:]
        var order: [String] = []
        for row in rows.rows {
            let channel: String = try row.decode("channel_id")
            let written: Int64 = try row.decode("written_us")
            if let known = oldest[channel] {
                oldest[channel] = min(known, written)
            } else {
                oldest[channel] = written
                order.append(channel)
            }
        }
        let entries = order.map { #"{"channel_id":"\#($0)","written_us":\#(oldest[$0]!)}"# }
        return AMQPOutgoingMessage(
            exchange: noticeExchange, routingKey: "", body: Array(#"{"changes":[\#(entries.joined(separator: ","))]}"#.utf8),
            properties: AMQPProperties(contentType: "application/json", persistent: false, type: "changes.notice")
        )
    }

    /// While idle, keeps the broker connection alive (rabbitmq-c only services heartbeats inside
    /// its calls) and learns whether the broker is reachable.
    private func checkBroker() async {
        do {
            try await amqp.serviceHeartbeat()
            state.withLockedValue { $0.brokerReachable = true }
        } catch {
            state.withLockedValue { $0.brokerReachable = false }
        }
    }

    /// Sleeps for `duration`, or less when the service is shutting down.
    private func pause(_ duration: Duration) async {
        let end = ContinuousClock.now + duration
        while !isStopping, ContinuousClock.now < end {
            try? await Task.sleep(for: min(.milliseconds(100), end - .now))
        }
    }

    private static func array(_ ids: [Int64]) -> String {
        "{" + ids.map(String.init).joined(separator: ",") + "}"
    }

    static let selectBatch = """
        SELECT id, event_id, routing_key, payload::text AS payload, legacy_payload::text AS legacy_payload,
            correlation_id, traceparent, tracestate, extract(epoch FROM created_at)::bigint AS created_epoch, channel_id::text AS channel_id,
            (extract(epoch FROM created_at) * 1000000)::bigint AS written_us,
            (extract(epoch FROM clock_timestamp() - created_at) * 1000000)::bigint AS age_us
        FROM outbox WHERE retry_at IS NULL OR retry_at <= now() ORDER BY id LIMIT $1
        """

    /// Deletes the confirmed rows and counts them in today's (UTC) `event_days` row.
    static let deleteRows = """
        WITH done AS (DELETE FROM outbox WHERE id = ANY($1::bigint[]) RETURNING 1)
        INSERT INTO event_days AS d (day, published)
        SELECT (now() AT TIME ZONE 'UTC')::date, count(*) FROM done HAVING count(*) > 0
        ON CONFLICT (day) DO UPDATE SET published = d.published + excluded.published
        """

    static let recordFailure = """
        UPDATE outbox SET attempts = attempts + 1, last_error = left($2, 500) WHERE id = ANY($1::bigint[])
        """

    /// One refusal more for rows $1: those reaching $3 move to `dead_events` (and today's count of
    /// dead events), the others count it and wait 0.5 s × 2^(refusals - 1), at most 60 s, before
    /// the relay publishes them again. One statement, so a crash leaves each row in one place.
    static let recordRefusal = """
        WITH dying AS (
            DELETE FROM outbox WHERE id = ANY($1::bigint[]) AND refusals + 1 >= $3 RETURNING *
        ), dead AS (
            INSERT INTO dead_events (outbox_id, event_id, channel_id, routing_key, payload, legacy_payload,
                correlation_id, traceparent, tracestate, created_at, attempts, refusals, last_error)
            SELECT id, event_id, channel_id, routing_key, payload, legacy_payload, correlation_id, traceparent,
                tracestate, created_at, attempts + 1, refusals + 1, left($2, 500)
            FROM dying ORDER BY id
            RETURNING event_id, channel_id, routing_key
        ), counted AS (
            INSERT INTO event_days AS d (day, dead)
            SELECT (now() AT TIME ZONE 'UTC')::date, count(*) FROM dead HAVING count(*) > 0
            ON CONFLICT (day) DO UPDATE SET dead = d.dead + excluded.dead
        ), refused AS (
            UPDATE outbox SET attempts = attempts + 1, refusals = refusals + 1, last_error = left($2, 500),
                retry_at = clock_timestamp() + least(interval '0.5 seconds' * power(2, least(refusals, 10)), interval '60 seconds')
            WHERE id = ANY($1::bigint[]) AND refusals + 1 < $3
        )
        SELECT event_id::text AS event_id, channel_id::text AS channel_id, routing_key FROM dead
        """
}
