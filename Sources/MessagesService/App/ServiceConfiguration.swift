import AMQP
import Foundation
import Logging
import Redis

/// A configuration variable with a bad value; the process stops and prints this.
public struct ConfigurationError: Error, CustomStringConvertible, Equatable {
    /// The environment variable at fault.
    public let variable: String
    /// What is wrong with it.
    public let problem: String

    public var description: String { "invalid \(variable): \(problem)" }
}

/// Everything the service reads from its environment, validated once at start.
public struct ServiceConfiguration: Sendable, Equatable {
    /// How clients prove who they are.
    public enum AuthMode: String, Sendable {
        /// Verify `Authorization: Bearer` JWTs (HS256 with `JWT_SECRET`, RS256/ES256 with `JWT_PUBLIC_KEY_FILE`).
        case jwt
        /// Trust `X-User-Id`: only behind a gateway that sets it.
        case header
    }

    public var databaseURL = "postgres://messages@127.0.0.1:5432/messages"
    /// Spans are made and exported (`TracingBackend`): an OTLP endpoint is set in the `OTEL_*`
    /// variables, which swift-otel reads itself.
    public var tracing = false
    /// `PG_TRANSACTION_POOLING`: `databaseURL` reaches a transaction-mode pooler (PgBouncer).
    public var postgresTransactionPooling = false
    /// `DATABASE_SESSION_URL`: where the work that needs a session of its own connects (the
    /// relay's advisory lock, `LISTEN`, migrations): Postgres itself, since these connections
    /// send their session settings at connect, which PgBouncer refuses.
    /// Required with `postgresTransactionPooling`; `databaseURL` when unset.
    public var databaseSessionURL: String?
    /// The Redis of the timeline cache; nil (`REDIS_URL=` empty) disables the cache.
    public var redis: RedisEndpoint? = RedisEndpoint(host: "127.0.0.1")
    /// `REDIS_SENTINELS` and `REDIS_SENTINEL_NAME`: the sentinels name the primary, and
    /// `redis` gives only the login and the database.
    public var redisSentinel: RedisSentinel?
    /// Redis connections, spread over the event loops; each multiplexes pipelined calls.
    public var redisPoolSize = 8
    public var redisConnectTimeout = Duration.milliseconds(500)
    /// How long one Redis call may block before it counts as failed (the cache is then bypassed).
    public var redisCommandTimeout = Duration.milliseconds(250)
    /// How long a call waits for its turn on a Redis connection: under load it waits (as for
    /// Postgres) rather than failing over to Postgres.
    public var redisPoolTimeout = Duration.milliseconds(5000)
    /// When the cache stops calling Redis, and for how long.
    var redisBreaker = CircuitBreaker.Configuration()
    /// Entries per cached timeline and how long an idle one stays.
    var timelineCache = TimelineCache.Configuration()
    /// The per-user token bucket (in Redis); rate 0 disables it.
    var rateLimit = RateLimiter.Configuration()
    /// The RabbitMQ events are published to; nil (`AMQP_URL=` empty) runs no relay in this pod
    /// (events then wait in the outbox for a pod that has one).
    public var amqp: AMQPEndpoint? = AMQPEndpoint(host: "127.0.0.1")
    public var amqpConnectTimeout = Duration.milliseconds(3000)
    /// How long the relay waits for the broker's confirms of one batch before it retries it.
    public var amqpConfirmTimeout = Duration.milliseconds(5000)
    public var amqpHeartbeat = Duration.seconds(30)
    /// Rows per relay round and events per publish batch, the LEGACY_QUEUE and the poll interval.
    var outbox = OutboxRelay.Configuration()
    public var host = "0.0.0.0"
    public var port = 8080
    public var authMode = AuthMode.jwt
    /// The JWT verification key: a secret (HS256) or a PEM public key (RS256/ES256).
    public var jwtKey: JWTVerifier.Key?
    public var jwtIssuer = "messages-service"
    public var jwtAudience = "messages-api"
    public var logLevel = Logger.Level.info
    public var logFormat = LogFormat.json
    public var limits = MessageLimits()
    /// Connections (and threads for blocking libpq calls) in the Postgres pool.
    public var postgresPoolSize = 8
    /// How long a request waits for a pooled connection before it is shed with 503.
    public var postgresPoolTimeout = Duration.milliseconds(5000)
    /// The server cancels statements running longer than this.
    public var postgresStatementTimeout = Duration.milliseconds(10000)
    /// `migrate` hash-partitions the channel tables into this many partitions each
    /// (`MESSAGES_PARTITIONS`, see `ChannelPartitioning`); nil: plain tables.
    public var messagesPartitions: Int?
    /// Serve the INF326-compatible `/threads/...` API.
    public var inf326Enabled = true
    /// Serve the reference chat page at `/app/` (`WEB_CLIENT`); the Kubernetes base turns it off.
    public var webClient = true
    /// Mint development tokens at `POST /dev/token` for the chat page's sign-in button
    /// (`DEV_TOKENS`): only with `AUTH_MODE=jwt` and an HS256 `JWT_SECRET`, for loopback callers
    /// (`make run`).
    public var devTokens = false
    /// `members`: a channel serves only its members (the membership API sets them); `open`: every
    /// authenticated caller uses every channel, for local use.
    var channelAccess = ChannelAccess.Mode.members
    /// Who the INF326 API takes the caller to be: a verified token (`jwt`, the default when
    /// `AUTH_MODE=jwt`) or `X-User-Id` as sent (`header`).
    public var inf326Auth: AuthMode?
    /// The INF326 API's identity rule: `INF326_AUTH`, else the same as `AUTH_MODE`.
    public var effectiveINF326Auth: AuthMode { inf326Auth ?? authMode }
    /// Longest accepted token lifetime, `exp` minus `iat` (or minus now without `iat`).
    public var jwtMaxTTL = Duration.seconds(86_400)
    /// HMAC keys of the v1 page cursors: the current one signs, the previous one is still read
    /// during a rotation. Nil: a key of the process' own (cursors break on restart and across pods).
    public var cursorSecret: String?
    public var cursorPreviousSecret: String?
    /// Proxies in front of the service that append the client address to `X-Forwarded-For`;
    /// 0 takes the peer address as the client's.
    public var trustedProxyHops = 0
    /// A connection with no read or write for this long is closed.
    public var httpIdleTimeout = Duration.seconds(60)
    /// A connection must deliver a complete request head this soon after it opened or after its
    /// previous response; this also bounds idle keep-alive connections.
    public var httpHeaderTimeout = Duration.seconds(10)
    /// The error journal's queue size and retention.
    public var errorJournal = ErrorJournalWriter.Configuration()
    /// Where critical log lines are posted, and how often at most; nil: no alerts.
    public var alertWebhook: AlertNotifier.Configuration?
    /// After SIGTERM: how long readiness says 503 while the server still serves.
    public var shutdownDrain = Duration.zero
    /// After the drain: how long in-flight requests, the relay's last batch and the journal's
    /// last write may take before the rest is cancelled.
    public var shutdownTimeout = Duration.seconds(30)
    /// The live streams: how many per pod, how far a client may fall behind, heartbeats, polls.
    public var streams = ChannelStreams.Configuration()

