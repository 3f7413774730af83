import CRabbitMQ
import NIOConcurrencyHelpers
import Pooling

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#else
    import Darwin
#endif

/// One rabbitmq-c connection with one channel (number 1): opening it (socket, login, channel),
/// closing it, and reading frames and errors. Declarations, publishing and consuming are in the
/// extensions beside this file. Every method blocks: call them only from the thread `AMQPClient`
/// runs them on.
///
/// `@unchecked Sendable` because rabbitmq-c connections must never be used by two threads at once:
/// `AMQPClient` runs every call on its single thread. After any error the connection is `isBroken`
/// and must be closed; the client then opens a new one.
final class AMQPConnection: @unchecked Sendable {
    typealias Options = AMQPClient.ConnectionOptions

    private static let lastID = NIOLockedValueBox<UInt64>(0)

    /// Tells this connection from every other of the process, so that a delivery of an earlier
    /// connection is never acknowledged on a later one.
    let id: UInt64
    let state: amqp_connection_state_t
    let channel: amqp_channel_t = 1
    let options: Options
    /// The delivery tag the broker gives the next publish in confirm mode (it counts from 1).
    var nextPublishTag: UInt64 = 1
    var confirmsEnabled = false
    private var isClosed = false
    /// True after any failure: the connection's state is unknown and it must not be used again.
    private(set) var isBroken = false

    private init(state: amqp_connection_state_t, options: Options) {
        self.id = Self.lastID.withLockedValue {
            $0 += 1
            return $0
        }
        self.state = state
        self.options = options
    }

    deinit {
        close()
    }

    /// Connects, logs in and opens channel 1 (blocking).
    static func open(_ endpoint: AMQPEndpoint, options: Options = Options()) throws -> AMQPConnection {
        guard let state = amqp_new_connection() else {
            throw AMQPError(code: .connectionFailed, serverMessage: "rabbitmq-c could not allocate a connection")
        }
        let connection = AMQPConnection(state: state, options: options)
        connection.isBroken = true  // until the channel is open; close() then skips the goodbye
        guard let socket = amqp_tcp_socket_new(state) else {
            throw AMQPError(code: .connectionFailed, serverMessage: "rabbitmq-c could not allocate a socket")
        }
        var connectTimeout = timeval(options.connectTimeout)
        let opened = amqp_socket_open_noblock(socket, endpoint.host, Int32(endpoint.port), &connectTimeout)
        guard opened == AMQP_STATUS_OK.rawValue else {
            throw AMQPError(
                code: .connectionFailed, serverMessage: "\(endpoint.host):\(endpoint.port): \(Self.describe(status: opened))")
        }
        var rpcTimeout = timeval(options.rpcTimeout)
        amqp_set_rpc_timeout(state, &rpcTimeout)
        let heartbeatSeconds = Int32(clamping: options.heartbeat.components.seconds)
        let login = crabbitmq_login_plain(
            state, endpoint.virtualHost, 131_072, heartbeatSeconds, endpoint.user, endpoint.password
        )
        do {
            try connection.check(login, "login")
        } catch let error as AMQPError where error.code == .closedByBroker || error.code == .connectionLost {
            // RabbitMQ answers bad credentials by closing the socket during the handshake.
            throw AMQPError(
                code: .loginFailed,
                serverMessage: "login to virtual host \(endpoint.virtualHost) as \(endpoint.user) failed: "
                    + (error.serverMessage ?? "\(error.code)")
            )
        }
        amqp_channel_open(state, 1)
        try connection.check(amqp_get_rpc_reply(state), "channel.open")
        connection.isBroken = false
        return connection
    }

    /// Lets rabbitmq-c send a due heartbeat and notice a broker that went silent: it services
    /// heartbeats only inside library calls, so an idle owner calls this now and then.
    func serviceHeartbeat() throws {
        try usable()
        _ = try nextMethodFrame(timeout: .zero)
    }

