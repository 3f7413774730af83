import AMQP
import Foundation
import Logging
import NIOConcurrencyHelpers
import Pooling
import Postgres
import Testing

@testable import MessagesService

enum TestBroker {
    static let url = ProcessInfo.processInfo.environment["AMQP_URL"] ?? "amqp://guest:guest@127.0.0.1:5672/%2F"

    static func endpoint() throws -> AMQPEndpoint {
        try AMQPEndpoint(url: url)
    }

    /// A relay like the service's, publishing to `endpoint` with short intervals so tests are quick.
    static func relay(
        endpoint: AMQPEndpoint? = nil, legacyQueue: String? = nil, maxAttempts: Int = 10, label: String = "relay",
        recordLag: @escaping @Sendable (Duration) -> Void = { _ in }
    ) throws -> OutboxRelay {
        var configuration = ServiceConfiguration()
        configuration.outbox.pollInterval = .milliseconds(200)
        configuration.outbox.lockRetryInterval = .milliseconds(200)
        configuration.outbox.retry = Backoff(initial: .milliseconds(50), maximum: .milliseconds(500))
        configuration.outbox.legacyQueue = legacyQueue
        configuration.outbox.maxAttempts = maxAttempts
        configuration.amqpConnectTimeout = .seconds(1)
        configuration.amqpConfirmTimeout = .seconds(3)
        let outbox = configuration.outbox
        let amqp = AMQPClient(
            configuration: AMQPClient.Configuration(configuration, endpoint: try endpoint ?? Self.endpoint()),
            logger: Logger(label: label)
        ) {
            try OutboxRelay.declareTopology(on: $0, configuration: outbox, logger: Logger(label: label))
        }
        var postgres = PostgresClient.Configuration(configuration)
        postgres.url = TestDatabase.sessionURL
        return OutboxRelay(
            postgres: postgres, amqp: amqp, configuration: configuration.outbox, logger: Logger(label: label),
            recordLag: recordLag)
    }
}

/// One event as a consumer of `messages.events` receives it.
struct ReceivedEvent: @unchecked Sendable {
    let delivery: AMQPDelivery
    let json: [String: Any]

    var id: String { json["id"] as? String ?? "" }
    var type: String { json["type"] as? String ?? "" }
    var channelID: String { json["channel_id"] as? String ?? "" }
    var seq: Int { json["seq"] as? Int ?? -1 }
    var version: Int { json["version"] as? Int ?? -1 }
    var messageID: String { (json["message"] as? [String: Any])?["id"] as? String ?? "" }
}

/// A consumer on its own queue, bound to an exchange with a pattern. Declared (and bound) by
/// `start()`, before the events it should see are published; a queue of the service's (the
/// relay's topology declares it) is only checked, as its type is the service's to choose.
final class TestConsumer: Sendable {
    let queue: String
    private let client: AMQPClient

    init(
        exchange: String = OutboxRelay.exchange, pattern: String = "#", queue: String? = nil, exclusive: Bool = true,
        purge: Bool = false
    ) throws {
        let queue = queue ?? "test.consumer.\(UUID().uuidString.lowercased())"
        self.queue = queue
        client = AMQPClient(configuration: .init(endpoint: try TestBroker.endpoint()), logger: Logger(label: "consumer")) {
            try OutboxRelay.declareTopology(on: $0, configuration: .init(), logger: Logger(label: "consumer"))
            if [OutboxRelay.unroutedQueue, OutboxRelay.deadLetterQueue].contains(queue) {
                try $0.declareQueuePassively(queue)
            } else {
                try $0.declareQueue(queue, durable: !exclusive, exclusive: exclusive)
            }
            if exchange != "" { try $0.bindQueue(queue, exchange: exchange, routingKey: pattern) }
            if purge { try $0.purgeQueue(queue) }
            try $0.consume(queue)
        }
    }

    func start() async throws {
        try await client.connect()
    }

    /// Receives until `done` says so (given everything kept so far) or nothing to keep arrives
    /// for `quiet`; keeps the deliveries `keep` accepts (other tests publish too), acknowledging all.
    func receive(
        quiet: Duration = .seconds(10), keep: @escaping @Sendable (AMQPDelivery) -> Bool = { _ in true },
        until done: @Sendable ([AMQPDelivery]) -> Bool
    ) async throws -> [AMQPDelivery] {
        var kept: [AMQPDelivery] = []
        var lastArrival = ContinuousClock.now
        while !done(kept), ContinuousClock.now - lastArrival < quiet {
            var batch: [AMQPDelivery] = []
            while batch.count < 500, let delivery = try await client.nextDelivery(timeout: .milliseconds(200)) {
                try await client.ack(delivery)
                batch.append(delivery)
            }
            let wanted = batch.filter(keep)
            if !wanted.isEmpty { lastArrival = .now }
            kept += wanted
        }
        return kept
    }

    /// The events of `channels`, redeliveries (same event id) dropped, until `count` arrived (or
    /// none came for `quiet`: generous, as on a busy machine the relay that holds the outbox lock
    /// can take its time).
    func events(of channels: Set<UUID>, count: Int, quiet: Duration = .seconds(30)) async throws -> [ReceivedEvent] {
        let wanted = Set(channels.map(\.lowercased))
        let deliveries = try await receive(
            quiet: quiet,
            keep: { delivery in
                guard let json = Self.json(delivery) else { return false }
                return wanted.contains(json["channel_id"] as? String ?? "")
            }
        ) { kept in
            Set(kept.compactMap(\.properties.messageID)).count >= count
        }
        var seen = Set<String>()
        return deliveries.filter { seen.insert($0.properties.messageID ?? "").inserted }
            .map { ReceivedEvent(delivery: $0, json: Self.json($0) ?? [:]) }
    }

    static func json(_ delivery: AMQPDelivery) -> [String: Any]? {
        (try? JSONSerialization.jsonObject(with: Data(delivery.body))) as? [String: Any]
    }

    func stop(deleteQueue: Bool = false) async {
        if deleteQueue {
            let queue = self.queue
            try? await client.withTopology { try $0.deleteQueue(queue) }
        }
        await client.shutdown()
    }
}

/// Runs `relay` in the background for the duration of `body`, then stops it (as a pod's shutdown
/// would) and waits until it has.
func withRunningRelay<T: Sendable>(_ relay: OutboxRelay, _ body: () async throws -> T) async throws -> T {
    let task = Task { try await relay.run() }
    do {
        let result = try await body()
        task.cancel()
        _ = await task.result
        return result
    } catch {
        task.cancel()
        _ = await task.result
        throw error
    }
}

/// Waits until `condition` holds, polling, for at most `timeout`.
func eventually(timeout: Duration = .seconds(10), _ condition: () async throws -> Bool) async rethrows -> Bool {
    let end = ContinuousClock.now + timeout
    while ContinuousClock.now < end {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(50))
    }
    return try await condition()
}
