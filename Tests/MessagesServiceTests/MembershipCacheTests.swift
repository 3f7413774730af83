import Foundation
import Testing

@testable import MessagesService

/// The per-pod membership cache: when it may answer, and which reads it keeps. No server needed.
@Suite struct MembershipCacheTests {
    let key = MembershipCache.Key(channelID: UUID(), userID: UUID())
    let other = MembershipCache.Key(channelID: UUID(), userID: UUID())

    /// A cache that has heard every change until now.
    func confirmedCache(capacity: Int = 100) -> MembershipCache {
        let cache = MembershipCache(capacity: capacity, maxStaleness: .seconds(60))
        cache.confirm(heardUntil: .now)
        return cache
    }

    @Test func answersNothingUntilConfirmedNorOnceTheConfirmationIsTooOld() throws {
        let fresh = MembershipCache(capacity: 10, maxStaleness: .seconds(1))
        let (entry, epoch) = fresh.lookup(key)
        #expect(entry == nil && epoch == nil, "an unconfirmed cache handed out an epoch to keep a read in")
        fresh.confirm(heardUntil: .now - .seconds(5))
        #expect(fresh.lookup(key).epoch == nil, "a confirmation 5 s old counted as fresh")
        fresh.confirm(heardUntil: .now)
        let read = fresh.lookup(key)
        #expect(read.entry == nil)
        fresh.keep(.member, for: key, readInEpoch: try #require(read.epoch))
        #expect(fresh.lookup(key).entry == .some(.member))
        #expect(fresh.statistics.answering)
        fresh.reset()
        #expect(fresh.lookup(key).entry == nil)
        #expect(!fresh.statistics.answering)
    }

    @Test func keepsMembersAndNonMembersAndDropsAKeyWhenItChanges() throws {
        let cache = confirmedCache()
        cache.keep(.moderator, for: key, readInEpoch: try #require(cache.lookup(key).epoch))
        cache.keep(nil, for: other, readInEpoch: try #require(cache.lookup(other).epoch))
        #expect(cache.lookup(key).entry == .some(.moderator))
        #expect(cache.lookup(other).entry == .some(nil), "a non-member must be cached as one")
        cache.invalidate(key)
        #expect(cache.lookup(key).entry == nil)
        #expect(cache.lookup(other).entry == .some(nil), "a change dropped another key")
        let stats = cache.statistics
        #expect(stats.hits == 3 && stats.entries == 1)
    }

    @Test func aReadThatRacedWithAChangeOfItsKeyIsNotKeptButOthersAre() throws {
        let cache = confirmedCache()
        let raced = try #require(cache.lookup(key).epoch)
        let unrelated = try #require(cache.lookup(other).epoch)
        cache.invalidate(key)  // heard while both reads were in flight
        cache.keep(nil, for: key, readInEpoch: raced)
        cache.keep(.member, for: other, readInEpoch: unrelated)
        #expect(cache.lookup(key).entry == nil, "a possibly stale read was kept")
        #expect(cache.lookup(other).entry == .some(.member), "a change of another key dropped this read")
        // A read that began after the change is kept.
        cache.keep(.member, for: key, readInEpoch: try #require(cache.lookup(key).epoch))
        #expect(cache.lookup(key).entry == .some(.member))
    }

    @Test func aResetRefusesEveryReadStartedBeforeIt() throws {
        let cache = confirmedCache()
        let before = try #require(cache.lookup(key).epoch)
        cache.reset()
        cache.confirm(heardUntil: .now)
        cache.keep(.member, for: key, readInEpoch: before)
        #expect(cache.lookup(key).entry == nil)
    }

    @Test func staysWithinItsCapacity() throws {
        let cache = confirmedCache(capacity: 8)
        for _ in 0..<100 {
            let key = MembershipCache.Key(channelID: UUID(), userID: UUID())
            cache.keep(nil, for: key, readInEpoch: try #require(cache.lookup(key).epoch))
            cache.invalidate(MembershipCache.Key(channelID: UUID(), userID: UUID()))
            #expect(cache.statistics.entries <= 8)
        }
    }
}
