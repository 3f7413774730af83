import Foundation
import HTTPTypes
import Redis
import Testing

@testable import MessagesService

/// The per-user token bucket in Redis.
@Suite(.tags(.servers)) struct RateLimitTests {
    func v1(_ channel: UUID) -> String {
        "/v1/channels/\(channel.uuidString.lowercased())/messages"
    }

    @Test func aUserOverTheLimitGets429ThenRecovers() async throws {
        var settings = CacheSettings()
        // One token a second: the five requests below take far less than that, even on a busy machine.
        settings.rateLimit = .init(rate: 1, burst: 3)
        try await withCachedService(settings) { service in
            let other = UUID()
            var (user, channel, answer) = (UUID(), UUID(), Reply?.none)
            // The bucket refills while the requests run: on a machine so busy that the four took
            // over a second, a token came back and the write was rightly accepted. Such an attempt
            // proves nothing either way, so it is made again with a fresh user and channel.
            for _ in 0..<5 {
                (user, channel) = (UUID(), UUID())
                let started = ContinuousClock.now
                for _ in 0..<3 {
                    #expect(try await service.api.send(.get, v1(channel), user: user).status == .ok)
                }
                let post = try await service.api.send(.post, v1(channel), user: user, json: #"{"content":"too many"}"#)
                answer = post
                if post.status == .tooManyRequests || ContinuousClock.now - started < .seconds(1) { break }
            }
            let limited = try #require(answer)
            // Legacy writes name users without proving it: they take tokens of the client
            // address' bucket, never of the user they name, and answer in that API's style.
            // As above, four writes that took over a second prove nothing (a token came back):
            // then the bucket is let refill and they are made again in a fresh channel.
            var (legacyChannel, legacyAnswer) = (channel, Reply?.none)
            for attempt in 0..<5 {
                if attempt > 0 {
                    try await Task.sleep(for: .seconds(3))
                    legacyChannel = UUID()
                }
                let started = ContinuousClock.now
                for index in 0..<3 {
                    let forged = try await service.api.send(
                        .post, "/threads/\(legacyChannel.uuidString.lowercased())/messages", user: other,
                        json: #"{"content":"f\#(index)"}"#
                    )
                    #expect(forged.status == .created)
                }
                let post = try await service.api.send(
                    .post, "/threads/\(legacyChannel.uuidString.lowercased())/messages", user: user, json: #"{"content":"x"}"#
                )
                legacyAnswer = post
                if post.status == .tooManyRequests || ContinuousClock.now - started < .seconds(1) { break }
            }
            let legacy = try #require(legacyAnswer)
            #expect(limited.status == .tooManyRequests)
            #expect(limited.headers[.retryAfter] == "1")
            #expect(limited.headers[.rateLimitLimit] == "3")
            #expect(limited.headers[.rateLimitRemaining] == "0")
            #expect(limited.headers[.rateLimitReset] == "1")
            #expect((limited.json["error"] as? [String: Any])?["code"] as? String == "resource_exhausted")
            #expect(legacy.status == .tooManyRequests)
            #expect(legacy.json["detail"] is String)
            // The refused writes changed nothing.
            #expect(try await service.reference.send(.get, v1(legacyChannel), user: other).items.count == 3)
            // Another user has a bucket of their own, untouched by the legacy writes in their name.
            for _ in 0..<3 {
                #expect(try await service.api.send(.get, v1(channel), user: other).status == .ok)
            }
            // A token comes back after a second.
            try await Task.sleep(for: .milliseconds(1100))
            #expect(try await service.api.send(.post, v1(channel), user: user, json: #"{"content":"later"}"#).status == .created)
            let statistics = try #require(service.rateLimiter?.statistics)
            #expect(statistics.limited == 2)
            #expect(statistics.decidedLocally == 0)
        }
    }

    @Test func redisUnavailableLeavesTheLimitToEachPod() async throws {
        var settings = CacheSettings()
        settings.endpoint = RedisEndpoint(host: "127.0.0.1", port: 1)
        settings.rateLimit = .init(rate: 1, burst: 1)
        try await withCachedService(settings) { service in
            let user = UUID()
            let channel = UUID()
            let start = ContinuousClock.now
            let first = try await service.api.send(.get, v1(channel), user: user)
            #expect(first.status == .ok)
            #expect(first.headers[.cacheStatus] == "bypass")
            for _ in 0..<4 {
                let status = try await service.api.send(.get, v1(channel), user: user).status
                // The bucket refills a token a second: on a machine busy with every other suite,
                // an attempt a second after the first is rightly allowed.
                if ContinuousClock.now - start < .milliseconds(900) { #expect(status == .tooManyRequests) }
            }
            #expect(try await service.api.send(.get, v1(channel), user: UUID()).status == .ok)
            #expect(service.rateLimiter?.statistics.decidedLocally == 6)
        }
    }
}
