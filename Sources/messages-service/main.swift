import ArgumentParser
import Foundation
import Logging
import MessagesService
import Metrics
import Postgres
import Prometheus

/// The `messages-service` command: `serve` runs the API, `migrate` applies the schema.
@main
struct MessagesServiceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "messages-service",
        abstract: """
            Stores and serves chat messages (Postgres, Redis cache), with the v1 and INF326 HTTP APIs, \
            and publishes message events to RabbitMQ.
            """,
        discussion: """
            Configuration comes from environment variables (and a .env file in the working
            directory, whose values the environment overrides); see README.md for the list.
            A bad value stops the command with a message naming the variable.
            """,
        version: serviceVersion,
        subcommands: [Serve.self, Migrate.self, Token.self, Errors.self],
        defaultSubcommand: Serve.self
    )
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the HTTP API and the outbox relay until SIGTERM or SIGINT.",
        discussion: """
            Listens on HOST:PORT (default 0.0.0.0:8080); GET /metrics serves Prometheus metrics.
            Run `migrate` first.
            """
    )

    func run() async throws {
        let configuration = try loadConfiguration()
        let log = ServiceLog(configuration: configuration)
        log.bootstrap()
        let logger = Logger(label: "messages-service")
        do {
            let registry = PrometheusCollectorRegistry()
            MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
            let readiness = Readiness()
            let app = try await buildApplication(configuration: configuration, log: log, metrics: registry, readiness: readiness)
            logger.info("starting", metadata: ["host": "\(configuration.host)", "port": "\(configuration.port)"])
            try await runService(app, configuration: configuration, readiness: readiness, logger: logger)
            logger.info("stopped")
        } catch let error as ConfigurationError {
            FileHandle.standardError.write(Data("messages-service: \(error)\n".utf8))
            throw ExitCode(78)
        }
    }
}

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Apply pending database migrations to DATABASE_URL, then exit.",
        discussion: "Safe to run from several pods at once: migrations run under an advisory lock."
    )

    func run() async throws {
        let configuration = try loadConfiguration()
        ServiceLog(configuration: configuration).bootstrap()
        let logger = Logger(label: "messages-service")
        let client = PostgresClient(configuration: postgresConfiguration(configuration), logger: logger)
        do {
            let applied = try await Migrator(client: client, logger: logger).migrate()
            logger.info("migrations done", metadata: ["applied": "\(applied)"])
            await client.shutdown()
        } catch {
            await client.shutdown()
            logger.critical("migration failed", metadata: ["error": "\(String(reflecting: error))"])
            throw ExitCode.failure
        }
    }
}

struct Token: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a development JWT signed with JWT_SECRET (HS256).",
        discussion: """
            The token carries sub, roles, iss = JWT_ISSUER, aud = JWT_AUDIENCE, nbf = now and
            exp = now + ttl: what `serve` with AUTH_MODE=jwt (and Kong's jwt plugin) accept.
            Use it as `Authorization: Bearer <token>`.
            """
    )

    @Option(help: "The user's UUID (the token's sub).")
    var sub: String

    @Option(help: "Comma-separated roles, e.g. moderator.")
    var roles: String = ""

    @Option(help: "Lifetime: a number of seconds, or with a unit: 90s, 15m, 1h, 7d.")
    var ttl: String = "1h"

    func run() async throws {
        let configuration = try loadConfiguration()
        guard let subject = UUID(uuidString: sub) else {
            throw ValidationError("--sub must be a UUID")
        }
        guard let lifetime = DurationText.seconds(ttl), lifetime > 0 else {
            throw ValidationError("--ttl must be like 3600, 90s, 15m, 1h or 7d")
        }
        guard Duration.seconds(lifetime) <= configuration.jwtMaxTTL else {
            throw ValidationError("--ttl must not exceed JWT_MAX_TTL (\(configuration.jwtMaxTTL.components.seconds) s): serve refuses longer-lived tokens")
        }
        guard case .hmacSecret(let secret) = configuration.jwtKey else {
            throw ValidationError("JWT_SECRET must be set to mint a token (a public key cannot sign)")
        }
        let roleList = roles.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        let token = try await JWTVerifier.mint(
            secret: secret, subject: subject, roles: roleList, issuer: configuration.jwtIssuer,
            audience: configuration.jwtAudience, lifetime: TimeInterval(lifetime)
        )
        print(token)
    }
}

