import CRabbitMQ
import Pooling

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#else
    import Darwin
#endif

/// Consuming with manual acknowledgements.
extension AMQPConnection {
    /// Starts consuming `queue`: with manual acknowledgements and at most `prefetch`
    /// unacknowledged, or (`autoAck`) with every delivery acknowledged as the broker sends it.
    func consume(_ queue: String, prefetch: UInt16, autoAck: Bool) throws {
        try usable()
        if !autoAck {
            amqp_basic_qos(state, channel, 0, prefetch, 0)
            try check(amqp_get_rpc_reply(state), "basic.qos")
        }
        let arena = CMemoryArena()
        amqp_basic_consume(state, channel, arena.bytes(queue), arena.bytes(""), 0, autoAck ? 1 : 0, 0, arena.table([:]))
        try check(amqp_get_rpc_reply(state), "basic.consume \(queue)")
    }

    /// The next delivery of the consumed queue, or nil when none arrives within `timeout`.
    func nextDelivery(timeout: Duration) throws -> AMQPDelivery? {
        try usable()
        amqp_maybe_release_buffers(state)
        var envelope = amqp_envelope_t()
        var wait = timeval(timeout)
        let reply = amqp_consume_message(state, &envelope, &wait, 0)
        if reply.reply_type == AMQP_RESPONSE_NORMAL {
            defer { amqp_destroy_envelope(&envelope) }
            let message = envelope.message
            return AMQPDelivery(
                exchange: CMemory.string(envelope.exchange), routingKey: CMemory.string(envelope.routing_key),
                body: CMemory.bytes(message.body), properties: CMemory.properties(message.properties),
                deliveryTag: envelope.delivery_tag, redelivered: envelope.redelivered != 0, connectionID: id
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

    /// How a consumer settles a delivery.
    enum Settlement {
        case ack
        /// Back into its queue with `requeue`, otherwise to the queue's dead-letter exchange (or
        /// dropped, when it has none).
        case reject(requeue: Bool)
    }

    /// Acknowledges or rejects one delivery.
    func settle(_ deliveryTag: UInt64, _ settlement: Settlement) throws {
        try usable()
        let (status, method) =
            switch settlement {
            case .ack: (amqp_basic_ack(state, channel, deliveryTag, 0), "basic.ack")
            case .reject(let requeue): (amqp_basic_reject(state, channel, deliveryTag, requeue ? 1 : 0), "basic.reject")
            }
        guard status == AMQP_STATUS_OK.rawValue else {
            throw fail(.connectionLost, "\(method): \(Self.describe(status: status))")
        }
    }
}