    /// The defaults, for tests and for documentation.
    public init() {}

    /// Reads the variables this service knows from `environment`; absent ones keep their defaults.
    public init(environment: [String: String]) throws(ConfigurationError) {
        let reader = EnvironmentReader(environment: environment)
        for variable in Self.secretVariables
        where environment[variable]?.range(of: Self.placeholderMark, options: .caseInsensitive) != nil {
            // A template's placeholder that nobody replaced: never run with it (it is public).
            throw ConfigurationError(variable: variable, problem: "is a placeholder (REPLACE_ME): set the real value")
        }
        databaseURL = try reader.url("DATABASE_URL", schemes: ["postgres", "postgresql"]) ?? databaseURL
        databaseSessionURL = try reader.url("DATABASE_SESSION_URL", schemes: ["postgres", "postgresql"])
        postgresTransactionPooling = try reader.boolean("PG_TRANSACTION_POOLING") ?? postgresTransactionPooling
        if postgresTransactionPooling, databaseSessionURL == nil {
            throw ConfigurationError(
                variable: "DATABASE_SESSION_URL",
                problem: "must be set with PG_TRANSACTION_POOLING=true: advisory locks and LISTEN need a session of their own")
        }
        if environment["REDIS_URL"] == "" {
            redis = nil
        } else if let url = try reader.url("REDIS_URL", schemes: ["redis"]) {
            do {
                redis = try RedisEndpoint(url: url)
            } catch {
                throw ConfigurationError(variable: "REDIS_URL", problem: error.serverMessage ?? "\(error)")
            }
        }
        if let addresses = try reader.string("REDIS_SENTINELS") {
            guard let sentinels = RedisSentinel.addresses(addresses) else {
                throw ConfigurationError(variable: "REDIS_SENTINELS", problem: "must be host[:port] entries separated by commas")
            }
            redisSentinel = RedisSentinel(
                sentinels: sentinels, primaryName: try reader.string("REDIS_SENTINEL_NAME") ?? "mymaster")
        }
        timelineCache.replicas = try reader.integer("REDIS_WAIT_REPLICAS", in: 0...16) ?? timelineCache.replicas
        redisPoolSize = try reader.integer("REDIS_POOL_SIZE", in: 1...256) ?? redisPoolSize
        redisConnectTimeout = try reader.milliseconds("REDIS_CONNECT_TIMEOUT_MS", in: 1...60_000) ?? redisConnectTimeout
        redisCommandTimeout = try reader.milliseconds("REDIS_COMMAND_TIMEOUT_MS", in: 1...60_000) ?? redisCommandTimeout
        // WAIT answers within its timeout, which must leave the call time to come back.
        timelineCache.replicaTimeout = redisCommandTimeout / 2
        redisPoolTimeout = try reader.milliseconds("REDIS_POOL_TIMEOUT_MS", in: 1...600_000) ?? redisPoolTimeout
        redisBreaker.failureThreshold =
            try reader.integer("REDIS_BREAKER_FAILURES", in: 1...10_000)
            ?? redisBreaker.failureThreshold
        redisBreaker.openDuration =
            try reader.milliseconds("REDIS_BREAKER_OPEN_MS", in: 1...3_600_000)
            ?? redisBreaker.openDuration
        if environment["AMQP_URL"] == "" {
            amqp = nil
        } else if let url = try reader.url("AMQP_URL", schemes: ["amqp"]) {
            do {
                amqp = try AMQPEndpoint(url: url)
            } catch {
                throw ConfigurationError(variable: "AMQP_URL", problem: (error as? AMQPError)?.serverMessage ?? "\(error)")
            }
        }
        amqpConnectTimeout = try reader.milliseconds("AMQP_CONNECT_TIMEOUT_MS", in: 1...60_000) ?? amqpConnectTimeout
        amqpConfirmTimeout = try reader.milliseconds("AMQP_CONFIRM_TIMEOUT_MS", in: 1...600_000) ?? amqpConfirmTimeout
        amqpHeartbeat = try reader.integer("AMQP_HEARTBEAT_SECONDS", in: 0...3600).map { .seconds($0) } ?? amqpHeartbeat
        // The idle relay services heartbeats about once a second; shorter ones would be missed.
        if amqpHeartbeat > .zero, amqpHeartbeat < .seconds(5) {
            throw ConfigurationError(variable: "AMQP_HEARTBEAT_SECONDS", problem: "must be 0 (off) or 5...3600")
        }
        outbox.batchSize = try reader.integer("OUTBOX_BATCH_SIZE", in: 1...1000) ?? outbox.batchSize
        outbox.pollInterval = try reader.milliseconds("OUTBOX_POLL_MS", in: 10...60_000) ?? outbox.pollInterval
        outbox.maxAttempts = try reader.integer("OUTBOX_MAX_ATTEMPTS", in: 1...1000) ?? outbox.maxAttempts
        tracing = TracingBackend.isRequested(by: environment)
        // Empty like unset: no legacy queue.
        outbox.legacyQueue = environment["LEGACY_QUEUE"].flatMap { $0.isEmpty ? nil : $0 }
        if let queue = outbox.legacyQueue, queue.utf8.count > 255 || queue.hasPrefix("amq.") {
            throw ConfigurationError(variable: "LEGACY_QUEUE", problem: "must be a queue name of at most 255 bytes, not amq.*")
        }
        outbox.legacyQueueKind = try reader.choice("LEGACY_QUEUE_TYPE", DurableQueue.Kind.self) ?? outbox.legacyQueueKind
        host = try reader.string("HOST") ?? host
        port = try reader.integer("PORT", in: 1...65535) ?? port
        authMode = try reader.choice("AUTH_MODE", AuthMode.self) ?? authMode
        jwtIssuer = try reader.string("JWT_ISSUER") ?? jwtIssuer
        jwtAudience = try reader.string("JWT_AUDIENCE") ?? jwtAudience
        jwtKey = try Self.jwtKey(reader)
        jwtMaxTTL = try reader.seconds("JWT_MAX_TTL", in: 60...31_536_000) ?? jwtMaxTTL
        inf326Auth = try reader.choice("INF326_AUTH", AuthMode.self)
        cursorSecret = try Self.secret("CURSOR_SECRET", reader)
        cursorPreviousSecret = try Self.secret("CURSOR_SECRET_PREVIOUS", reader)
        if cursorPreviousSecret != nil, cursorSecret == nil {
            throw ConfigurationError(variable: "CURSOR_SECRET", problem: "is needed when CURSOR_SECRET_PREVIOUS is set")
        }
        trustedProxyHops = try reader.integer("TRUSTED_PROXY_HOPS", in: 0...10) ?? trustedProxyHops
        httpIdleTimeout = try reader.milliseconds("HTTP_IDLE_TIMEOUT_MS", in: 100...3_600_000) ?? httpIdleTimeout
        httpHeaderTimeout = try reader.milliseconds("HTTP_HEADER_TIMEOUT_MS", in: 100...600_000) ?? httpHeaderTimeout
        logLevel = try reader.choice("LOG_LEVEL", Logger.Level.self) ?? logLevel
        logFormat = try reader.choice("LOG_FORMAT", LogFormat.self) ?? logFormat
        limits = MessageLimits(maxContentLength: try reader.integer("MAX_CONTENT_LENGTH", in: 1...20000) ?? 4000)
        limits.attachmentURLHosts = try reader.hostList("ATTACHMENT_URL_HOSTS") ?? limits.attachmentURLHosts
        postgresPoolSize = try reader.integer("PG_POOL_SIZE", in: 1...256) ?? postgresPoolSize
        messagesPartitions = try reader.integer("MESSAGES_PARTITIONS", in: ChannelPartitioning.counts)
        postgresPoolTimeout = try reader.milliseconds("PG_POOL_TIMEOUT_MS", in: 1...600_000) ?? postgresPoolTimeout
        postgresStatementTimeout =
            try reader.milliseconds("PG_STATEMENT_TIMEOUT_MS", in: 1...3_600_000)
            ?? postgresStatementTimeout
        inf326Enabled = try reader.boolean("INF326_API_ENABLED") ?? inf326Enabled
        webClient = try reader.boolean("WEB_CLIENT") ?? webClient
        devTokens = try reader.boolean("DEV_TOKENS") ?? devTokens
        if devTokens {
            // Anyone who reaches the port could mint any identity: never beside real tokens.
            guard authMode == .jwt, case .hmacSecret = jwtKey else {
                throw ConfigurationError(
                    variable: "DEV_TOKENS", problem: "needs AUTH_MODE=jwt with JWT_SECRET (development only)")
            }
        }
        channelAccess = try reader.choice("CHANNEL_ACCESS", ChannelAccess.Mode.self) ?? channelAccess
        errorJournal.capacity = try reader.integer("ERROR_JOURNAL_QUEUE", in: 1...100_000) ?? errorJournal.capacity
        errorJournal.retention =
            try reader.integer("ERROR_RETENTION_DAYS", in: 1...3650).map { .seconds($0 * 86_400) }
            ?? errorJournal.retention
        // Empty like unset: no alerts.
        if environment["ALERT_WEBHOOK_URL"] != "",
            let url = try reader.url("ALERT_WEBHOOK_URL", schemes: ["http", "https"]).flatMap(URL.init(string:))
        {
            var webhook = AlertNotifier.Configuration(url: url)
            webhook.minimumInterval =
                try reader.integer("ALERT_MIN_INTERVAL_SECONDS", in: 1...86_400).map { .seconds($0) }
                ?? webhook.minimumInterval
            alertWebhook = webhook
        }
        shutdownDrain = try reader.milliseconds("SHUTDOWN_DRAIN_MS", in: 0...600_000) ?? shutdownDrain
        shutdownTimeout = try reader.milliseconds("SHUTDOWN_TIMEOUT_MS", in: 1...600_000) ?? shutdownTimeout
        streams.maxStreams = try reader.integer("STREAM_MAX_CONNECTIONS", in: 0...1_000_000) ?? streams.maxStreams
        streams.maxStreamsPerUser =
            try reader.integer("STREAM_MAX_PER_USER", in: 1...1_000_000) ?? streams.maxStreamsPerUser
        streams.buffer = try reader.integer("STREAM_BUFFER", in: 1...100_000) ?? streams.buffer
        streams.heartbeat = try reader.milliseconds("STREAM_HEARTBEAT_MS", in: 100...3_600_000) ?? streams.heartbeat
        streams.pollInterval = try reader.milliseconds("STREAM_POLL_MS", in: 100...3_600_000) ?? streams.pollInterval
        // A page must fit in the cached window, or the newest page could never be a hit.
        let largestPage = max(limits.maxPageSize, limits.maxINF326PageSize)
        timelineCache.capacity =
            try reader.integer("TIMELINE_CACHE_SIZE", in: largestPage...100_000)
            ?? timelineCache.capacity
        rateLimit.rate = try reader.integer("RATE_LIMIT_RPS", in: 0...1_000_000) ?? rateLimit.rate
        rateLimit.burst = try reader.integer("RATE_LIMIT_BURST", in: 1...1_000_000) ?? rateLimit.burst
        timelineCache.timeToLive =
            try reader.integer("TIMELINE_CACHE_TTL_SECONDS", in: 1...2_592_000).map {
                .seconds($0)
            } ?? timelineCache.timeToLive
        timelineCache.hotPageBytes =
            try reader.integer("TIMELINE_HOT_PAGES_MB", in: 0...4_096).map { $0 << 20 } ?? timelineCache.hotPageBytes
    }
}

