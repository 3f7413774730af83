import Foundation
import Logging
import NIOConcurrencyHelpers
import Tracing

/// What is known about the request being served: its id from the start, its user and channel once
/// a controller has read them. Bound to the request's task (`RequestScope.current`), so every log
/// line written while serving it carries them (`metadataProvider`), whichever component logs, and
/// the store reads the request id for the event's `correlation_id` without every call carrying it.
public final class RequestScope: Sendable {
    @TaskLocal public static var current: RequestScope?

    public let requestID: String
    /// The W3C trace context the request came with (`traceparent`), if valid.
    public let trace: TraceContext?
    private let identity = NIOLockedValueBox<(userID: UUID?, channelID: UUID?)>((nil, nil))

    public init(requestID: String, trace: TraceContext? = nil) {
        self.requestID = requestID
        self.trace = trace
    }

    public var userID: UUID? {
        get { identity.withLockedValue { $0.userID } }
        set { identity.withLockedValue { $0.userID = newValue } }
    }

    public var channelID: UUID? {
        get { identity.withLockedValue { $0.channelID } }
        set { identity.withLockedValue { $0.channelID = newValue } }
    }

    /// The trace context the current task passes on (with the events it writes): its span's when
    /// a tracer made one, else the one its request came with.
    public static var traceContextToPropagate: TraceContext? {
        ServiceContext.current.flatMap(TraceContext.of) ?? current?.trace
    }

    /// `request_id`, `trace_id` when the request came with a trace context, and `user_id` and
    /// `channel_id` when known, on every line logged inside a request.
    public static let metadataProvider = Logger.MetadataProvider {
        guard let scope = RequestScope.current else { return [:] }
        var metadata: Logger.Metadata = [LogKey.requestID: .string(scope.requestID)]
        if let trace = scope.trace { metadata[LogKey.traceID] = .string(trace.traceID) }
        let (userID, channelID) = scope.identity.withLockedValue { ($0.userID, $0.channelID) }
        if let userID { metadata[LogKey.userID] = .string(userID.lowercased) }
        if let channelID { metadata[LogKey.channelID] = .string(channelID.lowercased) }
        return metadata
    }
}

/// Log metadata keys shared by every part of the service.
enum LogKey {
    static let requestID = "request_id"
    static let userID = "user_id"
    static let channelID = "channel_id"
    static let traceID = "trace_id"
}
