import AMQP
import Foundation
import Logging
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The AMQP client against the real RabbitMQ `make test` starts (`AMQP_URL`). Every test declares
/// its own exchanges and queues under a unique name and deletes them.
@Suite struct AMQPClientTests {
    static let url = ProcessInfo.processInfo.environment["AMQP_URL"] ?? "amqp://guest:guest@127.0.0.1:5672/%2F"

    init() {
        signal(SIGPIPE, SIG_IGN)
    }

    func open() throws -> AMQPConnection {
        try AMQPConnection.open(try AMQPEndpoint(url: Self.url), options: .init(heartbeat: .seconds(10), maxInFlight: 64))
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

    /// Reads `count` deliveries (or fewer, when the queue stays empty for 2 s), acknowledging each.
    func drain(_ queue: String, count: Int, on connection: AMQPConnection) throws -> [AMQPDelivery] {
        try connection.consume(queue)
        var deliveries: [AMQPDelivery] = []
        while deliveries.count < count, let delivery = try connection.nextDelivery(timeout: .seconds(2)) {
            try connection.ack(delivery.deliveryTag)
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
            #expect(throws: AMQPError.self, "\(bad)") { try AMQPEndpoint(url: bad) }
        }
    }

    @Test func backoffGrowsExponentiallyWithJitterUpToTheMaximum() {
        let backoff = Backoff(initial: .milliseconds(100), maximum: .seconds(2))
        #expect(backoff.delay(attempt: 1, random: 1) == .milliseconds(100))
        #expect(backoff.delay(attempt: 1, random: 0) == .milliseconds(50))
        #expect(backoff.delay(attempt: 3, random: 1) == .milliseconds(400))
        #expect(backoff.delay(attempt: 3, random: 0) == .milliseconds(200))
        #expect(backoff.delay(attempt: 10, random: 1) == .seconds(2))
        #expect(backoff.delay(attempt: 1000, random: 0) == .seconds(1))
        for attempt in 1...20 {
            let delay = backoff.delay(attempt: attempt)
            #expect(delay >= .milliseconds(50) && delay <= .seconds(2))
        }
    }

    @Test func publishedMessagesAreConfirmedAndConsumedInOrderWithTheirProperties() throws {
        let connection = try open()
        defer { connection.close() }
        let exchange = name("exchange")
        try connection.declareExchange(exchange, type: "topic", durable: false)
        let queue = try connection.declareQueue("", durable: false, exclusive: true)
        try connection.bindQueue(queue, exchange: exchange, routingKey: "message.*")
        let messages = (0..<50).map { message(exchange, $0 % 2 == 0 ? "message.created" : "message.updated", "\($0)") }
        #expect(try connection.publish(messages, timeout: .seconds(5)) == Array(repeating: .ack, count: 50))
        // A second batch on the same channel: delivery tags continue where the first stopped.
        #expect(try connection.publish([message(exchange, "message.deleted", "50")], timeout: .seconds(5)) == [.ack])

        let received = try drain(queue, count: 51, on: connection)
        #expect(received.map { String(decoding: $0.body, as: UTF8.self) } == (0...50).map(String.init))
        #expect(received.map(\.routingKey) == messages.map(\.routingKey) + ["message.deleted"])
        #expect(received.first?.properties == messages.first?.properties)
        #expect(received.first?.exchange == exchange)
        try connection.deleteExchange(exchange)
    }

    @Test func theBrokerNacksWhatItCannotTakeAndTheClientSaysWhich() throws {
        let connection = try open()
        defer { connection.close() }
        // A queue that holds one message and rejects further publishes: the broker nacks them.
        let queue = try connection.declareQueue(
            name("full"), durable: false, exclusive: true,
            arguments: ["x-max-length": .int(1), "x-overflow": .string("reject-publish")]
        )
        let confirmations = try connection.publish((0..<3).map { message("", queue, "\($0)") }, timeout: .seconds(5))
        #expect(confirmations == [.ack, .nack, .nack])
        #expect(try drain(queue, count: 3, on: connection).map { String(decoding: $0.body, as: UTF8.self) } == ["0"])
    }

    @Test func anAlternateExchangeKeepsWhatNoQueueIsBoundTo() throws {
        let connection = try open()
        defer { connection.close() }
        let exchange = name("events")
        let unrouted = name("unrouted")
        try connection.declareExchange(unrouted, type: "fanout", durable: false)
        let kept = try connection.declareQueue("", durable: false, exclusive: true)
        try connection.bindQueue(kept, exchange: unrouted, routingKey: "")
        try connection.declareExchange(
            exchange, type: "topic", durable: false, arguments: ["alternate-exchange": .string(unrouted)])
        #expect(try connection.publish([message(exchange, "nobody.listens", "lost?")], timeout: .seconds(5)) == [.ack])
        let received = try drain(kept, count: 1, on: connection)
        #expect(received.map(\.routingKey) == ["nobody.listens"])
        #expect(received.first?.body == Array("lost?".utf8))
        try connection.deleteExchange(exchange)
        try connection.deleteExchange(unrouted)
    }

    @Test func errorsAreTypedAndABrokenConnectionRefusesFurtherUse() throws {
        let connection = try open()
        defer { connection.close() }
        let exchange = name("typed")
        try connection.declareExchange(exchange, type: "topic", durable: false)
        let tooMany = (0..<65).map { message(exchange, "k", "\($0)") }
        #expect(throws: AMQPError(.tooManyInFlight, "65 messages in one batch; the bound is 64")) {
            try connection.publish(tooMany, timeout: .seconds(1))
        }
        #expect(!connection.isBroken)
        // Redeclaring with another type: the broker closes the channel with 406 PRECONDITION_FAILED.
        do {
            try connection.declareExchange(exchange, type: "fanout", durable: false)
            Issue.record("expected the broker to refuse")
        } catch let error as AMQPError {
            #expect(error.code == .closedByBroker)
            #expect(error.replyCode == 406)
        }
        #expect(connection.isBroken)
        #expect(throws: AMQPError.self) { try connection.publish([message(exchange, "k", "x")], timeout: .seconds(1)) }
        let cleanup = try open()
        try cleanup.deleteExchange(exchange)
        cleanup.close()
    }

