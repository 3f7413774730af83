import Hummingbird
import NIOConcurrencyHelpers
import Postgres
import Prometheus

/// `GET /metrics` in the Prometheus text format.
///
/// Request counts and latency histograms by route and status come from Hummingbird's
/// `MetricsMiddleware` through swift-metrics into `registry` (bootstrapped by the executable).
/// Everything else is sampled at each scrape from the parts that keep their own counts: the
/// Postgres pool, the timeline cache and its breaker, the rate limit, the outbox and its relay.
struct MetricsController: Sendable {
    let registry: PrometheusCollectorRegistry
    let postgres: PostgresClient?
    let timeline: TimelineCache?
    let rateLimiter: RateLimiter?
    let relay: OutboxRelay?
    /// The per-pod membership cache (`CHANNEL_ACCESS=members`).
    let membership: MembershipCache?
    /// The pod's live streams.
    let streams: ChannelStreams?
    /// The error journal's queue and the alert webhook.
    let log: ServiceLog?
    let version: String
    private let counters = CounterMirror()

    init(
        registry: PrometheusCollectorRegistry, postgres: PostgresClient?, timeline: TimelineCache?,
        rateLimiter: RateLimiter?, relay: OutboxRelay?, membership: MembershipCache? = nil, streams: ChannelStreams? = nil,
        log: ServiceLog?, version: String
    ) {
        self.streams = streams
        self.membership = membership
        self.registry = registry
        self.postgres = postgres
        self.timeline = timeline
        self.rateLimiter = rateLimiter
        self.relay = relay
        self.log = log
        self.version = version
    }

