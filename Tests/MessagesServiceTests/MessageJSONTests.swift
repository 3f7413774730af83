import Foundation
import TestSupport
import Testing

@testable import MessagesService

/// The message bodies are written by `JSONWriter`; they must be the bytes Foundation's encoder
/// (`WireJSON.encoder`) gives for the same shapes, which these reference encodings spell out.
@Suite struct MessageJSONTests {
    /// Seeded random messages reaching every escape, absent and present optional, and the
    /// integer extremes.
    static func messages(count: Int, seed: UInt64) -> [Message] {
        var random = SeededGenerator(seed: seed)
        let pieces: [String] =
            (0..<0x20).map { String(UnicodeScalar(UInt8($0))) } + [
                "\"", "\\", "/", "\u{7f}", "é", "🧵", "👍🏽", "\u{2028}", "\u{FEFF}", "a", "hola ", "<@", "\u{301}", "",
            ]
        func text(_ maxPieces: Int) -> String {
            (0..<Int.random(in: 0...maxPieces, using: &random)).map { _ in pieces.randomElement(using: &random)! }.joined()
        }
        func integer() -> Int64 {
            [0, 1, -1, .max, .min, Int64.random(in: .min ... .max, using: &random)].randomElement(using: &random)!
        }
        func time() -> Timestamp {
            Timestamp(microsecondsSinceEpoch: Int64.random(in: -1_000_000_000_000...4_102_444_799_999_999, using: &random))
        }
        return (0..<count).map { _ in
            Message(
                id: UUID(), channelID: UUID(), seq: integer(), version: integer(), authorID: UUID(),
                parentID: Bool.random(using: &random) ? UUID() : nil,
                type: [nil, .text, .audio, .file].randomElement(using: &random)!, content: text(12),
                attachments: (0..<Int.random(in: 0...3, using: &random)).map { _ in
                    Attachment(
                        path: text(4), name: Bool.random(using: &random) ? text(3) : nil,
                        mimeType: Bool.random(using: &random) ? "image/png" : nil,
                        size: Bool.random(using: &random) ? integer() : nil)
                },
                mentions: (0..<Int.random(in: 0...2, using: &random)).map { _ in UUID() }, replyCount: integer(),
                reactions: Bool.random(using: &random) ? [:] : ["👍": 3, "🎉": 1, ":tada:": integer(), "é": 2],
                createdAt: time(), editedAt: Bool.random(using: &random) ? time() : nil,
                deletedAt: Bool.random(using: &random) ? time() : nil, clientMessageID: nil, requestHash: nil
            )
        }
    }

    @Test func theV1BodyIsWhatTheEncoderWrites() throws {
        for message in Self.messages(count: 500, seed: 1) {
            let expected = try WireJSON.encoder.encode(ReferenceMessageBody(message: message))
            #expect(MessageBody.json(message) == Array(expected), "\(message)")
        }
    }

    @Test func theINF326BodyIsWhatTheEncoderWrites() throws {
        for message in Self.messages(count: 500, seed: 2) {
            let expected = try WireJSON.encoder.encode(ReferenceThreadMessageBody(message: message))
            #expect(ThreadMessageBody.json(message) == Array(expected), "\(message)")
        }
    }
}

/// The v1 message JSON as an `Encodable`, for the encoder to write.
private struct ReferenceMessageBody: Encodable {
    let message: Message

    enum CodingKeys: String, CodingKey {
        case id, seq, version, type, content, attachments, mentions, reactions
        case channelID = "channel_id"
        case authorID = "author_id"
        case parentID = "parent_id"
        case replyCount = "reply_count"
        case createdAt = "created_at"
        case editedAt = "edited_at"
        case deletedAt = "deleted_at"
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(message.id.uuidString.lowercased(), forKey: .id)
        try container.encode(message.channelID.uuidString.lowercased(), forKey: .channelID)
        try container.encode(message.seq, forKey: .seq)
        try container.encode(message.version, forKey: .version)
        try container.encode(message.authorID.uuidString.lowercased(), forKey: .authorID)
        try container.encode(message.type ?? .text, forKey: .type)
        try container.encode(message.content, forKey: .content)
        try container.encode(message.attachments, forKey: .attachments)
        try container.encode(message.mentions.map { $0.uuidString.lowercased() }, forKey: .mentions)
        try container.encode(message.parentID?.uuidString.lowercased(), forKey: .parentID)
        try container.encode(message.replyCount, forKey: .replyCount)
        try container.encode(message.reactions, forKey: .reactions)
        try container.encode(message.createdAt.rfc3339, forKey: .createdAt)
        try container.encode(message.editedAt?.rfc3339, forKey: .editedAt)
        try container.encode(message.deletedAt?.rfc3339, forKey: .deletedAt)
    }
}

/// The INF326 message JSON as an `Encodable`.
private struct ReferenceThreadMessageBody: Encodable {
    let message: Message

    enum CodingKeys: String, CodingKey {
        case id, thread_id, user_id, type, content, paths, created_at, updated_at
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(message.id.uuidString.lowercased(), forKey: .id)
        try container.encode(message.channelID.uuidString.lowercased(), forKey: .thread_id)
        try container.encode(message.authorID.uuidString.lowercased(), forKey: .user_id)
        try container.encode(message.type, forKey: .type)
        try container.encode(message.content, forKey: .content)
        try container.encode(message.attachments.map(\.path), forKey: .paths)
        try container.encode(message.createdAt.pythonISOFormat, forKey: .created_at)
        try container.encode((message.editedAt ?? message.createdAt).pythonISOFormat, forKey: .updated_at)
    }
}
