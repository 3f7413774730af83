#!/usr/bin/env bash
# Fuzzes the request decoders (cursors, JSON bodies and their validation, attachment paths,
# durations, base64url, JWT headers: Sources/messages-fuzz) with libFuzzer for a bounded time.
#
#   tools/fuzz.sh [SECONDS]     SECONDS defaults to FUZZ_SECONDS or 60; 0 only replays the corpus
#
# Builds incrementally into .build-fuzz at nice 19 (never into .build: other sanitizer flags would
# rebuild the ordinary build from scratch). Seeds are tools/fuzz-corpus (committed; the first byte
# of each picks the decoder, see Fuzz.swift); inputs that reach new code accumulate in
# .local/fuzz/corpus, and a crash or a failed property is saved as .local/fuzz/crash-<sha1> and
# makes the script exit non-zero. Rerun one in an ordinary debug build (no libFuzzer):
#   swift build --product messages-fuzz && .build/debug/messages-fuzz .local/fuzz/crash-<sha1>
# FUZZ_SANITIZE=fuzzer,address adds AddressSanitizer (built into .build-fuzz-fuzzer-address).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-${FUZZ_SECONDS:-60}}
sanitize=${FUZZ_SANITIZE:-fuzzer}
scratch=.build-fuzz${FUZZ_SANITIZE:+-${sanitize//,/-}}
out=.local/fuzz
log() { echo "[fuzz] $*"; }

[[ $seconds =~ ^[0-9]+$ ]] || { echo "usage: tools/fuzz.sh [SECONDS]" >&2; exit 2; }
mkdir -p "$out/corpus"
log "building messages-fuzz with -sanitize=$sanitize into $scratch"
nice -n 19 swift build --scratch-path "$scratch" --product messages-fuzz \
  -Xswiftc "-sanitize=$sanitize" -Xswiftc -DLIBFUZZER

# libFuzzer's -max_total_time=0 means no limit: 0 here means replay the corpus and stop.
if ((seconds == 0)); then limit=(-runs=0); else limit=(-max_total_time="$seconds"); fi
log "fuzzing for ${seconds}s; log in $out/fuzz.log, crashes in $out/"
status=0
# SWIFT_BACKTRACE=enable=no: the Swift runtime's crash reporter would otherwise take the trap
# first and exit before libFuzzer writes the crashing input. The first corpus directory is the
# one libFuzzer adds to, so the committed seeds come second and stay unchanged. -max_len 8192
# lets a body exceed the 4000-character content limit. -detect_leaks=0: under AddressSanitizer,
# one-time allocations of Swift globals (a lazily built Regex) are reported as leaks at exit.
SWIFT_BACKTRACE=enable=no nice -n 19 "$scratch/debug/messages-fuzz" "${limit[@]}" \
  -max_len=8192 -timeout=10 -rss_limit_mb=2048 -detect_leaks=0 -print_final_stats=1 \
  -dict=tools/fuzz.dict -artifact_prefix="$out/" "$out/corpus" tools/fuzz-corpus >"$out/fuzz.log" 2>&1 || status=$?
# The progress lines (one per new input) stay in the log; the summary and any failure are shown.
grep -E '^#[0-9]+[[:space:]]+(INITED|DONE)|^stat::(number_of_executed_units|average_exec_per_sec|new_units_added)' "$out/fuzz.log" || true
if ((status != 0)); then
  # From the trap message (Swift prints it before libFuzzer's report) through the stack.
  awk '/Fatal error|Precondition failed|ERROR: / { shown = 1 } shown' "$out/fuzz.log" | head -n 80 >&2
  log "FAILED (exit $status): $(grep -o 'Test unit written to .*' "$out/fuzz.log" || echo "see $out/fuzz.log")"
  exit "$status"
fi
log "no crash"
