#!/usr/bin/env bash
# Benchmarks messages-service on this machine, and checks it under load.
#
#   tools/bench.sh run      (make bench)   load scenarios with wrk, the raw limits of the same
#                                          servers (pgbench, redis-benchmark, the HTTP ceiling),
#                                          a report in bench-results/<UTC time>/
#   tools/bench.sh verify   (make verify)  tools/seed_verify.py against a fresh service: every
#                                          created message listed in seq order and evented
#
# Both build the release binary (`swift build -c release --product messages-service`; skip it
# with BENCH_SKIP_BUILD=1, or name another binary with BENCH_BINARY), start the servers of
# tools/services.sh, and run the service on BENCH_PORT (18090) against data of their own, wiped
# at every start so runs compare: the database messages_bench, Redis database BENCH_REDIS_DB (3)
# and the RabbitMQ virtual host messages-bench. The service runs with AUTH_MODE=header (the load
# sends X-User-Id) and RATE_LIMIT_RPS=0 (the per-user rate limit is off: the load comes from a
# thousand users at thousands of requests a second); every other setting is its default unless
# set in the environment (e.g. PG_POOL_SIZE).
#
# Settings (environment): BENCH_DURATION (20) measured seconds per run, BENCH_WARMUP (5) seconds
# of unreported load before each, BENCH_CONNECTIONS ("32 128 1000"; the limits are measured at
# those up to BENCH_LIMIT_CONNECTIONS_MAX, 128, and a run past it is held against its
# 32-connection run), BENCH_SCENARIOS ("health newest
# older create mix"), BENCH_LIMITS=0 skips pgbench and redis-benchmark, BENCH_VERIFY=0 skips the
# correctness pass at the end of `run`, BENCH_RESULTS (bench-results), VERIFY_ARGS (arguments of
# seed_verify.py for `verify`), BENCH_LOG_LEVEL (warning). Data: BENCH_READ_CHANNELS (100) seeded
# with BENCH_SEED_MESSAGES (300, at least 251) each, BENCH_WRITE_CHANNELS (1000), BENCH_USERS
# (1000), BENCH_REDIS_REQUESTS (200000 per redis-benchmark test). BENCH_CHANNEL_ACCESS (open):
# `members` runs the service with the access check on, every bench user a member of every channel.
# BENCH_PARTITIONS=N migrates with MESSAGES_PARTITIONS=N; BENCH_PGBOUNCER=1 runs the service's pool
# through the PgBouncer of tools/services.sh (PG_TRANSACTION_POOLING=true).
# BASELINE=<git revision> (make bench BASELINE=<rev>): first builds that revision's release binary
# in .local/baseline/<commit>/ (a git worktree; the first build of a revision takes as long as a
# clean release build, later runs reuse it), runs the same scenarios against it (no limits, no
# verify; its report in <run>/baseline/), then the run as usual; the report adds a before/after
# table.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

MODE=${1:-run}
case "$MODE" in
  run | verify) ;;
  -h | --help)
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit 0
    ;;
  *)
    echo "usage: $0 [run|verify]" >&2
    exit 2
    ;;
esac

PG_PORT=${PG_PORT:-5432}
REDIS_PORT=${REDIS_PORT:-6379}
AMQP_PORT=${AMQP_PORT:-5672}
PORT=${BENCH_PORT:-18090}
DURATION=${BENCH_DURATION:-20}
WARMUP=${BENCH_WARMUP:-5}
CONNECTIONS=${BENCH_CONNECTIONS:-"32 128 1000"}
LIMIT_CONNECTIONS_MAX=${BENCH_LIMIT_CONNECTIONS_MAX:-128}
SCENARIOS=${BENCH_SCENARIOS:-"health newest older create mix"}
BINARY=${BENCH_BINARY:-$ROOT/.build/release/messages-service}
REDIS_DB=${BENCH_REDIS_DB:-3}
DATABASE=messages_bench
VHOST=messages-bench
VENV="$ROOT/.local/bench-venv"
BASE_URL="http://127.0.0.1:$PORT"

