import Foundation

extension Date {
    /// `2026-11-23T10:00:00.123Z`: how times appear in logs, the journal and alerts.
    var iso8601WithFractions: String {
        formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
    }
}
