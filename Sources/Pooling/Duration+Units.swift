/// The units the C libraries take timeouts in. Each rounds down (toward zero).
extension Duration {
    /// Whole and fractional seconds.
    package var totalSeconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }

    /// Whole milliseconds (libpq's `statement_timeout`, `poll`).
    package var totalMilliseconds: Int64 {
        components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000
    }

    /// Whole microseconds.
    package var totalMicroseconds: Int64 {
        components.seconds * 1_000_000 + components.attoseconds / 1_000_000_000_000
    }

    /// Whole nanoseconds.
    package var totalNanoseconds: Int64 {
        components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000
    }

    /// The fields of a C `timeval`: whole seconds and the microseconds beyond them; a negative
    /// duration is zero. (Each C library's module imports `timeval` as a type of its own, so each
    /// layer makes its `timeval` from these.)
    package var timevalFields: (seconds: Int, microseconds: Int) {
        let microseconds = max(totalMicroseconds, 0)
        return (Int(microseconds / 1_000_000), Int(microseconds % 1_000_000))
    }
}
