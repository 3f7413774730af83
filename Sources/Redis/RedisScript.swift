import Crypto

/// A Lua script that runs by its SHA-1 (`EVALSHA`), so its text crosses the network only when the
/// server does not know it yet.
public struct RedisScript: Sendable, Equatable {
    public let source: String
    /// The lowercase hex SHA-1 of `source`, as Redis names the script.
    public let sha1: String

    public init(_ source: String) {
        self.source = source
        self.sha1 = Insecure.SHA1.hash(data: Array(source.utf8)).map { byte in
            let hex = String(byte, radix: 16)
            return byte < 16 ? "0" + hex : hex
        }.joined()
    }
}
