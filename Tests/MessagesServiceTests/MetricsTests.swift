import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import Metrics
import Prometheus
import Testing

@testable import MessagesService

/// swift-metrics can be bootstrapped once per process: every test shares this registry.
enum TestMetrics {
    static let registry: PrometheusCollectorRegistry = {
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        return registry
    }()
}

/// `/metrics` of the application as `buildApplication` wires it, against the real servers.
@Suite(.tags(.servers)) struct MetricsTests {
    let user = UUID()

    func environment(redis: String = TestRedis.url) -> [String: String] {
        TestDatabase.environment().merging([
            "REDIS_URL": redis, "AMQP_URL": TestBroker.url, "AUTH_MODE": "header",
            "RATE_LIMIT_RPS": "1000", "RATE_LIMIT_BURST": "1000", "REDIS_CONNECT_TIMEOUT_MS": "200", "CHANNEL_ACCESS": "open",
        ]) { _, new in new }
    }

    func withApplication(redis: String = TestRedis.url, _ body: @escaping @Sendable (APIClient) async throws -> Void) async throws
    {
        _ = try await TestDatabase.shared.migratedClient()
        let configuration = try ServiceConfiguration(environment: environment(redis: redis))
        let app = try await buildApplication(
            configuration: configuration, log: ServiceLog(configuration: configuration, output: { _ in }),
            metrics: TestMetrics.registry
        )
        try await app.test(.router) { client in try await body(APIClient(client: client)) }
    }

    /// The value of the sample `name{labels}` (labels in the order the registry writes them).
    static func value(_ text: String, _ sample: String) -> Double? {
        text.split(separator: "\n").first { $0.hasPrefix(sample + " ") }.flatMap { Double($0.split(separator: " ").last!) }
    }

    @Test func metricsArePresentAndMove() async throws {
        let channel = UUID()
        try await withApplication { api in
            let before = try await api.send(.get, "/metrics")
            #expect(before.status == .ok)
            #expect(before.headers[.contentType]?.hasPrefix("text/plain; version=0.0.4") == true)
            let text = String(decoding: before.bytes, as: UTF8.self)
            #expect(Self.value(text, #"messages_build_info{version="\#(serviceVersion)"}"#) == 1)
            for name in [
                "messages_postgres_pool_in_use", "messages_postgres_pool_waiting", "messages_postgres_pool_timeouts_total",
                "messages_outbox_backlog", "messages_outbox_oldest_age_seconds", "messages_cache_hits_total",
                "messages_cache_errors_total", "messages_rate_limit_local_total", "messages_events_published_total",
                "messages_events_publish_failures_total", "messages_outbox_relay_active",
            ] {
                #expect(Self.value(text, name) != nil, "\(name)")
            }
            #expect(Self.value(text, #"messages_redis_breaker_state{state="closed"}"#) == 1)

            #expect(
                try await api.send(.post, "/v1/channels/\(channel)/messages", user: user, json: #"{"content":"m"}"#).status
                    == .created)
            #expect(try await api.send(.get, "/v1/channels/\(channel)/messages", user: user).status == .ok)
            #expect(try await api.send(.get, "/v1/channels/\(channel)/messages", user: user).headers[.init("X-Cache")!] == "hit")
            #expect(try await api.send(.get, "/v1/channels/\(channel)/messages/\(UUID())", user: user).status == .notFound)
            let after = String(decoding: try await api.send(.get, "/metrics").bytes, as: UTF8.self)
            let created =
                #"hb_requests{http_route="/v1/channels/{channel_id}/messages",http_request_method="POST",http_response_status_code="201"}"#
            #expect((Self.value(after, created) ?? 0) >= 1, "\(after)")
            let missing =
                #"hb_requests{http_route="/v1/channels/{channel_id}/messages/{message_id}",http_request_method="GET",http_response_status_code="404"}"#
            #expect((Self.value(after, missing) ?? 0) >= 1)
            #expect((Self.value(after, "messages_cache_hits_total") ?? 0) > (Self.value(text, "messages_cache_hits_total") ?? 0))
            #expect(
                after.contains(
                    #"http_server_request_duration_bucket{http_route="/v1/channels/{channel_id}/messages",http_request_method="POST""#
                ))
        }
    }

    @Test func aRateLimitDecidedByThePodSaysSoInAMetric() async throws {
        // Nothing listens on port 1: every Redis call fails, so the pod's own buckets decide.
        try await withApplication(redis: "redis://127.0.0.1:1/0") { api in
            let text = { String(decoding: try await api.send(.get, "/metrics").bytes, as: UTF8.self) }
            let before = Self.value(try await text(), "messages_rate_limit_local_total") ?? 0
            for _ in 0..<3 {
                #expect(
                    try await api.send(.post, "/v1/channels/\(UUID())/messages", user: user, json: #"{"content":"m"}"#).status
                        == .created)
            }
            let after = try await text()
            #expect((Self.value(after, "messages_rate_limit_local_total") ?? 0) >= before + 3)
            #expect((Self.value(after, "messages_cache_errors_total") ?? 0) >= 1)
        }
    }
}
