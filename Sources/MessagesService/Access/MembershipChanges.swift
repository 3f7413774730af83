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
/// may stop delivering without failing), so every `probeInterval` a probe goes over the same
/// connection: a listening session sends the notifications of every transaction committed before
/// it became idle ahead of the `ReadyForQuery` of its next statement (and libpq queues them while
/// it reads the answer), so once the probe is answered and what came with it is applied, every
/// change committed before the probe was sent is known. The cache confirms that moment; a lost
/// connection empties it and turns it off until a new session listens again. The probe also
/// checks it still reaches the session that listens (`pg_backend_pid()`): behind a pooler that
/// hands statements to other sessions, nothing would ever be heard.
final class MembershipChanges: Service, Sendable {
    private var notificationChannel: String { membershipNotificationChannel }

    let cache: MembershipCache
    let connect: @Sendable () async throws -> PostgresDedicatedConnection
    let probeInterval: Duration
    let logger: Logger

    init(
        cache: MembershipCache, probeInterval: Duration = .milliseconds(250), logger: Logger,
        connect: @escaping @Sendable () async throws -> PostgresDedicatedConnection
    ) {
        precondition(probeInterval > .zero, "the probe needs an interval")
        self.cache = cache
        self.connect = connect
        self.probeInterval = probeInterval
        self.logger = logger
    }

    func run() async throws {
        let backoff = Backoff(initial: .milliseconds(200), maximum: .seconds(5))
        var failures = 0
        var sessions = 0
        while !isStopping {
            do {
                let session = try await connect()
                sessions += 1
                do {
                    try await listen(on: session, first: sessions == 1) { failures = 0 }
                } catch {
                    await session.close()
                    throw error
                }
                await session.close()
            } catch {
                cache.reset()
                failures += 1
                // Once per outage: the retries that follow say nothing new.
                if failures == 1 {
                    logger.warning(
                        "membership changes are not heard; access checks ask Postgres until they are",
                        metadata: ["error": "\(error)"]
                    )
                }
                let delay = backoff.delay(attempt: failures)
                try? await cancelWhenGracefulShutdown { try await Task.sleep(for: delay) }
            }
        }
        cache.reset()
    }

    private var isStopping: Bool {
        Task.isShuttingDownGracefully || Task.isCancelled
    }

    /// Listens until shutdown; throws when the connection fails.
    /// `first`: the process' first session, which also says whether anyone is a member at all.
    private func listen(on session: PostgresDedicatedConnection, first: Bool, connected: () -> Void) async throws {
        try await session.query("LISTEN \(notificationChannel)")
        let listener: Int64 = try Self.backendPID(try await session.query("SELECT pg_backend_pid() AS pid"))
        // Whatever was cached before this session may have changed unheard.
        cache.reset()
        connected()
        logger.info("hearing membership changes")
        if first,
            try await session.query("SELECT NOT EXISTS (SELECT FROM channel_members) AS empty").first?.decode("empty") == true
        {
            logger.warning(
                "CHANNEL_ACCESS=members and no channel has members yet: every channel answers 404 until the channels service adds them"
            )
        }
        while !isStopping {
            let sent = ContinuousClock.now
            let probed = try Self.backendPID(try await session.query("SELECT pg_backend_pid() AS pid"))
            guard probed == listener else { throw NotTheListeningSession() }
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

    private static func backendPID(_ rows: PostgresRows) throws -> Int64 {
        guard let pid: Int64 = try rows.first?.decode("pid") else { throw NotTheListeningSession() }
        return pid
    }

    /// The probe did not reach the session that listens (a pooler between us and Postgres).
    struct NotTheListeningSession: Error {}

    private func apply(_ notifications: [PostgresNotification]) {
        for notification in notifications where notification.channel == notificationChannel {
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
