extension Duration {
    /// The duration in seconds, fractions included (for logs, metrics and Foundation timeouts).
    var inSeconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}

/// Durations as people write them on a command line or in a variable: `3600`, `90s`, `15m`,
/// `1h`, `7d`.
public enum DurationText {
    /// Whole seconds, or nil when `text` is no such duration or is beyond ten years.
    public static func seconds(_ text: String) -> Int? {
        let units: [Character: Int] = ["s": 1, "m": 60, "h": 3600, "d": 86400]
        var digits = Substring(text)
        var factor = 1
        if let unit = text.last, let unitFactor = units[unit] {
            digits = digits.dropLast()
            factor = unitFactor
        }
        guard !digits.isEmpty, digits.allSatisfy(\.isASCII), let value = Int(digits), value >= 0,
            value <= 10 * 366 * 86_400 / factor
        else { return nil }
        return value * factor
    }
}
