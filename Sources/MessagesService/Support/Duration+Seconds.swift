extension Duration {
    /// The duration in seconds, fractions included (for logs, metrics and Foundation timeouts).
    var inSeconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
