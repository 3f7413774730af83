/// The v1 JSON of who reacted with one emoji: `{"emoji","count","items":[{"user_id","reacted_at"}],
/// "has_more","next_after"}`; `next_after` (the last user id, or null) asks for the next page.
struct ReactorsBody: Encodable {
    struct Item: Encodable {
        let user_id: String
        let reacted_at: String
    }

    let emoji: String
    let count: Int64
    let items: [Item]
    let has_more: Bool
    let next_after: String?

    init(_ page: ReactorPage, emoji: ReactionEmoji) {
        self.emoji = emoji.text
        count = page.count
        items = page.items.map { Item(user_id: $0.userID.lowercased, reacted_at: $0.reactedAt.rfc3339) }
        has_more = page.hasMore
        next_after = page.hasMore ? page.items.last?.userID.lowercased : nil
    }

    private enum CodingKeys: String, CodingKey { case emoji, count, items, has_more, next_after }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(emoji, forKey: .emoji)
        try container.encode(count, forKey: .count)
        try container.encode(items, forKey: .items)
        try container.encode(has_more, forKey: .has_more)
        try container.encode(next_after, forKey: .next_after)
    }
}
