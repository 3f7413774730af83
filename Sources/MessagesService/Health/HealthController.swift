import Hummingbird

/// `/health/live` (the process answers) and `/health/ready` (Postgres is reachable and the pod
/// is not shutting down).
///
/// Liveness never looks at a dependency: restarting a pod cannot fix a database outage, and
/// doing so would turn an outage into a crash loop. Readiness needs Postgres only: without Redis
/// the service still answers every request, so the cache is reported (`degraded` while its
/// breaker is not closed), never a reason to take the pod out of service; so is RabbitMQ, whose
/// outage only delays events (they wait in the outbox).
struct HealthController<Store: MessageStore>: Sendable {
    let store: Store
    let timeline: TimelineCache?
    let relay: OutboxRelay?
    let readiness: Readiness

    func addRoutes(to router: Router<AppRequestContext>) {
        router.get("health/live") { _, _ in try JSONResponse.make(["status": "ok"]) }
        router.get("health/ready") { _, _ in
            let reachable = await store.isReachable()
            var checks = ["postgres": reachable ? "ok" : "unavailable"]
            checks["redis"] = timeline.map { $0.breakerState == .closed ? "ok" : "degraded" } ?? "disabled"
            checks["rabbitmq"] = relay.map(Self.rabbitMQCheck) ?? "disabled"
            let status = readiness.isDraining ? "draining" : reachable ? "ready" : "unavailable"
            return try JSONResponse.make(
                HealthBody(status: status, checks: checks), status: status == "ready" ? .ok : .serviceUnavailable
            )
        }
    }
}

extension HealthController {
    /// `standby` while another pod's relay publishes; `degraded` while the broker is unreachable
    /// (events wait in the outbox, requests are unaffected).
    static func rabbitMQCheck(_ relay: OutboxRelay) -> String {
        let statistics = relay.statistics
        guard statistics.isActive else { return "standby" }
        return statistics.brokerReachable ? "ok" : "degraded"
    }
}

/// The body of `/health/ready`.
struct HealthBody: Encodable {
    let status: String
    let checks: [String: String]
}
