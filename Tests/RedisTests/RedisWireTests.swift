import NIOCore
import TestSupport
import Testing

@testable import Redis

/// The RESP encoder and hiredis' reply reader, without a server: a command is itself a valid reply
/// (an array of bulk strings), so encoding it and reading it back must give its arguments, however
/// the bytes are split into reads.
struct RedisWireTests {
    @Test func commandsReadBackWhateverTheReadBoundaries() throws {
        var random = SeededGenerator(seed: 6379)
        for round in 0..<300 {
            let commands = (0..<Int.random(in: 1...4, using: &random)).map { _ in
                RedisCommand("CMD", (0..<Int.random(in: 0...6, using: &random)).map { _ in randomArgument(&random) })
            }
            var stream = ByteBuffer()
            for command in commands { command.write(to: &stream) }
            #expect(stream.readableBytes <= commands.reduce(0) { $0 + $1.encodedSize }, "round \(round)")
            let reader = RedisReplyReader()
            var replies: [RedisValue] = []
            while stream.readableBytes > 0 {
                let piece = stream.readSlice(length: Int.random(in: 1...max(1, stream.readableBytes), using: &random))!
                try reader.feed(piece)
                while let reply = try reader.next() { replies.append(reply) }
            }
            #expect(replies == commands.map { .array($0.arguments.map(RedisValue.bulk)) }, "round \(round)")
        }
    }

    @Test func repliesOfEveryKindAreCopiedOut() throws {
        let reader = RedisReplyReader()
        try reader.feed(ByteBuffer(string: "+OK\r\n-ERR wrong\r\n:-42\r\n$-1\r\n*2\r\n$0\r\n\r\n*1\r\n:7\r\n$3\r\nab"))
        #expect(try reader.next() == .status("OK"))
        #expect(try reader.next() == .error("ERR wrong"))
        #expect(try reader.next() == .integer(-42))
        #expect(try reader.next() == .null)
        #expect(try reader.next() == .array([.bulk([]), .array([.integer(7)])]))
        #expect(try reader.next() == nil)
        try reader.feed(ByteBuffer(string: "c\r\n"))
        #expect(try reader.next() == .bulk(Array("abc".utf8)))
    }

    @Test func aStreamThatIsNotRESPIsAnError() throws {
        let reader = RedisReplyReader()
        try reader.feed(ByteBuffer(string: "HTTP/1.1 400 Bad Request\r\n"))
        let error = #expect(throws: RedisError.self) { try reader.next() }
        #expect(error?.code == .connectionLost)
        #expect(error?.isOutage == true)
    }

    private func randomArgument(_ random: inout SeededGenerator) -> [UInt8] {
        switch Int.random(in: 0..<4, using: &random) {
        case 0: []
        case 1: Array("\r\n$*+-:".utf8)
        case 2: (0..<Int.random(in: 1...20_000, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
        default: (0..<Int.random(in: 1...12, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
        }
    }
}
