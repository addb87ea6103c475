#!/usr/bin/env bash
# NAME
#   build-rpm.sh - build the binary RPM from a release tarball and lint it
# SUMMARY
#   Builds rpm/icap-milter.spec from the tarball of `make dist` with
#   `rpmbuild -bb --nodeps`, everything under OUTDIR/rpmbuild (never
#   ~/rpmbuild or the source tree), with -j$(nproc):
#     1. OUTDIR/rpmbuild/{SOURCES,SPECS,...}: the tarball and the spec;
#     2. rpmbuild -bb (%build, make check in %check, %install), its log in
#        OUTDIR/rpmbuild.log (the log's tail is printed when it fails),
#        with rpm/debian-rpmbuild.macros: man pages gzipped and, when
#        eu-strip (elfutils) is installed, binaries stripped into a
#        -debuginfo package, as Fedora's rpmbuild does;
#     3. the .rpm (and its -debuginfo) copied to OUTDIR;
#     4. rpmlint on the spec and the .rpm, with rpm/icap-milter.rpmlintrc
#        (each filter is explained there), its output printed and kept in
#        OUTDIR/rpmlint.log, then the findings the rpmlintrc filtered.
#   --nodeps: the spec's BuildRequires are Fedora/RHEL package names
#   (gcc-c++, gmime30-devel, sendmail-milter-devel, ...) that Debian's rpm
#   database does not know, so rpmbuild could never see them installed.
#   The Debian packages that provide them (scripts/install-deps.sh) stand
#   in for them: configure stops naming any that is missing.
#   The package links against Debian's libraries (libspdlog.so.1.10,
#   libfmt.so.9, ...): it checks the spec and the packaging, but an rpm
#   to install on Fedora/RHEL is built there (rpmbuild or mock) from the
#   same spec and tarball.
#   The last line is "rpm: NAME.rpm built in Ns (...); rpmlint: E errors,
#   W warnings". The exit status is non-zero when rpmbuild fails or
#   rpmlint reports an error; warnings are allowed.
# USAGE
#   scripts/build-rpm.sh TARBALL OUTDIR
#     TARBALL  icap-milter-VERSION.tar.gz made by `make dist`; VERSION
#              must be the spec's Version
#     OUTDIR   where the rpm, the logs and the rpmbuild tree go (created)
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
spec="$top/rpm/icap-milter.spec"
rpmlintrc="$top/rpm/icap-milter.rpmlintrc"

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
case "${1:-}" in -h|--help) usage; exit 0 ;; esac
if [ $# -ne 2 ]; then
  usage >&2
  exit 2
fi
tarball=$1
[ -f "$tarball" ] || { echo "build-rpm: no tarball $tarball" >&2; exit 2; }
tarball=$(cd "$(dirname "$tarball")" && pwd)/$(basename "$tarball")
for tool in rpmbuild rpmspec rpmlint; do
  command -v "$tool" >/dev/null || {
    echo "build-rpm: $tool not found: install the Debian packages rpm and rpmlint" >&2; exit 2; }
done

say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

# The spec's Source0 is NAME-VERSION.tar.gz: the tarball must match it.
nvr=$(rpmspec -q --srpm --qf '%{name} %{version} %{release}\n' "$spec" | head -n 1)
read -r name version release <<<"$nvr"
[ -n "${release:-}" ] || { echo "build-rpm: rpmspec cannot read $spec" >&2; exit 2; }
source0="$name-$version.tar.gz"
if [ "$(basename "$tarball")" != "$source0" ]; then
  echo "build-rpm: $(basename "$tarball") does not match the spec's Source0 $source0" \
    "(Version in rpm/icap-milter.spec and AC_INIT in configure.ac must agree)" >&2
  exit 2
fi
rpm_name="$name-$version-$release.$(rpm --eval '%{_arch}').rpm"
mkdir -p "$2"
out=$(cd "$2" && pwd)

topdir=$out/rpmbuild
log=$out/rpmbuild.log
rm -rf "$topdir"
mkdir -p "$topdir"/{BUILD,BUILDROOT,RPMS,SOURCES,SPECS,SRPMS,tmp}
cp "$tarball" "$topdir/SOURCES/"
cp "$spec" "$topdir/SPECS/"

# Debian's rpm needs rpm/debian-rpmbuild.macros to compress the man pages
# and to make the -debuginfo package (which strips the binaries) as
# Fedora does; the latter needs eu-strip from elfutils.
defines=(--define "_topdir $topdir" --define "_tmppath $topdir/tmp" --define "_smp_mflags -j$(nproc)")
if command -v eu-strip >/dev/null; then
  defines+=(--define "_enable_debug_packages 1")
else
  echo "build-rpm: no eu-strip (Debian package elfutils): no -debuginfo package, and the" \
    "binaries keep their symbols (rpmlint: unstripped-binary-or-object)"
fi

say "rpmbuild -bb --nodeps $source0 (log: $log)"
echo "build-rpm: --nodeps is used because the BuildRequires are Fedora package names" \
  "that Debian's rpm database does not know; the Debian build dependencies" \
  "(scripts/install-deps.sh) stand in for them"
start=$(date +%s)
rc=0
rpmbuild -bb --nodeps --load "$top/rpm/debian-rpmbuild.macros" "${defines[@]}" \
  "$topdir/SPECS/$(basename "$spec")" >"$log" 2>&1 || rc=$?
secs=$(( $(date +%s) - start ))
if [ "$rc" -ne 0 ]; then
  echo "--- last 40 lines of $log ---" >&2
  tail -n 40 "$log" >&2
  echo "rpm: $rpm_name FAILED (rpmbuild exit status $rc after ${secs}s; log: $log)" >&2
  exit 1
fi
built=$(find "$topdir/RPMS" -name "$rpm_name" -print -quit)
if [ -z "$built" ]; then
  echo "build-rpm: rpmbuild succeeded but made no $rpm_name; see $log" >&2
  exit 1
fi
# The package and its -debuginfo (when made) go to OUTDIR.
find "$topdir/RPMS" -name '*.rpm' -exec cp {} "$out/" \;
tests=$(grep -m1 '^\[doctest\] test cases:' "$log" || echo '?')
echo "build-rpm: built in ${secs}s; make check: $tests"
(cd "$out" && ls -l ./*.rpm)

# One rpmlint run over the spec and the package, with the rpmlintrc (its
# filters must all be used, else rpmlint reports unused-rpmlintrc-filter
# errors); a second run without it shows what the rpmlintrc filtered.
say "rpmlint -r rpm/$(basename "$rpmlintrc") rpm/$(basename "$spec") $rpm_name"
lint_log=$out/rpmlint.log
lint_rc=0
rpmlint -r "$rpmlintrc" "$spec" "$out/$rpm_name" >"$lint_log" 2>&1 || lint_rc=$?
cat "$lint_log"
rpmlint "$spec" "$out/$rpm_name" >"$out/rpmlint-unfiltered.log" 2>&1 || true
filtered=$(grep -E ': [EW]: ' "$out/rpmlint-unfiltered.log" | grep -vxF -f <(grep -E ': [EW]: ' "$lint_log") || true)
if [ -n "$filtered" ]; then
  echo "build-rpm: filtered by rpm/$(basename "$rpmlintrc") (the reason for each is there):"
  sed 's/^/  /' <<<"$filtered"
fi
# rpmlint's last line: "1 packages and 1 specfiles checked; 0 errors, 2 warnings, ..."
counts=$(sed -n 's/.*checked; \([0-9]*\) errors, \([0-9]*\) warnings.*/\1 \2/p' "$lint_log" | tail -n 1)
read -r errors warnings <<<"${counts:-? ?}"

echo "rpm: $rpm_name built in ${secs}s (rpmbuild --nodeps: the BuildRequires are Fedora names);" \
  "rpmlint: $errors errors, $warnings warnings"
if [ "$lint_rc" -ne 0 ] || [ "$errors" != 0 ]; then
  echo "build-rpm: rpmlint reported errors (exit status $lint_rc); see $lint_log" >&2
  exit 1
fi
