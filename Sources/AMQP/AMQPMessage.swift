/// The AMQP properties this service sets and reads (a subset of `basic.properties`).
public struct AMQPProperties: Sendable, Equatable {
    public var contentType: String?
    /// `delivery_mode` 2: the broker writes the message to disk in durable queues.
    public var persistent: Bool
    /// Consumers deduplicate on it.
    public var messageID: String?
    public var type: String?
    /// Seconds since 1970.
    public var timestamp: Int64?
    public var correlationID: String?
    /// Application headers with string values (such as W3C `traceparent`); on a delivery, its
    /// headers whose values are strings.
    public var headers: [String: String]

    public init(
        contentType: String? = nil, persistent: Bool = true, messageID: String? = nil, type: String? = nil,
        timestamp: Int64? = nil, correlationID: String? = nil, headers: [String: String] = [:]
    ) {
        self.contentType = contentType
        self.persistent = persistent
        self.messageID = messageID
        self.type = type
        self.timestamp = timestamp
        self.correlationID = correlationID
        self.headers = headers
    }
}

/// A message to publish.
public struct AMQPOutgoingMessage: Sendable, Equatable {
    public var exchange: String
    public var routingKey: String
    public var body: [UInt8]
    public var properties: AMQPProperties

    public init(exchange: String, routingKey: String, body: [UInt8], properties: AMQPProperties = AMQPProperties()) {
        self.exchange = exchange
        self.routingKey = routingKey
        self.body = body
        self.properties = properties
    }
}

/// What the broker said about one published message.
public enum AMQPConfirmation: Sendable, Equatable {
    /// `basic.ack`: the broker took responsibility for it.
    case ack
    /// `basic.nack`: the broker could not take it; publish it again.
    case nack
}

/// A message received from a queue (`AMQPClient.nextDelivery`); acknowledge it with
/// `AMQPClient.ack(_:)`.
public struct AMQPDelivery: Sendable, Equatable {
    public var exchange: String
    public var routingKey: String
    public var body: [UInt8]
    public var properties: AMQPProperties
    public var deliveryTag: UInt64
    public var redelivered: Bool
    /// The connection it came on: its tag means nothing on another.
    let connectionID: UInt64
}

/// Arguments of a queue or exchange declaration, such as `alternate-exchange`.
public enum AMQPArgument: Sendable, Equatable {
    case string(String)
    case int(Int64)
}
