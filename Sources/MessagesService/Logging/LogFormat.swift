/// How log lines look on stdout (`LOG_FORMAT`).
public enum LogFormat: String, Sendable, CaseIterable {
    /// One JSON object a line, for log collectors.
    case json
    /// swift-log's text lines, for humans.
    case text
}
