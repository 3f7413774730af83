/// Consuming with manual acknowledgements.
///
/// A consuming client starts its consumer in its set-up (`AMQPTopology.consume`), so every new
/// connection consumes again, then takes deliveries one at a time and acknowledges each. A
/// delivery not acknowledged before its connection closed goes back to the queue (redelivered).
/// Consume on a client of its own: a publish waits for its confirms on the same channel and
/// would skip the deliveries that arrive meanwhile.
extension AMQPTopology {
    /// Starts consuming `queue` with manual acknowledgements, with at most `prefetch` deliveries
    /// unacknowledged at once.
    public func consume(_ queue: String, prefetch: UInt16 = 100) throws {
        try connection.consume(queue, prefetch: prefetch, autoAck: false)
    }

    /// Starts consuming `queue` without acknowledgements: the broker forgets each delivery as it
    /// sends it (for deliveries that may be lost, such as hints).
    public func consumeWithoutAcknowledgements(_ queue: String) throws {
        try connection.consume(queue, prefetch: 0, autoAck: true)
    }
}

extension AMQPClient {
    /// The next delivery of the consumed queue, or nil when none arrives within `timeout`.
    public func nextDelivery(timeout: Duration) async throws -> AMQPDelivery? {
        try await withConnection { try $0.nextDelivery(timeout: timeout) }
    }

    /// Acknowledges `delivery`. When the connection it came on has closed since, this does
    /// nothing: the broker already put it back in the queue.
    public func ack(_ delivery: AMQPDelivery) async throws {
        try await settle(delivery, .ack)
    }

    /// Rejects `delivery` (see `ack(_:)` for a closed connection): `requeue` puts it back in its
    /// queue, otherwise the broker sends it to the queue's dead-letter exchange.
    public func reject(_ delivery: AMQPDelivery, requeue: Bool) async throws {
        try await settle(delivery, .reject(requeue: requeue))
    }

    private func settle(_ delivery: AMQPDelivery, _ settlement: AMQPConnection.Settlement) async throws {
        _ = try await withOpenConnection { connection in
            guard connection.id == delivery.connectionID else { return }
            try connection.settle(delivery.deliveryTag, settlement)
        }
    }
}
