import AMQP
import Foundation
import Logging
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The AMQP client against the real RabbitMQ `make test` starts (`AMQP_URL`). Every test declares
/// its own exchanges and queues under a unique name and deletes them.
@Suite(.tags(.servers)) struct AMQPClientTests {
    static let url = ProcessInfo.processInfo.environment["AMQP_URL"] ?? "amqp://guest:guest@127.0.0.1:5672/%2F"

    init() {
        signal(SIGPIPE, SIG_IGN)
    }

    func client(
        endpoint: AMQPEndpoint? = nil, connectTimeout: Duration = .seconds(3),
        setUp: @escaping @Sendable (AMQPTopology) throws -> Void = { _ in }
    ) throws -> AMQPClient {
        AMQPClient(
            configuration: .init(
                endpoint: try endpoint ?? AMQPEndpoint(url: Self.url),
                connection: .init(heartbeat: .seconds(10), connectTimeout: connectTimeout, maxInFlight: 64),
                reconnect: Backoff(initial: .milliseconds(50), maximum: .milliseconds(200))
            ),
            logger: Logger(label: "test"), setUp: setUp
        )
    }

    func name(_ what: String) -> String { "test.\(what).\(UUID().uuidString.lowercased())" }

    func message(_ exchange: String, _ key: String, _ text: String, id: String? = nil) -> AMQPOutgoingMessage {
        AMQPOutgoingMessage(
            exchange: exchange, routingKey: key, body: Array(text.utf8),
            properties: AMQPProperties(
                contentType: "application/json", messageID: id ?? UUID().uuidString, type: key, timestamp: 1_700_000_000,
                correlationID: "request-\(text)"
            )
        )
    }

    /// A client consuming `queue` (declared by `declare` in its set-up, on every connection). It
    /// publishes nothing: a publish waiting for its confirms would skip deliveries.
    func consumer(_ queue: String, declare: @escaping @Sendable (AMQPTopology) throws -> Void) throws -> AMQPClient {
        try client { topology in
            try declare(topology)
            try topology.consume(queue)
        }
    }

    /// Reads `count` deliveries (or fewer, when the queue stays empty for 2 s), acknowledging each.
    func drain(_ count: Int, from consumer: AMQPClient) async throws -> [AMQPDelivery] {
        var deliveries: [AMQPDelivery] = []
        while deliveries.count < count, let delivery = try await consumer.nextDelivery(timeout: .seconds(2)) {
            try await consumer.ack(delivery)
            deliveries.append(delivery)
        }
        return deliveries
    }

    @Test func endpointReadsTheURLAsRabbitMQDocumentsIt() throws {
        #expect(try AMQPEndpoint(url: "amqp://guest:guest@127.0.0.1:5672/%2F") == AMQPEndpoint(host: "127.0.0.1"))
        #expect(try AMQPEndpoint(url: "amqp://rabbit") == AMQPEndpoint(host: "rabbit"))
        let custom = try AMQPEndpoint(url: "amqp://app:p%40ss@mq.internal:5673/chat%2Fprod")
        #expect(custom == AMQPEndpoint(host: "mq.internal", port: 5673, user: "app", password: "p@ss", virtualHost: "chat/prod"))
        for bad in ["http://host", "amqps://host", "amqp://", "not a url"] {
            let error = #expect(throws: AMQPError.self, "\(bad)") { try AMQPEndpoint(url: bad) }
            #expect(error?.code == .invalidURL)
        }
    }

    @Test func publishedMessagesAreConfirmedAndConsumedInOrderWithTheirProperties() async throws {
        let exchange = name("exchange")
        let queue = name("queue")
        let consumer = try consumer(queue) {
            try $0.declareExchange(exchange, type: "topic", durable: false)
            try $0.declareQueue(queue, durable: false, exclusive: true)
            try $0.bindQueue(queue, exchange: exchange, routingKey: "message.*")
        }
        try await consumer.connect()
        let publisher = try client()
        let messages = (0..<50).map { message(exchange, $0 % 2 == 0 ? "message.created" : "message.updated", "\($0)") }
        #expect(try await publisher.publish(messages, timeout: .seconds(5)) == Array(repeating: .ack, count: 50))
        // A second batch on the same channel: delivery tags continue where the first stopped.
        #expect(try await publisher.publish([message(exchange, "message.deleted", "50")], timeout: .seconds(5)) == [.ack])

        let received = try await drain(51, from: consumer)
        #expect(received.map { String(decoding: $0.body, as: UTF8.self) } == (0...50).map(String.init))
        #expect(received.map(\.routingKey) == messages.map(\.routingKey) + ["message.deleted"])
        #expect(received.first?.properties == messages.first?.properties)
        #expect(received.first?.exchange == exchange)
        try await publisher.withTopology { try $0.deleteExchange(exchange) }
        await consumer.shutdown()
        await publisher.shutdown()
    }

    @Test func theBrokerNacksWhatItCannotTakeAndTheClientSaysWhich() async throws {
        // A queue that holds one message and rejects further publishes: the broker nacks them.
        let queue = name("full")
        let publisher = try client {
            try $0.declareQueue(
                queue, durable: false, arguments: ["x-max-length": .int(1), "x-overflow": .string("reject-publish")]
            )
        }
        let confirmations = try await publisher.publish((0..<3).map { message("", queue, "\($0)") }, timeout: .seconds(5))
        #expect(confirmations == [.ack, .nack, .nack])
        let consumer = try consumer(queue) { _ in }
        #expect(try await drain(3, from: consumer).map { String(decoding: $0.body, as: UTF8.self) } == ["0"])
        try await publisher.withTopology { try $0.deleteQueue(queue) }
        await consumer.shutdown()
        await publisher.shutdown()
    }

    @Test func anAlternateExchangeKeepsWhatNoQueueIsBoundTo() async throws {
        let exchange = name("events")
        let unrouted = name("unrouted")
        let kept = name("kept")
        let consumer = try consumer(kept) {
            try $0.declareExchange(unrouted, type: "fanout", durable: false)
            try $0.declareQueue(kept, durable: false, exclusive: true)
            try $0.bindQueue(kept, exchange: unrouted, routingKey: "")
            try $0.declareExchange(
                exchange, type: "topic", durable: false, arguments: ["alternate-exchange": .string(unrouted)])
        }
        try await consumer.connect()
        let publisher = try client()
        #expect(try await publisher.publish([message(exchange, "nobody.listens", "lost?")], timeout: .seconds(5)) == [.ack])
        let received = try await drain(1, from: consumer)
        #expect(received.map(\.routingKey) == ["nobody.listens"])
        #expect(received.first?.body == Array("lost?".utf8))
        try await publisher.withTopology {
            try $0.deleteExchange(exchange)
            try $0.deleteExchange(unrouted)
        }
        await consumer.shutdown()
        await publisher.shutdown()
    }

    @Test func errorsAreTypedAndSayNoMoreThanTheirCodeInTheirDescription() async throws {
        let exchange = name("typed")
        let client = try client { try $0.declareExchange(exchange, type: "topic", durable: false) }
        let tooMany = (0..<65).map { message(exchange, "k", "\($0)") }
        let refused = await #expect(throws: AMQPError.self) { try await client.publish(tooMany, timeout: .seconds(1)) }
        #expect(refused?.code == .tooManyInFlight)
        #expect(refused?.debugDescription.contains("the bound is 64") == true)
        #expect(client.isConnected)
        // Redeclaring with another type: the broker closes the channel with 406 PRECONDITION_FAILED.
        let error = await #expect(throws: AMQPError.self) {
            try await client.withTopology { try $0.declareExchange(exchange, type: "fanout", durable: false) }
        }
        #expect(error?.code == .closedByBroker)
        #expect(error?.replyCode == 406)
        #expect(error?.isUnavailable == false)
        #expect(error?.description == "AMQP closed by the broker (reply code 406)")
        #expect(error?.debugDescription.contains(exchange) == true)
        #expect(!client.isConnected)
        try await client.withTopology { try $0.deleteExchange(exchange) }
        await client.shutdown()
        let closed = await #expect(throws: AMQPError.self) { try await client.connect() }
        #expect(closed?.code == .closed)
        #expect(closed?.isUnavailable == true)
    }

    @Test func connectAndLoginFailuresAreTyped() async throws {
        var endpoint = try AMQPEndpoint(url: Self.url)
        endpoint.password = "wrong-\(UUID())"
        let wrongPassword = try client(endpoint: endpoint)
        let error = await #expect(throws: AMQPError.self) { try await wrongPassword.connect() }
        #expect(error?.code == .loginFailed)
        #expect(error?.description.contains(endpoint.password) == false)
        #expect(error?.debugDescription.contains(endpoint.password) == false)
        await wrongPassword.shutdown()
        var closed = try AMQPEndpoint(url: Self.url)
        closed.port = 1
        let unreachable = try client(endpoint: closed, connectTimeout: .seconds(1))
        let refused = await #expect(throws: AMQPError.self) { try await unreachable.connect() }
        #expect(refused?.code == .connectionFailed)
        #expect(refused?.isUnavailable == true)
        await unreachable.shutdown()
    }

    @Test func theClientReconnectsAfterAFailureAndRunsItsSetUpAgain() async throws {
        let exchange = name("reconnect")
        let setUps = Counter()
        let client = try client { topology in
            setUps.increment()
            try topology.declareExchange(exchange, type: "topic", durable: false)
        }
        #expect(try await client.publish([message(exchange, "a", "1")], timeout: .seconds(5)) == [.ack])
        #expect(client.isConnected)
        await #expect(throws: AMQPError.self) {
            try await client.withTopology { try $0.declareExchange(exchange, type: "direct", durable: false) }
        }
        #expect(!client.isConnected)
        #expect(try await client.publish([message(exchange, "a", "2")], timeout: .seconds(5)) == [.ack])
        #expect(setUps.value == 2)
        try await client.withTopology { try $0.deleteExchange(exchange) }
        await client.shutdown()
        await #expect(throws: AMQPError.self) { try await client.publish([], timeout: .seconds(1)) }
    }

    @Test func aDeliveryOfAnEarlierConnectionIsNotAcknowledgedOnALaterOne() async throws {
        let queue = name("redelivered")
        let consumer = try consumer(queue) { try $0.declareQueue(queue, durable: false) }
        try await consumer.connect()
        let publisher = try client()
        _ = try await publisher.publish([message("", queue, "once")], timeout: .seconds(5))
        let first = try #require(try await consumer.nextDelivery(timeout: .seconds(2)))
        #expect(!first.redelivered)
        // Break the connection: the unacknowledged delivery goes back to the queue.
        await #expect(throws: AMQPError.self) {
            try await consumer.withTopology { try $0.declareQueue(queue, durable: true) }
        }
        let again = try #require(try await consumer.nextDelivery(timeout: .seconds(2)))
        #expect(again.redelivered)
        #expect(again.body == first.body)
        // The stale tag is ignored; acknowledging it on the new channel would make the broker close it.
        try await consumer.ack(first)
        try await consumer.ack(again)
        #expect(consumer.isConnected)
        #expect(try await consumer.nextDelivery(timeout: .milliseconds(300)) == nil)
        try await consumer.withTopology { try $0.deleteQueue(queue) }
        await consumer.shutdown()
        await publisher.shutdown()
    }
}

final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    var value: Int { lock.withLock { count } }
    func increment() { lock.withLock { count += 1 } }
}
