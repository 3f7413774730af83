import Foundation

/// The cursors and flags of a v1 page.
struct PageLinks: Equatable {
    var before: Int64?
    var after: Int64?
    var hasBefore: Bool
    var hasAfter: Bool

    /// An empty page keeps the position it was asked for, so a client can keep polling it.
    init(position: PagePosition, firstSeq: Int64?, lastSeq: Int64?, hasBefore: Bool, hasAfter: Bool) {
        let (beforeSeq, afterSeq): (Int64?, Int64?) =
            switch position {
            case .newest: (nil, nil)
            // Saturating: a position is a client's value, and must never trap here.
            case .before(let seq): (seq, seq.saturatingAdd(-1))
            case .after(let seq): (seq.saturatingAdd(1), seq)
            case .around(let seq): (seq, seq.saturatingAdd(-1))
            }
        self.before = firstSeq ?? beforeSeq
        self.after = lastSeq ?? afterSeq
        self.hasBefore = hasBefore
        self.hasAfter = hasAfter
    }
}
