import Hummingbird
import NIOCore

/// The per-request context of this service.
public struct AppRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The address of the peer that sent the request (a proxy, behind one).
    public let remoteAddress: SocketAddress?
    /// The request's connection: a live stream closes it to drop a client that stopped reading.
    public let channel: any Channel
    /// Who calls, once a route group's caller middleware verified it; nil before, and for calls
    /// the API takes without a verified identity.
    public var caller: UserIdentity?
    /// The caller's role in the channel of the path, once `ChannelAccessMiddleware` checked it.
    public var channelRole: ChannelRole?

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.remoteAddress = source.channel.remoteAddress
        self.channel = source.channel
    }
}