    /// Closes the channel and the connection (politely when it is still healthy) and frees it.
    func close() {
        guard !isClosed else { return }
        isClosed = true
        if !isBroken {
            amqp_channel_close(state, channel, AMQP_REPLY_SUCCESS)
            amqp_connection_close(state, AMQP_REPLY_SUCCESS)
        }
        amqp_destroy_connection(state)
    }

    // MARK: - Frames and errors

    /// Reads one frame within `timeout`; returns its method when it is a method frame of our channel,
    /// nil on timeout or for other frames; throws when the broker closes the channel or connection.
    func nextMethodFrame(timeout: Duration) throws -> amqp_method_t? {
        var frame = amqp_frame_t()
        var wait = timeval(timeout)
        let status = amqp_simple_wait_frame_noblock(state, &frame, &wait)
        if status == AMQP_STATUS_TIMEOUT.rawValue { return nil }
        guard status == AMQP_STATUS_OK.rawValue else {
            let code: AMQPError.Code = status == AMQP_STATUS_HEARTBEAT_TIMEOUT.rawValue ? .timeout : .connectionLost
            throw fail(code, "reading a frame: \(Self.describe(status: status))")
        }
        guard frame.frame_type == AMQP_FRAME_METHOD else { return nil }
        let method = frame.payload.method
        switch method.id {
        case CRABBITMQ_CHANNEL_CLOSE, CRABBITMQ_CONNECTION_CLOSE:
            throw closedByBroker(method)
        case CRABBITMQ_BASIC_RETURN:
            // Only mandatory publishes come back, and this client sends none; read and drop it so
            // the frames that follow it (header, body) do not look like methods.
            var message = amqp_message_t()
            let reply = amqp_read_message(state, frame.channel, &message, 0)
            // On failure rabbitmq-c already freed what it had read: destroying it again would
            // free it twice.
            try check(reply, "basic.return")
            amqp_destroy_message(&message)
            return nil
        default:
            return method
        }
    }

    /// Throws the error a reply of a synchronous method carries; `what` names the method.
    func check(_ reply: amqp_rpc_reply_t, _ what: String) throws {
        switch reply.reply_type {
        case AMQP_RESPONSE_NORMAL:
            return
        case AMQP_RESPONSE_SERVER_EXCEPTION:
            throw closedByBroker(reply.reply)
        case AMQP_RESPONSE_LIBRARY_EXCEPTION:
            let code: AMQPError.Code =
                reply.library_error == AMQP_STATUS_TIMEOUT.rawValue
                    || reply.library_error == AMQP_STATUS_HEARTBEAT_TIMEOUT.rawValue ? .timeout : .connectionLost
            throw fail(code, "\(what): \(Self.describe(status: reply.library_error))")
        default:
            throw fail(.connectionLost, "\(what): no reply")
        }
    }

    private func closedByBroker(_ method: amqp_method_t) -> AMQPError {
        let (code, text): (UInt16, amqp_bytes_t)
        if method.id == CRABBITMQ_CONNECTION_CLOSE {
            let close = method.decoded.assumingMemoryBound(to: amqp_connection_close_t.self).pointee
            (code, text) = (close.reply_code, close.reply_text)
        } else {
            let close = method.decoded.assumingMemoryBound(to: amqp_channel_close_t.self).pointee
            (code, text) = (close.reply_code, close.reply_text)
        }
        return fail(.closedByBroker, CMemory.string(text), replyCode: code)
    }

    /// Marks the connection broken and returns the error to throw.
    func fail(_ code: AMQPError.Code, _ message: String, replyCode: UInt16? = nil) -> AMQPError {
        isBroken = true
        return AMQPError(code: code, serverMessage: message, replyCode: replyCode)
    }

    /// Throws `closed` unless the connection can take another call.
    func usable() throws {
        guard !isClosed, !isBroken else { throw AMQPError(code: .closed, serverMessage: "the connection is closed") }
    }

    static func describe(status: Int32) -> String {
        amqp_error_string2(status).map { String(cString: $0) } ?? "status \(status)"
    }
}

extension timeval {
    init(_ duration: Duration) {
        let (seconds, microseconds) = duration.timevalFields
        self.init(tv_sec: seconds, tv_usec: microseconds)
    }
}
