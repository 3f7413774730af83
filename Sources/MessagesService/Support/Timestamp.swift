/// A point in time with Postgres' precision (microseconds since the Unix epoch, UTC), and the
/// text forms each API writes it in.
public struct Timestamp: Sendable, Equatable, Comparable {
    public let microsecondsSinceEpoch: Int64

    public init(microsecondsSinceEpoch: Int64) {
        self.microsecondsSinceEpoch = microsecondsSinceEpoch
    }

    public static func < (lhs: Timestamp, rhs: Timestamp) -> Bool {
        lhs.microsecondsSinceEpoch < rhs.microsecondsSinceEpoch
    }

    /// RFC 3339 in UTC with milliseconds (`2026-11-30T03:51:46.235Z`): the v1 API and events.
    public var rfc3339: String {
        let parts = civil
        return "\(parts.date)T\(parts.time).\(Self.digits(parts.microsecond / 1000, 3))Z"
    }

    /// Python's `datetime.isoformat()` of a naive UTC time (`2026-11-30T03:51:46.235349`, no
    /// fraction when it is zero): what the INF326 service answered.
    public var pythonISOFormat: String {
        pythonForm(separator: "T")
    }

    /// Python's `str(datetime)` of a naive UTC time (`2026-11-30 03:51:46.235349`): what the
    /// INF326 service published.
    public var pythonString: String {
        pythonForm(separator: " ")
    }

    private func pythonForm(separator: String) -> String {
        let parts = civil
        let fraction = parts.microsecond == 0 ? "" : "." + Self.digits(parts.microsecond, 6)
        return parts.date + separator + parts.time + fraction
    }

    /// The UTC calendar date and time of day (days-from-civil, inverted; proleptic Gregorian).
    private var civil: (date: String, time: String, microsecond: Int64) {
        let perDay: Int64 = 86_400_000_000
        let (days, dayMicroseconds) = Self.floorDivide(microsecondsSinceEpoch, perDay)
        let shifted = days + 719_468
        let era = (shifted >= 0 ? shifted : shifted - 146_096) / 146_097
        let dayOfEra = shifted - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        let seconds = dayMicroseconds / 1_000_000
        return (
            "\(Self.digits(year, 4))-\(Self.digits(month, 2))-\(Self.digits(day, 2))",
            "\(Self.digits(seconds / 3600, 2)):\(Self.digits(seconds / 60 % 60, 2)):\(Self.digits(seconds % 60, 2))",
            dayMicroseconds % 1_000_000
        )
    }

    private static func floorDivide(_ value: Int64, _ divisor: Int64) -> (Int64, Int64) {
        let remainder = value % divisor
        return remainder < 0 ? (value / divisor - 1, remainder + divisor) : (value / divisor, remainder)
    }

    private static func digits(_ value: Int64, _ width: Int) -> String {
        let text = String(value)
        return text.count >= width ? text : String(repeating: "0", count: width - text.count) + text
    }
}
