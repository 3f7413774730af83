/// The set-up of the client's channel: exchanges, queues, bindings, confirm mode, consuming.
///
/// A client hands one to its `setUp` closure on every new connection, and to `withTopology`.
/// It is valid only inside the closure that received it; each method is a synchronous AMQP method
/// that blocks on the client's thread (at most `ConnectionOptions.rpcTimeout`). When the broker
/// refuses one it closes the channel: the method throws `closedByBroker` and the client reconnects.
public struct AMQPTopology {
    let connection: AMQPConnection

    /// Declares an exchange (idempotent when it exists with the same settings; otherwise the broker
    /// refuses with 406 PRECONDITION_FAILED).
    public func declareExchange(
        _ name: String, type: String, durable: Bool = true, arguments: [String: AMQPArgument] = [:]
    ) throws {
        try connection.declareExchange(name, type: type, durable: durable, arguments: arguments)
    }

    /// Declares a queue and returns its name (the broker names it when `name` is empty). When it
    /// exists with other settings the broker refuses with 406 PRECONDITION_FAILED.
    @discardableResult
    public func declareQueue(
        _ name: String, durable: Bool = true, exclusive: Bool = false, autoDelete: Bool = false,
        arguments: [String: AMQPArgument] = [:]
    ) throws -> String {
        try connection.declareQueue(
            name, passive: false, durable: durable, exclusive: exclusive, autoDelete: autoDelete, arguments: arguments)
    }

    /// Checks that a queue exists, whatever its settings; the broker refuses with 404 NOT_FOUND
    /// when it does not.
    public func declareQueuePassively(_ name: String) throws {
        _ = try connection.declareQueue(
            name, passive: true, durable: false, exclusive: false, autoDelete: false, arguments: [:])
    }

    /// Binds a queue to an exchange with a routing key (or pattern, for topic exchanges).
    public func bindQueue(_ queue: String, exchange: String, routingKey: String) throws {
        try connection.bindQueue(queue, exchange: exchange, routingKey: routingKey)
    }

    /// Removes every message from a queue.
    public func purgeQueue(_ name: String) throws {
        try connection.purgeQueue(name)
    }

    /// Deletes a queue and the messages in it.
    public func deleteQueue(_ name: String) throws {
        try connection.deleteQueue(name)
    }

    /// Deletes an exchange.
    public func deleteExchange(_ name: String) throws {
        try connection.deleteExchange(name)
    }

    /// Puts the channel in confirm mode now rather than at the first publish.
    public func enableConfirms() throws {
        try connection.enableConfirms()
    }
}

extension AMQPClient {
    /// Runs `body` with the set-up of the client's channel, on the client's thread, connecting
    /// first when needed: for declarations outside the set-up, such as deleting a queue.
    public func withTopology<T: Sendable>(_ body: @escaping @Sendable (AMQPTopology) throws -> T) async throws -> T {
        try await withConnection { try body(AMQPTopology(connection: $0)) }
    }
}
