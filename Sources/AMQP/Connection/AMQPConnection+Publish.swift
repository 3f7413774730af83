import CRabbitMQ
import Dispatch
import NIOConcurrencyHelpers
import Pooling

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#else
    import Darwin
#endif

/// Publishing with publisher confirms.
extension AMQPConnection {
    /// Puts the channel in confirm mode: the broker then acks or nacks every publish.
    func enableConfirms() throws {
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
    func publish(_ messages: [AMQPOutgoingMessage], timeout: Duration) throws -> [AMQPConfirmation] {
        guard messages.count <= options.maxInFlight else {
            throw AMQPError(
                code: .tooManyInFlight,
                serverMessage: "\(messages.count) messages in one batch; the bound is \(options.maxInFlight)")
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
        let nanoseconds = Int(timeout.totalNanoseconds)
        DispatchQueue.global().asyncAfter(deadline: .now() + .nanoseconds(nanoseconds), execute: watchdog)
        defer {
            armed.withLockedValue { $0 = false }
            watchdog.cancel()
        }
        do {
            return try body()
        } catch let error as AMQPError where fired.withLockedValue({ $0 }) {
            throw fail(
                .timeout, "the broker took no publish or confirm for \(timeout) (\(error.serverMessage ?? "\(error.code)"))")
        }
    }
}
