#!/bin/sh
# build.sh - build the libFuzzer harnesses with clang (ASan + UBSan).
# Usage: tests/fuzz/build.sh [OUTDIR]   (default /tmp/icapm-fuzz)
# Then:  OUTDIR/fuzz_icap_response -max_total_time=60 -dict=tests/fuzz/icap.dict \
#           OUTDIR/corpus OUTDIR/seeds
# The seeds are the golden replies of tests/data/icap behind a feed-size
# byte (the harness reads the first byte as the size of each feed).
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:-/tmp/icapm-fuzz}
mkdir -p "$out/corpus"
CXX=${CXX:-clang++}
flags="-std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -I$top/include"
$CXX $flags $(pkg-config --cflags openssl fmt) \
    "$top/tests/fuzz/fuzz_icap_response.cpp" \
    "$top/src/icap/response.cpp" "$top/src/icap/rules.cpp" "$top/src/icap/options.cpp" \
    "$top/src/icap/verdict.cpp" "$top/src/common/sha256.cpp" \
    $(pkg-config --libs openssl fmt) -o "$out/fuzz_icap_response"
mkdir -p "$out/seeds"
for f in "$top"/tests/data/icap/*.icap; do
    name=$(basename "$f" .icap)
    { printf '\000'; cat "$f"; } > "$out/seeds/$name.whole"
    { printf '\006'; cat "$f"; } > "$out/seeds/$name.split"
done
echo "built $out/fuzz_icap_response, seeds in $out/seeds"
