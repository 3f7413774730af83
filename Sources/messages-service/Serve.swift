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
            With OTEL_EXPORTER_OTLP_ENDPOINT set, exports traces over OTLP/HTTP (docs/tracing.md).
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
            // Before anything makes a span: the tracer is the process's from here on.
            let tracing = try configuration.tracing ? TracingBackend.bootstrap(logger: logger) : nil
            let readiness = Readiness()
            let app = try await buildApplication(configuration: configuration, log: log, metrics: registry, readiness: readiness)
            logger.info(
                "starting",
                metadata: [
                    "host": "\(configuration.host)", "port": "\(configuration.port)", "tracing": "\(configuration.tracing)",
                ])
            try await runService(app, configuration: configuration, readiness: readiness, tracing: tracing, logger: logger)
            logger.info("stopped")
        } catch let error as ConfigurationError {
            FileHandle.standardError.write(Data("messages-service: \(error)\n".utf8))
            throw ExitCode(78)
        }
    }
}
