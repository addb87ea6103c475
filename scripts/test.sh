#!/usr/bin/env bash
# test.sh - the whole test suite from a fresh clone (README command (b)).
# Installs what it needs (Debian 12, as root), then runs, each step timed:
#   1. unit tests: out-of-tree build in ./build, make check (doctest,
#      golden files, the docs-vs-schema check)
#   2. every unit test again under ASan + UBSan (build in ./build-asan)
#   3. the scanner, pool, session and queue tests under TSan (./build-tsan)
#   4. both libFuzzer harnesses for 60 s each: tests/fuzz/run.sh
#      icap_response 60 and tests/fuzz/run.sh mime 60 (./build-fuzz)
#   5. packaging (scripts/package.sh): make distcheck, the rpm with
#      rpmlint, the .deb with lintian, the unit's systemd-analyze score
#   6. the integration suite against real Postfix, c-icap, clamd and TLS
#      (real sendmail too), with the .deb of step 5 installed and run as
#      its unit runs it (case package_deb)
# A sanitizer report fails its step even when every test case passed.
# The last line is "tests: N passed, M failed": the doctest case counts
# of steps 1-3, one per fuzz run, one per packaging check and the
# integration cases. The exit
# status is non-zero when anything failed.
# ICAPM_SKIP_INTEGRATION=1 skips steps 5 and 6 for quick local runs; it
# is ignored when CI=true, so CI always runs everything.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

bash scripts/install-deps.sh
[ -x configure ] && [ configure -nt configure.ac ] || autoreconf -fi >/dev/null
mkdir -p build
cd build
[ -f Makefile ] || ../configure -q
make -j"$(nproc)" >/dev/null

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
unit_log=$tmp/unit.log
integ_log=$tmp/integration.log

# doctest_counts LOG - "passed failed" from doctest's summary line
# ("[doctest] test cases: 40 | 40 passed | 0 failed | 0 skipped"), or
# "0 0" when the run died before printing it.
doctest_counts() {
  local p f
  read -r p f < <(sed -n 's/.*test cases: *[0-9]* | *\([0-9]*\) passed | *\([0-9]*\) failed.*/\1 \2/p' \
      "$1" 2>/dev/null | tail -n 1) || true
  echo "${p:-0} ${f:-0}"
}

echo "== unit tests (make check)"
t0=$SECONDS
unit_rc=0
make -j"$(nproc)" check >"$unit_log" 2>&1 || unit_rc=$?
cat tests/unit/unit_tests.log 2>/dev/null | tail -n 5 || true
[ $unit_rc -eq 0 ] || { cat "$unit_log" | tail -n 40; cat test-suite.log 2>/dev/null | tail -n 80; }
read -r u_pass u_fail < <(doctest_counts tests/unit/unit_tests.log)
[ $unit_rc -eq 0 ] || [ "$u_fail" -gt 0 ] || u_fail=1
echo "   unit tests: $((SECONDS - t0)) s"
cd "$top"