extension ServiceConfiguration {
    /// The variables that hold secrets (or URLs with passwords).
    static let secretVariables = [
        "JWT_SECRET", "CURSOR_SECRET", "CURSOR_SECRET_PREVIOUS", "DATABASE_URL", "REDIS_URL", "AMQP_URL",
    ]
    /// What the deployment templates of earlier releases put where a secret belongs.
    static let placeholderMark = "REPLACE_ME"

    /// A secret of at least 32 bytes, or nil when unset.
    fileprivate static func secret(_ name: String, _ reader: EnvironmentReader) throws(ConfigurationError) -> String? {
        guard let secret = try reader.string(name) else { return nil }
        guard secret.utf8.count >= 32 else { throw ConfigurationError(variable: name, problem: "must be at least 32 bytes") }
        return secret
    }

    /// `JWT_SECRET` (at least 32 bytes) or the PEM in `JWT_PUBLIC_KEY_FILE`, not both.
    fileprivate static func jwtKey(_ reader: EnvironmentReader) throws(ConfigurationError) -> JWTVerifier.Key? {
        let secret = try reader.string("JWT_SECRET")
        let keyFile = try reader.string("JWT_PUBLIC_KEY_FILE")
        switch (secret, keyFile) {
        case (nil, nil):
            return nil
        case (.some, .some):
            throw ConfigurationError(variable: "JWT_SECRET", problem: "set JWT_SECRET or JWT_PUBLIC_KEY_FILE, not both")
        case (let secret?, nil):
            guard secret.utf8.count >= 32 else {
                throw ConfigurationError(variable: "JWT_SECRET", problem: "must be at least 32 bytes")
            }
            return .hmacSecret(secret)
        case (nil, let path?):
            guard let pem = try? String(contentsOfFile: path, encoding: .utf8), pem.contains("PUBLIC KEY") else {
                throw ConfigurationError(variable: "JWT_PUBLIC_KEY_FILE", problem: "must name a readable PEM public key file")
            }
            return .publicKeyPEM(pem)
        }
    }
}

