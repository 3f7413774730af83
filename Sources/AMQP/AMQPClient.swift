import Logging
import NIOConcurrencyHelpers
import Pooling

@_exported import struct Pooling.Backoff

/// A connection to RabbitMQ that reconnects by itself.
///
/// Every call runs on the client's own thread, one at a time (rabbitmq-c is blocking and not
/// thread-safe), never on an event loop. The connection is opened on first use and `setUp` runs on
/// each new connection (declare the topology, enable confirms, start consuming). When a call fails
/// with an `AMQPError` the connection is closed; the next call reconnects, but not before a backoff
/// delay with jitter that grows with each consecutive failure.
///
/// What it does is in the extensions beside this file: declarations (`AMQPTopology`), publishing
/// with confirms, and consuming.
public final class AMQPClient: Sendable {
    /// Where the broker is and how patient to be with it.
    public struct Configuration: Sendable {
        public var endpoint: AMQPEndpoint
        public var connection: ConnectionOptions
        public var reconnect: Backoff

        public init(endpoint: AMQPEndpoint, connection: ConnectionOptions = .init(), reconnect: Backoff = Backoff()) {
            self.endpoint = endpoint
            self.connection = connection
            self.reconnect = reconnect
        }
    }

    /// Timeouts and limits of each connection.
    public struct ConnectionOptions: Sendable {
        /// Heartbeat interval the client proposes; the broker closes a connection silent for two.
        public var heartbeat: Duration
        public var connectTimeout: Duration
        /// How long a synchronous method (declare, bind, login, ...) may take.
        public var rpcTimeout: Duration
        /// The most messages one `publish` call may leave unconfirmed at once.
        public var maxInFlight: Int

        public init(
            heartbeat: Duration = .seconds(30), connectTimeout: Duration = .seconds(3),
            rpcTimeout: Duration = .seconds(5), maxInFlight: Int = 256
        ) {
            self.heartbeat = heartbeat
            self.connectTimeout = connectTimeout
            self.rpcTimeout = rpcTimeout
            self.maxInFlight = maxInFlight
        }
    }

    private struct State {
        var connection: AMQPConnection?
        var consecutiveFailures = 0
        var retryAt: ContinuousClock.Instant?
        var isShutDown = false
    }

    private let configuration: Configuration
    private let setUp: @Sendable (AMQPTopology) throws -> Void
    private let logger: Logger
    private let thread = BlockingExecutor(threadCount: 1)
    private let state = NIOLockedValueBox(State())

    /// Creates the client; it connects on first use (or `connect()`), and runs `setUp` on every
    /// new connection.
    public init(
        configuration: Configuration, logger: Logger,
        setUp: @escaping @Sendable (AMQPTopology) throws -> Void = { _ in }
    ) {
        self.configuration = configuration
        self.logger = logger
        self.setUp = setUp
    }

    /// True while a connection is open (it may still fail on its next use).
    public var isConnected: Bool {
        state.withLockedValue { $0.connection != nil }
    }

    /// Connects now, and runs the set-up, unless a connection is open: for callers that need the
    /// topology declared (or the consumer started) before they go on.
    public func connect() async throws {
        try await withConnection { _ in }
    }

    /// Closes the connection and stops the thread; later calls throw `closed`.
    public func shutdown() async {
        state.withLockedValue { $0.isShutDown = true }
        // The close runs on the client's thread, after any call still running there.
        _ = try? await thread.run {
            let connection = self.state.withLockedValue { state in
                defer { state.connection = nil }
                return state.connection
            }
            connection?.close()
        }
        await thread.shutdown()
    }

    /// Runs `body` with the connection on the client's thread, connecting first when needed.
    func withConnection<T: Sendable>(_ body: @escaping @Sendable (AMQPConnection) throws -> T) async throws -> T {
        let (isShutDown, retryAt) = state.withLockedValue { ($0.isShutDown, $0.connection == nil ? $0.retryAt : nil) }
        if isShutDown { throw Self.shutDownError }
        if let retryAt {
            try await Task.sleep(until: retryAt, clock: .continuous)
        }
        return try await thread.run { try self.run(body, on: self.currentConnection()) }
    }

    /// Runs `body` with the connection that is open now, on the client's thread; nil, without a
    /// call, when none is.
    func withOpenConnection<T: Sendable>(_ body: @escaping @Sendable (AMQPConnection) throws -> T) async throws -> T? {
        try await thread.run {
            let (connection, isShutDown) = self.state.withLockedValue { ($0.connection, $0.isShutDown) }
            if isShutDown { throw Self.shutDownError }
            return try connection.map { try self.run(body, on: $0) }
        }
    }

    private static let shutDownError = AMQPError(code: .closed, serverMessage: "the client was shut down")

    private func run<T>(_ body: (AMQPConnection) throws -> T, on connection: AMQPConnection) throws -> T {
        do {
            return try body(connection)
        } catch let error as AMQPError where connection.isBroken {
            drop(connection, after: error)
            throw error
        }
    }

    private func currentConnection() throws -> AMQPConnection {
        let (existing, isShutDown) = state.withLockedValue { ($0.connection, $0.isShutDown) }
        if isShutDown { throw Self.shutDownError }
        if let existing { return existing }
        let endpoint = configuration.endpoint
        do {
            let connection = try AMQPConnection.open(endpoint, options: configuration.connection)
            do {
                try setUp(AMQPTopology(connection: connection))
            } catch {
                connection.close()
                throw error
            }
            let failures = state.withLockedValue { state in
                defer { (state.connection, state.consecutiveFailures, state.retryAt) = (connection, 0, nil) }
                return state.consecutiveFailures
            }
            logger.info(
                "connected to RabbitMQ",
                metadata: ["amqp.host": "\(endpoint.host):\(endpoint.port)", "amqp.failed_attempts": "\(failures)"]
            )
            return connection
        } catch {
            recordFailure(error)
            throw error
        }
    }

    private func drop(_ connection: AMQPConnection, after error: AMQPError) {
        connection.close()
        state.withLockedValue { if $0.connection === connection { $0.connection = nil } }
        recordFailure(error)
    }

    private func recordFailure(_ error: any Error) {
        let (attempt, delay) = state.withLockedValue { state in
            state.consecutiveFailures += 1
            let delay = configuration.reconnect.delay(attempt: state.consecutiveFailures)
            state.retryAt = .now + delay
            return (state.consecutiveFailures, delay)
        }
        logger.warning(
            "RabbitMQ connection failed; reconnecting after a backoff",
            metadata: ["error": "\(error)", "amqp.attempt": "\(attempt)", "amqp.retry_in": "\(delay)"]
        )
    }
}

/// In a service group, the client stays open until graceful shutdown and then closes: list it
/// before the services that use it.
extension AMQPClient: ClosesOnShutdown {}