# sanitized_unit_tests NAME DIR FLAGS [DOCTEST ARGS...] - configure DIR out
# of tree with FLAGS (again only when FLAGS changed), build the unit tests
# there, run them, show the failures and sanitizer reports, and set
# s_pass/s_fail. Leaves the build log and the run log in DIR.
sanitized_unit_tests() {
  local name=$1 dir=$2 flags=$3 rc=0 t0=$SECONDS
  shift 3
  s_pass=0 s_fail=0
  mkdir -p "$dir"
  # -g1: line tables (and inlined frames) for the reports, a quarter
  # less compile time than -g.
  local cxxflags="-g1 -O1 $flags"
  if [ ! -f "$dir/Makefile" ] || [ "$(cat "$dir/.sanitizer-flags" 2>/dev/null)" != "$cxxflags" ]; then
    (cd "$dir" && ../configure -q CXXFLAGS="$cxxflags" LDFLAGS="$flags") >"$dir/build.log" 2>&1 &&
      echo "$cxxflags" >"$dir/.sanitizer-flags" || rc=$?
  fi
  [ $rc -ne 0 ] || (cd "$dir" && make -j"$(nproc)" tests/unit/unit_tests) >>"$dir/build.log" 2>&1 || rc=$?
  if [ $rc -ne 0 ]; then
    tail -n 40 "$dir/build.log"
    echo "   $name: build FAILED (log: $dir/build.log), $((SECONDS - t0)) s"
    s_fail=1
    return 0
  fi
  echo "   $name: built in $((SECONDS - t0)) s"
  t0=$SECONDS
  (cd "$dir" && exec ./tests/unit/unit_tests --no-colors=true "$@") >"$dir/unit_tests.log" 2>&1 </dev/null || rc=$?
  # TSan of GCC 12 cannot map its shadow under some kernels' high ASLR
  # entropy (vm.mmap_rnd_bits > 28); without ASLR it can.
  if grep -q 'FATAL: ThreadSanitizer: unexpected memory mapping' "$dir/unit_tests.log"; then
    echo "   $name: rerun without ASLR (setarch -R): TSan cannot map its shadow here"
    rc=0
    (cd "$dir" && exec setarch "$(uname -m)" -R ./tests/unit/unit_tests --no-colors=true "$@") \
        >"$dir/unit_tests.log" 2>&1 </dev/null || rc=$?
  fi
  read -r s_pass s_fail < <(doctest_counts "$dir/unit_tests.log")
  if [ $rc -ne 0 ]; then
    # doctest's failures, then every sanitizer report from its first line.
    awk '/^==[0-9]+==|^WARNING: ThreadSanitizer|runtime error:|^\[doctest\] test cases/ {exit} {print}' \
        "$dir/unit_tests.log" | head -n 120
    awk '/^==[0-9]+==(ERROR|WARNING)|^WARNING: ThreadSanitizer|runtime error:/ {p=1} p' \
        "$dir/unit_tests.log" | head -n 300
    # A report with every case passed (TSan exits 66 at the end) still fails.
    [ "$s_fail" -gt 0 ] || s_fail=1
  fi
  grep '^\[doctest\] test cases' "$dir/unit_tests.log" || echo "   (no doctest summary: the run died)"
  echo "   $name: $s_pass passed, $s_fail failed, exit $rc, ran in $((SECONDS - t0)) s (log: $dir/unit_tests.log)"
}

# 2. ASan + UBSan: every unit test. Leaks are reported (LSan) and fail.
echo "== unit tests under ASan + UBSan"
export ASAN_OPTIONS=detect_leaks=1:detect_stack_use_after_return=1:check_initialization_order=1:strict_init_order=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
sanitized_unit_tests asan "$top/build-asan" \
    "-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
a_pass=$s_pass a_fail=$s_fail
unset ASAN_OPTIONS UBSAN_OPTIONS

# 3. TSan: the tests with threads in the scan path - job queue, pool,
# scanner (retries, Max-Connections), the scanner self-test (canaries,
# publisher and waiters), ICAP sessions plain and TLS, the vendor replay
# through the Scanner, concurrent spool readers and the spools' shared
# memory budget, the control socket's server (its poll thread, command
# threads and the in-flight registry) and the alert mail's SMTP client.
# Not run under TSan: "mime walker: messages walked concurrently on
# several threads" - GMime and GLib are not instrumented, so TSan cannot
# see GLib's own atomics and reports races inside g_slice_alloc0 and
# g_time_zone_unref that are not races. ASan covers that test.
echo "== scanner, pool, session and queue tests under TSan"
export TSAN_OPTIONS=halt_on_error=0:second_deadlock_stack=1
sanitized_unit_tests tsan "$top/build-tsan" "-fsanitize=thread -fno-omit-frame-pointer" \
    '-tc=job queue:*,pool:*,scanner:*,scanner tls:*,self-test:*,session:*,session tls:*,vendor replay:*,spool: several readers at once*,memory budget:*,control:*,smtp:*'
t_pass=$s_pass t_fail=$s_fail
unset TSAN_OPTIONS

