/// A `NOTIFY` this connection heard: the channel it was sent on and its payload ('' if none).
public struct PostgresNotification: Sendable, Equatable {
    public let channel: String
    public let payload: String

    public init(channel: String, payload: String) {
        self.channel = channel
        self.payload = payload
    }
}
