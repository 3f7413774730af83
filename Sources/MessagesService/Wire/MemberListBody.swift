/// A page of a channel's members: `{"items": [...], "next_after": <user id> | null}`.
struct MemberListBody: Encodable {
    let items: [MemberBody]
    /// The `after` of the next page; null on the last one.
    let nextAfter: String?

    enum CodingKeys: String, CodingKey {
        case items
        case nextAfter = "next_after"
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(items, forKey: .items)
        try container.encode(nextAfter, forKey: .nextAfter)
    }
}
