#!/usr/bin/env bash
# No remote peer can exhaust blockd: while hostile peers (scripts/iscsi-flood.py: readers
# that pipeline 16 MiB READs and never read, a flood of immediate WRITEs without data, half
# PDUs, connections that never log in) run against one target, a normal session through
# QEMU's initiator writes and reads back patterns, and blockd's resident memory stays under
#   RSS before the flood + READERS x (maxDataInBytesPerConnection 32 MiB + maxTransferBytes
#   16 MiB + maxQueuedResponseBytesPerConnection 4 MiB) + 64 MiB
# (docs/ISCSI.md, "Bounds and flow control"). Fails when the bound is crossed, the normal
# session fails or stalls, or blockd dies.
#   scripts/flood-test.sh
# Short form by default (CI, about 20 s); FLOOD_LONG=1 floods for 120 s with 32 readers, past
# the 30 s half-PDU and login timeouts, which must then have closed those connections.
# Environment: BLOCKD (default .build/release/blockd), FLOOD_SECONDS, FLOOD_READERS.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
BLOCKD=${BLOCKD:-.build/release/blockd}
if [[ ${FLOOD_LONG:-0} == 1 ]]; then
    seconds=${FLOOD_SECONDS:-120}
    readers=${FLOOD_READERS:-32}
else
    seconds=${FLOOD_SECONDS:-15}
    readers=${FLOOD_READERS:-8}
fi
[[ -x $BLOCKD ]] || { echo "no blockd at $BLOCKD (swift build -c release --product blockd)" >&2; exit 1; }

work=$(mktemp -d)
flood_pid=
cleanup() {
    [[ -n $flood_pid ]] && kill "$flood_pid" 2>/dev/null || true
    [[ -n ${SAMPLER_PID:-} ]] && kill "$SAMPLER_PID" 2>/dev/null || true
    stop_blockd
    rm -rf "$work"
}
trap cleanup EXIT
port=$(free_port)
log="$work/blockd.log"
target=iqn.2026-11.org.swift-block:flood
start_blockd "$work/data" "$port" "$log" --create flood:1GiB --create normal:256MiB --log-level warning
url="iscsi://127.0.0.1:$port/iqn.2026-11.org.swift-block:normal/0"
failures=0
fail() { echo "FAILED: $*"; failures=$((failures + 1)); }

# Warm up the normal volume and the server before the baseline.
qemu-io -f raw "$url" -c "write -P 0x5a 128M 1M" -c "read -P 0x5a 128M 1M" >/dev/null
base_kib=$(awk '/^VmRSS:/ {print $2}' "/proc/$BLOCKD_PID/status")
bound_mib=$((base_kib / 1024 + readers * (32 + 16 + 4) + 64))
echo "blockd RSS before the flood: $((base_kib / 1024)) MiB; bound under $readers readers: $bound_mib MiB"

samples="$work/samples"
start_sampler "$BLOCKD_PID" "$samples"

python3 scripts/iscsi-flood.py --port "$port" --target "$target" --seconds "$seconds" --readers "$readers" \
    >"$work/flood.out" 2>&1 &
flood_pid=$!
sleep 2

# The normal session: patterns written and read back, one qemu-io run after another, each
# bounded in time (a stall is a failure, not a hang).
rounds=0
deadline=$((SECONDS + seconds - 3))
while ((SECONDS < deadline)); do
    pattern=$((rounds % 200 + 1))
    offset=$(((rounds % 64) * 1048576))
    if output=$(timeout 20 qemu-io -f raw "$url" -c "write -P $pattern $offset 1M" -c "flush" \
        -c "read -P $pattern $offset 1M" 2>&1) && ! grep -qiE "fail|error|mismatch" <<<"$output"; then
        rounds=$((rounds + 1))
    else
        fail "normal session, round $rounds"
        echo "$output" | tail -3 | sed 's/^/    /'
        break
    fi
done
echo "normal session: $rounds rounds of 1 MiB write + flush + read back during the flood"
((rounds > 0)) || fail "the normal session completed no round"

wait "$flood_pid" || fail "the flood tool could not set up its attacks"
flood_pid=
sed 's/^/flood: /' "$work/flood.out"
kill -0 "$BLOCKD_PID" 2>/dev/null || fail "blockd died"
if [[ ${FLOOD_LONG:-0} == 1 ]]; then
    grep -q "half-PDU:.*closed by the target" "$work/flood.out" || fail "half PDUs were not timed out"
    grep -q "silent:.*closed by the target" "$work/flood.out" || fail "connections without a login were not timed out"
fi
grep -q "immediate:.*Reject 0x06" "$work/flood.out" || fail "immediate commands beyond the limit were not rejected"

stop_sampler "$samples"
peak_kib=$PEAK_RSS_KIB
peak_threads=$PEAK_THREADS
echo "blockd under the flood: peak RSS $((peak_kib / 1024)) MiB (bound $bound_mib MiB), peak threads $peak_threads"
((peak_kib / 1024 < bound_mib)) || fail "peak RSS $((peak_kib / 1024)) MiB >= $bound_mib MiB"

# Once the hostile peers are gone, the server serves as before.
qemu-io -f raw "$url" -c "read -P 0x5a 128M 1M" >/dev/null 2>&1 || fail "read after the flood"
stop_blockd
if grep -qiE "fatal|precondition" "$log"; then fail "blockd log shows a crash"; tail -5 "$log"; fi
if ((failures > 0)); then
    echo "flood test: $failures failure(s)"
    exit 1
fi
echo "flood test: all checks passed"
