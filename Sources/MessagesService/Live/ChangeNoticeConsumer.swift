import AMQP
import Foundation
import Logging
import ServiceLifecycle

/// Tells this pod's streams which channels changed, from the events every change publishes.
///
/// The relay announces each batch of events it published on the `messages.notices` fanout
/// exchange: the channels the batch changed. Each pod consumes a queue of its own (exclusive,
/// deleted with its connection) bound to it, and hands each channel to `ChannelStreams.notice`.
/// A notice is only a hint, so it is consumed without acknowledgements: the broker sends each as
/// fast as the connection takes it, and `maxQueued` only bounds what waits in the queue when the
/// connection is slower (the oldest are dropped). A dropped notice delays a stream until the next
/// notice or poll of its channel, and after every reconnect all followed channels are read again
/// (the notices of the disconnected time are lost with the queue).
///
/// Why RabbitMQ and not Redis pub/sub: every committed change reaches the broker through the
/// outbox, even when the pod that wrote it died right after the commit; a publish by the writing
/// pod would be lost with it. The cost is the relay's poll interval (50 ms) in the lag.
final class ChangeNoticeConsumer: Service {
    /// Hints kept while this pod reads them slower than they come; the oldest are dropped.
    static let maxQueued: Int64 = 10_000

    private let amqp: AMQPClient
    private let streams: ChannelStreams
    private let logger: Logger
    private let recordLag: @Sendable (Duration) -> Void

    /// `recordLag` gets, for each channel of a notice, the time from the write of its change's
    /// event (by Postgres' clock) to the notice's arrival here (by this pod's): the fan-out lag.
    init(
        amqp configuration: AMQPClient.Configuration, streams: ChannelStreams, logger: Logger,
        recordLag: @escaping @Sendable (Duration) -> Void = { _ in }
    ) {
        self.streams = streams
        self.logger = logger
        self.recordLag = recordLag
        amqp = AMQPClient(configuration: configuration, logger: logger) { topology in
            try OutboxRelay.declareEventExchange(on: topology, logger: logger)
            let queue = try topology.declareQueue(
                "", durable: false, exclusive: true, autoDelete: true,
                arguments: ["x-max-length": .int(Self.maxQueued), "x-overflow": .string("drop-head")]
            )
            try topology.bindQueue(queue, exchange: OutboxRelay.noticeExchange, routingKey: "")
            try topology.consumeWithoutAcknowledgements(queue)
            // What changed while no queue of ours was bound must be read now.
            streams.noticeAll()
        }
    }

    /// What `OutboxRelay.notice(of:)` publishes.
    private struct Notice: Decodable {
        struct Change: Decodable {
            let channel_id: UUID
            let written_us: Int64
        }
        let changes: [Change]
    }

    func run() async throws {
        let decoder = JSONDecoder()
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            let delivery: AMQPDelivery?
            do {
                delivery = try await amqp.nextDelivery(timeout: .seconds(1))
            } catch {
                // The client reconnects after its backoff on the next call.
                logger.debug("stream notices: RabbitMQ call failed", metadata: ["error": "\(error)"])
                continue
            }
            guard let delivery else { continue }
            guard let notice = try? decoder.decode(Notice.self, from: Data(delivery.body)) else {
                logger.warning("stream notices: a notice this version cannot read", metadata: ["bytes": "\(delivery.body.count)"])
                continue
            }
            let now = Int64(Date().timeIntervalSince1970 * 1_000_000)
            for change in notice.changes {
                streams.notice(channelID: change.channel_id)
                recordLag(.microseconds(max(0, now - change.written_us)))
            }
        }
        await amqp.shutdown()
    }
}