    @Test func connectAndLoginFailuresAreTyped() throws {
        var endpoint = try AMQPEndpoint(url: Self.url)
        endpoint.password = "wrong-\(UUID())"
        do {
            _ = try AMQPConnection.open(endpoint)
            Issue.record("expected a login failure")
        } catch let error as AMQPError {
            #expect(error.code == .loginFailed)
            #expect(!error.message.contains(endpoint.password))
        }
        var closed = try AMQPEndpoint(url: Self.url)
        closed.port = 1
        #expect(throws: AMQPError.self) { try AMQPConnection.open(closed, options: .init(connectTimeout: .seconds(1))) }
    }

    @Test func theClientReconnectsAfterAFailureAndRunsItsSetUpAgain() async throws {
        let exchange = name("reconnect")
        let setUps = Counter()
        let client = AMQPClient(
            configuration: .init(
                endpoint: try AMQPEndpoint(url: Self.url),
                reconnect: Backoff(initial: .milliseconds(50), maximum: .milliseconds(200))),
            logger: Logger(label: "test")
        ) { connection in
            setUps.increment()
            try connection.declareExchange(exchange, type: "topic", durable: false)
        }
        #expect(try await client.withConnection { try $0.publish([message(exchange, "a", "1")], timeout: .seconds(5)) } == [.ack])
        #expect(client.isConnected)
        await #expect(throws: AMQPError.self) {
            try await client.withConnection { try $0.declareExchange(exchange, type: "direct", durable: false) }
        }
        #expect(!client.isConnected)
        #expect(try await client.withConnection { try $0.publish([message(exchange, "a", "2")], timeout: .seconds(5)) } == [.ack])
        #expect(setUps.value == 2)
        try await client.withConnection { try $0.deleteExchange(exchange) }
        await client.shutdown()
        await #expect(throws: AMQPError.self) { try await client.withConnection { _ in 1 } }
    }
}

final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    var value: Int { lock.withLock { count } }
    func increment() { lock.withLock { count += 1 } }
}