# The data the read scenarios use, and the id scheme every load script shares (tools/bench/wrk.lua).
export BENCH_READ_PREFIX=5eed0000 BENCH_READ_CHANNELS=${BENCH_READ_CHANNELS:-100}
export BENCH_WRITE_PREFIX=c7ea7e00 BENCH_WRITE_CHANNELS=${BENCH_WRITE_CHANNELS:-1000}
export BENCH_USER_PREFIX=05e70000 BENCH_USERS=${BENCH_USERS:-1000}
export BENCH_PAGE_LIMIT=50 BENCH_WRITE_RATIO=0.1 BENCH_CONTENT_BYTES=80
SEED_MESSAGES=${BENCH_SEED_MESSAGES:-300}

log() { printf '[bench] %s\n' "$*" >&2; }

# wrk and the service hold a socket per connection.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# --- set-up -----------------------------------------------------------------------------------

tools/services.sh start
PG_BIN=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
psql_admin() { PGOPTIONS='-c client_min_messages=warning' "$PG_BIN/psql" -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -v ON_ERROR_STOP=1 "$@"; }
rabbitmqctl() { tools/services.sh rabbitmqctl -q "$@"; }

if [[ ${BENCH_SKIP_BUILD:-0} != 1 ]]; then
  log "building the release binary"
  swift build -c release --product messages-service
fi
[[ -x $BINARY ]] || { log "no binary at $BINARY (build it, or set BENCH_BINARY)"; exit 1; }

# shellcheck source=tools/python-venv.sh
source tools/python-venv.sh
ensure_venv "$VENV" tools/bench-requirements.txt

