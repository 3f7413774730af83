import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Pooling
import Tracing

@_exported import struct Pooling.PoolStatistics

/// A client of one Redis server over a few multiplexed connections, driven by NIO event loops
/// with hiredis parsing the replies: no call holds a thread while it waits for the server.
///
/// The connections are spread over the event loops of the group, and calls take them in turn; a
/// caller that runs on one of those loops uses a connection of its own loop, so its call does not
/// cross threads. A connection that timed out or broke is dropped and
/// the next call reconnects, so the client recovers by itself when the server comes back.
public final class RedisClient: Sendable {
    /// Where the server is, how many connections to keep, and how long anything may take.
    public struct Configuration: Sendable {
        public var endpoint: RedisEndpoint
        /// How many connections to open (each carries many pipelined calls), spread over the
        /// event loops.
        public var poolSize: Int
        /// How long opening a connection (TCP) may take.
        public var connectTimeout: Duration
        /// How long a call may wait for its reply once flushed to the socket (plus however late a
        /// busy event loop ran the check: see `RedisConnection.checkDeadlines`).
        public var commandTimeout: Duration
        /// How long a call waits for its turn (connection not open yet, or `window` calls already
        /// in flight on it) before `poolTimeout`.
        public var acquireTimeout: Duration
        /// The most calls in flight on one connection.
        public var window: Int
        /// Sentinels that name the primary; `endpoint`'s host and port are then not used.
        public var sentinel: RedisSentinel?

        public init(
            endpoint: RedisEndpoint,
            poolSize: Int = 8,
            connectTimeout: Duration = .milliseconds(500),
            commandTimeout: Duration = .milliseconds(250),
            acquireTimeout: Duration = .milliseconds(250),
            window: Int = 1024,
            sentinel: RedisSentinel? = nil
        ) {
            self.sentinel = sentinel
            self.endpoint = endpoint
            self.poolSize = poolSize
            self.connectTimeout = connectTimeout
            self.commandTimeout = commandTimeout
            self.acquireTimeout = acquireTimeout
            self.window = window
        }
    }

    private let connections: [RedisConnection]
    /// The connections of each event loop, by the loop's identity.
    private let connectionsByLoop: [ObjectIdentifier: [RedisConnection]]
    private let turn = NIOLockedValueBox(0)

    /// Creates the client; connections open lazily, on first use.
    public init(
        configuration: Configuration, eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger
    ) {
        precondition(configuration.poolSize > 0, "poolSize must be positive")
        precondition(configuration.window > 0, "window must be positive")
        let settings = RedisConnection.Settings(
            endpoint: configuration.endpoint, connectTimeout: configuration.connectTimeout,
            commandTimeout: configuration.commandTimeout, acquireTimeout: configuration.acquireTimeout,
            window: configuration.window, sentinel: configuration.sentinel
        )
        let loops = Array(eventLoopGroup.makeIterator())
        connections = (0..<configuration.poolSize).map { index in
            RedisConnection(eventLoop: loops[index % loops.count], settings: settings, logger: logger)
        }
        connectionsByLoop = Dictionary(grouping: connections) { ObjectIdentifier($0.eventLoop) }
    }

    /// Runs one command; an error reply throws `RedisError.Code.server`.
    @discardableResult
    public func send(_ command: RedisCommand) async throws -> RedisValue {
        let reply = try await pipeline([command])[0]
        if case .error(let message) = reply { throw RedisError(code: .server, serverMessage: message) }
        return reply
    }

    /// Runs one command with its arguments given inline, e.g. `send("GET", key)`.
    @discardableResult
    public func send(_ name: String, _ arguments: any RedisArgument...) async throws -> RedisValue {
        try await send(RedisCommand(name, arguments))
    }

    /// Sends every command in one round trip and returns their replies in order; an error reply of
    /// one command is its `.error` value and does not stop the others.
    public func pipeline(_ commands: [RedisCommand]) async throws -> [RedisValue] {
        guard !commands.isEmpty else { return [] }
        let connection = connection()
        return try await Self.span(commands) { try await connection.send(commands).get() }
    }

