import Foundation
import NIOConcurrencyHelpers
import Testing

@testable import MessagesService

/// The per-pod membership cache and the access check over it: when it may answer, what it
/// keeps, and how many store reads a check costs. No server needed.
@Suite struct MembershipCacheTests {
    let channel = UUID()
    let alice = UUID()
    let bob = UUID()

    var aliceKey: MembershipCache.Key { .init(channelID: channel, userID: alice) }
    var bobKey: MembershipCache.Key { .init(channelID: channel, userID: bob) }

    /// A cache that has heard every change until now.
    func confirmedCache(capacity: Int = 100) -> MembershipCache {
        let cache = MembershipCache(capacity: capacity, maxStaleness: .seconds(60))
        cache.confirm(heardUntil: .now)
        return cache
    }

    func epoch(_ lookup: MembershipCache.Lookup) throws -> UInt64 {
        guard case .unknown(let epoch, _) = lookup else { throw Unexpected(lookup: lookup) }
        return epoch
    }

    struct Unexpected: Error {
        let lookup: MembershipCache.Lookup
    }

    @Test func answersNothingUntilConfirmedNorOnceTheConfirmationIsTooOld() throws {
        let cache = MembershipCache(capacity: 10, maxStaleness: .seconds(1))
        #expect(cache.lookup(aliceKey) == .notAnswering)
        cache.confirm(heardUntil: .now - .seconds(5))
        #expect(cache.lookup(aliceKey) == .notAnswering, "a confirmation 5 s old counted as fresh")
        cache.confirm(heardUntil: .now)
        cache.keep(.member, for: aliceKey, readInEpoch: try epoch(cache.lookup(aliceKey)))
        #expect(cache.lookup(aliceKey) == .cached(.member))
        #expect(cache.statistics.answering)
        cache.reset()
        #expect(cache.lookup(aliceKey) == .notAnswering)
        #expect(!cache.statistics.answering)
    }

    @Test func aWholeChannelAnswersEveryUserAndAChangeDropsIt() throws {
        let cache = confirmedCache()
        let read = try epoch(cache.lookup(aliceKey))
        cache.keep(members: [ChannelMember(userID: alice, role: .moderator)], of: channel, readInEpoch: read)
        #expect(cache.lookup(aliceKey) == .cached(.moderator))
        #expect(cache.lookup(bobKey) == .cached(nil), "a user missing from a whole channel is a non-member")
        let other = MembershipCache.Key(channelID: UUID(), userID: alice)
        cache.keep(nil, for: other, readInEpoch: try epoch(cache.lookup(other)))
        cache.invalidate(bobKey)
        #expect(cache.lookup(aliceKey) != .cached(.moderator), "a change of the channel left its list in place")
        #expect(cache.lookup(other) == .cached(nil), "a change dropped another channel")
    }

    @Test func aReadThatRacedWithAChangeIsNotKeptButOthersAre() throws {
        let cache = confirmedCache()
        let raced = try epoch(cache.lookup(aliceKey))
        let other = MembershipCache.Key(channelID: UUID(), userID: bob)
        let unrelated = try epoch(cache.lookup(other))
        cache.invalidate(bobKey)  // heard while both reads were in flight
        cache.keep(members: [], of: channel, readInEpoch: raced)
        cache.keep(nil, for: aliceKey, readInEpoch: raced)
        cache.keep(.member, for: other, readInEpoch: unrelated)
        #expect(cache.lookup(aliceKey) != .cached(nil), "a possibly stale read was kept")
        #expect(cache.lookup(other) == .cached(.member), "a change of another channel dropped this read")
        // A read that began after the change is kept.
        cache.keep(members: [], of: channel, readInEpoch: try epoch(cache.lookup(aliceKey)))
        #expect(cache.lookup(aliceKey) == .cached(nil))
    }

    @Test func aResetRefusesEveryReadStartedBeforeIt() throws {
        let cache = confirmedCache()
        let before = try epoch(cache.lookup(aliceKey))
        cache.reset()
        cache.confirm(heardUntil: .now)
        cache.keep(.member, for: aliceKey, readInEpoch: before)
        cache.keep(members: [ChannelMember(userID: alice, role: .member)], of: channel, readInEpoch: before)
        #expect(cache.lookup(aliceKey) != .cached(.member))
    }

    @Test func staysWithinItsCapacityEvenForMadeUpChannels() throws {
        let cache = confirmedCache(capacity: 8)
        for _ in 0..<100 {
            let key = MembershipCache.Key(channelID: UUID(), userID: UUID())
            cache.keep(members: [], of: key.channelID, readInEpoch: try epoch(cache.lookup(key)))
            cache.keep(
                nil, for: key, readInEpoch: try epoch(cache.lookup(MembershipCache.Key(channelID: UUID(), userID: UUID()))))
            cache.invalidate(MembershipCache.Key(channelID: UUID(), userID: UUID()))
            #expect(cache.statistics.entries <= 8)
        }
    }

    /// A store that counts what it is asked.
    final class CountingStore: MembershipStore, Sendable {
        let members: [ChannelMember]
        let calls = NIOLockedValueBox((roles: 0, lists: 0))

        init(members: [ChannelMember]) { self.members = members }

        func role(of userID: UUID, in channelID: UUID) async throws -> ChannelRole? {
            calls.withLockedValue { $0.roles += 1 }
            return members.first { $0.userID == userID }?.role
        }
        func members(of channelID: UUID, after: UUID?, limit: Int) async throws -> [ChannelMember] {
            calls.withLockedValue { $0.lists += 1 }
            return Array(members.prefix(limit))
        }
        func setRole(_ role: ChannelRole, of userID: UUID, in channelID: UUID) async throws -> Bool { false }
        func remove(_ userID: UUID, from channelID: UUID) async throws {}
    }

    @Test func aSmallChannelCostsOneStoreReadForAllItsUsers() async throws {
        let users = (0..<50).map { _ in UUID() }
        let store = CountingStore(members: users.map { ChannelMember(userID: $0, role: .member) })
        let access = ChannelAccess(mode: .members, store: store, cache: confirmedCache(capacity: 1000))
        for user in users { #expect(try await access.role(of: user, in: channel) == .member) }
        #expect(try await access.role(of: UUID(), in: channel) == nil)
        #expect(store.calls.withLockedValue { $0 } == (roles: 0, lists: 1))
    }

    @Test func aLargeChannelIsAnsweredUserByUser() async throws {
        let users = (0...ChannelAccess.wholeChannelLimit).map { _ in UUID() }
        let store = CountingStore(members: users.map { ChannelMember(userID: $0, role: .member) })
        let access = ChannelAccess(mode: .members, store: store, cache: confirmedCache(capacity: 100_000))
        for user in users.prefix(3) + users.prefix(3) { #expect(try await access.role(of: user, in: channel) == .member) }
        // One list to learn it is large, then one read per user, each cached.
        #expect(store.calls.withLockedValue { $0 } == (roles: 3, lists: 1))
    }

    @Test func openModeAsksNothing() async throws {
        let store = CountingStore(members: [])
        let access = ChannelAccess(mode: .open, store: store, cache: confirmedCache())
        #expect(try await access.role(of: alice, in: channel) == .member)
        #expect(store.calls.withLockedValue { $0 } == (roles: 0, lists: 0))
    }
}
