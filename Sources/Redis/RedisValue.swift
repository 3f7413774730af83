/// One reply of the Redis protocol, copied out of hiredis.
public enum RedisValue: Sendable, Equatable {
    /// A status reply such as `OK`.
    case status(String)
    /// An error reply such as `NOSCRIPT No matching script`; `RedisClient.send` throws these instead.
    case error(String)
    case integer(Int64)
    /// A bulk string: any bytes.
    case bulk([UInt8])
    /// A nil bulk string or nil array.
    case null
    case array([RedisValue])

    /// A status or bulk reply as text (bulk bytes read as UTF-8).
    public var string: String? {
        switch self {
        case .status(let text): text
        case .bulk(let bytes): String(decoding: bytes, as: UTF8.self)
        default: nil
        }
    }

    /// The bytes of a bulk reply.
    public var bytes: [UInt8]? {
        if case .bulk(let bytes) = self { return bytes }
        return nil
    }

    /// An integer reply, or a bulk reply holding a decimal integer.
    public var integer: Int64? {
        switch self {
        case .integer(let value): value
        case .bulk(let bytes): Int64(String(decoding: bytes, as: UTF8.self))
        default: nil
        }
    }

    /// The elements of an array reply.
    public var array: [RedisValue]? {
        if case .array(let values) = self { return values }
        return nil
    }
}

/// What can be one argument of a command: every argument goes to Redis as its bytes, so binary
/// data needs no escaping.
public protocol RedisArgument: Sendable {
    var redisBytes: [UInt8] { get }
}

extension String: RedisArgument {
    public var redisBytes: [UInt8] { Array(utf8) }
}

extension Array: RedisArgument where Element == UInt8 {
    public var redisBytes: [UInt8] { self }
}

extension Int: RedisArgument {
    public var redisBytes: [UInt8] { Array(String(self).utf8) }
}

extension Int64: RedisArgument {
    public var redisBytes: [UInt8] { Array(String(self).utf8) }
}

/// One command: its name and arguments, each sent as a length-prefixed byte string.
public struct RedisCommand: Sendable, Equatable {
    /// The name, then each argument; never empty (a command without a name gets no reply, which
    /// would shift every later reply on a pipelined connection).
    public private(set) var arguments: [[UInt8]]

    /// A command such as `RedisCommand("SET", key, value)`.
    public init(_ name: String, _ arguments: any RedisArgument...) {
        self.init(name, arguments)
    }

    /// A command with arguments built at run time.
    public init(_ name: String, _ arguments: [any RedisArgument]) {
        self.arguments = [Array(name.utf8)] + arguments.map { $0.redisBytes }
    }
}
