import AMQP
import Postgres
import Redis

extension PostgresClient.Configuration {
    /// The Postgres pool settings the configuration asks for (`DATABASE_URL`, `PG_*`).
    public init(_ configuration: ServiceConfiguration) {
        self.init(
            url: configuration.databaseURL,
            poolSize: configuration.postgresPoolSize,
            acquireTimeout: configuration.postgresPoolTimeout,
            statementTimeout: configuration.postgresStatementTimeout,
            transactionPooling: configuration.postgresTransactionPooling
        )
    }

    /// The settings of the connections that keep session state (an advisory lock, `LISTEN`):
    /// the pool's, at `DATABASE_SESSION_URL` when set, never through a transaction pooler.
    public init(sessionsOf configuration: ServiceConfiguration) {
        self.init(configuration)
        url = configuration.databaseSessionURL ?? configuration.databaseURL
        transactionPooling = false
    }
}

extension RedisClient.Configuration {
    /// The Redis pool settings the configuration asks for (`REDIS_*`), for `endpoint`.
    public init(_ configuration: ServiceConfiguration, endpoint: RedisEndpoint) {
        self.init(
            endpoint: endpoint,
            poolSize: configuration.redisPoolSize,
            connectTimeout: configuration.redisConnectTimeout,
            commandTimeout: configuration.redisCommandTimeout,
            acquireTimeout: configuration.redisPoolTimeout,
            sentinel: configuration.redisSentinel
        )
    }
}

extension AMQPClient.Configuration {
    /// The RabbitMQ client settings the configuration asks for (`AMQP_*`, the outbox batch), for
    /// `endpoint`.
    init(_ configuration: ServiceConfiguration, endpoint: AMQPEndpoint) {
        self.init(
            endpoint: endpoint,
            connection: AMQPClient.ConnectionOptions(
                heartbeat: configuration.amqpHeartbeat, connectTimeout: configuration.amqpConnectTimeout,
                rpcTimeout: configuration.amqpConfirmTimeout,
                // A batch publishes each row once, new messages once more for the legacy queue, and
                // one notice for the live streams.
                maxInFlight: 2 * configuration.outbox.batchSize + 1
            ),
            reconnect: configuration.outbox.retry
        )
    }
}