# 4. Fuzzing: each harness is one pass or one failure. Both are built
# first, one after the other (they share objects), then fuzz at once:
# libFuzzer uses one core each.
echo "== fuzzing (libFuzzer + ASan + UBSan, 60 s each, side by side)"
f_pass=0 f_fail=0
t0=$SECONDS
fuzzers=()
for h in icap_response mime; do
  if bash tests/fuzz/run.sh "$h" 0 </dev/null; then fuzzers+=("$h"); else f_fail=$((f_fail + 1)); fi
done
echo "   fuzz builds: $((SECONDS - t0)) s"
t0=$SECONDS
pids=()
for h in "${fuzzers[@]}"; do
  bash tests/fuzz/run.sh "$h" 60 </dev/null >"$tmp/fuzz-$h.out" 2>&1 &
  pids+=($!)
done
for i in "${!fuzzers[@]}"; do
  rc=0
  wait "${pids[$i]}" || rc=$?
  cat "$tmp/fuzz-${fuzzers[$i]}.out"
  if [ $rc -eq 0 ]; then f_pass=$((f_pass + 1)); else f_fail=$((f_fail + 1)); fi
done
echo "   fuzz runs: $((SECONDS - t0)) s"

echo "== packaging (make distcheck, rpm + rpmlint, deb + lintian, unit security)"
p_pass=0 p_fail=0 pkg_rc=0
if [ "${ICAPM_SKIP_INTEGRATION:-}" = 1 ] && [ "${CI:-}" != true ]; then
  echo "   skipped (ICAPM_SKIP_INTEGRATION=1)"
else
  t0=$SECONDS
  bash scripts/package.sh "$top/build-pkg" </dev/null 2>&1 | tee "$tmp/package.log" || pkg_rc=$?
  read -r p_pass p_fail < <(sed -n 's/^packaging: \([0-9]*\) passed, \([0-9]*\) failed.*/\1 \2/p' \
      "$tmp/package.log" | tail -n 1) || true
  p_pass=${p_pass:-0}; p_fail=${p_fail:-0}
  [ $pkg_rc -eq 0 ] || [ "$p_fail" -gt 0 ] || p_fail=1
  # The integration suite installs this .deb (case package_deb).
  deb=$(ls "$top"/build-pkg/deb/icap-milter_*.deb 2>/dev/null | head -n 1 || true)
  [ -z "$deb" ] || export ICAPM_DEB=$deb
  echo "   packaging: $((SECONDS - t0)) s"
fi

echo "== integration tests (real Postfix, sendmail, c-icap, clamd, TLS)"
i_pass=0 i_fail=0 integ_rc=0
if [ "${ICAPM_SKIP_INTEGRATION:-}" = 1 ] && [ "${CI:-}" != true ]; then
  echo "   skipped (ICAPM_SKIP_INTEGRATION=1)"
else
  t0=$SECONDS
  (cd "$top/build" && python3 "$top/tests/integration/run.py" --milter "$top/build/icap-milter") 2>&1 |
    tee "$integ_log" || integ_rc=$?
  # (no summary line when run.py died early: read fails, counts stay 0)
  read -r i_pass i_fail < <(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed.*/\1 \2/p' "$integ_log" | tail -n 1) || true
  i_pass=${i_pass:-0}; i_fail=${i_fail:-0}
  [ $integ_rc -eq 0 ] || [ "$i_fail" -gt 0 ] || i_fail=1
  echo "   integration: $((SECONDS - t0)) s"
fi

echo "unit: $u_pass passed, $u_fail failed; asan: $a_pass passed, $a_fail failed;" \
     "tsan: $t_pass passed, $t_fail failed; fuzz: $f_pass passed, $f_fail failed;" \
     "packaging: $p_pass passed, $p_fail failed; integration: $i_pass passed, $i_fail failed"
echo "tests: $((u_pass + a_pass + t_pass + f_pass + p_pass + i_pass)) passed," \
     "$((u_fail + a_fail + t_fail + f_fail + p_fail + i_fail)) failed"
[ $((u_fail + a_fail + t_fail + f_fail + p_fail + i_fail)) -eq 0 ] && [ $unit_rc -eq 0 ] && [ $integ_rc -eq 0 ]
