import Testing

extension Tag {
    /// The suite needs the Postgres, Redis and RabbitMQ that `make services` starts (or starts
    /// servers of its own); `make test-unit` skips it.
    @Tag static var servers: Self
}
