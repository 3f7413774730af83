import Hummingbird
import Logging
import Postgres
import ServiceLifecycle

/// The Postgres pool settings the configuration asks for.
public func postgresConfiguration(_ configuration: ServiceConfiguration) -> PostgresClient.Configuration {
    PostgresClient.Configuration(
        url: configuration.databaseURL,
        poolSize: configuration.postgresPoolSize,
        acquireTimeout: configuration.postgresPoolTimeout,
        statementTimeout: configuration.postgresStatementTimeout
    )
}

/// Builds the whole service: the one place where its parts are wired together.
public func buildApplication(configuration: ServiceConfiguration, logger: Logger) -> some ApplicationProtocol {
    let postgres = PostgresClient(configuration: postgresConfiguration(configuration), logger: logger)
    let store = PostgresMessageStore(client: postgres)
    let router = buildRouter(store: store, configuration: configuration)
    return Application(
        router: router,
        configuration: .init(address: .hostname(configuration.host, port: configuration.port)),
        services: [PostgresClientService(client: postgres)],
        logger: logger
    )
}

/// The routes of every API, behind the request-id and error middleware.
public func buildRouter(store: some MessageStore, configuration: ServiceConfiguration) -> Router<AppRequestContext> {
    let router = Router(context: AppRequestContext.self)
    router.add(middleware: RequestIDMiddleware())
    router.add(middleware: ErrorMiddleware())
    HealthController(store: store).addRoutes(to: router)
    MessagesController(store: store, limits: configuration.limits).addRoutes(to: router)
    if configuration.inf326Enabled {
        ThreadsController(store: store, limits: configuration.limits).addRoutes(to: router)
    }
    OpenAPIController().addRoutes(to: router)
    return router
}

/// Keeps the Postgres pool open while the server runs and closes it after the server stopped.
struct PostgresClientService: Service {
    let client: PostgresClient

    func run() async throws {
        try? await gracefulShutdown()
        await client.shutdown()
    }
}
