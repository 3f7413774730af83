import Foundation
import NIOCore

/// Writes list responses around items that are already JSON, so a page from the timeline cache is
/// answered by joining bytes, and a page from Postgres goes through the very same code: both give
/// the same bytes for the same data. Keys are in sorted order, as `JSONResponse` writes them.
enum PageJSON {
    /// The v1 list: `{"channel":{...},"items":[...],"page":{...}}`.
    static func v1(items: [ArraySlice<UInt8>], links: PageLinks, channel: ChannelState, cursors: PageCursors)
        -> ByteBuffer
    {
        // A v1 cursor is base64url: it needs no escaping.
        func cursor(_ seq: Int64?) -> String { seq.map { "\"\(cursors.encode($0))\"" } ?? "null" }
        var buffer = ByteBuffer()
        buffer.reserveCapacity(items.reduce(160) { $0 + $1.count + 1 })
        buffer.writeString(#"{"channel":{"last_seq":\#(channel.lastSeq),"version":\#(channel.version)},"items":"#)
        writeArray(items, to: &buffer)
        buffer.writeString(
            #","page":{"after":\#(cursor(links.after)),"before":\#(cursor(links.before)),"#
                + #""has_after":\#(links.hasAfter),"has_before":\#(links.hasBefore)}}"#
        )
        return buffer
    }

    /// The v1 list of a page read from the store.
    static func v1(page: MessagePage, position: PagePosition, cursors: PageCursors) throws -> ByteBuffer {
        let items = page.items.map { ArraySlice(MessageBody.json($0)) }
        let links = PageLinks(
            position: position, firstSeq: page.items.first?.seq, lastSeq: page.items.last?.seq,
            hasBefore: page.hasBefore, hasAfter: page.hasAfter
        )
        return v1(items: items, links: links, channel: page.channel, cursors: cursors)
    }

    /// The INF326 list: `{"has_more":...,"items":[...newest first...],"next_cursor":...}`.
    static func thread(newestFirst items: [ArraySlice<UInt8>], nextCursor: String?, hasMore: Bool) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(items.reduce(120) { $0 + $1.count + 1 })
        buffer.writeString(#"{"has_more":\#(hasMore),"items":"#)
        writeArray(items, to: &buffer)
        // An INF326 cursor is an RFC 3339 time, `|` and a UUID: it needs no escaping.
        buffer.writeString(#","next_cursor":\#(nextCursor.map { "\"\($0)\"" } ?? "null")}"#)
        return buffer
    }

    /// The INF326 list of a page read from the store (ascending by seq, as the store returns it).
    static func thread(page: MessagePage, limit: Int) throws -> ByteBuffer {
        let items = page.items.reversed().map { ArraySlice(ThreadMessageBody.json($0)) }
        let nextCursor = page.items.first.map { INF326Cursor.make(createdAt: $0.createdAt.pythonISOFormat, id: $0.id) }
        return thread(newestFirst: items, nextCursor: nextCursor, hasMore: items.count == limit)
    }

    private static func writeArray(_ items: [ArraySlice<UInt8>], to buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt8(ascii: "["))
        for (index, item) in items.enumerated() {
            if index > 0 { buffer.writeInteger(UInt8(ascii: ",")) }
            buffer.writeBytes(item)
        }
        buffer.writeInteger(UInt8(ascii: "]"))
    }
}
