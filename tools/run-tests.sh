#!/usr/bin/env bash
# Runs `swift test` and fails when it fails or when it ran no test at all (a filter that matches
# nothing, or a build that dropped the test targets, must not pass as green).
#
#   tools/run-tests.sh [swift test options]   every test (make test)
#   tools/run-tests.sh --unit                 every suite not tagged `.servers` (make test-unit)
#
# `--unit` skips the suites declared `@Suite(.tags(.servers), ...)`: the tag is the one place
# that says a suite needs Postgres, Redis or RabbitMQ. (swift test cannot select by tag on this
# toolchain, so the tagged suites' names become a --skip pattern.)
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ ${1:-} == --unit ]]; then
  shift
  server_suites=$(grep -rhoE '^@Suite\([^{]*\.servers[^{]*\)[[:space:]]*(final[[:space:]]+)?(struct|class)[[:space:]]+[A-Za-z0-9_]+' Tests \
    | grep -oE '[A-Za-z0-9_]+$' | paste -sd'|' -)
  [[ -n $server_suites ]] || { echo "run-tests: found no suite tagged .servers" >&2; exit 1; }
  set -- --skip "\.($server_suites)/" "$@"
fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
# A bound on the whole run (TEST_TIMEOUT seconds): a test process that dies while a server it
# started still holds its output open would otherwise leave swift test waiting forever.
timeout --kill-after=30 "${TEST_TIMEOUT:-1800}" swift test --skip-build "$@" 2>&1 | tee "$log" || status=$?
if ((status != 0)); then exit "$status"; fi
passed=$(grep -Eo 'Test run with [0-9]+ tests? (in [0-9]+ suites? )?passed' "$log" | grep -Eo '[0-9]+' | head -n 1 || true)
if [[ -z $passed || $passed -eq 0 ]]; then
  echo "run-tests: no test was executed" >&2
  exit 1
fi
echo "run-tests: $passed tests passed"