    /// Runs `body` in a client span of the process's tracer (a no-op unless the service
    /// bootstrapped one), named by the command (`pipeline` for several): never its keys or values.
    /// Outside any span (background work), in none: each would be a trace of its own.
    private static func span<T: Sendable>(_ commands: [RedisCommand], _ body: () async throws -> T) async throws -> T {
        guard ServiceContext.current != nil else { return try await body() }
        let name = commands.count == 1 ? String(decoding: commands[0].arguments[0], as: UTF8.self) : "pipeline"
        return try await withSpan(name, ofKind: .client) { span in
            span.attributes["db.system.name"] = "redis"
            span.attributes["db.operation.batch.size"] = commands.count
            return try await body()
        }
    }

    /// Runs a script by its SHA; when the server does not know it (first use, restart, flush) it is
    /// loaded and run again, in one more round trip.
    ///
    /// With `replicas` above zero, `WAIT` follows on the same connection, in the same round trip:
    /// the call throws `notReplicated` unless that many replicas confirmed the script's writes
    /// within `replicaTimeout`, so that a failover to one of them keeps what the script wrote.
    public func evaluate(
        _ script: RedisScript, keys: [any RedisArgument], arguments: [any RedisArgument], replicas: Int = 0,
        replicaTimeout: Duration = .milliseconds(100)
    ) async throws -> RedisValue {
        let run = RedisCommand("EVALSHA", [script.sha1, keys.count] + keys + arguments)
        let wait = RedisCommand.wait(replicas: replicas, timeout: replicaTimeout)
        let connection = connection()
        var replies = try await Self.span([run]) { try await connection.send([run] + wait).get() }
        if case .error(let message) = replies[0], message.hasPrefix("NOSCRIPT") {
            let load = RedisCommand("SCRIPT", "LOAD", script.source)
            replies = Array(
                try await Self.span([load, run]) { try await connection.send([load, run] + wait).get() }.dropFirst())
        }
        if case .error(let message) = replies[0] { throw RedisError(code: .server, serverMessage: message) }
        if replicas > 0 { try replies[1].requireReplicas(replicas) }
        return replies[0]
    }

    /// How busy the client is right now: connections open with calls in flight (`inUse`) or
    /// without (`idle`), calls waiting for their turn, and calls that gave up waiting since start.
    public func statistics() async -> PoolStatistics {
        var statistics = PoolStatistics(inUse: 0, idle: 0, waiting: 0, timeouts: 0)
        for connection in connections {
            guard let snapshot = try? await connection.snapshot().get() else { continue }
            if snapshot.open {
                if snapshot.inFlight > 0 { statistics.inUse += 1 } else { statistics.idle += 1 }
            }
            statistics.waiting += snapshot.waiting
            statistics.timeouts += snapshot.timeouts
        }
        return statistics
    }

    /// Closes every connection; later calls throw `poolClosed`.
    public func shutdown() async {
        for connection in connections {
            try? await connection.close().get()
        }
    }

    /// A connection on the caller's event loop when it runs on one of the client's, else any;
    /// in turn among several.
    private func connection() -> RedisConnection {
        let candidates =
            MultiThreadedEventLoopGroup.currentEventLoop.flatMap { connectionsByLoop[ObjectIdentifier($0)] }
            ?? connections
        let index = turn.withLockedValue { turn in
            turn &+= 1
            return turn
        }
        return candidates[Int(UInt(bitPattern: index) % UInt(candidates.count))]
    }
}

extension RedisCommand {
    /// `WAIT` for `replicas` to confirm the connection's writes so far, within `timeout`; no
    /// command when `replicas` is 0. At least 1 ms: `WAIT n 0` would wait for ever.
    public static func wait(replicas: Int, timeout: Duration) -> [RedisCommand] {
        replicas > 0 ? [RedisCommand("WAIT", replicas, Int(max(1, timeout.totalMilliseconds)))] : []
    }
}

extension RedisValue {
    /// Throws `notReplicated` unless this reply of `WAIT` counts `replicas` or more.
    public func requireReplicas(_ replicas: Int) throws(RedisError) {
        let confirmed = integer ?? 0
        guard confirmed >= replicas else {
            throw RedisError(code: .notReplicated, serverMessage: "\(confirmed) of \(replicas) replicas confirmed in time")
        }
    }
}

/// In a service group, the client stays open until graceful shutdown and then closes: list it
/// before the services that use it.
extension RedisClient: ClosesOnShutdown {}
