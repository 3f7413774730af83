import Foundation

/// Makes and reads the cursors of one page sequence (one channel and scope).
struct PageCursors: Sendable {
    let codec: CursorCodec
    let binding: [UInt8]

    /// The cursor of a position.
    func encode(_ seq: Int64) -> String {
        codec.encode(seq: seq, binding: binding)
    }

    /// The position a cursor names, or nil when it is no cursor of this channel and scope.
    func seq(of cursor: String) -> Int64? {
        codec.decode(cursor, binding: binding)
    }
}
