import CHiredis
import Pooling

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#else
    import Darwin
#endif

/// One hiredis connection with connect and command timeouts.
///
/// `@unchecked Sendable` because a `redisContext` must never be used by two threads at once: the
/// pool lends each connection to one caller at a time, and each call runs on one thread-pool thread
/// for its whole duration.
final class RedisConnection: PooledConnection, @unchecked Sendable {
    private var context: UnsafeMutablePointer<redisContext>?

    private init(context: UnsafeMutablePointer<redisContext>) {
        self.context = context
    }

    deinit {
        close()
    }

    /// Connects (blocking), then logs in and selects the database the endpoint names.
    static func connect(to endpoint: RedisEndpoint, connectTimeout: Duration, commandTimeout: Duration) throws
        -> RedisConnection
    {
        guard let context = redisConnectWithTimeout(endpoint.host, Int32(endpoint.port), timeValue(connectTimeout)) else {
            throw RedisError(code: .connectionFailed, serverMessage: "hiredis could not allocate a context")
        }
        guard context.pointee.err == 0 else {
            let message = Self.errorText(context)
            redisFree(context)
            throw RedisError(code: .connectionFailed, serverMessage: message)
        }
        // The socket timeouts bound every read and write, so a hung server costs one timeout, not a
        // blocked thread. A dead peer is also found by keepalive.
        redisSetTimeout(context, timeValue(commandTimeout))
        redisEnableKeepAlive(context)
        let connection = RedisConnection(context: context)
        var setup: [RedisCommand] = []
        if let password = endpoint.password {
            setup.append(endpoint.username.map { RedisCommand("AUTH", $0, password) } ?? RedisCommand("AUTH", password))
        }
        if endpoint.database != 0 {
            setup.append(RedisCommand("SELECT", endpoint.database))
        }
        if !setup.isEmpty {
            let replies = try connection.pipeline(setup)
            if case .error(let message) = replies.first(where: { if case .error = $0 { true } else { false } }) {
                connection.close()
                throw RedisError(code: .connectionFailed, serverMessage: message)
            }
        }
        return connection
    }

    var isUsable: Bool {
        guard let context else { return false }
        return context.pointee.err == 0
    }

    /// Every reply is read in `pipeline`, so a usable connection has nothing pending.
    var isReusable: Bool { isUsable }

    /// Sends every command, then reads every reply (blocking): one round trip. Error replies come
    /// back as `.error` values; a broken or timed-out connection throws and stays unusable.
    func pipeline(_ commands: [RedisCommand]) throws -> [RedisValue] {
        guard let context, context.pointee.err == 0 else {
            throw RedisError(code: .connectionLost, serverMessage: "connection is closed")
        }
        for command in commands {
            guard Self.append(command, to: context) == REDIS_OK else { throw Self.failure(context) }
        }
        var replies: [RedisValue] = []
        replies.reserveCapacity(commands.count)
        for _ in commands {
            var reply: UnsafeMutableRawPointer?
            guard redisGetReply(context, &reply) == REDIS_OK, let reply else { throw Self.failure(context) }
            defer { freeReplyObject(reply) }
            replies.append(Self.value(of: reply.assumingMemoryBound(to: redisReply.self)))
        }
        return replies
    }

    func close() {
        if let context { redisFree(context) }
        context = nil
    }

    /// Queues one command in hiredis' output buffer; the argument bytes are copied there.
    private static func append(_ command: RedisCommand, to context: UnsafeMutablePointer<redisContext>) -> Int32 {
        let joined = command.arguments.flatMap { $0 }
        let lengths = command.arguments.map(\.count)
        return joined.withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { bytes in
                // An empty buffer may have a nil base; hiredis reads no byte of a zero-length argument.
                let base = bytes.baseAddress ?? UnsafePointer(bitPattern: 1)!
                var offset = 0
                var pointers: [UnsafePointer<CChar>?] = lengths.map { length in
                    defer { offset += length }
                    return base + offset
                }
                return pointers.withUnsafeMutableBufferPointer { argv in
                    redisAppendCommandArgv(context, Int32(lengths.count), argv.baseAddress, lengths)
                }
            }
        }
    }

    private static func value(of reply: UnsafeMutablePointer<redisReply>) -> RedisValue {
        let r = reply.pointee
        switch r.type {
        case REDIS_REPLY_STATUS: return .status(text(r))
        case REDIS_REPLY_ERROR: return .error(text(r))
        case REDIS_REPLY_INTEGER: return .integer(Int64(r.integer))
        case REDIS_REPLY_STRING:
            return .bulk(r.str.map { Array(UnsafeRawBufferPointer(start: $0, count: r.len)) } ?? [])
        case REDIS_REPLY_ARRAY:
            return .array((0..<r.elements).compactMap { r.element[$0].map(value(of:)) })
        default: return .null
        }
    }

    private static func text(_ reply: redisReply) -> String {
        guard let str = reply.str else { return "" }
        return String(decoding: UnsafeRawBufferPointer(start: str, count: reply.len), as: UTF8.self)
    }

    private static func failure(_ context: UnsafeMutablePointer<redisContext>) -> RedisError {
        let message = errorText(context)
        // hiredis reports a socket timeout as an I/O error with EAGAIN's text.
        if message.contains("temporarily unavailable") || message.contains("timed out") {
            return RedisError(code: .timeout, serverMessage: message)
        }
        return RedisError(code: .connectionLost, serverMessage: message)
    }

    private static func timeValue(_ duration: Duration) -> timeval {
        let (seconds, microseconds) = duration.timevalFields
        return timeval(tv_sec: seconds, tv_usec: microseconds)
    }

    private static func errorText(_ context: UnsafeMutablePointer<redisContext>) -> String {
        withUnsafeBytes(of: context.pointee.errstr) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
    }
}
