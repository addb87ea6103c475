#!/usr/bin/env bash
# package.sh - the release tarball, the rpm and the .deb, each checked
# SYNOPSIS
#   scripts/package.sh [OUTDIR]        (default OUTDIR: build-pkg/)
# DESCRIPTION
#   Run by scripts/test.sh before the integration suite (which installs
#   the .deb: tests/integration/cases_package.py). Needs root only for
#   what install-deps.sh installs. Four checks, each one pass or one
#   failure:
#     1. make distcheck: a tarball that builds, passes make check and
#        installs out of tree (OUTDIR/dist);
#     2. the rpm from that tarball, with rpmlint (scripts/build-rpm.sh,
#        OUTDIR/rpm);
#     3. the .deb with make check during its build, and lintian
#        (scripts/build-deb.sh, OUTDIR/deb);
#     4. systemd-analyze security of the unit the .deb installs: an
#        exposure of at most 2.0 ("OK" or better).
#   The source tree is never written: every build happens under OUTDIR.
# DIAGNOSTICS
#   The last line is "packaging: N passed, M failed"; the exit status is
#   non-zero when anything failed.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$top/build-pkg}
max_exposure=2.0

cd "$top"
[ -x configure ] && [ configure -nt configure.ac ] && [ Makefile.in -nt Makefile.am ] || autoreconf -fi >/dev/null
rm -rf "$out"
mkdir -p "$out/dist"
out=$(cd "$out" && pwd)
pass=0 fail=0

# result NAME RC SECONDS - count and print one check.
result() {
  if [ "$2" -eq 0 ]; then pass=$((pass + 1)); echo "   $1: ok ($3 s)"
  else fail=$((fail + 1)); echo "   $1: FAILED ($3 s)"; fi
}

echo "-- make distcheck"
t0=$SECONDS rc=0
(cd "$out/dist" && "$top/configure" -q && make -j"$(nproc)" distcheck) >"$out/dist/distcheck.log" 2>&1 || rc=$?
[ $rc -eq 0 ] || tail -n 40 "$out/dist/distcheck.log"
tarball=$(ls "$out"/dist/icap-milter-*.tar.gz 2>/dev/null | head -n 1 || true)
[ $rc -ne 0 ] || [ -n "$tarball" ] || rc=1
[ $rc -ne 0 ] || echo "   $(basename "$tarball"): $(du -k "$tarball" | cut -f1) KiB"
result distcheck $rc $((SECONDS - t0))

echo "-- rpm (rpmbuild --nodeps, rpmlint)"
t0=$SECONDS rc=0
if [ -n "$tarball" ]; then
  bash "$top/scripts/build-rpm.sh" "$tarball" "$out/rpm" || rc=$?
else
  echo "   no tarball: distcheck failed"; rc=1
fi
result rpm $rc $((SECONDS - t0))

echo "-- deb (dpkg-buildpackage, lintian)"
t0=$SECONDS rc=0
bash "$top/scripts/build-deb.sh" "$out/deb" || rc=$?
result deb $rc $((SECONDS - t0))

echo "-- systemd-analyze security (the .deb's unit)"
t0=$SECONDS rc=0
deb=$(ls "$out"/deb/icap-milter_*.deb 2>/dev/null | head -n 1 || true)
if [ -n "$deb" ]; then
  rm -rf "$out/unit-root" && dpkg-deb -x "$deb" "$out/unit-root"
  unit=$(find "$out/unit-root" -name icap-milter.service | head -n 1)
  report=$(systemd-analyze security --offline=true --no-pager "$unit" 2>&1) || true
  echo "$report" | grep -E '^✗' || true
  level=$(echo "$report" | sed -n 's/.*Overall exposure level for [^:]*: *\([0-9.]*\).*/\1/p')
  echo "   exposure: ${level:-none} (limit $max_exposure): $(echo "$report" | tail -n 1)"
  [ -n "$level" ] && awk -v l="$level" -v m="$max_exposure" 'BEGIN { exit !(l <= m) }' || rc=1
else
  echo "   no .deb to take the unit from"; rc=1
fi
result systemd-security $rc $((SECONDS - t0))

echo "packaging: $pass passed, $fail failed"
[ $fail -eq 0 ]
