import ArgumentParser
import MessagesService

/// The `messages-service` command: `serve` runs the API, `migrate` applies the schema.
@main
struct MessagesServiceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "messages-service",
        abstract: """
            Stores and serves chat messages (Postgres, Redis cache), with the v1 and INF326 HTTP APIs, \
            and publishes message events to RabbitMQ.
            """,
        discussion: """
            Configuration comes from environment variables (and a .env file in the working
            directory, whose values the environment overrides); docs/configuration.md lists them.
            A bad value stops the command with a message naming the variable.
            """,
        version: serviceVersion,
        subcommands: [Serve.self, Migrate.self, Token.self, Errors.self, Events.self],
        defaultSubcommand: Serve.self
    )
}
