import Foundation
import Hummingbird

extension ChannelStreams {
    /// Writes the stream of `subscription` to its client until the stream ends: `first` (the
    /// changes after `start` the handler already read), the rest of the changes feed up to the
    /// live edge, then each change as the channel's feed reads it, a heartbeat when there was
    /// nothing to send for `heartbeat`, and a goodbye when the server shuts down. Throws when the
    /// client is gone or a read of the changes feed fails; the client resumes with
    /// `Last-Event-ID`.
    ///
    /// `mayRead`, when given, is asked again before every later batch: a caller who lost access to
    /// the channel while streaming (removed from its members) gets no change made after that, and
    /// the stream ends with a comment saying why.
    func send(
        _ subscription: Subscription, first: MessageChanges, after start: Int64, to writer: inout any ResponseBodyWriter,
        mayRead: (@Sendable () async throws -> Bool)? = nil
    ) async throws {
        var lastWrite = ContinuousClock.now
        var position = start
        func write(_ changes: MessageChanges) async throws {
            for event in ServerSentEvent.changes(changes.messages) {
                try await writer.write(event)
            }
            position = changes.nextSince(after: position)
            lastWrite = .now
        }
        // With the start as its id: a client cut off before any change resumes from there.
        try await writer.write(ServerSentEvent.opening(retry: configuration.retryHint, position: start))
        try await write(first)
        var signals = subscription.signals.makeAsyncIterator()
        /// False, having said why, once the caller may no longer read the channel.
        func mayStillRead() async throws -> Bool {
            guard let mayRead, try await !mayRead() else { return true }
            try await writer.write(ServerSentEvent.accessEnded)
            return false
        }
        while true {
            switch take(subscription, after: position) {
            case .catchUp:
                guard try await mayStillRead() else { return }
                try await write(try await readChanges(subscription.channelID, position, configuration.batch))
            case .send(let changes, let through):
                guard try await mayStillRead() else { return }
                for change in changes {
                    try await writer.write(change.event)
                }
                position = through
                lastWrite = .now
            case .wait:
                if ContinuousClock.now - lastWrite >= configuration.heartbeat {
                    try await writer.write(ServerSentEvent.heartbeat)
                    lastWrite = .now
                }
                guard await signals.next() != nil else { return }
            case .end(.shutdown):
                try await writer.write(ServerSentEvent.goodbye)
                return
            case .end(.slowReader):
                return
            }
        }
    }
}
