import CRabbitMQ
import Dispatch
import NIOConcurrencyHelpers

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#else
    import Darwin
#endif

/// One rabbitmq-c connection with one channel (number 1). Every method blocks: call them only from
/// the thread `AMQPClient` runs them on.
///
/// `@unchecked Sendable` because rabbitmq-c connections must never be used by two threads at once:
/// `AMQPClient` runs every call on its single thread. After any error the connection is `isBroken`
/// and must be closed; the client then opens a new one.
public final class AMQPConnection: @unchecked Sendable {
    /// Timeouts and limits of a connection.
    public struct Options: Sendable {
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

    private let state: amqp_connection_state_t
    private let channel: amqp_channel_t = 1
    private let options: Options
    /// The delivery tag the broker gives the next publish in confirm mode (it counts from 1).
    private var nextPublishTag: UInt64 = 1
    private var confirmsEnabled = false
    private var isClosed = false
    /// True after any failure: the connection's state is unknown and it must not be used again.
    public private(set) var isBroken = false

    private init(state: amqp_connection_state_t, options: Options) {
        self.state = state
        self.options = options
    }

    deinit {
        close()
    }

    /// Connects, logs in and opens channel 1 (blocking).
    public static func open(_ endpoint: AMQPEndpoint, options: Options = Options()) throws -> AMQPConnection {
        guard let state = amqp_new_connection() else {
            throw AMQPError(.connectionFailed, "rabbitmq-c could not allocate a connection")
        }
        let connection = AMQPConnection(state: state, options: options)
        connection.isBroken = true  // until the channel is open; close() then skips the goodbye
        guard let socket = amqp_tcp_socket_new(state) else {
            throw AMQPError(.connectionFailed, "rabbitmq-c could not allocate a socket")
        }
        var connectTimeout = timeval(options.connectTimeout)
        let opened = amqp_socket_open_noblock(socket, endpoint.host, Int32(endpoint.port), &connectTimeout)
        guard opened == AMQP_STATUS_OK.rawValue else {
            throw AMQPError(.connectionFailed, "\(endpoint.host):\(endpoint.port): \(Self.describe(status: opened))")
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
                .loginFailed, "login to virtual host \(endpoint.virtualHost) as \(endpoint.user) failed: \(error.message)")
        }
        amqp_channel_open(state, 1)
        try connection.check(amqp_get_rpc_reply(state), "channel.open")
        connection.isBroken = false
        return connection
    }

    /// Declares an exchange (idempotent when it exists with the same settings; otherwise the broker
    /// closes the channel with 406 and this throws `closedByBroker`).
    public func declareExchange(
        _ name: String, type: String, durable: Bool = true, arguments: [String: AMQPArgument] = [:]
    ) throws {
        let arena = CMemoryArena()
        amqp_exchange_declare(
            state, channel, arena.bytes(name), arena.bytes(type), 0, durable ? 1 : 0, 0, 0, arena.table(arguments)
        )
        try check(amqp_get_rpc_reply(state), "exchange.declare \(name)")
    }

    /// Declares a queue and returns its name (the broker names it when `name` is empty).
    @discardableResult
    public func declareQueue(
        _ name: String, durable: Bool = true, exclusive: Bool = false, autoDelete: Bool = false,
        arguments: [String: AMQPArgument] = [:]
    ) throws -> String {
        let arena = CMemoryArena()
        let declared = amqp_queue_declare(
            state, channel, arena.bytes(name), 0, durable ? 1 : 0, exclusive ? 1 : 0, autoDelete ? 1 : 0,
            arena.table(arguments)
        )
        try check(amqp_get_rpc_reply(state), "queue.declare \(name)")
        return declared.map { Self.string($0.pointee.queue) } ?? name
    }

    /// Binds a queue to an exchange with a routing key (or pattern, for topic exchanges).
    public func bindQueue(_ queue: String, exchange: String, routingKey: String) throws {
        let arena = CMemoryArena()
        amqp_queue_bind(state, channel, arena.bytes(queue), arena.bytes(exchange), arena.bytes(routingKey), arena.table([:]))
        try check(amqp_get_rpc_reply(state), "queue.bind \(queue) to \(exchange)")
    }

    /// Removes every message from a queue.
    public func purgeQueue(_ name: String) throws {
        let arena = CMemoryArena()
        amqp_queue_purge(state, channel, arena.bytes(name))
        try check(amqp_get_rpc_reply(state), "queue.purge \(name)")
    }

