#!/usr/bin/env bash
# Runs schemathesis against the live service and its own OpenAPI spec: every operation of both
# APIs, with generated valid and invalid input. Fails on any 5xx and on any response that does not
# conform to the spec (status code, content type, headers, body schema).
#
# SCHEMATHESIS_ARGS adds options (e.g. `--include-operation-id listChanges` to fuzz one operation).
# Expects the servers of `make services` and a built debug binary (make test provides both).
# Starts the service on SCHEMATHESIS_PORT (18080) with AUTH_MODE=header, no rate limit (the
# fuzzer sends thousands of requests as one user), and stops it afterwards. The live stream
# (streamChanges) is left out: a stream that opens holds its request until the fuzzer's timeout,
# and refused ones (503) count as server errors; StreamRouteTests check its answers instead.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PORT=${SCHEMATHESIS_PORT:-18080}
VENV="$ROOT/.local/schemathesis-venv"
BINARY="$ROOT/.build/debug/messages-service"
SPEC="$ROOT/Sources/MessagesService/Resources/openapi.yaml"
log() { echo "[schemathesis] $*"; }

# shellcheck source=tools/python-venv.sh
source tools/python-venv.sh
ensure_venv "$VENV" tools/schemathesis-requirements.txt

"$BINARY" migrate >/dev/null
server_log=$(mktemp)
CHANNEL_ACCESS=open AUTH_MODE=header PORT=$PORT RATE_LIMIT_RPS=0 LOG_LEVEL=error "$BINARY" serve >"$server_log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -f "$server_log"' EXIT
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$PORT/health/ready" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fsS "http://127.0.0.1:$PORT/health/ready" >/dev/null || { cat "$server_log"; exit 1; }

log "fuzzing http://127.0.0.1:$PORT with $SPEC"
# One worker: with several threads, hypothesis parses lambda sources concurrently and CPython 3.11
# (before 3.11.8) fails that with "AST constructor recursion depth mismatch" (a CI run hit it).
status=0
"$VENV/bin/schemathesis" run "$SPEC" --url "http://127.0.0.1:$PORT" \
  -H "X-User-Id: 3f0c3a9e-8d0e-4c1e-9b1a-2f6f0d1c0a11" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance \
  --exclude-operation-id streamChanges \
  --max-examples 25 --seed 1 --workers 1 --request-timeout 10 --no-color ${SCHEMATHESIS_ARGS:-} || status=$?
if ! kill -0 "$server" 2>/dev/null; then
  log "the service died during the run"
  cat "$server_log"
  exit 1
fi
exit "$status"
