#!/usr/bin/env bash
# bench/run.sh - the performance figures, each measured side by side with
# its baseline in one run, on the real components (Postfix, c-icap, clamd).
#   throughput   TLS vs plain ICAP, msg/s and milter CPU per 1000 messages
#   inet_socket  inet: vs unix: milter socket on one SMTP session (stall check)
#   token_cost   token-verified vs scanned message: milter and c-icap CPU
#   large_30mb   peak RSS for a 30 MB attachment vs the idle milter
#   whole_message_cost  ScanWholeMessage always vs never: clamd, c-icap and
#                milter CPU and RESPMODs per message
#   peer_compare icap-milter vs Debian's clamav-milter vs Postfix without a
#                milter, same clamd, Postfix and messages (137 KB, 1 MB,
#                10 MB; 1 and 10 sessions): msg/s, CPU, peak RSS, ratios
#                (registered only with ICAPM_BENCH=1: too long for the suite)
#   memory_sessions  peak RSS at 50 SMTP sessions of 1 MB messages, and
#                what a 100 MB attachment adds (ICAPM_BENCH=1 only too)
# Usage: bench/run.sh [BUILD_DIR]   (default ./build; needs root)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$top/build}
if [ ! -x "$build/icap-milter" ]; then
    echo "bench: no $build/icap-milter; build first (scripts/test.sh or make)" >&2
    exit 2
fi
export ICAPM_BENCH=1
exec python3 "$top/tests/integration/run.py" --milter "$build/icap-milter" \
    --only throughput,inet_socket,token_cost,large_30mb,whole_message_cost,peer_compare,memory_sessions
