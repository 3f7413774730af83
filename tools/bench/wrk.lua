-- The load of each `make bench` scenario, for wrk (tools/bench.sh runs it):
--
--   wrk -t2 -c32 -d20s --latency -s tools/bench/wrk.lua http://127.0.0.1:18090 -- SCENARIO
--
-- SCENARIO: health (GET /health/live, the HTTP ceiling), create (POST a message to one of many
-- channels), newest (GET the newest page of a seeded channel: the Redis timeline cache), older
-- (GET a page behind a cursor: Postgres), mix (BENCH_WRITE_RATIO creates, the rest newest pages,
-- on the seeded channels).
--
-- Ids follow one scheme shared with tools/bench.sh, prepare.py and the pgbench scripts:
-- <8 hex digit prefix>-0000-4000-8000-<index as 12 hex digits>, index from 1. Settings come from
-- the environment (tools/bench.sh sets them):
--   BENCH_READ_PREFIX, BENCH_READ_CHANNELS     the seeded channels read by newest, older and mix
--   BENCH_WRITE_PREFIX, BENCH_WRITE_CHANNELS   the channels create writes to
--   BENCH_USER_PREFIX, BENCH_USERS             the callers (X-User-Id; the service runs AUTH_MODE=header)
--   BENCH_PAGE_LIMIT (50), BENCH_WRITE_RATIO (0.1), BENCH_CONTENT_BYTES (80)
--   BENCH_PATHS_FILE                           older: one request path a line (from prepare.py)
--   BENCH_WRK_JSON                             where done() writes the results as one JSON object
--
-- Requests are built once in init() and picked at random in request(): building them per request
-- would cost wrk CPU that the service, on the same two cores, needs. There is no response()
-- function, so wrk does not parse bodies; wrk counts statuses above 399 in errors.status.

local function env(name, default)
  local value = os.getenv(name)
  if value == nil or value == "" then return default end
  return value
end

local function id(prefix, index)
  return string.format("%s-0000-4000-8000-%012x", prefix, index)
end

local read_prefix = env("BENCH_READ_PREFIX", "5eed0000")
local read_channels = tonumber(env("BENCH_READ_CHANNELS", "100"))
local write_prefix = env("BENCH_WRITE_PREFIX", "c7ea7e00")
local write_channels = tonumber(env("BENCH_WRITE_CHANNELS", "1000"))
local user_prefix = env("BENCH_USER_PREFIX", "05e70000")
local users = tonumber(env("BENCH_USERS", "1000"))
local page_limit = tonumber(env("BENCH_PAGE_LIMIT", "50"))
local write_ratio = tonumber(env("BENCH_WRITE_RATIO", "0.1"))
local content_bytes = tonumber(env("BENCH_CONTENT_BYTES", "80"))

-- Enough distinct requests that channels and users are spread evenly.
local POOL = 4096
local requests = {}
local writes = {}
local reads = {}

local function header(user)
  return { ["X-User-Id"] = id(user_prefix, user) }
end

local function create_request(channel_prefix, channel, n)
  local headers = header(math.random(users))
  headers["Content-Type"] = "application/json"
  local text = string.format("bench message %d from wrk, ", n)
  text = text .. string.rep("x", math.max(0, content_bytes - #text))
  local body = string.format('{"content":"%s"}', text)
  return wrk.format("POST", "/v1/channels/" .. id(channel_prefix, channel) .. "/messages", headers, body)
end

local function newest_request()
  local path = string.format("/v1/channels/%s/messages?limit=%d", id(read_prefix, math.random(read_channels)), page_limit)
  return wrk.format("GET", path, header(math.random(users)))
end

local function read_paths(file)
  local paths = {}
  local handle = assert(io.open(file, "r"), "BENCH_PATHS_FILE not readable: " .. tostring(file))
  for line in handle:lines() do
    if line ~= "" then paths[#paths + 1] = line end
  end
  handle:close()
  assert(#paths > 0, "no paths in " .. file)
  return paths
end

local scenario

function setup(thread)
  -- Each thread gets its own random sequence.
  thread_count = (thread_count or 0) + 1
  thread:set("thread_index", thread_count)
end

function init(args)
  scenario = args[1] or "health"
  math.randomseed(os.time() * 1000 + (thread_index or 0) * 7919)
  if scenario == "health" then
    requests[1] = wrk.format("GET", "/health/live")
  elseif scenario == "create" then
    for n = 1, POOL do requests[n] = create_request(write_prefix, math.random(write_channels), n) end
  elseif scenario == "newest" then
    for n = 1, POOL do requests[n] = newest_request() end
  elseif scenario == "older" then
    local paths = read_paths(env("BENCH_PATHS_FILE", ""))
    for n = 1, POOL do requests[n] = wrk.format("GET", paths[math.random(#paths)], header(math.random(users))) end
  elseif scenario == "mix" then
    for n = 1, POOL do
      writes[n] = create_request(read_prefix, math.random(read_channels), n)
      reads[n] = newest_request()
    end
  else
    error("unknown scenario " .. scenario .. " (health, create, newest, older, mix)")
  end
end

function request()
  if scenario == "mix" then
    if math.random() < write_ratio then return writes[math.random(POOL)] end
    return reads[math.random(POOL)]
  end
  return requests[math.random(#requests)]
end

-- The percentiles the report prints and plots; the maximum is latency.max (wrk 4.1 answers 0 for
-- percentile(100)).
local PERCENTILES = { 50, 75, 90, 95, 97.5, 99, 99.5, 99.75, 99.9, 99.95, 99.99 }

function done(summary, latency, _)
  local out = env("BENCH_WRK_JSON", nil)
  if out == nil then return end
  local parts = {}
  for _, p in ipairs(PERCENTILES) do
    parts[#parts + 1] = string.format('"%s": %d', tostring(p), latency:percentile(p))
  end
  local e = summary.errors
  local json = string.format(
    '{"duration_us": %d, "requests": %d, "bytes": %d, ' ..
      '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
      '"latency_us": {"min": %d, "max": %d, "mean": %.1f, "stdev": %.1f, "percentiles": {%s}}}\n',
    summary.duration, summary.requests, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.max, latency.mean, latency.stdev, table.concat(parts, ", "))
  local handle = assert(io.open(out, "w"))
  handle:write(json)
  handle:close()
end
