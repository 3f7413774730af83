import ArgumentParser
import Foundation
import Logging
import MessagesService
import Postgres

struct Errors: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the error journal: warnings and errors every pod logged (table error_events).",
        discussion: """
            Newest first, one line each: time, level, source, message, then request_id, \
            user_id, channel_id and the other metadata. Reads DATABASE_URL. Entries are kept \
            ERROR_RETENTION_DAYS (30 by default).
            """
    )

    @Option(help: "How far back: a number of seconds, or with a unit: 90s, 15m, 1h, 7d.")
    var since: String = "1h"

    @Option(help: "The least severe level listed: warning, error or critical.")
    var level: String = "warning"

    @Option(help: "At most this many entries.")
    var limit: Int = 100

    @Flag(help: "Print each entry as a JSON object (one a line).")
    var json = false

    func run() async throws {
        let configuration = try loadConfiguration()
        guard let seconds = DurationText.seconds(since), (1...3650 * 86_400).contains(seconds) else {
            throw ValidationError("--since must be like 3600, 90s, 15m, 1h or 7d (1 s to 3650 d)")
        }
        guard let minimumLevel = Logger.Level(rawValue: level), ErrorEvents.levels.contains(minimumLevel) else {
            throw ValidationError("--level must be warning, error or critical")
        }
        guard (1...100_000).contains(limit) else { throw ValidationError("--limit must be 1...100000") }
        let entries = try await withDatabase("errors", configuration) {
            try await ErrorEvents.list($0, since: .seconds(seconds), minimumLevel: minimumLevel, limit: limit)
        }
        for entry in entries {
            if json {
                print(String(decoding: entry.jsonLine(), as: UTF8.self))
            } else {
                print(Self.line(entry))
            }
        }
    }

    static func line(_ entry: JournalEntry) -> String {
        var fields = [
            entry.time.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true)),
            entry.level.padding(toLength: 8, withPad: " ", startingAt: 0), entry.source, entry.message,
        ]
        if let requestID = entry.requestID { fields.append("request_id=\(requestID)") }
        if let userID = entry.userID { fields.append("user_id=\(userID.uuidString.lowercased())") }
        if let channelID = entry.channelID { fields.append("channel_id=\(channelID.uuidString.lowercased())") }
        if entry.metadata != "{}" { fields.append(entry.metadata) }
        return fields.joined(separator: "  ")
    }
}
