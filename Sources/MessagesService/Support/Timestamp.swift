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

    /// Python's form of a naive UTC time, `date<separator>time[.microseconds]`.
    func pythonForm(separator: String) -> String {
        let parts = civil
        let fraction = parts.microsecond == 0 ? "" : "." + Self.digits(parts.microsecond, 6)
        return parts.date + separator + parts.time + fraction
    }

    /// The UTC calendar date and time of day (days-from-civil, inverted; proleptic Gregorian).
    private var civil: (date: String, time: String, microsecond: Int64) {
        let fields = civilFields
        return (
            "\(Self.digits(fields.year, 4))-\(Self.digits(fields.month, 2))-\(Self.digits(fields.day, 2))",
            "\(Self.digits(fields.hour, 2)):\(Self.digits(fields.minute, 2)):\(Self.digits(fields.second, 2))",
            fields.microsecond
        )
    }

    /// `civil` as numbers, for writers that spell them without strings (`JSONWriter.timestamp`).
    var civilFields: (year: Int64, month: Int64, day: Int64, hour: Int64, minute: Int64, second: Int64, microsecond: Int64) {
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
        return (year, month, day, seconds / 3600, seconds / 60 % 60, seconds % 60, dayMicroseconds % 1_000_000)
    }

    /// Reads an ISO 8601 time as INF326 cursors carry it: `YYYY-MM-DD`, then optionally `T` or a
    /// space, `HH:MM`, `:SS`, a fraction (rounded to microseconds) and `Z` or `±HH[:MM]`; no
    /// offset means UTC. Nil for anything else or a field out of range.
    public init?(iso8601 text: String) {
        guard let match = text.wholeMatch(of: Self.iso8601) else { return nil }
        let number = { (part: Substring?) in part.flatMap { Int64($0) } ?? 0 }
        let (year, month, day) = (number(match.1), number(match.2), number(match.3))
        let (hour, minute, second) = (number(match.4), number(match.5), number(match.6))
        let daysInMonth: [Int64] = [
            31, (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31,
        ]
        guard year >= 1, (1...12).contains(month), (1...daysInMonth[Int(month) - 1]).contains(day), hour <= 24,
            minute <= 59, second <= 60, hour < 24 || (minute == 0 && second == 0)
        else { return nil }
        var fraction: Int64 = 0
        if let digits = match.7 {
            let padded = (digits + "0000000").prefix(7)
            fraction = ((Int64(padded) ?? 0) + 5) / 10
            guard hour < 24 || fraction == 0 else { return nil }
        }
        var offsetSeconds: Int64 = 0
        if let sign = match.8 {
            let hours = number(match.9)
            let minutes = number(match.10)
            guard hours <= 15, minutes <= 59 else { return nil }
            offsetSeconds = (sign == "-" ? -1 : 1) * (hours * 3600 + minutes * 60)
        }
        // Days from the civil date (proleptic Gregorian), the inverse of `civil`.
        let shiftedYear = month <= 2 ? year - 1 : year
        let era = shiftedYear / 400
        let yearOfEra = shiftedYear - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        let days = era * 146_097 + dayOfEra - 719_468
        let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offsetSeconds
        self.init(microsecondsSinceEpoch: seconds * 1_000_000 + fraction)
    }

    nonisolated(unsafe) private static let iso8601 =
        /([0-9]{4})-([0-9]{2})-([0-9]{2})(?:[T ]([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:\.([0-9]{1,9}))?)?)?(?:[Zz]|([+-])([0-9]{2}):?([0-9]{2})?)?/

    private static func floorDivide(_ value: Int64, _ divisor: Int64) -> (Int64, Int64) {
        let remainder = value % divisor
        return remainder < 0 ? (value / divisor - 1, remainder + divisor) : (value / divisor, remainder)
    }

    private static func digits(_ value: Int64, _ width: Int) -> String {
        let text = String(value)
        return text.count >= width ? text : String(repeating: "0", count: width - text.count) + text
    }
}
