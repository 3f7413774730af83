import Foundation
import Logging
import NIOConcurrencyHelpers
import Redis

/// A caller spent their tokens; answered with 429 and `Retry-After`.
struct RateLimitExceeded: Error {
    /// The bucket size, sent as `RateLimit-Limit`.
    let limit: Int
    /// Whole seconds until one token is back.
    let retryAfterSeconds: Int
}

/// A per-user token bucket in Redis: `burst` requests at once, refilled at `rate` per second.
///
/// The bucket lives in Redis so every replica enforces the same limit. The clock is Redis' own
/// (`TIME`), so replicas with skewed clocks agree. When Redis is unavailable the limiter lets
/// requests through (fails open): a cache outage must not become an API outage. Such requests are
/// counted and logged.
final class RateLimiter: Sendable {
    struct Configuration: Sendable, Equatable {
        /// Tokens added per second; 0 disables the limit.
        var rate = 20
        /// Bucket size: the most requests accepted at once.
        var burst = 40
    }

    struct Statistics: Sendable, Equatable {
        var allowed = 0
        var limited = 0
        /// Requests let through because Redis could not be asked.
        var failedOpen = 0
    }

    /// KEYS[1] bucket. ARGV: 1 rate per second, 2 burst. Returns {allowed 0/1, tokens left, ms to
    /// wait}. The bucket expires once it would be full again, so idle users cost no memory.
    static let takeToken = RedisScript(
        """
        local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
        local time = redis.call('TIME')
        local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
        local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
        local tokens = tonumber(state[1]) or burst
        local at = tonumber(state[2]) or now
        tokens = math.min(burst, tokens + math.max(0, now - at) * rate / 1000)
        local allowed, wait = 0, 0
        if tokens >= 1 then
          tokens = tokens - 1
          allowed = 1
        else
          wait = math.ceil((1 - tokens) * 1000 / rate)
        end
        redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
        redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) * 1000 / rate) + 1000)
        return {allowed, math.floor(tokens), wait}
        """
    )

    private let redis: RedisClient
    private let configuration: Configuration
    private let breaker: CircuitBreaker
    private let logger: Logger
    private let counters = NIOLockedValueBox(Statistics())

    init(redis: RedisClient, configuration: Configuration, breaker: CircuitBreaker, logger: Logger) {
        precondition(configuration.rate > 0 && configuration.burst > 0, "a disabled limit needs no limiter")
        self.redis = redis
        self.configuration = configuration
        self.breaker = breaker
        self.logger = logger
    }

    var statistics: Statistics { counters.withLockedValue { $0 } }

    /// Takes one token of the user's bucket, or throws `RateLimitExceeded`.
    func admit(_ userID: UUID) async throws {
        let reply: RedisValue
        do {
            reply = try await breaker.run {
                try await redis.evaluate(
                    Self.takeToken, keys: ["ratelimit:" + userID.lowercased],
                    arguments: [configuration.rate, configuration.burst]
                )
            }
        } catch {
            counters.withLockedValue { $0.failedOpen += 1 }
            logger.warning("rate limit not checked, request let through", metadata: ["error": "\(error)"])
            return
        }
        guard let values = reply.array, values.count == 3, let allowed = values[0].integer, let wait = values[2].integer
        else {
            counters.withLockedValue { $0.failedOpen += 1 }
            return
        }
        guard allowed == 1 else {
            counters.withLockedValue { $0.limited += 1 }
            throw RateLimitExceeded(limit: configuration.burst, retryAfterSeconds: max(1, Int((wait + 999) / 1000)))
        }
        counters.withLockedValue { $0.allowed += 1 }
    }
}
