#!/usr/bin/env bash
# install-deps.sh - install every Debian 12 package icap-milter needs to
# build, test (sanitizers and fuzzing included) and run its demo.
# Idempotent; needs root.
set -euo pipefail

BUILD_PKGS=(
  build-essential autoconf automake libtool pkg-config
  libmilter-dev libgmime-3.0-dev libssl-dev libspdlog-dev libfmt-dev
  doctest-dev nlohmann-json3-dev libsystemd-dev prometheus-cpp-dev
)
# Packaging (scripts/package.sh): the .deb with its lintian check, the
# rpm with rpmlint, and systemd-analyze for the unit's security score.
PACKAGE_PKGS=(debhelper dpkg-dev fakeroot lintian rpm rpmlint elfutils systemd)
# The fuzz harnesses (tests/fuzz/run.sh) need clang's libFuzzer runtime
# and llvm-symbolizer. The ASan/UBSan/TSan unit test builds use g++, whose
# sanitizer runtimes come with build-essential (libgcc-12-dev).
FUZZ_PKGS=(clang libclang-rt-dev llvm)
# The /metrics endpoint needs libprometheus-cpp-core1.0 and -pull1.0 at
# run time; the integration tests parse its output with python3-prometheus-client.
RUNTIME_PKGS=(
  c-icap libc-icap-mod-virus-scan clamav clamav-daemon
  postfix openssl zip python3 procps clamav-milter sasl2-bin
  libprometheus-cpp-core1.0 libprometheus-cpp-pull1.0 python3-prometheus-client
)

missing=()
for p in "${BUILD_PKGS[@]}" "${FUZZ_PKGS[@]}" "${PACKAGE_PKGS[@]}" "${RUNTIME_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all packages present"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages (${missing[*]}); run as root" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# Postfix must not ask questions, and the system instance is never used:
# tests and the demo run private instances on loopback.
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
echo "postfix postfix/mailname string localhost" | debconf-set-selections
# Keep package post-install scripts from starting system daemons.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod 755 "$policy"; created_policy=1
fi
trap '[ "$created_policy" = 1 ] && rm -f "$policy"' EXIT
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "install-deps: installed ${missing[*]}"
