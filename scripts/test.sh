#!/usr/bin/env bash
# test.sh - the whole test suite from a fresh clone (README command (b)).
# Installs what it needs (Debian 12, as root), builds out of tree in
# ./build, runs the unit tests (make check: doctest, golden files, the
# docs-vs-schema check) and the integration suite against real Postfix,
# c-icap, clamd and TLS. The last line is "tests: N passed, M failed".
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

bash scripts/install-deps.sh
[ -x configure ] && [ configure -nt configure.ac ] || autoreconf -fi >/dev/null
mkdir -p build
cd build
[ -f Makefile ] || ../configure -q
make -j"$(nproc)" >/dev/null

unit_log=$(mktemp)
integ_log=$(mktemp)
trap 'rm -f "$unit_log" "$integ_log"' EXIT

echo "== unit tests (make check)"
unit_rc=0
make -j"$(nproc)" check >"$unit_log" 2>&1 || unit_rc=$?
cat tests/unit/unit_tests.log 2>/dev/null | tail -n 5 || true
[ $unit_rc -eq 0 ] || { cat "$unit_log" | tail -n 40; cat test-suite.log 2>/dev/null | tail -n 80; }
# doctest: "[doctest] test cases: 40 | 40 passed | 0 failed | 0 skipped"
read -r u_pass u_fail < <(sed -n 's/.*test cases: *[0-9]* | *\([0-9]*\) passed | *\([0-9]*\) failed.*/\1 \2/p' \
    tests/unit/unit_tests.log 2>/dev/null | tail -n 1)
u_pass=${u_pass:-0}; u_fail=${u_fail:-0}
[ $unit_rc -eq 0 ] || [ "$u_fail" -gt 0 ] || u_fail=1

echo "== integration tests (real Postfix, c-icap, clamd, TLS)"
integ_rc=0
python3 "$top/tests/integration/run.py" --milter "$PWD/icap-milter" 2>&1 | tee "$integ_log" || integ_rc=$?
read -r i_pass i_fail < <(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed.*/\1 \2/p' "$integ_log" | tail -n 1)
i_pass=${i_pass:-0}; i_fail=${i_fail:-0}
[ $integ_rc -eq 0 ] || [ "$i_fail" -gt 0 ] || i_fail=1

echo "unit: $u_pass passed, $u_fail failed; integration: $i_pass passed, $i_fail failed"
echo "tests: $((u_pass + i_pass)) passed, $((u_fail + i_fail)) failed"
[ $unit_rc -eq 0 ] && [ $integ_rc -eq 0 ]
