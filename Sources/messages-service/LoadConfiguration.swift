import ArgumentParser
import Foundation
import Logging
import MessagesService
import Postgres

/// The configuration from the environment over `.env`, or exit 78 (EX_CONFIG) naming the variable.
func loadConfiguration() throws -> ServiceConfiguration {
    // The C libraries write to sockets of their own: a closed peer must not kill the process.
    signal(SIGPIPE, SIG_IGN)
    var environment = DotEnv.read(path: ".env")
    environment.merge(ProcessInfo.processInfo.environment) { _, process in process }
    do {
        return try ServiceConfiguration(environment: environment)
    } catch {
        FileHandle.standardError.write(Data("messages-service: \(error)\n".utf8))
        throw ExitCode(78)
    }
}

/// Reads `KEY=VALUE` lines of a `.env` file; a missing file is no error.
enum DotEnv {
    static func read(path: String) -> [String: String] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [:] }
        var values: [String: String] = [:]
        for line in text.split(whereSeparator: \.isNewline) {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            guard !trimmed.hasPrefix("#"), let equals = trimmed.firstIndex(of: "=") else { continue }
            let key = trimmed[..<equals].trimmingCharacters(in: .whitespaces)
            var value = trimmed[trimmed.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            if value.count >= 2, value.first == value.last, value.first == "\"" || value.first == "'" {
                value = String(value.dropFirst().dropLast())
            }
            values[key] = value
        }
        return values
    }
}

/// Runs `body` with a client of DATABASE_URL; a database failure exits 1 naming `command`.
func withDatabase<T: Sendable>(
    _ command: String, _ configuration: ServiceConfiguration, _ body: @Sendable (PostgresClient) async throws -> T
) async throws -> T {
    let client = PostgresClient(configuration: PostgresClient.Configuration(configuration), logger: Logger(label: command))
    do {
        let result = try await body(client)
        await client.shutdown()
        return result
    } catch {
        await client.shutdown()
        FileHandle.standardError.write(Data("messages-service \(command): \(error)\n".utf8))
        throw ExitCode.failure
    }
}
