import Foundation

/// Where a Redis server is and how to log in, read from a `redis://[[user]:password@]host[:port][/db]` URL.
public struct RedisEndpoint: Sendable, Equatable {
    public var host: String
    public var port: Int
    public var username: String?
    public var password: String?
    public var database: Int

    public init(host: String, port: Int = 6379, username: String? = nil, password: String? = nil, database: Int = 0) {
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.database = database
    }

    /// Parses a `redis://` URL; throws `RedisError.Code.invalidURL` naming what is wrong.
    public init(url: String) throws(RedisError) {
        guard let components = URLComponents(string: url), components.scheme == "redis",
            let host = components.host, !host.isEmpty
        else {
            throw RedisError(code: .invalidURL, serverMessage: "expected redis://[[user]:password@]host[:port][/db]")
        }
        let path = components.path.trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        guard path.isEmpty || Int(path).map({ $0 >= 0 }) == true else {
            throw RedisError(code: .invalidURL, serverMessage: "the database must be a number, e.g. /0")
        }
        self.host = host
        self.port = components.port ?? 6379
        self.username = components.user.flatMap { $0.isEmpty ? nil : $0.removingPercentEncoding }
        self.password = components.password?.removingPercentEncoding
        self.database = Int(path) ?? 0
    }
}