    /// Deletes a queue and the messages in it.
    public func deleteQueue(_ name: String) throws {
        let arena = CMemoryArena()
        amqp_queue_delete(state, channel, arena.bytes(name), 0, 0)
        try check(amqp_get_rpc_reply(state), "queue.delete \(name)")
    }

    /// Deletes an exchange.
    public func deleteExchange(_ name: String) throws {
        let arena = CMemoryArena()
        amqp_exchange_delete(state, channel, arena.bytes(name), 0)
        try check(amqp_get_rpc_reply(state), "exchange.delete \(name)")
    }

    /// Puts the channel in confirm mode: the broker then acks or nacks every publish.
    public func enableConfirms() throws {
        guard !confirmsEnabled else { return }
        amqp_confirm_select(state, channel)
        try check(amqp_get_rpc_reply(state), "confirm.select")
        confirmsEnabled = true
        nextPublishTag = 1
    }

    /// Publishes `messages` in order and waits for the broker's confirm of each (at most
    /// `Options.maxInFlight` at once); returns one confirmation per message, in the same order.
    ///
    /// Throws (and the connection is broken) when the connection fails or the confirms do not all
    /// arrive within `timeout`: then the caller does not know which messages the broker took and
    /// must publish them all again (at-least-once).
    public func publish(_ messages: [AMQPOutgoingMessage], timeout: Duration) throws -> [AMQPConfirmation] {
        guard messages.count <= options.maxInFlight else {
            throw AMQPError(.tooManyInFlight, "\(messages.count) messages in one batch; the bound is \(options.maxInFlight)")
        }
        try usable()
        try enableConfirms()
        return try withDeadline(timeout) { try publishAndConfirm(messages, timeout: timeout) }
    }

    private func publishAndConfirm(_ messages: [AMQPOutgoingMessage], timeout: Duration) throws -> [AMQPConfirmation] {
        let firstTag = nextPublishTag
        for message in messages {
            let arena = CMemoryArena()
            var properties = arena.properties(message.properties)
            let status = amqp_basic_publish(
                state, channel, arena.bytes(message.exchange), arena.bytes(message.routingKey), 0, 0, &properties,
                arena.bytes(message.body)
            )
            guard status == AMQP_STATUS_OK.rawValue else {
                throw fail(.connectionLost, "basic.publish: \(Self.describe(status: status))")
            }
            nextPublishTag += 1
        }
        var outcomes = [AMQPConfirmation?](repeating: nil, count: messages.count)
        var pending = messages.count
        let deadline = ContinuousClock.now + timeout
        while pending > 0 {
            let remaining = deadline - .now
            guard remaining > .zero else {
                throw fail(.timeout, "\(pending) of \(messages.count) publishes unconfirmed after \(timeout)")
            }
            guard let frame = try nextMethodFrame(timeout: remaining) else { continue }
            let confirmation: AMQPConfirmation
            let tag: UInt64
            let multiple: Bool
            switch frame.id {
            case CRABBITMQ_BASIC_ACK:
                let ack = frame.decoded.assumingMemoryBound(to: amqp_basic_ack_t.self).pointee
                (confirmation, tag, multiple) = (.ack, ack.delivery_tag, ack.multiple != 0)
            case CRABBITMQ_BASIC_NACK:
                let nack = frame.decoded.assumingMemoryBound(to: amqp_basic_nack_t.self).pointee
                (confirmation, tag, multiple) = (.nack, nack.delivery_tag, nack.multiple != 0)
            default:
                continue
            }
            for index in outcomes.indices where outcomes[index] == nil {
                let indexTag = firstTag + UInt64(index)
                if indexTag == tag || (multiple && indexTag < tag) {
                    outcomes[index] = confirmation
                    pending -= 1
                }
            }
        }
        amqp_maybe_release_buffers(state)
        return outcomes.map { $0! }
    }

