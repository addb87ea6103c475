#!/usr/bin/env bash
# NAME
#   demo.sh - quick start: build icap-milter and watch it scan two messages
# SUMMARY
#   As root on a fresh Debian 12 machine:
#     1. installs the packages (scripts/install-deps.sh);
#     2. builds icap-milter out of tree into ./build/ (autoreconf, configure, make);
#     3. runs tests/integration/demo.py, which starts clamd (test signatures
#        made on the spot), c-icap over TLS, icap-milter and a private Postfix,
#        all on 127.0.0.1, sends one clean and one EICAR message, shows what
#        happened and where the logs are, and stops everything it started.
#   Nothing is sent anywhere but loopback; the system's own Postfix, clamd and
#   c-icap are not used or touched.
# USAGE
#   scripts/demo.sh [--no-deps] [--no-build] [--pause] [--clean]
#     --no-deps   skip the package installation step
#     --no-build  use the existing build/icap-milter
#     --pause     keep everything running until you press Enter
#     --clean     remove the demo's work directory (logs, configs) at the end
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
build="$top/build"
deps=1 do_build=1 demo_args=()
for arg in "$@"; do
  case "$arg" in
    --no-deps) deps=0 ;;
    --no-build) do_build=0 ;;
    --pause|--clean) demo_args+=("$arg") ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "demo.sh: unknown option $arg (try --help)" >&2; exit 2 ;;
  esac
done

if [ "$(id -u)" -ne 0 ]; then
  echo "demo.sh: run me as root: I install packages and start private Postfix," >&2
  echo "         clamd and c-icap instances on 127.0.0.1." >&2
  exit 1
fi

say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

if [ "$deps" = 1 ]; then
  say "Installing the Debian packages icap-milter needs (scripts/install-deps.sh)"
  "$top/scripts/install-deps.sh"
fi

if [ "$do_build" = 1 ]; then
  say "Building icap-milter in $build"
  (cd "$top" && autoreconf -fi)
  mkdir -p "$build"
  (cd "$build" && "$top/configure" -q && make -j"$(nproc)")
fi
if [ ! -x "$build/icap-milter" ]; then
  echo "demo.sh: $build/icap-milter is missing; run without --no-build" >&2
  exit 1
fi

say "Running the demo (everything on 127.0.0.1)"
exec python3 "$top/tests/integration/demo.py" --milter "$build/icap-milter" "${demo_args[@]}"
