import Foundation

/// Where the broker is and how to log in, read from an `amqp://user:password@host:port/vhost` URL.
public struct AMQPEndpoint: Sendable, Equatable {
    public var host: String
    public var port: Int
    public var user: String
    public var password: String
    public var virtualHost: String

    public init(host: String, port: Int = 5672, user: String = "guest", password: String = "guest", virtualHost: String = "/") {
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.virtualHost = virtualHost
    }

    /// Parses the URL the way RabbitMQ documents it: the path after the first `/` is the
    /// percent-decoded virtual host (`%2F` is the default `/`); no path also means `/`.
    public init(url: String) throws {
        guard let components = URLComponents(string: url), components.scheme == "amqp",
            let host = components.host, !host.isEmpty
        else {
            throw AMQPError(code: .invalidURL, serverMessage: "expected amqp://[user[:password]@]host[:port][/vhost]")
        }
        let path = components.percentEncodedPath
        let encodedVirtualHost = path.hasPrefix("/") ? String(path.dropFirst()) : path
        guard let virtualHost = encodedVirtualHost.removingPercentEncoding else {
            throw AMQPError(code: .invalidURL, serverMessage: "the virtual host is not valid percent-encoding")
        }
        self.init(
            host: host, port: components.port ?? 5672, user: components.user ?? "guest",
            password: components.password ?? "guest", virtualHost: virtualHost.isEmpty ? "/" : virtualHost
        )
    }
}
