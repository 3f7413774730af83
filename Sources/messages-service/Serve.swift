import ArgumentParser
import Foundation
import Logging
import MessagesService
import Metrics
import Prometheus

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the HTTP API and the outbox relay until SIGTERM or SIGINT.",
        discussion: """
            Listens on HOST:PORT (default 0.0.0.0:8080); GET /metrics serves Prometheus metrics.
            Run `migrate` first.
            """
    )

    func run() async throws {
        let configuration = try loadConfiguration()
        let log = ServiceLog(configuration: configuration)
        log.bootstrap()
        defer { log.flush() }
        let logger = Logger(label: "messages-service")
        do {
            let registry = PrometheusCollectorRegistry()
            MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
            let readiness = Readiness()
            let app = try await buildApplication(configuration: configuration, log: log, metrics: registry, readiness: readiness)
            logger.info("starting", metadata: ["host": "\(configuration.host)", "port": "\(configuration.port)"])
            try await runService(app, configuration: configuration, readiness: readiness, logger: logger)
            logger.info("stopped")
        } catch let error as ConfigurationError {
            FileHandle.standardError.write(Data("messages-service: \(error)\n".utf8))
            throw ExitCode(78)
        }
    }
}
