#!/usr/bin/env bash
# Tests tools/services.sh the way a new user meets it: on a fresh clone of this repository (no
# .local/ yet) in a private temporary folder (so Postgres, which runs as the postgres user, cannot
# reach the checkout and keeps its data in the fallback folder), it runs start, stop, start, stop
# and checks after each start that Postgres, Redis and RabbitMQ answer on their ports, and after
# each stop that nothing listens there (nor on RabbitMQ's distribution and epmd ports) any more. Uses ports of its own (TEST_PG_PORT 15432,
# TEST_REDIS_PORT 16379, TEST_AMQP_PORT 15673), so the servers of `make services` keep running.
# make test runs it; exit status 1 on the first failure.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export PG_PORT=${TEST_PG_PORT:-15432} REDIS_PORT=${TEST_REDIS_PORT:-16379} AMQP_PORT=${TEST_AMQP_PORT:-15673}
log() { echo "[test-services] $*"; }
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

work=$(mktemp -d)  # mode 700: not reachable by the postgres user
checkout="$work/checkout"
git clone -q "$ROOT" "$checkout"
fallback="/var/tmp/messages-service-$(printf '%s' "$checkout" | cksum | cut -d' ' -f1)"
cleanup() {
  "$checkout/tools/services.sh" stop >/dev/null 2>&1 || true
  rm -rf "$work" "$fallback"
}
trap cleanup EXIT

for round in 1 2; do
  log "round $round: start"
  "$checkout/tools/services.sh" start
  for port in "$PG_PORT" "$REDIS_PORT" "$AMQP_PORT"; do
    listening "$port" || { log "FAIL: nothing listens on $port after start (round $round)"; exit 1; }
  done
  log "round $round: stop"
  "$checkout/tools/services.sh" stop
  # RabbitMQ's Erlang distribution and epmd ports too (tools/services.sh derives them from AMQP_PORT).
  for port in "$PG_PORT" "$REDIS_PORT" "$AMQP_PORT" $((AMQP_PORT + 20000)) $((AMQP_PORT + 30000)); do
    for _ in $(seq 1 50); do listening "$port" || break; sleep 0.1; done
    if listening "$port"; then log "FAIL: something still listens on $port after stop (round $round)"; exit 1; fi
  done
done
log "start, stop, start, stop on a fresh clone: every server up after start, nothing listening after stop"
