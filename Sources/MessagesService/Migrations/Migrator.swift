import Logging
import Postgres

/// Applies pending migrations, once, even when several pods start together.
public struct Migrator: Sendable {
    /// Any fixed number: every migrator takes the same session-level advisory lock.
    static let advisoryLockKey: Int64 = 0x6D73_6773_6D69_6772  // "msgsmigr"

    let client: PostgresClient
    let logger: Logger
    /// Partitions the channel tables want (`MESSAGES_PARTITIONS`); nil leaves them as they are.
    let partitions: Int?

    /// Creates a migrator on a client.
    public init(client: PostgresClient, logger: Logger, partitions: Int? = nil) {
        self.client = client
        self.logger = logger
        self.partitions = partitions
    }

    /// Applies every migration not applied yet, each in its own transaction, then partitions the
    /// channel tables if `partitions` asks for it and they are plain tables; returns the versions
    /// applied. Safe to run any number of times, concurrently.
    @discardableResult
    public func migrate() async throws -> [Int] {
        try await client.withConnection { session in
            // Another pod's migration may hold the lock for longer than a statement may take.
            try await session.execute("SET statement_timeout = 0")
            try await session.execute("SELECT pg_advisory_lock($1)", [Self.advisoryLockKey])
            do {
                let applied = try await applyPending(on: session)
                try await partitionIfAsked(on: session)
                try await session.execute("SELECT pg_advisory_unlock($1)", [Self.advisoryLockKey])
                try await session.execute("RESET statement_timeout")
                return applied
            } catch {
                // A failed unlock means a broken connection, which releases the lock with it.
                try? await session.execute("SELECT pg_advisory_unlock($1)", [Self.advisoryLockKey])
                try? await session.execute("RESET statement_timeout")
                throw error
            }
        }
    }

    private func applyPending(on session: PostgresSession) async throws -> [Int] {
        try await session.execute(
            """
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version integer PRIMARY KEY,
                name text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )
            """
        )
        let done = Set(
            try await session.query("SELECT version FROM schema_migrations").rows.map { try $0.decode("version", as: Int.self) })
        var applied: [Int] = []
        for migration in Migrations.all where !done.contains(migration.version) {
            try await session.execute("BEGIN")
            do {
                // A migration that counts or copies rows takes longer than any request may: no
                // statement timeout. But a short wait for a table another session holds: while
                // it waits, every request for that table queues behind it. Past 5 s it fails,
                // and the migration Job runs it again (backoffLimit).
                try await session.executeScript("SET LOCAL statement_timeout = 0; SET LOCAL lock_timeout = '5s'")
                try await session.executeScript(migration.sql)
                try await session.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", [migration.version, migration.name]
                )
                try await session.execute("COMMIT")
            } catch {
                try? await session.execute("ROLLBACK")
                throw error
            }
            logger.info("applied migration", metadata: ["version": "\(migration.version)", "name": "\(migration.name)"])
            applied.append(migration.version)
        }
        return applied
    }

    /// Converts plain channel tables to `partitions` partitions each, in one transaction (the
    /// tables are locked while their rows are copied: an offline step for a large database). A
    /// schema partitioned before stays as it is, and one with another count is refused: changing
    /// the count means copying every row again, which is not this command's to decide.
    private func partitionIfAsked(on session: PostgresSession) async throws {
        guard let partitions else { return }
        switch try await ChannelPartitioning.partitionCount(on: session) {
        case partitions?:
            // Partitioned before: a table a later migration added is partitioned alike.
            let plain = try await ChannelPartitioning.plainTables(on: session)
            if !plain.isEmpty { try await convert(on: session, partitions: partitions, tables: plain) }
        case let other?:
            throw MigrationError(
                "the channel tables have \(other) partitions each; MESSAGES_PARTITIONS=\(partitions) asks for another "
                    + "count, which migrate does not change (see docs/scaling.md)")
        case nil:
            try await convert(on: session, partitions: partitions, tables: ChannelPartitioning.tables.map(\.name))
        }
    }

    private func convert(on session: PostgresSession, partitions: Int, tables: [String]) async throws {
        let started = ContinuousClock.now
        try await session.execute("BEGIN")
        do {
            // Copying a large table takes longer than any request may: no statement timeout
            // here, but no endless wait for a table another session holds either.
            try await session.executeScript("SET LOCAL statement_timeout = 0; SET LOCAL lock_timeout = '30s'")
            try await session.executeScript(ChannelPartitioning.conversion(count: partitions))
            try await session.execute("COMMIT")
        } catch {
            try? await session.execute("ROLLBACK")
            throw error
        }
        logger.info(
            "partitioned the channel tables",
            metadata: [
                "partitions": "\(partitions)", "tables": "\(tables.joined(separator: ","))",
                "seconds": "\((ContinuousClock.now - started).inSeconds)",
            ])
    }
}

/// A migration that cannot go on as asked; nothing was changed.
public struct MigrationError: Error, CustomStringConvertible {
    public let description: String

    init(_ description: String) {
        self.description = description
    }
}
