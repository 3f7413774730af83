#!/usr/bin/env bash
# Runs `swift test` and fails when it fails or when it ran no test at all (a filter that matches
# nothing, or a build that dropped the test targets, must not pass as green).
set -euo pipefail
cd "$(dirname "$0")/.."
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
swift test --skip-build "$@" 2>&1 | tee "$log" || status=$?
if ((status != 0)); then exit "$status"; fi
passed=$(grep -Eo 'Test run with [0-9]+ tests? (in [0-9]+ suites? )?passed' "$log" | grep -Eo '[0-9]+' | head -n 1 || true)
if [[ -z $passed || $passed -eq 0 ]]; then
  echo "run-tests: no test was executed" >&2
  exit 1
fi
echo "run-tests: $passed tests passed"
