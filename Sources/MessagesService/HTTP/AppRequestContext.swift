import Hummingbird

/// The per-request context of this service.
public struct AppRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage

    public init(source: Source) {
        self.coreContext = .init(source: source)
    }

    /// The request id (the caller's `X-Request-ID`, or one made up), set by `RequestIDMiddleware`.
    public var requestID: String? {
        logger[metadataKey: LogKey.requestID]?.description
    }
}
