import NIOConcurrencyHelpers

/// Runs one operation per key at a time: callers that ask for a key already being worked on wait
/// for that run's result instead of starting their own (e.g. concurrent cache misses of a channel
/// share one database query).
final class SingleFlight<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    private let running = NIOLockedValueBox([Key: Task<Value, any Error>]())

    /// The result of the run for `key`, started now or joined; `joined` is true when it was already
    /// under way, and may therefore have begun before something the caller did just before.
    func run(_ key: Key, _ operation: @escaping @Sendable () async throws -> Value) async throws
        -> (value: Value, joined: Bool)
    {
        let (task, joined) = running.withLockedValue { running in
            if let task = running[key] { return (task, true) }
            // The task removes itself under the same lock, which is held until it is stored.
            let task = Task {
                defer { _ = self.running.withLockedValue { $0.removeValue(forKey: key) } }
                return try await operation()
            }
            running[key] = task
            return (task, false)
        }
        return (try await task.value, joined)
    }
}
