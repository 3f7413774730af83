import Foundation
import NIOConcurrencyHelpers
import NIOCore

/// The newest pages this process answered, kept as response bytes with the revision of the Redis
/// timeline they were built from.
///
/// A read still makes its one Redis call, and names the revision it holds; when the timeline is
/// still at that revision Redis answers with its meta member alone and the page is these bytes.
/// Every write-through gives the timeline a new revision before the write is acknowledged, so a
/// page kept here is never older than what Redis holds, on any pod. Bounded by bytes; the pages
/// stored first go first.
final class HotPages: Sendable {
    /// Which newest page: the body depends on the channel, the API and the page size.
    struct Key: Hashable, Sendable {
        enum Form: Sendable { case v1, thread }
        let channelID: UUID
        let form: Form
        let limit: Int
    }

    /// A page's bytes and the timeline revision they answer.
    struct Page: Sendable {
        let revision: [UInt8]
        let body: ByteBuffer
    }

    private struct State {
        var pages: [Key: Page] = [:]
        /// Keys in the order they were first stored: the eviction order.
        var order = CircularBuffer<Key>()
        var bytes = 0
    }

    private let byteBudget: Int
    private let state = NIOLockedValueBox(State())

    /// Keeps pages up to `byteBudget` bytes of bodies; 0 keeps none.
    init(byteBudget: Int) {
        self.byteBudget = byteBudget
    }

    var isEnabled: Bool { byteBudget > 0 }

    func page(for key: Key) -> Page? {
        guard isEnabled else { return nil }
        return state.withLockedValue { $0.pages[key] }
    }

    func store(_ page: Page, for key: Key) {
        let size = page.body.readableBytes
        guard isEnabled, size <= byteBudget else { return }
        state.withLockedValue { state in
            if let previous = state.pages.updateValue(page, forKey: key) {
                state.bytes -= previous.body.readableBytes
            } else {
                state.order.append(key)
            }
            state.bytes += size
            while state.bytes > byteBudget, let oldest = state.order.popFirst() {
                if let evicted = state.pages.removeValue(forKey: oldest) { state.bytes -= evicted.body.readableBytes }
            }
        }
    }

    /// Pages and bytes held, for tests and metrics.
    var usage: (pages: Int, bytes: Int) {
        state.withLockedValue { ($0.pages.count, $0.bytes) }
    }
}
