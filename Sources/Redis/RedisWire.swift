import CHiredis
import NIOCore

/// hiredis' reply parser fed with the bytes NIO reads: the protocol is parsed by hiredis, the I/O is
/// NIO's, so a Redis call never occupies a thread while it waits for the server.
///
/// Not thread-safe: one reader per connection, used on that connection's event loop.
final class RedisReplyReader {
    private let reader: UnsafeMutablePointer<redisReader>

    init() {
        guard let reader = redisReaderCreate() else { fatalError("hiredis could not allocate a reply reader") }
        self.reader = reader
    }

    deinit {
        redisReaderFree(reader)
    }

    /// Hands bytes read from the socket to the parser (hiredis copies them).
    func feed(_ bytes: ByteBuffer) throws(RedisError) {
        let status = bytes.withUnsafeReadableBytes { raw -> Int32 in
            guard let base = raw.baseAddress, raw.count > 0 else { return REDIS_OK }
            return redisReaderFeed(reader, base.assumingMemoryBound(to: CChar.self), raw.count)
        }
        guard status == REDIS_OK else { throw protocolError() }
    }

    /// The next complete reply, or nil when the bytes fed so far end inside one. A stream hiredis
    /// cannot parse throws; the connection must then be dropped.
    func next() throws(RedisError) -> RedisValue? {
        var reply: UnsafeMutableRawPointer?
        guard redisReaderGetReply(reader, &reply) == REDIS_OK else { throw protocolError() }
        guard let reply else { return nil }
        defer { freeReplyObject(reply) }
        return RedisValue(reply: reply.assumingMemoryBound(to: redisReply.self))
    }

    private func protocolError() -> RedisError {
        let text = withUnsafeBytes(of: reader.pointee.errstr) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
        return RedisError(code: .connectionLost, serverMessage: "protocol error: \(text)")
    }
}

extension RedisValue {
    /// Copies a hiredis reply (and its elements) out of C memory.
    init(reply: UnsafeMutablePointer<redisReply>) {
        let r = reply.pointee
        switch r.type {
        case REDIS_REPLY_STATUS: self = .status(Self.text(r))
        case REDIS_REPLY_ERROR: self = .error(Self.text(r))
        case REDIS_REPLY_INTEGER: self = .integer(Int64(r.integer))
        case REDIS_REPLY_STRING:
            self = .bulk(r.str.map { Array(UnsafeRawBufferPointer(start: $0, count: r.len)) } ?? [])
        case REDIS_REPLY_ARRAY:
            self = .array((0..<r.elements).compactMap { r.element[$0].map(RedisValue.init(reply:)) })
        default: self = .null
        }
    }

    private static func text(_ reply: redisReply) -> String {
        guard let str = reply.str else { return "" }
        return String(decoding: UnsafeRawBufferPointer(start: str, count: reply.len), as: UTF8.self)
    }
}

extension RedisCommand {
    /// Appends the command as a RESP array of bulk strings. Written here rather than by
    /// `redisFormatCommandArgv`, which would allocate a C string per command only to be copied into
    /// the socket buffer: the format is a length prefix per argument and nothing to escape.
    func write(to buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt8(ascii: "*"))
        Self.writeDecimal(arguments.count, to: &buffer)
        for argument in arguments {
            buffer.writeInteger(UInt8(ascii: "$"))
            Self.writeDecimal(argument.count, to: &buffer)
            buffer.writeBytes(argument)
            buffer.writeInteger(Self.crlf)
        }
    }

    /// The byte count of `write(to:)`'s output, to size the buffer once.
    var encodedSize: Int {
        arguments.reduce(16) { $0 + $1.count + 24 }
    }

    private static let crlf = UInt16(UInt8(ascii: "\r")) << 8 | UInt16(UInt8(ascii: "\n"))

    /// `value` in decimal, then CRLF. Counts are never negative.
    private static func writeDecimal(_ value: Int, to buffer: inout ByteBuffer) {
        var divisor = 1
        while divisor <= value / 10 { divisor *= 10 }
        var rest = value
        while divisor > 0 {
            buffer.writeInteger(UInt8(ascii: "0") + UInt8(rest / divisor))
            rest %= divisor
            divisor /= 10
        }
        buffer.writeInteger(crlf)
    }
}
