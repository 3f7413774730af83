import Foundation

/// Where to learn which server is the primary: Redis Sentinel. A connection asks the sentinels,
/// in turn, for the address of `primaryName`, connects there, and checks with `ROLE` that the
/// server is a primary; after a failover the broken connections reconnect the same way, to
/// whichever server the sentinels promoted.
public struct RedisSentinel: Sendable, Equatable {
    /// The sentinels (host and port only; they are asked without AUTH or SELECT).
    public var sentinels: [RedisEndpoint]
    /// The name the sentinels monitor the primary by (`sentinel monitor <name> ...`).
    public var primaryName: String

    public init(sentinels: [RedisEndpoint], primaryName: String) {
        self.sentinels = sentinels
        self.primaryName = primaryName
    }

    /// Parses `host:port,host:port` (port 26379 when left out); nil when a part is no address.
    public static func addresses(_ text: String) -> [RedisEndpoint]? {
        let parts = text.split(separator: ",", omittingEmptySubsequences: true).map {
            $0.trimmingCharacters(in: .whitespaces)
        }
        guard !parts.isEmpty else { return nil }
        var endpoints: [RedisEndpoint] = []
        for part in parts {
            let pieces = part.split(separator: ":", omittingEmptySubsequences: false)
            guard (1...2).contains(pieces.count), !pieces[0].isEmpty else { return nil }
            var port = 26379
            if pieces.count == 2 {
                guard let number = Int(pieces[1]), (1...65535).contains(number) else { return nil }
                port = number
            }
            endpoints.append(RedisEndpoint(host: String(pieces[0]), port: port))
        }
        return endpoints
    }
}
