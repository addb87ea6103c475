#!/usr/bin/env bash
# NAME
#   run.sh - build a libFuzzer harness if needed, seed it from the test
#   data and fuzz it for a while
# SYNOPSIS
#   tests/fuzz/run.sh NAME SECONDS
#     NAME     icap_response   ICAP reply parser, verdict rules, OPTIONS
#              mime            message spool and MIME walker
#     SECONDS  how long to fuzz; 0 only builds and prepares the seeds
# DESCRIPTION
#   Builds tests/fuzz/fuzz_NAME.cpp with clang++ (libFuzzer, ASan and
#   UBSan; see fuzz.mk) into $FUZZ_DIR, rebuilding only what changed.
#   The seeds are made afresh on every run from the test data, each
#   behind the harness's mode byte: the golden replies of tests/data/icap
#   (fed whole and in 6-byte pieces) and the messages of tests/data/mime
#   (memory spool, and file spool with every part on disk). Inputs that
#   reach new code collect in $FUZZ_DIR/NAME/corpus and are reused by
#   later runs; the full libFuzzer log is $FUZZ_DIR/NAME/fuzz.log.
#   scripts/test.sh runs both harnesses for 60 s each.
# EXIT STATUS
#   0  the time ran out without a finding (one summary line is printed)
#   1  a finding: crash, sanitizer report, leak, slow input or out of
#      memory. The report is printed, then where the input was saved and
#      the command that replays it.
#   2  usage or build error
# ENVIRONMENT
#   FUZZ_DIR  build and work directory (default: build-fuzz in the source tree)
#   FUZZ_CXX  the clang++ to use (default clang++; needs libclang-rt-dev)
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)

usage() { echo "usage: tests/fuzz/run.sh icap_response|mime SECONDS" >&2; exit 2; }
[ $# -eq 2 ] || usage
name=$1 secs=$2
case "$secs" in ''|*[!0-9]*) usage ;; esac
case "$name" in
  icap_response) dict=icap.dict; extra=() ;;
  mime)          dict=mime.dict; extra=(-max_len=65536) ;;
  *) usage ;;
esac

out=${FUZZ_DIR:-$top/build-fuzz}
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$out/$name
bin=$out/fuzz_$name

# Build (incremental; objects and dependency files live in $out/obj).
if ! make -s -f "$top/tests/fuzz/fuzz.mk" -j"$(nproc)" TOP="$top" OUT="$out" "$bin"; then
  echo "fuzz $name: build failed" >&2
  exit 2
fi

# Seeds: the test data, rebuilt each run so they follow the data.
rm -rf "$work/seeds"
mkdir -p "$work/seeds" "$work/corpus" "$work/artifacts"
case "$name" in
  icap_response)
    # First byte: top bit set = feed the reply whole, else in pieces
    # of 1 + byte % 64 bytes (here 6, to split inside every token).
    for f in "$top"/tests/data/icap/*.icap; do
      b=$(basename "$f" .icap)
      { printf '\200'; cat "$f"; } > "$work/seeds/$b.whole"
      { printf '\005'; cat "$f"; } > "$work/seeds/$b.split"
    done ;;
  mime)
    # First byte: bit 0 = spool in a temp file, bit 1 = every part on disk.
    # Bits 2-3 = ScanWholeMessage (0 ambiguous, 1 always, 2 never). The
    # adversarial corpus seeds too, bar its few large messages (they
    # would raise libFuzzer's max_len for every input).
    for f in "$top"/tests/data/mime/*.eml "$top"/tests/data/mime/corpus/*.eml; do
      [ "$(stat -c %s "$f")" -le 65536 ] || continue
      b=$(basename "$f" .eml)
      { printf '\000'; cat "$f"; } > "$work/seeds/$b.mem"
      { printf '\007'; cat "$f"; } > "$work/seeds/$b.disk"
    done ;;
esac
nseeds=$(find "$work/seeds" -type f | wc -l)
if [ "$nseeds" -eq 0 ]; then
  echo "fuzz $name: no seeds found in tests/data" >&2
  exit 2
fi
[ "$secs" -gt 0 ] || { echo "fuzz $name: built $bin, $nseeds seeds in $work/seeds"; exit 0; }

# Stack traces of clang's runtime need llvm-symbolizer.
if [ -z "${ASAN_SYMBOLIZER_PATH:-}" ]; then
  for s in llvm-symbolizer llvm-symbolizer-14 /usr/lib/llvm-14/bin/llvm-symbolizer; do
    if p=$(command -v "$s"); then export ASAN_SYMBOLIZER_PATH=$p; break; fi
  done
fi
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}

log=$work/fuzz.log
rc=0
(cd "$work" && exec "$bin" -max_total_time="$secs" -timeout=10 -print_final_stats=1 \
    -dict="$top/tests/fuzz/$dict" -artifact_prefix="$work/artifacts/" "${extra[@]}" \
    corpus seeds) >"$log" 2>&1 </dev/null || rc=$?

execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -n 1)
ncorpus=$(find "$work/corpus" -type f | wc -l)
if [ $rc -eq 0 ]; then
  echo "fuzz $name: ${secs}s, ${execs:-?} execs (${rate:-?}/s), peak RSS ${rss:-?} MB," \
       "corpus $ncorpus inputs + $nseeds seeds, no finding"
  exit 0
fi

# A finding: the report (from the sanitizer's or libFuzzer's first line on).
echo "fuzz $name: FINDING after ${execs:-?} execs (exit $rc); report:"
awk '/^==[0-9]+==|runtime error:|^ALARM|deadly signal|ERROR: libFuzzer|^INFO: a leak/ {p=1} p' \
    "$log" | head -n 150
saved=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
if [ -n "$saved" ]; then
  echo "fuzz $name: input saved to $saved"
  echo "fuzz $name: replay with: $bin $saved"
else
  echo "fuzz $name: no input was saved; full log: $log"
fi
exit 1