/// Reads typed values from environment variables; every failure names the variable.
struct EnvironmentReader {
    let environment: [String: String]

    func string(_ name: String) throws(ConfigurationError) -> String? {
        guard let value = environment[name] else { return nil }
        guard !value.isEmpty else { throw ConfigurationError(variable: name, problem: "must not be empty") }
        return value
    }

    func integer(_ name: String, in range: ClosedRange<Int>) throws(ConfigurationError) -> Int? {
        guard let raw = try string(name) else { return nil }
        guard let value = Int(raw), range.contains(value) else {
            throw ConfigurationError(
                variable: name, problem: "must be an integer \(range.lowerBound)...\(range.upperBound) (got \"\(raw)\")"
            )
        }
        return value
    }

    func milliseconds(_ name: String, in range: ClosedRange<Int>) throws(ConfigurationError) -> Duration? {
        try integer(name, in: range).map { .milliseconds($0) }
    }

    /// Seconds, or a number with the unit `s`, `m`, `h` or `d` (`24h`).
    func seconds(_ name: String, in range: ClosedRange<Int>) throws(ConfigurationError) -> Duration? {
        guard let raw = try string(name) else { return nil }
        guard let seconds = DurationText.seconds(raw), range.contains(seconds) else {
            throw ConfigurationError(
                variable: name,
                problem: "must be \(range.lowerBound)...\(range.upperBound) seconds, e.g. 3600 or 24h (got \"\(raw)\")"
            )
        }
        return .seconds(seconds)
    }

