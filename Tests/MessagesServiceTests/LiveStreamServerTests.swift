import Foundation
import HTTPTypes
import HummingbirdTesting
import Logging
import NIOCore
import Postgres
import Testing

@testable import MessagesService

/// Live streams across two service processes on one database, with the real broker: a stream
/// held by one process gets the writes made through the other.
///
/// The processes use a database of their own (the tests' database with `_pods` after its name,
/// which `make services` creates): their relays would otherwise publish, and delete, the outbox
/// rows the relay tests wait for.
@Suite(.tags(.servers)) struct LiveStreamServerTests {
    let user = UUID().uuidString.lowercased()

    static let database = TestDatabase.environment(suffix: "_pods")
    static let databaseURL = database["DATABASE_URL"]!

    /// Migrates the processes' database, once per test run.
    static let migrated: Bool = {
        let (status, _) = (try? ServiceProcess.run(["migrate"], environment: database)) ?? (-1, "")
        return status == 0
    }()

    /// Starts `serve` on the processes' database.
    private func serve(_ environment: [String: String] = [:]) throws -> ServiceProcess {
        try #require(Self.migrated, "migrating \(Self.databaseURL) failed")
        return try ServiceProcess.serve(environment: environment.merging(Self.database) { $1 })
    }

    /// Sends one request to a process; its status and JSON body.
    private func call(
        _ client: TestClient, _ method: HTTPRequest.Method, _ path: String, json: String? = nil
    ) async throws -> (status: Int, json: [String: Any]) {
        var headers: HTTPFields = [HTTPField.Name("X-User-Id")!: user]
        if json != nil { headers[.contentType] = "application/json" }
        let response = try await client.execute(
            TestClient.Request(path, method: method, headers: headers, body: json.map { ByteBuffer(string: $0) }))
        let object = response.body.flatMap { try? JSONSerialization.jsonObject(with: Data(buffer: $0)) } as? [String: Any]
        return (Int(response.status.code), object ?? [:])
    }

    private func create(_ client: TestClient, channel: UUID, _ content: String, parent: String? = nil) async throws
        -> [String: Any]
    {
        let parentField = parent.map { #","parent_id":"\#($0)""# } ?? ""
        let reply = try await call(
            client, .post, "/v1/channels/\(channel)/messages", json: #"{"content":"\#(content)"\#(parentField)}"#)
        #expect(reply.status == 201)
        return reply.json
    }

    /// The canonical JSON of the `message` of an event or change.
    private func messageJSON(_ change: [String: Any]) throws -> String {
        let message = try #require(change["message"] as? [String: Any])
        return String(decoding: try JSONSerialization.data(withJSONObject: message, options: [.sortedKeys]), as: UTF8.self)
    }

    private func eventObject(_ event: EventStreamClient.Event) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(event.data.utf8)) as? [String: Any])
    }

    @Test func aStreamOnOneProcessFollowsWritesThroughTheOtherAndResumesExactlyAfterLastEventID() async throws {
        let writer = try serve()
        defer { writer.cleanUp() }
        // Polls too rarely to matter: what reaches this process' stream came by the broker's notices.
        let reader = try serve(["STREAM_POLL_MS": "600000", "SHUTDOWN_DRAIN_MS": "0"])
        defer { reader.cleanUp() }
        try await writer.waitUntilReady()
        try await reader.waitUntilReady()
        let channel = UUID()
        let path = "/v1/channels/\(channel)/stream"

        let stream = try await EventStreamClient.open(port: reader.port, path: path, headers: [("X-User-Id", user)])
        #expect(await stream.wait { $0.status != nil })
        #expect(stream.state.status == 200)
        #expect(stream.state.retry != nil)

        try await TestClient.withClient(host: "127.0.0.1", port: writer.port) { client in
            // Creates, a reply (which also changes its root), an edit and a delete.
            var ids: [String] = []
            for index in 0..<5 {
                ids.append(try await create(client, channel: channel, "m\(index)")["id"] as! String)
            }
            _ = try await create(client, channel: channel, "reply", parent: ids[0])
            #expect(
                try await call(client, .patch, "/v1/channels/\(channel)/messages/\(ids[1])", json: #"{"content":"edited"}"#)
                    .status == 200)
            #expect(try await call(client, .delete, "/v1/channels/\(channel)/messages/\(ids[2])").status == 204)
            let reacted = "/v1/channels/\(channel)/messages/\(ids[3])/reactions/%F0%9F%91%8D"
            #expect(try await call(client, .put, reacted).status == 200)

            let feed = try await call(client, .get, "/v1/channels/\(channel)/changes?since=0&limit=100")
            let finalVersion = try #require(feed.json["channel_version"] as? Int)
            #expect(finalVersion == 9)
            #expect(await stream.wait { $0.events.last?.id == String(finalVersion) }, "\(stream.events.map(\.id))")
            let versions = stream.events.compactMap { $0.id.flatMap(Int.init) }
            #expect(versions == versions.sorted() && Set(versions).count == versions.count, "\(versions)")
            // Message by message, the last event equals the changes feed walked from 0.
            var latest: [String: String] = [:]
            for event in stream.events {
                let object = try eventObject(event)
                #expect(object["type"] as? String == event.type)
                latest[(object["message"] as! [String: Any])["id"] as! String] = try messageJSON(object)
            }
            var expected: [String: String] = [:]
            for change in feed.json["changes"] as! [[String: Any]] {
                expected[(change["message"] as! [String: Any])["id"] as! String] = try messageJSON(change)
            }
            #expect(latest == expected)
            #expect(stream.events.contains { $0.type == "message.deleted" })
            let reaction = try #require(stream.events.last).data
            #expect(reaction.contains(#""reactions":{"👍":1}"#) && reaction.contains(ids[3]), "\(reaction)")

            // Away for ten writes, then back with Last-Event-ID: exactly those ten.
            let lastSeen = try #require(stream.events.last?.id)
            await stream.close()
            var missed: [String] = []
            for index in 0..<10 {
                missed.append(try await create(client, channel: channel, "missed \(index)")["id"] as! String)
            }
            let resumed = try await EventStreamClient.open(
                port: reader.port, path: path, headers: [("X-User-Id", user), ("Last-Event-ID", lastSeen)])
            #expect(await resumed.wait { $0.events.count >= 10 })
            try await Task.sleep(for: .milliseconds(300))
            #expect(
                resumed.events.map { try? eventObject($0)["message"].flatMap { ($0 as? [String: Any])?["id"] as? String } }
                    == missed)
            #expect(resumed.events.map(\.id) == (10...19).map { String($0) })

            // SIGTERM: the stream ends cleanly (a goodbye, then the response's end) and the process exits.
            reader.kill(SIGTERM)
            #expect(await resumed.wait { $0.ended })
            #expect(resumed.state.comments.contains { $0.contains("shutting down") })
            #expect(await reader.waitForExit(timeout: .seconds(20)) == 0)
        }
    }

    /// With `CHANNEL_ACCESS=members`, a member removed while streaming gets no change made after
    /// the removal: the stream ends with a comment, and reconnecting is the 404 of a channel the
    /// caller cannot use.
    @Test func aMemberRemovedWhileStreamingGetsNothingAfterward() async throws {
        let process = try serve(["CHANNEL_ACCESS": "members"])
        defer { process.cleanUp() }
        try await process.waitUntilReady()
        let postgres = PostgresClient(
            configuration: TestDatabase.configuration(url: Self.databaseURL, poolSize: 1, acquireTimeout: .seconds(10)),
            logger: Logger(label: "test"))
        let memberships = PostgresMembershipStore(client: postgres)
        let channel = UUID()
        let writer = UUID()
        let reader = try #require(UUID(uuidString: user))
        _ = try await memberships.setRole(.member, of: writer, in: channel)
        _ = try await memberships.setRole(.member, of: reader, in: channel)
        let path = "/v1/channels/\(channel)/stream"
        let stream = try await EventStreamClient.open(port: process.port, path: path, headers: [("X-User-Id", user)])
        #expect(await stream.wait { $0.status != nil })
        #expect(stream.state.status == 200)
        try await TestClient.withClient(host: "127.0.0.1", port: process.port) { client in
            func post(_ content: String) async throws -> Int {
                let response = try await client.execute(
                    TestClient.Request(
                        "/v1/channels/\(channel)/messages", method: .post,
                        headers: [HTTPField.Name("X-User-Id")!: writer.lowercased, .contentType: "application/json"],
                        body: ByteBuffer(string: #"{"content":"\#(content)"}"#)))
                return Int(response.status.code)
            }
            #expect(try await post("while a member") == 201)
            #expect(await stream.wait { $0.events.count == 1 })
            try await memberships.remove(reader, from: channel)
            // The pod's membership cache learns of the removal by a notification: wait until a
            // request of the reader is refused, then write.
            let refused = await eventually {
                let response = try? await client.execute(
                    TestClient.Request(
                        "/v1/channels/\(channel)/messages", method: .get, headers: [HTTPField.Name("X-User-Id")!: user]))
                return response?.status == .notFound
            }
            #expect(refused)
            #expect(try await post("after the removal") == 201)
            #expect(await stream.wait(timeout: .seconds(10)) { $0.ended || $0.closed })
            #expect(stream.state.comments.contains { $0.contains("access to this channel ended") })
            #expect(stream.events.count == 1, "\(stream.events.map(\.data))")
        }
        await stream.close()
        await postgres.shutdown()
    }

    /// A client that stops reading is dropped once it leaves `STREAM_BUFFER` changes untaken, while
    /// another client of the same channel on the same process receives every change.
    @Test func aReaderThatNeverReadsIsDroppedWhileAnotherKeepsReceiving() async throws {
        // Large messages: the kernel buffers up to tcp_wmem's maximum (4 MiB by default) for a
        // client that does not read before the server's writes block.
        let writer = try serve(["MAX_CONTENT_LENGTH": "16000"])
        defer { writer.cleanUp() }
        // Room for a healthy client on a machine busy with every other suite; the stuck one is past
        // it once the kernel's buffers are full (about 270 of these messages).
        let reader = try serve(["STREAM_BUFFER": "150"])
        defer { reader.cleanUp() }
        try await writer.waitUntilReady()
        try await reader.waitUntilReady()
        let channel = UUID()
        let path = "/v1/channels/\(channel)/stream"
        let stuck = try await EventStreamClient.open(
            port: reader.port, path: path, headers: [("X-User-Id", user)], reading: false)
        let healthy = try await EventStreamClient.open(port: reader.port, path: path, headers: [("X-User-Id", user)])
        #expect(await healthy.wait { $0.status == 200 })

        let content = String(repeating: "x", count: 15_000)
        let total = 800
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<4 {
                group.addTask {
                    try await TestClient.withClient(host: "127.0.0.1", port: writer.port) { client in
                        for index in stride(from: worker, to: total, by: 4) {
                            _ = try await create(client, channel: channel, "\(index) \(content)")
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(await healthy.wait(timeout: .seconds(20)) { $0.events.count == total }, "\(healthy.events.count) of \(total)")
        #expect(healthy.events.map(\.id) == (1...total).map { String($0) }, "the healthy stream skipped or repeated a change")
        #expect(!healthy.state.closed)
        let metrics = try await TestClient.withClient(host: "127.0.0.1", port: reader.port) {
            String(buffer: try await $0.get("/metrics").body ?? ByteBuffer())
        }
        #expect(metrics.contains("messages_stream_slow_readers_total 1\n"))
        #expect(metrics.contains("messages_streams_open 1.0\n"))
        // The stuck client, once it reads again, finds its connection closed by the server.
        stuck.startReading()
        #expect(await stuck.wait(timeout: .seconds(20)) { $0.closed }, "the reader that never read was not dropped")
        await healthy.close()
    }
}
