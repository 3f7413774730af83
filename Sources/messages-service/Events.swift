import ArgumentParser
import Foundation
import Logging
import MessagesService
import Postgres

struct Events: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Dead events: list the events the broker refused OUTBOX_MAX_ATTEMPTS times, and replay them.",
        discussion: """
            The relay moves an event the broker nacked OUTBOX_MAX_ATTEMPTS times (10 by default) \
            from the outbox to the table dead_events, so that the others flow. Find why the broker \
            refuses it (docs/events.md, 'Dead events'), fix that, then replay. Reads DATABASE_URL.
            """,
        subcommands: [Dead.self, Replay.self]
    )

    struct Dead: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the dead events, oldest first.",
            discussion: """
                One line each: event_id, routing_key, channel_id, created_at, died_at, attempts, \
                refusals, last_error.
                """
        )

        @Option(help: "At most this many events.")
        var limit: Int = 100

        @Flag(help: "Print each event as a JSON object (one a line).")
        var json = false

        func run() async throws {
            guard (1...100_000).contains(limit) else { throw ValidationError("--limit must be 1...100000") }
            let events = try await withDatabase("events dead", try loadConfiguration()) {
                try await DeadEvents.list($0, limit: limit)
            }
            for event in events {
                if json {
                    let line = try JSONSerialization.data(withJSONObject: event.json, options: [.sortedKeys])
                    print(String(decoding: line, as: UTF8.self))
                } else {
                    print(
                        [
                            event.eventID, event.routingKey, "channel_id=\(event.channelID)", "created_at=\(event.createdAt)",
                            "died_at=\(event.diedAt)", "attempts=\(event.attempts)", "refusals=\(event.refusals)",
                            event.lastError ?? "",
                        ].joined(separator: "  "))
                }
            }
        }
    }

    struct Replay: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Put dead events back into the outbox, in their original order; the relay publishes them again.",
            discussion: """
                Name the events by event_id, or replay every dead event with --all. An id that is \
                not a dead event is reported and makes the command fail; the others are replayed.
                """
        )

        @Argument(help: ArgumentHelp("The event_id of each event to replay.", valueName: "event-id"))
        var eventIDs: [String] = []

        @Flag(help: "Replay every dead event.")
        var all = false

        func validate() throws {
            guard all != !eventIDs.isEmpty else { throw ValidationError("name event ids, or --all (not both)") }
            guard eventIDs.count <= 10_000 else { throw ValidationError("at most 10000 event ids at once") }
            for id in eventIDs where UUID(uuidString: id) == nil {
                throw ValidationError("'\(id)' is not an event id (a UUID)")
            }
        }

        func run() async throws {
            let wanted = all ? nil : eventIDs.compactMap(UUID.init(uuidString:))
            let replayed = try await withDatabase("events replay", try loadConfiguration()) {
                try await DeadEvents.replay($0, eventIDs: wanted)
            }
            for id in replayed { print("replayed \(id)") }
            let missing = Set(eventIDs.map { $0.lowercased() }).subtracting(replayed)
            for id in missing.sorted() {
                FileHandle.standardError.write(Data("messages-service events replay: \(id) is not a dead event\n".utf8))
            }
            if !missing.isEmpty { throw ExitCode.failure }
        }
    }
}
