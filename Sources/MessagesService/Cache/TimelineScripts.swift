import Redis

/// The Lua scripts of the timeline cache. Each runs atomically in Redis, so a write-through or a
/// fill is one round trip and no reader ever sees half of it. Formats: `TimelineEntry`, `TimelineMeta`.
enum TimelineScripts {
    /// Reads the meta member: filled, complete, version, last_seq, lease, revision (defaults when
    /// absent), and removes it so the caller can write the new one after its changes.
    private static let takeMeta = """
        local function take_meta(key)
          local meta = redis.call('ZRANGEBYSCORE', key, 0, 0)[1]
          if not meta then
            return nil, '0', '1', string.rep('0', 19), string.rep('0', 19), string.rep('0', 16), string.rep('0', 16)
          end
          redis.call('ZREMRANGEBYSCORE', key, 0, 0)
          return meta, string.sub(meta, 2, 2), string.sub(meta, 3, 3), string.sub(meta, 4, 22),
            string.sub(meta, 23, 41), string.sub(meta, 42, 57), string.sub(meta, 58, 73)
        end
        """

    /// Starts a fill: stores its lease token in the meta (creating an unfilled meta if needed).
    ///
    /// KEYS[1] timeline. ARGV: 1 lease token (16 characters), 2 TTL seconds.
    static let lease = RedisScript(
        takeMeta + """

            local key = KEYS[1]
            local _, filled, complete, version, lastseq, _, revision = take_meta(key)
            redis.call('ZADD', key, 0, 'M' .. filled .. complete .. version .. lastseq .. ARGV[1] .. revision)
            redis.call('EXPIRE', key, ARGV[2])
            return 1
            """
    )

    /// Merges entries into a timeline and updates its meta; returns 0 when a fill lost its lease.
    ///
    /// KEYS[1] timeline. ARGV: 1 capacity, 2 TTL seconds, 3 channel version, 4 channel last_seq
    /// (both 19 digits), 5 `fill` or `write`, 6 complete (`1`/`0`, fills), 7 lease token (fills),
    /// 8 the timeline's new revision (16 characters, fresh for every merge: pages kept by
    /// `HotPages` under another revision are no longer answered), then one entry per argument. An entry replaces the one of its seq only when its version is
    /// higher, so a fill never overwrites a newer write, and writes arriving out of order keep the
    /// newest. Trimming to capacity drops the oldest entries and marks the timeline incomplete.
    static let merge = RedisScript(
        takeMeta + """

            local key = KEYS[1]
            local meta, filled, complete, version, lastseq, lease = take_meta(key)
            local revision = ARGV[8]
            if ARGV[5] == 'fill' then
              if lease ~= ARGV[7] then
                if meta then redis.call('ZADD', key, 0, meta) end
                return 0
              end
              filled = '1'
              if ARGV[6] == '0' then complete = '0' end
            end
            if ARGV[3] > version then version, lastseq = ARGV[3], ARGV[4] end
            for i = 9, #ARGV do
              local entry = ARGV[i]
              local seq = tonumber(string.sub(entry, 21, 39))
              local current = redis.call('ZRANGEBYSCORE', key, seq, seq)[1]
              if not current or string.sub(entry, 1, 19) > string.sub(current, 1, 19) then
                if current then redis.call('ZREM', key, current) end
                redis.call('ZADD', key, seq, entry)
              end
            end
            local excess = redis.call('ZCARD', key) - tonumber(ARGV[1])
            if excess > 0 then
              redis.call('ZREMRANGEBYRANK', key, 0, excess - 1)
              complete = '0'
            end
            redis.call('ZADD', key, 0, 'M' .. filled .. complete .. version .. lastseq .. lease .. revision)
            redis.call('EXPIRE', key, ARGV[2])
            return 1
            """
    )

    /// Reads the newest entries of a filled timeline: `{meta, entries newest first}`; `{meta}` when
    /// it is still at the revision the caller holds a page of; nil when the timeline is not cached.
    ///
    /// KEYS[1] timeline. ARGV: 1 how many entries, 2 `all` (tombstones too, v1) or `live` (INF326),
    /// 3 the revision the caller holds (empty for none).
    static let newest = RedisScript(
        """
        local key = KEYS[1]
        local meta = redis.call('ZRANGEBYSCORE', key, 0, 0)[1]
        if not meta or string.sub(meta, 2, 2) ~= '1' then return false end
        if ARGV[3] ~= '' and string.sub(meta, 58, 73) == ARGV[3] then return {meta} end
        local wanted = tonumber(ARGV[1])
        if ARGV[2] == 'all' then
          return {meta, redis.call('ZREVRANGEBYSCORE', key, '+inf', 1, 'LIMIT', 0, wanted)}
        end
        local found, offset = {}, 0
        while #found < wanted do
          local batch = redis.call('ZREVRANGEBYSCORE', key, '+inf', 1, 'LIMIT', offset, 100)
          if #batch == 0 then break end
          for _, entry in ipairs(batch) do
            if string.sub(entry, 20, 20) == 'L' then
              found[#found + 1] = entry
              if #found == wanted then break end
            end
          end
          offset = offset + #batch
        end
        return {meta, found}
        """
    )
}
