import AMQP
import Logging
import NIOConcurrencyHelpers

/// How the service declares the durable queues it owns (`messages.unrouted`, `messages.dead`,
/// `LEGACY_QUEUE`).
enum DurableQueue {
    /// The RabbitMQ queue type.
    enum Kind: String, Sendable, CaseIterable {
        /// Replicated by Raft over the cluster's nodes: a confirmed publish survives the loss of a
        /// minority of them, which a classic queue (on one node) does not.
        case quorum
        /// Declared without `x-queue-type`, as the INF326 service and its consumers declare theirs.
        case classic
    }

    /// Queues the broker refused to declare as asked because they exist with other settings
    /// (made classic by an earlier release, or by a consumer that declared its queue first). They
    /// are kept as they are: every later connection only checks that they exist, until one finds
    /// the queue gone (an operator moving it), which declares it anew. Process-wide, since a
    /// process talks to one broker.
    private static let keptAsTheyAre = NIOLockedValueBox<Set<String>>([])

    /// Declares `name` as a durable queue of `kind`; once the broker refused that because the
    /// queue exists with other settings, declares it passively instead. The refusal closes the
    /// channel, so it is thrown: the client reconnects and the next connection takes the passive path.
    /// A quorum queue sends what its consumers reject to `messages.dead` unless `deadLetters` is
    /// false (that queue itself); a classic one is declared without arguments, as INF326 consumers
    /// redeclare it (a policy gives it a dead-letter exchange: docs/events.md, "Dead letters").
    static func declare(
        _ name: String, kind: Kind, deadLetters: Bool = true, on topology: AMQPTopology, logger: Logger
    ) throws {
        if keptAsTheyAre.withLockedValue({ $0.contains(name) }) {
            do {
                try topology.declareQueuePassively(name)
                return
            } catch let error as AMQPError where error.code == .closedByBroker && error.replyCode == 404 {
                // Deleted since: the next connection declares it as `kind`.
                keptAsTheyAre.withLockedValue { _ = $0.remove(name) }
                throw error
            }
        }
        do {
            try topology.declareQueue(name, arguments: arguments(kind, deadLetters: deadLetters))
        } catch let error as AMQPError where error.code == .closedByBroker && error.replyCode == 406 {
            keptAsTheyAre.withLockedValue { _ = $0.insert(name) }
            logger.warning(
                "queue exists with other settings; it is kept as it is",
                metadata: [
                    "queue": "\(name)", "wanted": "\(kind.rawValue)", "error": "\(error)",
                    "fix": "see docs/events.md, 'Queue types'",
                ])
            throw error
        }
    }

    static func arguments(_ kind: Kind, deadLetters: Bool = true) -> [String: AMQPArgument] {
        switch kind {
        case .quorum where deadLetters:
            ["x-queue-type": .string("quorum"), "x-dead-letter-exchange": .string(OutboxRelay.deadLetterExchange)]
        case .quorum: ["x-queue-type": .string("quorum")]
        case .classic: [:]
        }
    }
}
