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

/// Whose bucket a request takes its token from: a verified user, or, for requests that carry no
/// verified identity, the client's address. The two never share a bucket, so a forged identity
/// can neither escape its own limit nor spend a real user's.
enum RateLimitKey: Hashable, Sendable {
    case user(UUID)
    case clientAddress(String)

    var redisKey: String {
        switch self {
        case .user(let id): "ratelimit:user:" + id.lowercased
        case .clientAddress(let address): "ratelimit:addr:" + address
        }
    }
}

/// Token buckets: `burst` requests at once, refilled at `rate` per second.
///
/// The buckets live in Redis so every replica enforces the same limit, on Redis' clock (`TIME`),
/// so replicas with skewed clocks agree. When Redis cannot be asked (not configured, down, or its
/// breaker open), a bucket per pod in this process takes over: the limit then holds per pod
/// instead of per service, and is never simply off. Such requests are counted, and the switch
/// each way is logged once.
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
        /// Requests decided by this pod's own buckets because Redis could not be asked.
        var decidedLocally = 0
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

    private let redis: RedisClient?
    private let configuration: Configuration
    private let breaker: CircuitBreaker?
    private let logger: Logger
    private let local: LocalTokenBuckets
    private let counters = NIOLockedValueBox(Statistics())
    /// Whether the last decision was local, to log the switch once each way.
    private let decidingLocally = NIOLockedValueBox(false)

    /// A limiter on Redis (through `breaker`), or, with `redis` nil, on this pod's buckets only.
    init(redis: RedisClient?, configuration: Configuration, breaker: CircuitBreaker?, logger: Logger) {
        precondition(configuration.rate > 0 && configuration.burst > 0, "a disabled limit needs no limiter")
        self.redis = redis
        self.configuration = configuration
        self.breaker = breaker
        self.logger = logger
        self.local = LocalTokenBuckets(rate: Double(configuration.rate), burst: Double(configuration.burst))
    }

    var statistics: Statistics { counters.withLockedValue { $0 } }

    /// Takes one token of the key's bucket, or throws `RateLimitExceeded`.
    func admit(_ key: RateLimitKey) async throws {
        let waitMilliseconds: Int64
        if let decision = await askRedis(key) {
            noteDecidedLocally(false)
            waitMilliseconds = decision
        } else {
            noteDecidedLocally(true)
            waitMilliseconds = local.take(key, now: ContinuousClock.now)
        }
        guard waitMilliseconds == 0 else {
            counters.withLockedValue { $0.limited += 1 }
            let seconds = Int(min(waitMilliseconds, 86_400_000) + 999) / 1000
            throw RateLimitExceeded(limit: configuration.burst, retryAfterSeconds: max(1, seconds))
        }
        counters.withLockedValue { $0.allowed += 1 }
    }

    /// Milliseconds to wait (0: allowed) as Redis decides, or nil when Redis could not be asked.
    private func askRedis(_ key: RateLimitKey) async -> Int64? {
        guard let redis, let breaker else { return nil }
        do {
            let reply = try await breaker.run(isFailure: RedisError.isOutage) {
                try await redis.evaluate(
                    Self.takeToken, keys: [key.redisKey], arguments: [configuration.rate, configuration.burst]
                )
            }
            guard let values = reply.array, values.count == 3, let allowed = values[0].integer,
                let wait = values[2].integer
            else { return nil }
            return allowed == 1 ? 0 : max(1, wait)
        } catch {
            return nil
        }
    }

    private func noteDecidedLocally(_ locally: Bool) {
        if locally { counters.withLockedValue { $0.decidedLocally += 1 } }
        let changed = decidingLocally.withLockedValue { state in
            defer { state = locally }
            return state != locally
        }
        guard changed, redis != nil else { return }
        if locally {
            logger.warning("rate limit: Redis unavailable, each pod now limits with its own buckets")
        } else {
            logger.notice("rate limit: Redis is back, buckets are shared by every pod again")
        }
    }
}

/// Token buckets in this process' memory, for when the shared ones in Redis cannot be reached.
/// Memory stays bounded whatever number of keys clients make up: when the table is full, full
/// buckets are forgotten, and if that frees nothing, new keys share one overflow bucket. A bucket
/// in use is never reset, so a flood of new keys cannot give an exhausted key its tokens back.
final class LocalTokenBuckets: Sendable {
    private struct Bucket {
        var tokens: Double
        var at: ContinuousClock.Instant
    }

    private let rate: Double
    private let burst: Double
    private let buckets = NIOLockedValueBox([RateLimitKey: Bucket]())
    /// Buckets kept at most.
    static let capacity = 100_000
    /// Where keys go while the table is full of buckets in use.
    static let overflowKey = RateLimitKey.clientAddress("overflow")

    init(rate: Double, burst: Double) {
        self.rate = rate
        self.burst = burst
    }

    /// Takes a token: 0 when allowed, else the milliseconds until one is back.
    func take(_ key: RateLimitKey, now: ContinuousClock.Instant) -> Int64 {
        buckets.withLockedValue { buckets in
            var key = key
            if buckets[key] == nil, buckets.count >= Self.capacity {
                prune(&buckets, now: now)
                if buckets.count >= Self.capacity { key = Self.overflowKey }
            }
            var bucket = buckets[key] ?? Bucket(tokens: burst, at: now)
            let elapsed = max(0, (now - bucket.at).inSeconds)
            bucket.tokens = min(burst, bucket.tokens + elapsed * rate)
            bucket.at = now
            defer { buckets[key] = bucket }
            guard bucket.tokens >= 1 else {
                return Int64(((1 - bucket.tokens) * 1000 / rate).rounded(.up))
            }
            bucket.tokens -= 1
            return 0
        }
    }

    /// Drops the buckets that have refilled: forgetting them changes no decision.
    private func prune(_ buckets: inout [RateLimitKey: Bucket], now: ContinuousClock.Instant) {
        buckets = buckets.filter { key, bucket in
            key == Self.overflowKey || bucket.tokens + (now - bucket.at).inSeconds * rate < burst
        }
    }
}