RESULTS=${BENCH_RESULTS:-bench-results}
[[ $RESULTS == /* ]] || RESULTS="$ROOT/$RESULTS"
OUT=${BENCH_OUT:-"$RESULTS/$(date -u +%Y%m%dT%H%M%SZ)-$MODE"}
RAW="$OUT/raw"

if [[ $MODE == run && -n ${BASELINE:-} ]]; then
  commit=$(git rev-parse --verify "$BASELINE^{commit}")
  tree="$ROOT/.local/baseline/$commit"
  if [[ ! -x $tree/.build/release/messages-service ]]; then
    # A tree deleted with .local/ (make clean) is still registered: prune it first.
    git worktree prune
    [[ -d $tree ]] || git worktree add --detach "$tree" "$commit" >&2
    # The same dependency versions as this tree, when it has resolved them.
    if [[ -f Package.resolved ]]; then cp Package.resolved "$tree/"; fi
    log "building the baseline $BASELINE ($commit) in ${tree#"$ROOT"/}"
    swift build -c release --product messages-service --package-path "$tree"
  fi
  log "baseline run: $BASELINE ($commit)"
  BENCH_BASELINE_OF="$BASELINE" BENCH_BASELINE_COMMIT="$commit" BASELINE='' \
    BENCH_BINARY="$tree/.build/release/messages-service" BENCH_SKIP_BUILD=1 BENCH_LIMITS=0 BENCH_VERIFY=0 \
    BENCH_OUT="$OUT/baseline" "$0" run
  echo "$BASELINE $commit" >"$OUT/baseline/revision.txt"
fi
mkdir -p "$RAW/procs"
# The load generators (wrk, pgbench) are children of this shell: their CPU time shows in its own.
echo $$ >"$RAW/procs/bench.pid"

# Fresh data: an empty database, cache and broker virtual host for every run.
log "resetting $DATABASE, Redis database $REDIS_DB and virtual host $VHOST"
psql_admin -c "DROP DATABASE IF EXISTS $DATABASE WITH (FORCE)" -c "CREATE DATABASE $DATABASE OWNER messages"
redis-cli -p "$REDIS_PORT" -n "$REDIS_DB" flushdb >/dev/null
rabbitmqctl delete_vhost "$VHOST" >/dev/null 2>&1 || true
rabbitmqctl add_vhost "$VHOST" >/dev/null
rabbitmqctl set_permissions -p "$VHOST" guest '.*' '.*' '.*' >/dev/null
# No consumer reads the bench's events: the relay's alternate exchange keeps them in the
# durable queue messages.unrouted. Capping it keeps the broker's memory flat while it still
# receives, stores and confirms every event.
rabbitmqctl set_policy -p "$VHOST" --apply-to queues unrouted-cap '^messages\.unrouted$' '{"max-length":10000}' >/dev/null

export DATABASE_URL="postgres://messages@127.0.0.1:$PG_PORT/$DATABASE"
export REDIS_URL="redis://127.0.0.1:$REDIS_PORT/$REDIS_DB"
export AMQP_URL="amqp://guest:guest@127.0.0.1:$AMQP_PORT/$VHOST"
# BENCH_PARTITIONS=N: the channel tables hash-partitioned (MESSAGES_PARTITIONS=N).
if [[ -n ${BENCH_PARTITIONS:-} ]]; then export MESSAGES_PARTITIONS=$BENCH_PARTITIONS; fi
"$BINARY" migrate >"$RAW/migrate.log" 2>&1 || { cat "$RAW/migrate.log"; exit 1; }
# BENCH_PGBOUNCER=1: the service's pool goes through the PgBouncer of tools/services.sh
# (transaction pooling, statements not prepared); its sessions still reach Postgres itself.
if [[ ${BENCH_PGBOUNCER:-0} == 1 ]]; then
  psql_admin -c "ALTER DATABASE $DATABASE SET statement_timeout = '10s'" -c "ALTER DATABASE $DATABASE SET timezone = 'UTC'"
  export DATABASE_SESSION_URL=$DATABASE_URL PG_TRANSACTION_POOLING=true
  export DATABASE_URL="postgres://messages@127.0.0.1:${PGBOUNCER_PORT:-6432}/$DATABASE"
fi

# BENCH_CHANNEL_ACCESS=members measures the access check: every bench user is made a member of
# every bench channel (the rows the membership API would write), so every request is allowed.
CHANNEL_ACCESS_MODE=${BENCH_CHANNEL_ACCESS:-open}
if [[ $CHANNEL_ACCESS_MODE == members ]]; then
  log "CHANNEL_ACCESS=members: every bench user a member of every bench channel"
  psql_admin -d "$DATABASE" -c "
    INSERT INTO channel_members (channel_id, user_id, role)
    SELECT (c.prefix || '-0000-4000-8000-' || lpad(to_hex(n), 12, '0'))::uuid,
           ('$BENCH_USER_PREFIX-0000-4000-8000-' || lpad(to_hex(u), 12, '0'))::uuid, 'member'
    FROM (VALUES ('$BENCH_READ_PREFIX', $BENCH_READ_CHANNELS), ('$BENCH_WRITE_PREFIX', $BENCH_WRITE_CHANNELS)) AS c(prefix, count),
         generate_series(1, c.count) AS n, generate_series(1, $BENCH_USERS) AS u"
fi

SERVICE_PID=
SAMPLER_PID=
OUTBOX_SAMPLER_PID=
stop_service() {
  for sampler in $SAMPLER_PID $OUTBOX_SAMPLER_PID; do
    kill "$sampler" 2>/dev/null || true
    wait "$sampler" 2>/dev/null || true
  done
  SAMPLER_PID= OUTBOX_SAMPLER_PID=
  if [[ -n $SERVICE_PID ]]; then kill "$SERVICE_PID" 2>/dev/null || true; wait "$SERVICE_PID" 2>/dev/null || true; fi
  SERVICE_PID=
}
cleanup() {
  stop_service
  # The broker's copy of the events is the only large leftover; the database and Redis data stay
  # for inspection until the next run wipes them.
  rabbitmqctl delete_vhost "$VHOST" >/dev/null 2>&1 || true
}
trap cleanup EXIT

log "starting the service on $BASE_URL (AUTH_MODE=header, RATE_LIMIT_RPS=0, CHANNEL_ACCESS=$CHANNEL_ACCESS_MODE)"
CHANNEL_ACCESS=$CHANNEL_ACCESS_MODE AUTH_MODE=header RATE_LIMIT_RPS=0 HOST=127.0.0.1 PORT=$PORT LOG_LEVEL=${BENCH_LOG_LEVEL:-warning} \
  "$BINARY" serve >"$OUT/service.log" 2>&1 &
SERVICE_PID=$!
echo "$SERVICE_PID" >"$RAW/procs/service.pid"
for _ in $(seq 1 100); do
  curl -fsS "$BASE_URL/health/ready" >/dev/null 2>&1 && break
  kill -0 "$SERVICE_PID" 2>/dev/null || break
  sleep 0.1
done
if ! curl -fsS "$BASE_URL/health/ready" >"$RAW/ready.json" 2>/dev/null; then
  log "the service did not become ready; its log:"
  cat "$OUT/service.log" >&2
  exit 1
fi

# --- measurements -------------------------------------------------------------------------------

status_field() { awk -v field="$1:" '$1 == field { print $2 }' "/proc/$SERVICE_PID/status"; }
# The service's CPU time in clock ticks (utime + stime); the command name may hold spaces, so
# fields are counted after its closing parenthesis.
service_ticks() { sed 's/.*) //' "/proc/$SERVICE_PID/stat" | awk '{ print $12 + $13 }'; }
# Busy and total ticks of the whole machine, to see whether anything else used the cores.
machine_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8, $2 + $3 + $4 + $5 + $6 + $7 + $8 }' /proc/stat; }
# Every process's CPU time, so the report can say who used the cores during a run (the load
# generator, the servers, and anything else running on the machine, such as a compiler).
processes_snapshot() { cat /proc/[0-9]*/stat >"$1" 2>/dev/null || true; }

verify_pass() {
  local label=$1
  shift
  log "seed_verify ($label): $*"
  local status=0
  "$VENV/bin/python" tools/seed_verify.py --base-url "$BASE_URL" --amqp-url "$AMQP_URL" \
    --json "$RAW/verify-$label.json" "$@" | tee "$OUT/verify-$label.txt" || status=$?
  return "$status"
}

if [[ $MODE == verify ]]; then
  # shellcheck disable=SC2086 # VERIFY_ARGS is a list of arguments
  verify_pass make-verify ${VERIFY_ARGS:---messages 5000 --channels 50 --concurrency 32 --timeout 60}
  exit $?
fi

{
  echo "started_at=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "commit=${BENCH_BASELINE_COMMIT:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}"
  echo "dirty=$(git status --porcelain -- Sources Package.swift 2>/dev/null | wc -l)"
  echo "nproc=$(nproc)"
  echo "cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
  echo "memory_kb=$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo)"
  echo "kernel=$(uname -r)"
  echo "loadavg_start=$(cut -d' ' -f1-3 /proc/loadavg)"
  echo "wrk=$(wrk -v 2>&1 | head -n 1 | cut -d' ' -f1-2)"
  echo "postgres=$(psql_admin -tAc 'SHOW server_version')"
  echo "postgres_settings=$(psql_admin -tAc "SELECT string_agg(name || '=' || setting, ' ') FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', 'shared_buffers', 'max_connections')")"
  echo "redis=$(redis-cli -p "$REDIS_PORT" info server | awk -F: '/^redis_version/ { print $2 }' | tr -d '\r')"
  echo "binary=${BINARY#"$ROOT"/}"
  echo "baseline_of=${BENCH_BASELINE_OF:-}"
  echo "binary_built=$(date -u -r "$BINARY" +%Y-%m-%dT%H:%M:%SZ)"
  echo "duration=$DURATION"
  echo "warmup=$WARMUP"
  echo "connections=$CONNECTIONS"
  echo "pg_pool_size=${PG_POOL_SIZE:-8 (default)}"
  echo "redis_pool_size=${REDIS_POOL_SIZE:-8 (default)}"
  echo "read_channels=$BENCH_READ_CHANNELS"
  echo "seed_messages=$SEED_MESSAGES"
  echo "write_channels=$BENCH_WRITE_CHANNELS"
  echo "users=$BENCH_USERS"
  echo "channel_access=$CHANNEL_ACCESS_MODE"
  echo "page_limit=$BENCH_PAGE_LIMIT"
  echo "write_ratio=$BENCH_WRITE_RATIO"
  echo "content_bytes=$BENCH_CONTENT_BYTES"
  echo "rss_idle_kb=$(status_field VmRSS)"
} >"$RAW/meta.txt"

# Resident memory every half second while the service runs, for the peak in the report.
(
  while kill -0 "$SERVICE_PID" 2>/dev/null; do
    awk -v now="$(date +%s.%N)" '$1 == "VmRSS:" { print now, $2 }' "/proc/$SERVICE_PID/status" 2>/dev/null || true
    sleep 0.5
  done
) >"$RAW/rss.tsv" &
SAMPLER_PID=$!
# The outbox backlog every second (events written, not yet confirmed by the broker): the report
# gives its largest value during each run.
(
  while kill -0 "$SERVICE_PID" 2>/dev/null; do
    echo "$(date +%s.%N) $(psql_admin -d "$DATABASE" -tAc 'SELECT count(*) FROM outbox' 2>/dev/null || echo -)"
    sleep 1
  done
) >"$RAW/outbox.tsv" &
OUTBOX_SAMPLER_PID=$!

log "seeding $BENCH_READ_CHANNELS channels x $SEED_MESSAGES messages through the API"
python3 tools/bench/prepare.py --base-url "$BASE_URL" --channel-prefix "$BENCH_READ_PREFIX" \
  --channels "$BENCH_READ_CHANNELS" --user-prefix "$BENCH_USER_PREFIX" --users "$BENCH_USERS" \
  seed --messages "$SEED_MESSAGES" --concurrency 16 --content-bytes "$BENCH_CONTENT_BYTES" | tee "$RAW/seed.txt"
python3 tools/bench/prepare.py --base-url "$BASE_URL" --channel-prefix "$BENCH_READ_PREFIX" \
  --channels "$BENCH_READ_CHANNELS" --user-prefix "$BENCH_USER_PREFIX" \
  paths --limit "$BENCH_PAGE_LIMIT" --out "$RAW/older-paths.txt" --summary "$RAW/pages.json"
export BENCH_PATHS_FILE="$RAW/older-paths.txt"

# One wrk run: WARMUP seconds unreported, then DURATION seconds measured; around the measured
# run, the service's metrics and CPU time.
wrk_run() {
  local scenario=$1 connections=$2 target=$3
  local name="$scenario-c$connections"
  log "wrk $name: ${WARMUP}s warm-up, ${DURATION}s measured"
  if ((WARMUP > 0)); then
    BENCH_WRK_JSON="" wrk -t2 -c"$connections" -d"${WARMUP}s" --timeout 10s -s tools/bench/wrk.lua "$target" -- "$scenario" >/dev/null
  fi
  curl -fsS "$BASE_URL/metrics" >"$RAW/$name.metrics-before.txt"
  local ticks_before machine_before
  ticks_before=$(service_ticks)
  machine_before=$(machine_ticks)
  processes_snapshot "$RAW/procs/$name.before"
  date +%s.%N >"$RAW/$name.window"
  BENCH_WRK_JSON="$RAW/$name.json" wrk -t2 -c"$connections" -d"${DURATION}s" --timeout 10s --latency \
    -s tools/bench/wrk.lua "$target" -- "$scenario" >"$RAW/$name.wrk.txt"
  date +%s.%N >>"$RAW/$name.window"
  processes_snapshot "$RAW/procs/$name.after"
  echo "$ticks_before $(service_ticks) $machine_before $(machine_ticks) $(getconf CLK_TCK)" >"$RAW/$name.cpu.txt"
  curl -fsS "$BASE_URL/metrics" >"$RAW/$name.metrics-after.txt"
  grep -E 'Requests/sec|Non-2xx|Socket errors' "$RAW/$name.wrk.txt" | sed "s/^/[bench]   /" >&2 || true
}

for scenario in $SCENARIOS; do
  for connections in $CONNECTIONS; do
    wrk_run "$scenario" "$connections" "$BASE_URL"
  done
done

# The bytes of one answer (the newest page's body: what the newest limit's redis-benchmark GETs),
# and what a cache hit that is not answered by the page the pod keeps reads from Redis: the meta
# member and the newest limit + 1 entries of a warm timeline, as TimelineScripts.newest returns them.
timeline_key="timeline:v2:$BENCH_READ_PREFIX-0000-4000-8000-000000000001"
# A read first, so the timeline is cached even when no read scenario ran lately.
answer_bytes=$(curl -fsS -o /dev/null -w '%{size_download}' -H "X-User-Id: $BENCH_USER_PREFIX-0000-4000-8000-000000000001" \
  "$BASE_URL/v1/channels/$BENCH_READ_PREFIX-0000-4000-8000-000000000001/messages?limit=$BENCH_PAGE_LIMIT")
hit_bytes=$(redis-cli -p "$REDIS_PORT" -n "$REDIS_DB" eval "
  local n = #(redis.call('ZRANGEBYSCORE', KEYS[1], 0, 0)[1] or '')
  for _, entry in ipairs(redis.call('ZREVRANGEBYSCORE', KEYS[1], '+inf', 1, 'LIMIT', 0, ARGV[1])) do n = n + #entry end
  return n" 1 "$timeline_key" $((BENCH_PAGE_LIMIT + 1)))
{
  echo "cache_hit_bytes=$hit_bytes"
  echo "answer_bytes=$answer_bytes"
  echo "timeline_memory_usage=$(redis-cli -p "$REDIS_PORT" -n "$REDIS_DB" memory usage "$timeline_key")"
  echo "timeline_entries=$(redis-cli -p "$REDIS_PORT" -n "$REDIS_DB" zcard "$timeline_key")"
  echo "rss_end_kb=$(status_field VmRSS)"
  echo "vmhwm_kb=$(status_field VmHWM)"
} >>"$RAW/meta.txt"

if [[ ${BENCH_VERIFY:-1} == 1 ]]; then
  verify_status=0
  verify_pass after-load --messages 2000 --channels 20 --concurrency 16 --timeout 120 || verify_status=$?
  echo "verify_status=$verify_status" >>"$RAW/meta.txt"
fi
echo "service_errors=$(grep -c '"level":"error"' "$OUT/service.log" || true)" >>"$RAW/meta.txt"
stop_service

# --- the raw limits of the same servers, with the service stopped ------------------------------

if [[ ${BENCH_LIMITS:-1} == 1 ]]; then
  # Texts of the sizes the service writes: a message and its event JSON.
  content="bench message from pgbench, $(head -c $((BENCH_CONTENT_BYTES - 28)) /dev/zero | tr '\0' x)"
  message_json=$(printf '{"attachments":[],"author_id":"%s","channel_id":"%s","content":"%s","created_at":"2026-01-01T00:00:00.000Z","deleted_at":null,"edited_at":null,"id":"%s","mentions":[],"parent_id":null,"reactions":{},"reply_count":0,"seq":1,"type":"text","version":1}' \
    "$BENCH_USER_PREFIX-0000-4000-8000-000000000001" "$BENCH_WRITE_PREFIX-0000-4000-8000-000000000001" "$content" \
    "01a20000-0000-7000-8000-000000000001")
  payload=$(printf '{"actor_id":"%s","channel_id":"%s","id":"%s","message":%s,"occurred_at":"2026-01-01T00:00:00.000Z","seq":1,"type":"message.created","version":1}' \
    "$BENCH_USER_PREFIX-0000-4000-8000-000000000001" "$BENCH_WRITE_PREFIX-0000-4000-8000-000000000001" \
    "01a20000-0000-7000-8000-000000000002" "$message_json")

  pgbench_run() {
    local name=$1 script=$2 connections=$3
    shift 3
    # -M prepared: the service prepares each statement once per connection (PQprepare, then
    # PQexecPrepared), and so does pgbench with this.
    local common=(-h 127.0.0.1 -p "$PG_PORT" -U messages -n -M prepared -c "$connections" -j 2 -f "$script" "$@")
    log "pgbench $name-c$connections: ${WARMUP}s warm-up, ${DURATION}s measured"
    if ((WARMUP > 0)); then "$PG_BIN/pgbench" "${common[@]}" -T "$WARMUP" "$DATABASE" >/dev/null 2>&1 || true; fi
    # -l: one line per transaction (its latency in microseconds), for the percentiles.
    processes_snapshot "$RAW/procs/pgbench-$name-c$connections.before"
    (cd "$RAW" && "$PG_BIN/pgbench" "${common[@]}" -T "$DURATION" -l --log-prefix="pgbench-$name-c$connections" "$DATABASE") \
      >"$RAW/pgbench-$name-c$connections.txt" 2>&1 || log "pgbench $name-c$connections failed: see $RAW/pgbench-$name-c$connections.txt"
    processes_snapshot "$RAW/procs/pgbench-$name-c$connections.after"
    grep -E '^tps|failed' "$RAW/pgbench-$name-c$connections.txt" | sed "s/^/[bench]   /" >&2 || true
  }
  LIMIT_CONNECTIONS=$(for c in $CONNECTIONS; do ((c <= LIMIT_CONNECTIONS_MAX)) && echo "$c"; done; true)
  for connections in $LIMIT_CONNECTIONS; do
    # The minimal durable create is the limit; the store's own statement shows what it costs.
    for script in create-minimal create; do
      pgbench_run "$script" "$ROOT/tools/bench/$script.pgbench" "$connections" -D prefix="$BENCH_WRITE_PREFIX" \
        -D channels="$BENCH_WRITE_CHANNELS" -D content="$content" -D payload="$payload"
      # No relay deletes these rows: each run starts from an empty outbox, as the service's does.
      psql_admin -d "$DATABASE" -c "TRUNCATE outbox"
    done
    for script in older-minimal older-page; do
      pgbench_run "$script" "$ROOT/tools/bench/$script.pgbench" "$connections" -D prefix="$BENCH_READ_PREFIX" \
        -D channels="$BENCH_READ_CHANNELS" -D low=$((BENCH_PAGE_LIMIT + 1)) -D high=$((SEED_MESSAGES - 200 + 1))
    done
  done
  # pgbench's events have no relay to publish them; the next run starts from a fresh database anyway.
  psql_admin -d "$DATABASE" -c "TRUNCATE outbox"

  # Redis: GET of a value the size of one cache hit (SET first writes the keys), and the real
  # read of a warm timeline's newest entries. A fixed count of requests: redis-benchmark has no
  # duration option.
  requests=${BENCH_REDIS_REQUESTS:-200000}
  for connections in $LIMIT_CONNECTIONS; do
    log "redis-benchmark c$connections: GET of $answer_bytes bytes (one answer), ZREVRANGEBYSCORE of a timeline"
    redis-benchmark -h 127.0.0.1 -p "$REDIS_PORT" --dbnum "$REDIS_DB" -c "$connections" -n "$requests" \
      -r 1000 -d "$answer_bytes" -t set,get --csv >"$RAW/redis-get-c$connections.csv"
    redis-benchmark -h 127.0.0.1 -p "$REDIS_PORT" --dbnum "$REDIS_DB" -c "$connections" -n "$requests" --csv \
      ZREVRANGEBYSCORE "$timeline_key" +inf 1 LIMIT 0 $((BENCH_PAGE_LIMIT + 1)) >"$RAW/redis-timeline-c$connections.csv"
    grep -i '"GET"' "$RAW/redis-get-c$connections.csv" | sed "s/^/[bench]   /" >&2 || true
  done
fi

echo "loadavg_end=$(cut -d' ' -f1-3 /proc/loadavg)" >>"$RAW/meta.txt"
python3 tools/bench/report.py "$OUT"
log "report: ${OUT#"$ROOT"/}/report.md"
if [[ ${verify_status:-0} != 0 ]]; then
  log "seed_verify after the load failed (status $verify_status): see ${OUT#"$ROOT"/}/verify-after-load.txt"
  exit 1
fi
