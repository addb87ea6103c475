#!/usr/bin/env bash
# NAME
#   build-deb.sh - build the icap-milter Debian package and check it with lintian
# SUMMARY
#   On Debian 12 with the packaging tools installed (scripts/install-deps.sh):
#     1. copies the source tree's tracked files and its untracked files that
#        git does not ignore (git ls-files -co --exclude-standard) into a
#        scratch directory OUTDIR/icap-milter-VERSION: the tree itself is
#        never written to, and build directories or local configure output
#        cannot leak into the package;
#     2. runs dpkg-buildpackage -us -uc -b there (DEB_BUILD_OPTIONS gets
#        parallel=$(nproc); the build runs make check), logging to
#        OUTDIR/icap-milter_VERSION_ARCH.build;
#     3. runs lintian (default profile, info tags shown) on the .deb and the
#        .changes and prints its output.
#   The .deb (with its -dbgsym), .changes, .buildinfo, the build log and
#   lintian's output (.lintian) stay in OUTDIR; the scratch directory is
#   removed after a good build and kept after a failed one. The last line is the summary, e.g.
#     deb: icap-milter_0.1.0-1_amd64.deb built in 4m05s; lintian: 0 errors, 0 warnings (3 info)
# DIAGNOSTICS
#   Exits non-zero when the build fails (the log's tail is printed), when
#   lintian fails to run, or when it reports any E: or W: tag.
# USAGE
#   scripts/build-deb.sh OUTDIR
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
case "${1:-}" in
  -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
esac
if [ $# -ne 1 ]; then
  echo "usage: $0 OUTDIR (--help for more)" >&2; exit 64
fi

for tool in git dpkg-buildpackage dpkg-parsechangelog dh lintian; do
  command -v "$tool" >/dev/null || {
    echo "build-deb: $tool not found: run scripts/install-deps.sh" >&2; exit 1; }
done
git -C "$top" rev-parse --is-inside-work-tree >/dev/null 2>&1 || {
  echo "build-deb: $top is not a git checkout (the file list comes from git)" >&2; exit 1; }

mkdir -p "$1"
out=$(cd "$1" && pwd)
# An OUTDIR inside the tree would be written into the tree, and copied into
# the next build unless git ignores it.
case "$out/" in
  "$top"/*)
    if ! git -C "$top" check-ignore -q "$out"; then
      echo "build-deb: OUTDIR $out is inside the source tree and not ignored by git" >&2; exit 1
    fi ;;
esac

version=$(dpkg-parsechangelog -l "$top/debian/changelog" -S Version)
source=$(dpkg-parsechangelog -l "$top/debian/changelog" -S Source)
arch=$(dpkg-architecture -qDEB_HOST_ARCH)
upstream=${version%-*}
scratch=$out/$source-$upstream
log=$out/${source}_${version}_${arch}.build
deb=${source}_${version}_${arch}.deb
changes=${source}_${version}_${arch}.changes

# 1. The scratch copy (files deleted in the work tree but still tracked
#    are skipped).
rm -rf "$scratch"
rm -f "$out/${source}_${version}_${arch}".{deb,changes,buildinfo,build,lintian} \
  "$out/${source}-dbgsym_${version}_${arch}".{deb,ddeb}
mkdir -p "$scratch"
(
  cd "$top"
  git ls-files -co --exclude-standard -z |
    while IFS= read -r -d '' f; do
      if [ -e "$f" ] || [ -L "$f" ]; then printf '%s\0' "$f"; fi
    done |
    tar --null --no-recursion -T - -cf -
) | tar -xf - -C "$scratch"
echo "build-deb: $(find "$scratch" -type f | wc -l) files copied to $scratch"

# 2. The build.
opts=${DEB_BUILD_OPTIONS:-}
case " $opts " in
  *" parallel="*) ;;
  *) opts="${opts:+$opts }parallel=$(nproc)" ;;
esac
echo "build-deb: dpkg-buildpackage -us -uc -b (DEB_BUILD_OPTIONS=$opts), log in $log"
start=$(date +%s)
if ! (cd "$scratch" && DEB_BUILD_OPTIONS=$opts dpkg-buildpackage -us -uc -b) >"$log" 2>&1; then
  echo "build-deb: the build failed; the last lines of $log:" >&2
  tail -n 60 "$log" >&2
  echo "build-deb: scratch tree kept in $scratch" >&2
  echo "deb: $deb not built (see $log)"
  exit 1
fi
elapsed=$(( $(date +%s) - start ))
took=$(printf '%dm%02ds' $((elapsed / 60)) $((elapsed % 60)))
rm -rf "$scratch"
for f in "$deb" "$changes"; do
  [ -f "$out/$f" ] || { echo "build-deb: the build did not make $out/$f" >&2; exit 1; }
done
echo "build-deb: built in $took:"
find "$out" -maxdepth 1 -type f -name "${source}*_${version}_${arch}.*" -printf '  %f (%s bytes)\n' | sort

# 3. lintian: E: and W: fail; I: (shown with -I) are counted only.
echo "build-deb: lintian -I $deb $changes"
lintian_out=$out/${source}_${version}_${arch}.lintian
status=0
(cd "$out" && lintian -I --fail-on none "$deb" "$changes") >"$lintian_out" 2>&1 || status=$?
cat "$lintian_out"
errors=$(grep -c '^E: ' "$lintian_out" || true)
warnings=$(grep -c '^W: ' "$lintian_out" || true)
infos=$(grep -c '^I: ' "$lintian_out" || true)
summary="deb: $deb built in $took; lintian: $errors errors, $warnings warnings ($infos info)"
if [ "$status" -ne 0 ]; then
  echo "build-deb: lintian failed to run (exit status $status)" >&2
  echo "$summary"
  exit 1
fi
echo "$summary"
[ "$errors" -eq 0 ] && [ "$warnings" -eq 0 ]
