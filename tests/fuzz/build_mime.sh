#!/bin/sh
# NAME
#   build_mime.sh - build and run the libFuzzer harness of the MIME walker
# SYNOPSIS
#   tests/fuzz/build_mime.sh [seconds]      (default 60; 0 = build only)
# DESCRIPTION
#   Builds tests/fuzz/fuzz_mime.cpp with clang++ (-fsanitize=fuzzer,
#   address,undefined) into $WORK (default /tmp/icapm-fuzz-mime), seeds the
#   corpus from tests/data/mime, and fuzzes for the given time. Findings
#   land in $WORK/crash-*; reproduce with "$WORK/fuzz_mime $WORK/crash-...".
#   Needs Debian's clang and libclang-rt-14-dev (or the matching version).
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
secs=${1:-60}
work=${WORK:-/tmp/icapm-fuzz-mime}
mkdir -p "$work/corpus"

clang++ -std=c++20 -g -O1 -fno-omit-frame-pointer \
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -I"$top/include" $(pkg-config --cflags gmime-3.0 openssl) \
    "$top/tests/fuzz/fuzz_mime.cpp" "$top/src/mime/spool.cpp" "$top/src/mime/walker.cpp" "$top/src/mime/encryption.cpp" \
    "$top/src/common/sha256.cpp" \
    $(pkg-config --libs gmime-3.0 openssl) -o "$work/fuzz_mime"

# Seeds: the fixtures, each prefixed with the mode byte (memory spool).
for f in "$top"/tests/data/mime/*.eml; do
    { printf '\000'; cat "$f"; } > "$work/corpus/seed-$(basename "$f")"
done

cat > "$work/mime.dict" <<'DICT'
"Content-Type: "
"Content-Transfer-Encoding: "
"Content-Disposition: attachment; filename="
"multipart/mixed; boundary="
"multipart/alternative"
"multipart/encrypted; protocol=\"application/pgp-encrypted\""
"multipart/signed"
"multipart/digest"
"message/rfc822"
"message/global"
"application/pkcs7-mime; smime-type=enveloped-data"
"base64"
"quoted-printable"
"x-uuencode"
"begin 644 a\x0d\x0a"
"\x0d\x0a--"
"--\x0d\x0a"
"\x0d\x0a\x0d\x0a"
"=?UTF-8?B?"
"filename*=UTF-8''"
DICT

[ "$secs" -gt 0 ] || exit 0
cd "$work"
ASAN_OPTIONS=detect_leaks=1 ./fuzz_mime -max_total_time="$secs" -max_len=65536 \
    -dict=mime.dict -print_final_stats=1 corpus