struct Errors: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the error journal: warnings and errors every pod logged (table error_events).",
        discussion: """
            Newest first, one line each: time, level, source, message, then request_id, \
            user_id, channel_id and the other metadata. Reads DATABASE_URL. Entries are kept \
            ERROR_RETENTION_DAYS (30 by default).
            """
    )

    @Option(help: "How far back: a number of seconds, or with a unit: 90s, 15m, 1h, 7d.")
    var since: String = "1h"

    @Option(help: "The least severe level listed: warning, error or critical.")
    var level: String = "warning"

    @Option(help: "At most this many entries.")
    var limit: Int = 100

    @Flag(help: "Print each entry as a JSON object (one a line).")
    var json = false

    func run() async throws {
        let configuration = try loadConfiguration()
        guard let seconds = DurationText.seconds(since), (1...3650 * 86_400).contains(seconds) else {
            throw ValidationError("--since must be like 3600, 90s, 15m, 1h or 7d (1 s to 3650 d)")
        }
        guard let minimumLevel = Logger.Level(rawValue: level), ErrorEvents.levels.contains(minimumLevel) else {
            throw ValidationError("--level must be warning, error or critical")
        }
        guard (1...100_000).contains(limit) else { throw ValidationError("--limit must be 1...100000") }
        let client = PostgresClient(configuration: postgresConfiguration(configuration), logger: Logger(label: "errors"))
        let entries: [JournalEntry]
        do {
            entries = try await ErrorEvents.list(client, since: .seconds(seconds), minimumLevel: minimumLevel, limit: limit)
        } catch {
            await client.shutdown()
            FileHandle.standardError.write(Data("messages-service errors: cannot read the journal: \(error)\n".utf8))
            throw ExitCode.failure
        }
        await client.shutdown()
        for entry in entries {
            if json {
                print(String(decoding: entry.jsonLine(), as: UTF8.self))
            } else {
                print(Self.line(entry))
            }
        }
    }

    static func line(_ entry: JournalEntry) -> String {
        var fields = [
            entry.time.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true)),
            entry.level.padding(toLength: 8, withPad: " ", startingAt: 0), entry.source, entry.message,
        ]
        if let requestID = entry.requestID { fields.append("request_id=\(requestID)") }
        if let userID = entry.userID { fields.append("user_id=\(userID.uuidString.lowercased())") }
        if let channelID = entry.channelID { fields.append("channel_id=\(channelID.uuidString.lowercased())") }
        if entry.metadata != "{}" { fields.append(entry.metadata) }
        return fields.joined(separator: "  ")
    }
}

/// The configuration from the environment over `.env`, or exit 78 (EX_CONFIG) naming the variable.
func loadConfiguration() throws -> ServiceConfiguration {
    // hiredis writes to sockets with plain write(): a closed peer must not kill the process.
    signal(SIGPIPE, SIG_IGN)
    var environment = DotEnv.read(path: ".env")
    environment.merge(ProcessInfo.processInfo.environment) { _, process in process }
    do {
        return try ServiceConfiguration(environment: environment)
    } catch {
        FileHandle.standardError.write(Data("messages-service: \(error)\n".utf8))
        throw ExitCode(78)
    }
}

/// Reads `KEY=VALUE` lines of a `.env` file; a missing file is no error.
enum DotEnv {
    static func read(path: String) -> [String: String] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [:] }
        var values: [String: String] = [:]
        for line in text.split(whereSeparator: \.isNewline) {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            guard !trimmed.hasPrefix("#"), let equals = trimmed.firstIndex(of: "=") else { continue }
            let key = trimmed[..<equals].trimmingCharacters(in: .whitespaces)
            var value = trimmed[trimmed.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            if value.count >= 2, value.first == value.last, value.first == "\"" || value.first == "'" {
                value = String(value.dropFirst().dropLast())
            }
            values[key] = value
        }
        return values
    }
}
