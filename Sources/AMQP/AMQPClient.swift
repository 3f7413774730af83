import Logging
import NIOConcurrencyHelpers
import NIOPosix

/// A connection to RabbitMQ that reconnects by itself.
///
/// Every call runs on the client's own thread, one at a time (rabbitmq-c is blocking and not
/// thread-safe), never on an event loop. The connection is opened on first use and `setUp` runs on
/// each new connection (declare the topology, enable confirms). When a call fails with an
/// `AMQPError` the connection is closed; the next call reconnects, but not before a backoff delay
/// with jitter that grows with each consecutive failure.
public final class AMQPClient: Sendable {
    /// Where the broker is and how patient to be with it.
    public struct Configuration: Sendable {
        public var endpoint: AMQPEndpoint
        public var connection: AMQPConnection.Options
        public var reconnect: Backoff

        public init(endpoint: AMQPEndpoint, connection: AMQPConnection.Options = .init(), reconnect: Backoff = Backoff()) {
            self.endpoint = endpoint
            self.connection = connection
            self.reconnect = reconnect
        }
    }

    private struct State {
        var connection: AMQPConnection?
        var consecutiveFailures = 0
        var retryAt: ContinuousClock.Instant?
        var isShutDown = false
    }

    private let configuration: Configuration
    private let setUp: @Sendable (AMQPConnection) throws -> Void
    private let logger: Logger
    private let thread: NIOThreadPool
    private let state = NIOLockedValueBox(State())

    /// Creates the client; it connects on first use.
    public init(
        configuration: Configuration, logger: Logger,
        setUp: @escaping @Sendable (AMQPConnection) throws -> Void = { _ in }
    ) {
        self.configuration = configuration
        self.logger = logger
        self.setUp = setUp
        self.thread = NIOThreadPool(numberOfThreads: 1)
        thread.start()
    }

    /// True while a connection is open (it may still fail on its next use).
    public var isConnected: Bool {
        state.withLockedValue { $0.connection != nil }
    }

    /// Runs `body` with the connection on the client's thread, connecting first when needed.
    public func withConnection<T: Sendable>(_ body: @escaping @Sendable (AMQPConnection) throws -> T) async throws -> T {
        let (isShutDown, retryAt) = state.withLockedValue { ($0.isShutDown, $0.connection == nil ? $0.retryAt : nil) }
        if isShutDown { throw AMQPError(.closed, "the client was shut down") }
        if let retryAt {
            try await Task.sleep(until: retryAt, clock: .continuous)
        }
        return try await thread.runIfActive { try self.runOnThread(body) }
    }

    /// Closes the connection and stops the thread; later calls throw `closed`.
    public func shutdown() async {
        state.withLockedValue { $0.isShutDown = true }
        // The close runs on the client's thread, after any call still running there.
        _ = try? await thread.runIfActive {
            let connection = self.state.withLockedValue { state in
                defer { state.connection = nil }
                return state.connection
            }
            connection?.close()
        }
        try? await thread.shutdownGracefully()
    }

    private func runOnThread<T>(_ body: (AMQPConnection) throws -> T) throws -> T {
        let connection = try currentConnection()
        do {
            return try body(connection)
        } catch let error as AMQPError where connection.isBroken {
            drop(connection, after: error)
            throw error
        }
    }

    private func currentConnection() throws -> AMQPConnection {
        let (existing, isShutDown) = state.withLockedValue { ($0.connection, $0.isShutDown) }
        if isShutDown { throw AMQPError(.closed, "the client was shut down") }
        if let existing { return existing }
        let endpoint = configuration.endpoint
        do {
            let connection = try AMQPConnection.open(endpoint, options: configuration.connection)
            do {
                try setUp(connection)
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
