import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOConcurrencyHelpers
import NIOCore
import Postgres
import Testing

@testable import MessagesService

/// A Postgres outage under requests, and SIGTERM under load. A request that hangs (what these
/// tests look for) fails the test at the time limit instead of stalling the run.
@Suite(.tags(.servers), .timeLimit(.minutes(2))) struct ResilienceTests {
    let user = UUID()
    let channel = UUID()

    /// What became of one request of a load.
    enum Outcome: Sendable, Equatable {
        case answered(Int, content: String)
        case connectionFailed
    }

    @Test func aPostgresOutageIs503UntilPostgresIsBackAndTheServiceRecoversByItself() async throws {
        let database = try await TestDatabase.shared.migratedClient()
        let target = try #require(URLComponents(string: TestDatabase.url))
        let proxy = OutageProxy(host: target.host ?? "127.0.0.1", port: target.port ?? 5432)
        try proxy.up()
        defer { proxy.down() }
        var proxied = target
        proxied.port = proxy.port
        let log = CapturedLog()
        let configuration = try ServiceConfiguration(
            environment: testEnvironment(["DATABASE_URL": proxied.string!, "PG_POOL_SIZE": "4", "PG_POOL_TIMEOUT_MS": "500"])
        )
        let app = try await buildApplication(
            configuration: configuration, log: ServiceLog(configuration: configuration, output: log.output),
            metrics: TestMetrics.registry
        )
        let outcomes = NIOLockedValueBox<[(phase: String, outcome: Outcome, error: String?)]>([])
        let phase = NIOLockedValueBox("up")
        try await app.test(.router) { client in
            let api = APIClient(client: client)
            // Eight writers create messages through the outage; each request is answered, never
            // hangs. They stop at a flag, not by cancellation, which would reach into the handlers.
            let stop = NIOLockedValueBox(false)
            let load = Task {
                await withTaskGroup(of: Void.self) { group in
                    for writer in 0..<8 {
                        group.addTask {
                            var index = 0
                            while !stop.withLockedValue({ $0 }) {
                                index += 1
                                let content = "outage \(writer)-\(index)"
                                let current = phase.withLockedValue { $0 }
                                guard
                                    let reply = try? await api.send(
                                        .post, "/v1/channels/\(channel)/messages", user: user, json: #"{"content":"\#(content)"}"#
                                    )
                                else {
                                    outcomes.withLockedValue { $0.append((current, .connectionFailed, nil)) }
                                    continue
                                }
                                let code = (reply.json["error"] as? [String: Any])?["code"] as? String
                                outcomes.withLockedValue {
                                    $0.append((current, .answered(Int(reply.status.code), content: content), code))
                                }
                                if reply.status == .serviceUnavailable {
                                    #expect(reply.headers[.retryAfter] != nil)
                                    try? await Task.sleep(for: .milliseconds(20))
                                }
                            }
                        }
                    }
                }
            }
            #expect(await eventually { outcomes.withLockedValue { $0.count } >= 20 })
            phase.withLockedValue { $0 = "down" }
            proxy.down()
            #expect(try await eventually { try await api.send(.get, "/health/ready").status == .serviceUnavailable })
            #expect(try await api.send(.get, "/health/live").status == .ok)
            let legacy = try await api.send(.get, "/threads/\(channel)/messages")
            #expect(legacy.status == .serviceUnavailable && legacy.json["detail"] is String)
            try await Task.sleep(for: .seconds(2))
            phase.withLockedValue { $0 = "back" }
            try proxy.up()
            #expect(try await eventually(timeout: .seconds(15)) { try await api.send(.get, "/health/ready").status == .ok })
            let recovered = outcomes.withLockedValue { $0.count }
            #expect(await eventually { outcomes.withLockedValue { $0.count } >= recovered + 20 })
            stop.withLockedValue { $0 = true }
            await load.value
            #expect(await eventually { !log.lines(withMessage: "message store reachable again").isEmpty })
        }

        let all = outcomes.withLockedValue { $0 }
        let statuses = Set(all.compactMap { if case .answered(let status, _) = $0.outcome { status } else { nil } })
        // Only created or shed: never a 500, never a hang.
        #expect(statuses.isSubset(of: [201, 503]))
        let whileDown = all.filter { $0.phase == "down" }
        #expect(whileDown.count >= 8 && whileDown.contains { $0.outcome.status == 503 && $0.error == "unavailable" })
        #expect(all.filter { $0.phase == "back" }.suffix(10).allSatisfy { $0.outcome.status == 201 })
        #expect(!all.contains { $0.outcome == .connectionFailed })
        // Every acknowledged create is stored. A create whose COMMIT was on the wire when the
        // connection was cut may be stored and still answered 503 (its outcome was unknown):
        // at most one per pooled connection, all from the moment of the cut.
        let stored = Set(
            try await database.query("SELECT content FROM messages WHERE channel_id = $1", [channel]).rows.map {
                try $0.decode("content", as: String.self)
            }
        )
        let created = Set(all.compactMap { $0.outcome.status == 201 ? $0.outcome.content : nil })
        let answered503 = Set(all.compactMap { $0.outcome.status == 503 ? $0.outcome.content : nil })
        #expect(created.isSubset(of: stored))
        #expect(stored.subtracting(created).isSubset(of: answered503) && stored.subtracting(created).count <= 4)
        // One critical line for the outage (it alerts), one notice when it is over; the requests'
        // own warnings carry their request id, user and channel.
        #expect(log.lines(withMessage: "message store unavailable").map { $0["level"] as? String } == ["critical"])
        let failed = try #require(log.lines(withMessage: "request failed").first)
        #expect(failed["level"] as? String == "warning" && failed["request_id"] is String)
        #expect(failed["user_id"] as? String == user.lowercased && failed["channel_id"] as? String == channel.lowercased)
    }

    @Test func sigtermUnderLoadDrainsFinishesInFlightRequestsAndExitsZero() async throws {
        let database = try await TestDatabase.shared.migratedClient()
        // No relay: EventRelayTests' relays must stay the only ones competing for the outbox lock.
        let service = try ServiceProcess.serve(environment: ["SHUTDOWN_DRAIN_MS": "1500", "LOG_LEVEL": "info", "AMQP_URL": ""])
        defer { service.cleanUp() }
        try await service.waitUntilReady()
        let outcomes = NIOLockedValueBox<[(afterSignal: Bool, outcome: Outcome)]>([])
        let signalled = NIOLockedValueBox(false)
        let port = service.port
        let (channel, user) = (channel, user)
        let load = Task {
            await withTaskGroup(of: Void.self) { group in
                for writer in 0..<12 {
                    group.addTask {
                        // A writer keeps one connection until it fails; then tries new ones
                        // until they are refused (the listener closed).
                        var index = 0
                        while !Task.isCancelled {
                            let client = TestClient(host: "127.0.0.1", port: port)
                            client.connect()
                            while !Task.isCancelled {
                                index += 1
                                let content = "sigterm \(writer)-\(index)"
                                let after = signalled.withLockedValue { $0 }
                                do {
                                    let response = try await client.post(
                                        "/v1/channels/\(channel)/messages",
                                        headers: [
                                            .contentType: "application/json", HTTPField.Name("X-User-Id")!: user.lowercased,
                                        ],
                                        body: ByteBuffer(string: #"{"content":"\#(content)"}"#)
                                    )
                                    outcomes.withLockedValue {
                                        $0.append((after, .answered(Int(response.status.code), content: content)))
                                    }
                                } catch {
                                    outcomes.withLockedValue { $0.append((after, .connectionFailed)) }
                                    break
                                }
                            }
                            try? await client.shutdown()
                            if !service.process.isRunning { return }
                            try? await Task.sleep(for: .milliseconds(20))
                        }
                    }
                }
            }
        }
        #expect(await eventually { outcomes.withLockedValue { $0.count } >= 200 })
        signalled.withLockedValue { $0 = true }
        service.kill(SIGTERM)
        // While draining, readiness says 503 and requests are still served.
        try await Task.sleep(for: .milliseconds(300))
        let readiness = try await TestClient.withClient(host: "127.0.0.1", port: port) { try await $0.get("/health/ready") }
        #expect(readiness.status == .serviceUnavailable)
        #expect(readiness.body.map { String(buffer: $0) }?.contains("draining") == true)
        let status = await service.waitForExit(timeout: .seconds(30))
        load.cancel()
        await load.value
        #expect(status == 0)
        #expect(service.process.terminationReason == .exit)

        let all = outcomes.withLockedValue { $0 }
        // Every request the server took was answered 201; the others found the connection closed.
        #expect(all.allSatisfy { $0.outcome == .connectionFailed || $0.outcome.status == 201 })
        #expect(all.filter { $0.afterSignal && $0.outcome.status == 201 }.count > 0)
        let stored = Set(
            try await database.query("SELECT content FROM messages WHERE channel_id = $1", [channel]).rows.map {
                try $0.decode("content", as: String.self)
            }
        )
        // No acknowledged write lost, and no write done without its answer reaching the client.
        #expect(stored == Set(all.compactMap { $0.outcome.status == 201 ? $0.outcome.content : nil }))
        let lines = service.lines.compactMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any] }
        #expect(lines.count == service.lines.count)
        #expect(lines.contains { ($0["message"] as? String)?.hasPrefix("shutting down") == true })
        #expect(lines.last?["message"] as? String == "stopped")
        #expect(lines.filter { $0["message"] as? String == "request" && $0["status"] as? Int == 201 }.count == stored.count)
    }
}

extension ResilienceTests.Outcome {
    var status: Int? {
        if case .answered(let status, _) = self { status } else { nil }
    }

    var content: String? {
        if case .answered(_, let content) = self { content } else { nil }
    }
}
