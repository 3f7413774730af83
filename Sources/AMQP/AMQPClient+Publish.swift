/// Publishing with publisher confirms.
extension AMQPClient {
    /// Publishes `messages` in order and waits for the broker's confirm of each (at most
    /// `ConnectionOptions.maxInFlight` in one call, else `tooManyInFlight`); returns one
    /// confirmation per message, in the same order.
    ///
    /// Throws when the connection fails or the confirms do not all arrive within `timeout`: then
    /// the caller does not know which messages the broker took and must publish them all again
    /// (at-least-once). The client reconnects on the next call.
    public func publish(_ messages: [AMQPOutgoingMessage], timeout: Duration) async throws -> [AMQPConfirmation] {
        try await withConnection { try $0.publish(messages, timeout: timeout) }
    }

    /// Lets rabbitmq-c send a due heartbeat and notice a broker that went silent: it services
    /// heartbeats only inside library calls, so an idle owner calls this now and then. Throws when
    /// the broker cannot be reached.
    public func serviceHeartbeat() async throws {
        try await withConnection { try $0.serviceHeartbeat() }
    }
}