    /// Runs `body`, shutting the socket down if it is still running after `timeout`.
    ///
    /// rabbitmq-c writes publishes without a deadline: a broker that stops reading (a memory or
    /// disk alarm blocks publishers) would block them forever, and with them the caller's thread.
    /// The shutdown fails the blocked write, and this throws `timeout`.
    private func withDeadline<T>(_ timeout: Duration, _ body: () throws -> T) throws -> T {
        let socket = amqp_get_sockfd(state)
        let armed = NIOLockedValueBox(true)
        let fired = NIOLockedValueBox(false)
        let watchdog = DispatchWorkItem {
            armed.withLockedValue { isArmed in
                guard isArmed else { return }
                fired.withLockedValue { $0 = true }
                _ = shutdown(socket, Int32(SHUT_RDWR))
            }
        }
        let (seconds, attoseconds) = timeout.components
        let nanoseconds = Int(seconds) * 1_000_000_000 + Int(attoseconds / 1_000_000_000)
        DispatchQueue.global().asyncAfter(deadline: .now() + .nanoseconds(nanoseconds), execute: watchdog)
        defer {
            armed.withLockedValue { $0 = false }
            watchdog.cancel()
        }
        do {
            return try body()
        } catch let error as AMQPError where fired.withLockedValue({ $0 }) {
            throw fail(.timeout, "the broker took no publish or confirm for \(timeout) (\(error.message))")
        }
    }

    /// Starts consuming `queue` with manual acknowledgements and at most `prefetch` unacknowledged.
    public func consume(_ queue: String, prefetch: UInt16 = 100) throws {
        try usable()
        amqp_basic_qos(state, channel, 0, prefetch, 0)
        try check(amqp_get_rpc_reply(state), "basic.qos")
        let arena = CMemoryArena()
        amqp_basic_consume(state, channel, arena.bytes(queue), arena.bytes(""), 0, 0, 0, arena.table([:]))
        try check(amqp_get_rpc_reply(state), "basic.consume \(queue)")
    }

    /// The next delivery of the consumed queue, or nil when none arrives within `timeout`.
    public func nextDelivery(timeout: Duration) throws -> AMQPDelivery? {
        try usable()
        amqp_maybe_release_buffers(state)
        var envelope = amqp_envelope_t()
        var wait = timeval(timeout)
        let reply = amqp_consume_message(state, &envelope, &wait, 0)
        if reply.reply_type == AMQP_RESPONSE_NORMAL {
            defer { amqp_destroy_envelope(&envelope) }
            let message = envelope.message
            return AMQPDelivery(
                exchange: Self.string(envelope.exchange), routingKey: Self.string(envelope.routing_key),
                body: Self.bytes(message.body), properties: Self.properties(message.properties),
                deliveryTag: envelope.delivery_tag, redelivered: envelope.redelivered != 0
            )
        }
        if reply.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION {
            if reply.library_error == AMQP_STATUS_TIMEOUT.rawValue { return nil }
            if reply.library_error == AMQP_STATUS_UNEXPECTED_STATE.rawValue {
                // A frame other than a delivery (a close is turned into an error by nextMethodFrame).
                _ = try nextMethodFrame(timeout: .zero)
                return nil
            }
        }
        try check(reply, "basic.consume")
        return nil
    }

    /// Acknowledges one delivery.
    public func ack(_ deliveryTag: UInt64) throws {
        try usable()
        let status = amqp_basic_ack(state, channel, deliveryTag, 0)
        guard status == AMQP_STATUS_OK.rawValue else {
            throw fail(.connectionLost, "basic.ack: \(Self.describe(status: status))")
        }
    }

    /// Lets rabbitmq-c send a due heartbeat and notice a broker that went silent: it services
    /// heartbeats only inside library calls, so an idle owner calls this now and then.
    public func serviceHeartbeat() throws {
        try usable()
        _ = try nextMethodFrame(timeout: .zero)
    }

