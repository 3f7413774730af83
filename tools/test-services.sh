#!/usr/bin/env bash
# Tests tools/services.sh the way a new user meets it: on a fresh clone of this repository (no
# .local/ yet; this working tree's services.sh copied over the committed one) in a private
# temporary folder (so Postgres, which runs as the postgres user, cannot reach the checkout and
# keeps its data in the fallback folder), it runs start, start, stop, stop, start, stop. After
# each start every server answers on its port, and a second start changes nothing (same server
# processes); after each stop nothing listens there (nor on RabbitMQ's distribution and epmd
# ports), and a second stop succeeds with nothing to do. Uses ports of its own (TEST_PG_PORT
# 15432, TEST_REDIS_PORT 16379, TEST_AMQP_PORT 15673, TEST_PGBOUNCER_PORT 16432), so the servers of `make services` keep
# running. make test runs it; exit status 1 on the first failure.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export PG_PORT=${TEST_PG_PORT:-15432} REDIS_PORT=${TEST_REDIS_PORT:-16379} AMQP_PORT=${TEST_AMQP_PORT:-15673}
export PGBOUNCER_PORT=${TEST_PGBOUNCER_PORT:-16432}
PORTS=("$PG_PORT" "$PGBOUNCER_PORT" "$REDIS_PORT" "$AMQP_PORT" $((AMQP_PORT + 20000)) $((AMQP_PORT + 30000)))
log() { echo "[test-services] $*"; }
fail() { log "FAIL: $*"; exit 1; }
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

for port in "${PORTS[@]}"; do
  listening "$port" && fail "port $port is already taken (a run killed earlier? stop what listens there first)"
done

work=$(mktemp -d)  # mode 700: not reachable by the postgres user
checkout="$work/checkout"
git clone -q "$ROOT" "$checkout"
cp "$ROOT/tools/services.sh" "$checkout/tools/services.sh"
fallback="/var/tmp/messages-service-$(printf '%s' "$checkout" | cksum | cut -d' ' -f1)"
cleanup() {
  "$checkout/tools/services.sh" stop >/dev/null 2>&1 || true
  rm -rf "$work" "$fallback"
}
trap cleanup EXIT
# The server processes, from their pid files: a second start must leave them as they are.
listeners() {
  local file
  for file in "$fallback/postgres/data/postmaster.pid" "$fallback/postgres/pgbouncer/pgbouncer.pid" "$checkout/.local/redis/redis.pid" \
    "$checkout/.local/rabbitmq/rabbitmq.pid"; do
    [[ -f $file ]] || fail "no pid file $file"
    head -n 1 "$file"
  done | tr '\n' ' '
}

started() {
  for port in "$PG_PORT" "$PGBOUNCER_PORT" "$REDIS_PORT" "$AMQP_PORT"; do
    listening "$port" || fail "nothing listens on $port after $1"
  done
}
stopped() {
  for port in "${PORTS[@]}"; do
    for _ in $(seq 1 50); do listening "$port" || break; sleep 0.1; done
    if listening "$port"; then fail "something still listens on $port after $1"; fi
  done
}

log "start"
"$checkout/tools/services.sh" start
started "the first start"
before=$(listeners)
log "start again"
"$checkout/tools/services.sh" start || fail "a second start failed"
started "the second start"
[[ $(listeners) == "$before" ]] || fail "a second start changed the servers ($before -> $(listeners))"
log "stop"
"$checkout/tools/services.sh" stop
stopped "the first stop"
log "stop again"
"$checkout/tools/services.sh" stop || fail "a second stop failed"
log "start after stop"
"$checkout/tools/services.sh" start
started "a start after a stop"
log "stop"
"$checkout/tools/services.sh" stop
stopped "the last stop"
log "start, start, stop, stop, start, stop on a fresh clone: up after each start, nothing listening after each stop"
