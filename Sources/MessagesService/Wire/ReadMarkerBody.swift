/// The JSON body of `PUT /v1/channels/{id}/read`.
struct ReadMarkerBody: Decodable {
    let seq: Int64

    private enum CodingKeys: String, CodingKey { case seq }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        guard container.contains(.seq) else {
            throw DecodingError.keyNotFound(CodingKeys.seq, .init(codingPath: [], debugDescription: "seq is required"))
        }
        do {
            seq = try container.decode(Int64.self, forKey: .seq)
        } catch {
            // 1.5 or 2^63: Foundation reports a number that does not fit without its field; name it.
            throw DecodingError.typeMismatch(
                Int64.self, .init(codingPath: [CodingKeys.seq], debugDescription: "not an integer that fits")
            )
        }
    }
}

/// A read state as the v1 API answers it: `{"last_read_seq", "unread"}`.
struct ReadStateBody: Encodable {
    let last_read_seq: Int64
    let unread: Int

    init(_ state: ReadState) {
        last_read_seq = state.lastReadSeq
        unread = state.unread
    }
}
