import Hummingbird

/// `/health/live` (the process answers) and `/health/ready` (Postgres is reachable).
///
/// Liveness never looks at a dependency: restarting a pod cannot fix a database outage, and
/// doing so would turn an outage into a crash loop.
struct HealthController<Store: MessageStore>: Sendable {
    let store: Store

    func addRoutes(to router: Router<AppRequestContext>) {
        router.get("health/live") { _, _ in try JSONResponse.make(["status": "ok"]) }
        router.get("health/ready") { _, _ in
            let reachable = await store.isReachable()
            return try JSONResponse.make(
                HealthBody(status: reachable ? "ready" : "unavailable", checks: ["postgres": reachable ? "ok" : "unavailable"]),
                status: reachable ? .ok : .serviceUnavailable
            )
        }
    }
}

/// The body of `/health/ready`.
struct HealthBody: Encodable {
    let status: String
    let checks: [String: String]
}
