import ArgumentParser
import Logging
import MessagesService
import Postgres

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Apply pending database migrations to DATABASE_SESSION_URL (or DATABASE_URL), then exit.",
        discussion: """
            Safe to run from several pods at once: migrations run under an advisory lock. With \
            MESSAGES_PARTITIONS=N (2...1024) it also hash-partitions the channel tables by channel, N \
            partitions each, copying their rows in one transaction (docs/scaling.md).
            """
    )

    func run() async throws {
        let configuration = try loadConfiguration()
        let log = ServiceLog(configuration: configuration)
        log.bootstrap()
        defer { log.flush() }
        let logger = Logger(label: "messages-service")
        // The migration lock is a session's: never through a transaction pooler.
        let client = PostgresClient(configuration: PostgresClient.Configuration(sessionsOf: configuration), logger: logger)
        do {
            let applied = try await Migrator(client: client, logger: logger, partitions: configuration.messagesPartitions)
                .migrate()
            logger.info("migrations done", metadata: ["applied": "\(applied)"])
            await client.shutdown()
        } catch {
            await client.shutdown()
            logger.critical("migration failed", metadata: ["error": "\(String(reflecting: error))"])
            throw ExitCode.failure
        }
    }
}
