#!/usr/bin/env bash
# Crash hunt: runs tools/crash_hunt.py against the real executable. Thousands of generated hostile
# values hit every endpoint of both APIs (v1 with real HS256 tokens, so requests get past
# authentication; INF326; health, metrics, the spec). Fails when any response is 5xx, a
# connection is dropped or times out, or the process is gone (its log tail is printed).
#
# Expects the servers of `make services` and a built debug binary (make test provides both).
# Starts the service on CRASH_HUNT_PORT (18081) with AUTH_MODE=jwt, a fixed test JWT_SECRET and no
# rate limit, runs the hunt, checks the process is still alive, and stops it. Two passes, each
# on a fresh process: INF326 identity as AUTH_MODE says (jwt: the full hunt), then
# INF326_AUTH=header (the legacy X-User-Id mode; a shorter random pass, no sweep).
#
#   SERVICE_BINARY=path        another binary (default .build/debug/messages-service)
#   CRASH_HUNT_PASSES="default header"   which passes to run
#   tools/crash-hunt.sh --seed 7 --requests 20000   arguments go to crash_hunt.py (both passes)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PORT=${CRASH_HUNT_PORT:-18081}
BINARY=${SERVICE_BINARY:-$ROOT/.build/debug/messages-service}
PASSES=${CRASH_HUNT_PASSES:-default header}
# A fixed test secret (32+ bytes); it signs nothing outside this run.
SECRET=${CRASH_HUNT_JWT_SECRET:-crash-hunt-test-secret-0123456789abcdef-0123456789}
ISSUER=messages-service
AUDIENCE=messages-api
log() { echo "[crash-hunt] $*"; }

[[ -x $BINARY ]] || { log "no executable at $BINARY (build first, or set SERVICE_BINARY)"; exit 2; }
if curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$PORT/health/live" 2>/dev/null; then
  log "something already answers on port $PORT; stop it or set CRASH_HUNT_PORT"
  exit 2
fi

"$BINARY" migrate >/dev/null
server=
server_log=$(mktemp)
stop_server() {
  if [[ -n $server ]] && kill -0 "$server" 2>/dev/null; then
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
  fi
  server=
}
trap 'stop_server; rm -f "$server_log"' EXIT

# Alive: the process exists and is not a zombie waiting to be reaped.
alive() {
  kill -0 "$server" 2>/dev/null || return 1
  local state
  state=$(awk '{ sub(/.*\) /, ""); print $1 }' "/proc/$server/stat" 2>/dev/null) || return 1
  [[ -n $state && $state != Z && $state != X ]]
}

# hunt_pass <name> <INF326_AUTH value or empty> <crash_hunt.py arguments...>
hunt_pass() {
  local name=$1 inf326_auth=$2
  shift 2
  local -a inf326_env=(-u INF326_AUTH RATE_LIMIT_RPS=0)
  # The header pass keeps a (generous) rate limit and trusts one proxy, so the client-address
  # code reads the hunt's hostile X-Forwarded-For values.
  [[ -n $inf326_auth ]] && inf326_env=(
    INF326_AUTH="$inf326_auth" RATE_LIMIT_RPS=1000000 RATE_LIMIT_BURST=1000000 TRUSTED_PROXY_HOPS=1
  )
  : >"$server_log"
  env -u JWT_PUBLIC_KEY_FILE "${inf326_env[@]}" CHANNEL_ACCESS=open AUTH_MODE=jwt JWT_SECRET="$SECRET" JWT_ISSUER=$ISSUER \
    JWT_AUDIENCE=$AUDIENCE INF326_API_ENABLED=true PORT="$PORT" LOG_LEVEL=error \
    "$BINARY" serve >"$server_log" 2>&1 &
  server=$!
  for _ in $(seq 1 150); do
    alive || break
    curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$PORT/health/ready" 2>/dev/null && break
    sleep 0.1
  done
  if ! alive || ! curl -fsS -o /dev/null --max-time 5 "http://127.0.0.1:$PORT/health/ready"; then
    log "$name pass: the service did not become ready on port $PORT"
    tail -n 80 "$server_log"
    return 1
  fi

  log "$name pass: hunting http://127.0.0.1:$PORT (pid $server, binary $BINARY${inf326_auth:+, INF326_AUTH=$inf326_auth})"
  local status=0
  python3 "$ROOT/tools/crash_hunt.py" --url "http://127.0.0.1:$PORT" --jwt-secret "$SECRET" \
    --issuer "$ISSUER" --audience "$AUDIENCE" --server-pid "$server" "$@" || status=$?

  if ! alive; then
    local code=0
    wait "$server" 2>/dev/null || code=$?
    server=
    log "FAIL ($name pass): the service process died during the hunt (exit status $code); its log ends with:"
    tail -n 80 "$server_log"
    return 1
  fi
  stop_server
  if ((status != 0)); then
    log "FAIL ($name pass): the hunt found problems (status $status); the service log ends with:"
    tail -n 40 "$server_log"
    return "$status"
  fi
  log "$name pass: PASS, the service stayed alive and answered no 5xx"
}

for pass in $PASSES; do
  case $pass in
    default) hunt_pass default "" "$@" ;;
    header) hunt_pass header header --no-sweep --requests 1500 --seed 2 "$@" ;;
    *) log "unknown pass $pass (default, header)"; exit 2 ;;
  esac
done
