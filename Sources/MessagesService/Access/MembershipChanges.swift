import Foundation
import Logging
import Pooling
import Postgres
import ServiceLifecycle

/// Hears every membership change on a Postgres connection of its own (`LISTEN`), and keeps this
/// pod's `MembershipCache` exact with it.
///
/// The cache may answer only while this pod is sure to have heard every change up to a moment
/// less than `MembershipCache.maxStaleness` ago. `NOTIFY` alone cannot say that (a connection
/// may stop delivering without failing), so every `probeInterval` a `SELECT 1` goes over the same
/// connection: Postgres sends a listening session its pending notifications before it answers a
/// statement, so once the probe is answered and what came with it is applied, every change
/// committed before the probe was sent is known. The cache confirms that moment; a lost
/// connection empties it and turns it off until a new session listens again.
final class MembershipChanges: Service, Sendable {
    /// The `NOTIFY` channel; the payload is `<channel id> <user id>` (`PostgresMembershipStore`).
    static let notificationChannel = "channel_members"

    let cache: MembershipCache
    let connect: @Sendable () async throws -> PostgresDedicatedConnection
    let probeInterval: Duration
    let logger: Logger

    init(
        cache: MembershipCache, probeInterval: Duration = .milliseconds(250), logger: Logger,
        connect: @escaping @Sendable () async throws -> PostgresDedicatedConnection
    ) {
        self.cache = cache
        self.connect = connect
        self.probeInterval = probeInterval
        self.logger = logger
    }

    func run() async throws {
        let backoff = Backoff(initial: .milliseconds(200), maximum: .seconds(5))
        var failures = 0
        while !isStopping {
            do {
                let session = try await connect()
                do {
                    try await listen(on: session) { failures = 0 }
                } catch {
                    await session.close()
                    throw error
                }
                await session.close()
            } catch {
                cache.reset()
                failures += 1
                logger.warning(
                    "membership changes are not heard; access checks ask Postgres until they are",
                    metadata: ["error": "\(error)"]
                )
                await pause(backoff.delay(attempt: failures))
            }
        }
        cache.reset()
    }

    private var isStopping: Bool {
        Task.isShuttingDownGracefully || Task.isCancelled
    }

    private func pause(_ duration: Duration) async {
        let end = ContinuousClock.now + duration
        while !isStopping, ContinuousClock.now < end {
            try? await Task.sleep(for: min(.milliseconds(100), end - .now))
        }
    }

    /// Listens until shutdown; throws when the connection fails.
    private func listen(on session: PostgresDedicatedConnection, connected: () -> Void) async throws {
        try await session.query("LISTEN \(Self.notificationChannel)")
        // Whatever was cached before this session may have changed unheard.
        cache.reset()
        connected()
        logger.info("hearing membership changes")
        while !isStopping {
            let sent = ContinuousClock.now
            try await session.query("SELECT 1")
            // The notifications that came with the probe's answer are waiting in libpq: apply them
            // before confirming the moment the probe was sent.
            apply(try await session.waitForNotifications(timeout: .zero))
            cache.confirm(heardUntil: sent)
            let next = sent + probeInterval
            while !isStopping, ContinuousClock.now < next {
                apply(try await session.waitForNotifications(timeout: max(.zero, next - .now)))
            }
        }
    }

    private func apply(_ notifications: [PostgresNotification]) {
        for notification in notifications where notification.channel == Self.notificationChannel {
            let ids = notification.payload.split(separator: " ").compactMap { UUID(uuidString: String($0)) }
            if ids.count == 2 {
                cache.invalidate(MembershipCache.Key(channelID: ids[0], userID: ids[1]))
            } else {
                // Not a payload this version writes: forget everything rather than guess.
                cache.reset()
            }
        }
    }
}