    /// A comma-separated list of host names, lowercased; empty means none.
    func hostList(_ name: String) throws(ConfigurationError) -> [String]? {
        guard let raw = environment[name] else { return nil }
        let hosts = raw.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }.filter { !$0.isEmpty }
        for host in hosts where host.wholeMatch(of: /[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]{1,5})?/) == nil {
            throw ConfigurationError(variable: name, problem: "must be comma-separated host names (got \"\(host)\")")
        }
        return hosts.sorted()
    }

    func boolean(_ name: String) throws(ConfigurationError) -> Bool? {
        guard let raw = try string(name) else { return nil }
        switch raw.lowercased() {
        case "true", "1", "yes", "on": return true
        case "false", "0", "no", "off": return false
        default: throw ConfigurationError(variable: name, problem: "must be true or false (got \"\(raw)\")")
        }
    }

    func choice<T: RawRepresentable & CaseIterable>(_ name: String, _ type: T.Type) throws(ConfigurationError) -> T?
    where T.RawValue == String {
        guard let raw = try string(name) else { return nil }
        guard let value = T(rawValue: raw.lowercased()) else {
            let allowed = T.allCases.map(\.rawValue).joined(separator: ", ")
            throw ConfigurationError(variable: name, problem: "must be one of \(allowed) (got \"\(raw)\")")
        }
        return value
    }

    func url(_ name: String, schemes: Set<String>) throws(ConfigurationError) -> String? {
        guard let raw = try string(name) else { return nil }
        guard let url = URL(string: raw), let scheme = url.scheme, schemes.contains(scheme), url.host != nil else {
            let allowed = schemes.sorted().map { "\($0)://" }.joined(separator: " or ")
            throw ConfigurationError(variable: name, problem: "must be a URL starting with \(allowed)")
        }
        return raw
    }
}

extension ServiceConfiguration.AuthMode: CaseIterable {}