    /// Closes the channel and the connection (politely when it is still healthy) and frees it.
    public func close() {
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
    private func nextMethodFrame(timeout: Duration) throws -> amqp_method_t? {
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

    private func check(_ reply: amqp_rpc_reply_t, _ what: String) throws {
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
        return fail(.closedByBroker, Self.string(text), replyCode: code)
    }

    private func fail(_ code: AMQPError.Code, _ message: String, replyCode: UInt16? = nil) -> AMQPError {
        isBroken = true
        return AMQPError(code, message, replyCode: replyCode)
    }

    private func usable() throws {
        guard !isClosed, !isBroken else { throw AMQPError(.closed, "the connection is closed") }
    }

    // MARK: - Conversions

    private static func describe(status: Int32) -> String {
        amqp_error_string2(status).map { String(cString: $0) } ?? "status \(status)"
    }

    static func bytes(_ bytes: amqp_bytes_t) -> [UInt8] {
        guard let start = bytes.bytes, bytes.len > 0 else { return [] }
        return Array(UnsafeRawBufferPointer(start: start, count: bytes.len))
    }

    static func string(_ bytes: amqp_bytes_t) -> String {
        String(decoding: Self.bytes(bytes), as: UTF8.self)
    }

    private static func properties(_ raw: amqp_basic_properties_t) -> AMQPProperties {
        func has(_ flag: amqp_flags_t) -> Bool { raw._flags & flag != 0 }
        return AMQPProperties(
            contentType: has(CRABBITMQ_CONTENT_TYPE_FLAG) ? string(raw.content_type) : nil,
            persistent: has(CRABBITMQ_DELIVERY_MODE_FLAG) && raw.delivery_mode == 2,
            messageID: has(CRABBITMQ_MESSAGE_ID_FLAG) ? string(raw.message_id) : nil,
            type: has(CRABBITMQ_TYPE_FLAG) ? string(raw.type) : nil,
            timestamp: has(CRABBITMQ_TIMESTAMP_FLAG) ? Int64(raw.timestamp) : nil,
            correlationID: has(CRABBITMQ_CORRELATION_ID_FLAG) ? string(raw.correlation_id) : nil
        )
    }
}

extension timeval {
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        self.init(tv_sec: Int(max(seconds, 0)), tv_usec: Int(max(attoseconds, 0) / 1_000_000_000_000))
    }
}

/// C copies of Swift strings, bytes and tables for one call, freed when the arena goes away:
/// `amqp_bytes_t` does not copy, so what it points to must outlive the call.
private final class CMemoryArena {
    private var allocations: [UnsafeMutableRawPointer] = []

    deinit {
        allocations.forEach { free($0) }
    }

    func bytes(_ string: String) -> amqp_bytes_t {
        bytes(Array(string.utf8))
    }

    func bytes(_ bytes: [UInt8]) -> amqp_bytes_t {
        guard !bytes.isEmpty, let memory = malloc(bytes.count) else { return amqp_bytes_t(len: 0, bytes: nil) }
        allocations.append(memory)
        bytes.withUnsafeBytes { memory.copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
        return amqp_bytes_t(len: bytes.count, bytes: memory)
    }

    func table(_ arguments: [String: AMQPArgument]) -> amqp_table_t {
        guard !arguments.isEmpty,
            let memory = malloc(MemoryLayout<amqp_table_entry_t>.stride * arguments.count)
        else { return amqp_table_t(num_entries: 0, entries: nil) }
        allocations.append(memory)
        let entries = memory.bindMemory(to: amqp_table_entry_t.self, capacity: arguments.count)
        for (index, (key, argument)) in arguments.sorted(by: { $0.key < $1.key }).enumerated() {
            var entry = amqp_table_entry_t()
            entry.key = bytes(key)
            switch argument {
            case .string(let value):
                entry.value.kind = UInt8(AMQP_FIELD_KIND_UTF8.rawValue)
                entry.value.value.bytes = bytes(value)
            case .int(let value):
                entry.value.kind = UInt8(AMQP_FIELD_KIND_I64.rawValue)
                entry.value.value.i64 = value
            }
            (entries + index).initialize(to: entry)
        }
        return amqp_table_t(num_entries: Int32(arguments.count), entries: entries)
    }

    func properties(_ properties: AMQPProperties) -> amqp_basic_properties_t {
        var raw = amqp_basic_properties_t()
        raw._flags = CRABBITMQ_DELIVERY_MODE_FLAG
        raw.delivery_mode = properties.persistent ? 2 : 1
        if let contentType = properties.contentType {
            raw._flags |= CRABBITMQ_CONTENT_TYPE_FLAG
            raw.content_type = bytes(contentType)
        }
        if let messageID = properties.messageID {
            raw._flags |= CRABBITMQ_MESSAGE_ID_FLAG
            raw.message_id = bytes(messageID)
        }
        if let type = properties.type {
            raw._flags |= CRABBITMQ_TYPE_FLAG
            raw.type = bytes(type)
        }
        if let timestamp = properties.timestamp {
            raw._flags |= CRABBITMQ_TIMESTAMP_FLAG
            raw.timestamp = UInt64(max(timestamp, 0))
        }
        if let correlationID = properties.correlationID {
            raw._flags |= CRABBITMQ_CORRELATION_ID_FLAG
            raw.correlation_id = bytes(correlationID)
        }
        return raw
    }
}
