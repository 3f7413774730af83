import CRabbitMQ

/// Declarations: exchanges, queues, bindings. Each is a synchronous method, bounded by
/// `Options.rpcTimeout`.
extension AMQPConnection {
    /// Declares an exchange (idempotent when it exists with the same settings; otherwise the broker
    /// closes the channel with 406 and this throws `closedByBroker`).
    func declareExchange(_ name: String, type: String, durable: Bool, arguments: [String: AMQPArgument]) throws {
        let arena = CMemoryArena()
        amqp_exchange_declare(
            state, channel, arena.bytes(name), arena.bytes(type), 0, durable ? 1 : 0, 0, 0, arena.table(arguments)
        )
        try check(amqp_get_rpc_reply(state), "exchange.declare \(name)")
    }

    /// Declares a queue and returns its name (the broker names it when `name` is empty). A passive
    /// declaration only checks that the queue exists (404 otherwise) and ignores the other settings.
    func declareQueue(
        _ name: String, passive: Bool, durable: Bool, exclusive: Bool, autoDelete: Bool,
        arguments: [String: AMQPArgument]
    ) throws -> String {
        let arena = CMemoryArena()
        let declared = amqp_queue_declare(
            state, channel, arena.bytes(name), passive ? 1 : 0, durable ? 1 : 0, exclusive ? 1 : 0, autoDelete ? 1 : 0,
            arena.table(arguments)
        )
        try check(amqp_get_rpc_reply(state), "queue.declare \(name)")
        return declared.map { CMemory.string($0.pointee.queue) } ?? name
    }

    /// Binds a queue to an exchange with a routing key (or pattern, for topic exchanges).
    func bindQueue(_ queue: String, exchange: String, routingKey: String) throws {
        let arena = CMemoryArena()
        amqp_queue_bind(state, channel, arena.bytes(queue), arena.bytes(exchange), arena.bytes(routingKey), arena.table([:]))
        try check(amqp_get_rpc_reply(state), "queue.bind \(queue) to \(exchange)")
    }

    /// Removes every message from a queue.
    func purgeQueue(_ name: String) throws {
        let arena = CMemoryArena()
        amqp_queue_purge(state, channel, arena.bytes(name))
        try check(amqp_get_rpc_reply(state), "queue.purge \(name)")
    }

    /// Deletes a queue and the messages in it.
    func deleteQueue(_ name: String) throws {
        let arena = CMemoryArena()
        amqp_queue_delete(state, channel, arena.bytes(name), 0, 0)
        try check(amqp_get_rpc_reply(state), "queue.delete \(name)")
    }

    /// Deletes an exchange.
    func deleteExchange(_ name: String) throws {
        let arena = CMemoryArena()
        amqp_exchange_delete(state, channel, arena.bytes(name), 0)
        try check(amqp_get_rpc_reply(state), "exchange.delete \(name)")
    }
}
