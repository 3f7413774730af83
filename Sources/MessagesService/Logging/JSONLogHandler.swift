import Foundation
import Logging

/// Writes one JSON object a line: `time`, `level`, `message`, `logger`, `source`, then the
/// metadata, numbers and booleans as JSON numbers and booleans, so log tools can filter on them.
public struct JSONLogHandler: LogHandler {
    /// Where a finished line (newline included) goes; stdout in production, a buffer in tests.
    public typealias Output = @Sendable (Data) -> Void

    /// Stdout, through a writer thread: logging never waits for whoever reads stdout.
    public static let standardOutput: Output = { AsyncLineWriter.standardOutput.write($0) }

    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    private let label: String
    private let output: Output

    /// Creates a handler for a logger label.
    public init(label: String, output: @escaping Output = JSONLogHandler.standardOutput) {
        self.label = label
        self.output = output
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var fields: [String: Any] = [:]
        for (key, value) in metadata { fields[key] = Self.json(value) }
        for (key, value) in event.metadata ?? [:] { fields[key] = Self.json(value) }
        fields["time"] = Date().iso8601WithFractions
        fields["level"] = event.level.rawValue
        fields["message"] = event.message.description
        fields["logger"] = label
        fields["source"] = event.source
        guard var line = try? JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys, .withoutEscapingSlashes])
        else { return }
        line.append(UInt8(ascii: "\n"))
        output(line)
    }

    /// A metadata value as a JSON value: numbers and booleans keep their type, the rest is text.
    static func json(_ value: Logger.Metadata.Value) -> Any {
        switch value {
        case .string(let text):
            return text
        case .stringConvertible(let value):
            switch value {
            case let number as Int: return number
            case let number as Int64: return number
            case let number as Double where number.isFinite: return number
            case let flag as Bool: return flag
            default: return value.description
            }
        case .dictionary(let dictionary):
            return dictionary.mapValues(json)
        case .array(let array):
            return array.map(json)
        }
    }
}