    func addRoutes(to router: Router<AppRequestContext>) {
        router.get("metrics") { _, _ in
            await sample()
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: registry.emitToBuffer())))
        }
    }

    private func sample() async {
        let stdout = AsyncLineWriter.standardOutput.statistics
        counter("messages_log_lines_dropped_total", "Log lines dropped because stdout was not read fast enough.", stdout.dropped)
        gauge("messages_log_lines_queued", "Log lines waiting to be written to stdout.", stdout.queued)
        registry.makeGauge(name: "messages_build_info", labels: [("version", version)], help: "Always 1; the version is a label.")
            .set(Int64(1))
        if let postgres {
            let pool = await postgres.statistics()
            gauge("messages_postgres_pool_in_use", "Postgres connections leased right now.", pool.inUse)
            gauge("messages_postgres_pool_idle", "Open Postgres connections waiting to be leased.", pool.idle)
            gauge("messages_postgres_pool_waiting", "Requests waiting for a Postgres connection.", pool.waiting)
            counter("messages_postgres_pool_timeouts_total", "Requests shed because no connection came in time.", pool.timeouts)
            await sampleOutbox(postgres)
        }
        if let streams {
            let live = streams.statistics
            gauge("messages_streams_open", "Live streams (GET .../stream) this pod serves.", live.openStreams)
            gauge("messages_streams_channels", "Channels this pod's streams follow.", live.followedChannels)
            counter("messages_stream_events_total", "Changes sent to live streams from the pod's channel feeds.", live.eventsSent)
            counter(
                "messages_stream_slow_readers_total", "Streams closed because their client fell too far behind.",
                live.slowReadersClosed)
            counter("messages_stream_refused_total", "Streams refused with 503 past STREAM_MAX_CONNECTIONS.", live.refusedStreams)
            counter("messages_stream_feed_reads_total", "Reads of the changes feed by the pod's channel feeds.", live.feedReads)
            counter("messages_stream_feed_read_failures_total", "Reads of the changes feed that failed.", live.feedReadFailures)
        }
        if let membership {
            let cache = membership.statistics
            counter("messages_membership_cache_hits_total", "Access checks answered from the pod's membership cache.", cache.hits)
            counter("messages_membership_cache_misses_total", "Access checks that read channel_members.", cache.misses)
            gauge("messages_membership_cache_entries", "Memberships (and non-memberships) cached in this pod.", cache.entries)
            gauge(
                "messages_membership_cache_answering",
                "1 while this pod has heard every membership change up to 1 s ago, else 0 (every check reads Postgres).",
                cache.answering ? 1 : 0)
        }
        if let timeline {
            let cache = timeline.statistics
            counter("messages_cache_hits_total", "Newest pages answered from Redis.", cache.hits)
            counter(
                "messages_cache_hot_hits_total",
                "Cache hits answered with the page this pod kept, Redis saying the timeline had not changed.",
                cache.hotHits)
            counter(
                "messages_cache_misses_total", "Newest pages read from Postgres because Redis did not hold them.", cache.misses)
            counter("messages_cache_bypasses_total", "Lists answered from Postgres without asking Redis.", cache.bypasses)
            counter("messages_cache_fills_total", "Timelines written to Redis after a miss.", cache.fills)
            counter("messages_cache_errors_total", "Failed Redis calls of the cache.", cache.errors)
            let state = timeline.breakerState
            for candidate in [CircuitBreaker.State.closed, .halfOpen, .open] {
                registry.makeGauge(
                    name: "messages_redis_breaker_state", labels: [("state", candidate.rawValue)],
                    help: "1 for the state the Redis circuit breaker is in."
                ).set(Int64(candidate == state ? 1 : 0))
            }
        }
        if let rateLimiter {
            let limits = rateLimiter.statistics
            counter("messages_rate_limit_allowed_total", "Requests the per-user rate limit let through.", limits.allowed)
            counter("messages_rate_limit_limited_total", "Requests refused with 429.", limits.limited)
            counter(
                "messages_rate_limit_local_total",
                "Requests limited by this pod's own buckets because Redis could not be asked.", limits.decidedLocally
            )
        }
        if let relay {
            let relayed = relay.statistics
            gauge(
                "messages_outbox_relay_active", "1 while this pod's relay holds the lock and publishes.", relayed.isActive ? 1 : 0
            )
            gauge(
                "messages_broker_reachable", "0 after a failed publish or broker check of the active relay.",
                relayed.brokerReachable ? 1 : 0)
            counter("messages_events_published_total", "Events the broker confirmed.", relayed.publishedEvents)
            counter(
                "messages_events_publish_failures_total", "Relay rounds that failed (lost connection, timeout, nack).",
                relayed.publishFailures)
            counter("messages_events_nacked_total", "Events the broker nacked (published again later).", relayed.nackedEvents)
            counter(
                "messages_events_dead_total", "Events this pod's relay moved to dead_events after OUTBOX_MAX_ATTEMPTS nacks.",
                relayed.deadEvents)
        }
        counter(
            "messages_trace_spans_dropped_total", "Spans dropped because the OTLP export queue was full.",
            TracingBackend.droppedSpans)
        if let log {
            let journal = log.journal.statistics
            gauge("messages_error_journal_queued", "Warnings and errors waiting to be written to error_events.", journal.queued)
            counter("messages_error_journal_written_total", "Journal entries written to error_events.", journal.written)
            counter(
                "messages_error_journal_dropped_total", "Journal entries dropped because its queue was full.", journal.dropped)
            counter(
                "messages_error_journal_write_failures_total", "Failed writes of a journal batch (retried).",
                journal.writeFailures)
        }
        if let alerts = log?.alerts?.statistics {
            counter("messages_alerts_sent_total", "Alerts the webhook accepted.", alerts.sent)
            counter(
                "messages_alerts_suppressed_total", "Critical lines folded into a later alert by the rate limit.",
                alerts.suppressed)
            counter("messages_alerts_failed_total", "Alert posts that failed.", alerts.failed)
        }
    }

    /// The outbox is shared by all pods; every pod reports it.
    private func sampleOutbox(_ postgres: PostgresClient) async {
        guard let row = try? await postgres.query(Self.outboxBacklog).first else { return }
        gauge(
            "messages_outbox_backlog", "Events not yet confirmed by the broker.", (try? row.decode("backlog", as: Int.self)) ?? 0)
        registry.makeGauge(name: "messages_outbox_oldest_age_seconds", help: "Age of the oldest unpublished event; 0 when none.")
            .set((try? row.text("oldest_age")).flatMap { $0.flatMap(Double.init) } ?? 0)
        gauge(
            "messages_dead_events", "Events in dead_events: refused by the broker, waiting for an operator's replay.",
            (try? row.decode("dead", as: Int.self)) ?? 0)
    }

    static let outboxBacklog = """
        SELECT count(*) AS backlog, coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8 AS oldest_age,
            (SELECT count(*) FROM dead_events) AS dead
        FROM outbox
        """

    private func gauge(_ name: String, _ help: String, _ value: Int) {
        registry.makeGauge(name: name, help: help).set(Int64(value))
    }

    /// Exposes a count kept elsewhere as a Prometheus counter by adding what grew since the last scrape.
    private func counter(_ name: String, _ help: String, _ total: Int) {
        let increase = counters.advance(name, to: total)
        registry.makeCounter(name: name, help: help).increment(by: Int64(increase))
    }
}

/// The totals a scrape last saw, so counters only ever grow by the difference.
private final class CounterMirror: Sendable {
    private let seen = NIOLockedValueBox<[String: Int]>([:])

    func advance(_ name: String, to total: Int) -> Int {
        seen.withLockedValue { seen in
            defer { seen[name] = total }
            return max(0, total - seen[name, default: 0])
        }
    }
}
