#!/usr/bin/env bash
# One `blockd serve` carrying many volumes: its resident memory and thread count must not
# grow with the number of volumes, and a flush on a quiet volume must not wait behind busy
# ones.
#   1. creates VOLUMES volumes of VOLUME_SIZE (WAL of WAL_SIZE each) and serves them all;
#   2. writes WRITE_BYTES to every volume through qemu-img (PARALLEL clients at a time) while
#      blockd's VmRSS and thread count are sampled every 0.2 s;
#   3. runs BUSY volumes at full speed (qemu-img bench, 64 KiB writes at depth 16) and, on a
#      quiet volume meanwhile, QUIET_OPS 4 KiB writes each followed by a flush (SYNCHRONIZE
#      CACHE) at depth 1 (scripts/iscsi-flush-latency.py), and reports each flush's p50/p99/max;
#   4. fails when the peak RSS reaches MAX_RSS_MIB, the threads reach MAX_THREADS, a client
#      fails, or blockd dies; with STRICT_LATENCY=1 also when the quiet volume's median flush
#      reaches MAX_FLUSH_MS. The p99 is reported, not asserted: under 16 streaming writers this
#      machine's disk alone gives an fdatasync p99 of hundreds of ms (docs/BENCHMARKS.md).
# Short form by default (CI); MANY_VOLUMES_LONG=1 is the full form: 1,000 volumes of 1 GiB.
#   scripts/many-volumes-test.sh
# Environment: BLOCKD (default .build/release/blockd), VOLUMES, VOLUME_SIZE, WAL_SIZE,
# WRITE_BYTES, PARALLEL, BUSY, QUIET_OPS, MEMORY_LIMIT (passed as --memory-limit when set), MAX_RSS_MIB,
# MAX_THREADS, MAX_FLUSH_MS, STRICT_LATENCY, DISK_FLOOR (1: also time fdatasync under the same
# load on plain files with fio), WORK_DIR (default a new directory in /var/tmp).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
BLOCKD=${BLOCKD:-.build/release/blockd}
if [[ ${MANY_VOLUMES_LONG:-0} == 1 ]]; then
    VOLUMES=${VOLUMES:-1000}
    STRICT_LATENCY=${STRICT_LATENCY:-1}
    DISK_FLOOR=${DISK_FLOOR:-1}
else
    VOLUMES=${VOLUMES:-64}
fi
VOLUME_SIZE=${VOLUME_SIZE:-1GiB}
WAL_SIZE=${WAL_SIZE:-4MiB}
WRITE_BYTES=${WRITE_BYTES:-8M}
PARALLEL=${PARALLEL:-8}
BUSY=${BUSY:-16}
QUIET_OPS=${QUIET_OPS:-500}
MAX_RSS_MIB=${MAX_RSS_MIB:-2048}
MAX_THREADS=${MAX_THREADS:-64}
MAX_FLUSH_MS=${MAX_FLUSH_MS:-10}
STRICT_LATENCY=${STRICT_LATENCY:-0}
DISK_FLOOR=${DISK_FLOOR:-0}
IQN=iqn.2026-11.org.swift-block
[[ -x $BLOCKD ]] || { echo "no blockd at $BLOCKD (swift build -c release --product blockd)" >&2; exit 1; }
(( VOLUMES > BUSY )) || { echo "VOLUMES must exceed BUSY" >&2; exit 1; }

work=$(mktemp -d "${WORK_DIR:-/var/tmp}/many-volumes.XXXXXX")
cleanup() {
    [[ -n ${SAMPLER_PID:-} ]] && kill "$SAMPLER_PID" 2>/dev/null || true
    stop_blockd
    rm -rf "$work"
}
trap cleanup EXIT
port=$(free_port)
log="$work/blockd.log"
mkdir -p "$work/data"

echo "creating $VOLUMES volumes of $VOLUME_SIZE (WAL $WAL_SIZE)"
start_s=$(date +%s.%N)
for ((i = 0; i < VOLUMES; i++)); do
    "$BLOCKD" volume create "$work/data/v$i.blk" --size "$VOLUME_SIZE" --wal-size "$WAL_SIZE" >/dev/null &
    (( i % 16 == 15 )) && wait
done
wait
echo "created in $(echo "$(date +%s.%N) - $start_s" | bc) s"

serve_args=(--log-level warning)
[[ -n ${MEMORY_LIMIT:-} ]] && serve_args+=(--memory-limit "$MEMORY_LIMIT")
start_s=$(date +%s.%N)
start_blockd "$work/data" "$port" "$log" "${serve_args[@]}"
echo "blockd serving $VOLUMES volumes after $(echo "$(date +%s.%N) - $start_s" | bc) s (pid $BLOCKD_PID)"

samples="$work/samples"
start_sampler "$BLOCKD_PID" "$samples"

url() { echo "iscsi://127.0.0.1:$port/$IQN:v$1/0"; }
failures=0
fail() { echo "FAILED: $*"; failures=$((failures + 1)); }

echo "writing $WRITE_BYTES to each volume, $PARALLEL clients at a time"
start_s=$(date +%s.%N)
write_one() {
    qemu-io -f raw "$(url "$1")" -c "write -P $((($1 % 250) + 1)) 0 $WRITE_BYTES" -c "flush" \
        -c "read -P $((($1 % 250) + 1)) 0 64k" >"$work/write-$1.out" 2>&1 &&
        ! grep -qiE "fail|error|mismatch" "$work/write-$1.out"
}
for ((i = 0; i < VOLUMES; i += PARALLEL)); do
    pids=()
    for ((j = i; j < i + PARALLEL && j < VOLUMES; j++)); do
        write_one "$j" &
        pids+=("$!:$j")
    done
    for entry in "${pids[@]}"; do
        wait "${entry%%:*}" || { fail "write to v${entry##*:}"; tail -3 "$work/write-${entry##*:}.out"; }
    done
    kill -0 "$BLOCKD_PID" 2>/dev/null || { fail "blockd died"; break; }
done
echo "wrote every volume in $(echo "$(date +%s.%N) - $start_s" | bc) s"

echo "$BUSY busy volumes at full speed, and a quiet volume's write + flush at depth 1"
busy_pids=()
for ((i = 0; i < BUSY; i++)); do
    qemu-img bench -f raw -w -t none -d 16 -s 64k -c 20000 "$(url "$i")" >"$work/busy-$i.out" 2>&1 &
    busy_pids+=("$!")
done
sleep 1
quiet=$((VOLUMES - 1))
if python3 scripts/iscsi-flush-latency.py --port "$port" --target "$IQN:v$quiet" --ops "$QUIET_OPS" \
    >"$work/quiet.out" 2>&1; then
    sed 's/^/quiet volume /' "$work/quiet.out" | grep -v '=' || true
    flush_p50_ms=$(sed -n 's/^flush_p50_ms=//p' "$work/quiet.out")
else
    fail "quiet volume's writes"
    tail -3 "$work/quiet.out"
    flush_p50_ms=0
fi
busy_running=0
for pid in "${busy_pids[@]}"; do kill -0 "$pid" 2>/dev/null && busy_running=$((busy_running + 1)); done
for pid in "${busy_pids[@]}"; do wait "$pid" || fail "a busy client"; done
kill -0 "$BLOCKD_PID" 2>/dev/null || fail "blockd died"
echo "$busy_running of $BUSY busy clients still running at the quiet volume's end"
if (( busy_running < BUSY )); then
    echo "note: some busy clients ended before the quiet run did; raise their -c to keep them busy"
fi

stop_sampler "$samples"
peak_rss_kib=$PEAK_RSS_KIB
peak_threads=$PEAK_THREADS
peak_rss_mib=$((peak_rss_kib / 1024))
echo "blockd with $VOLUMES volumes: peak RSS $peak_rss_mib MiB, peak threads $peak_threads ($(wc -l <"$samples") samples)"
(( peak_rss_mib < MAX_RSS_MIB )) || fail "peak RSS $peak_rss_mib MiB >= $MAX_RSS_MIB MiB"
(( peak_threads < MAX_THREADS )) || fail "peak threads $peak_threads >= $MAX_THREADS"
if [[ $STRICT_LATENCY == 1 ]] && (( $(echo "$flush_p50_ms >= $MAX_FLUSH_MS" | bc) )); then
    fail "quiet volume's median flush $flush_p50_ms ms >= $MAX_FLUSH_MS ms"
fi

stop_blockd
if [[ $DISK_FLOOR == 1 ]] && command -v fio >/dev/null; then
    # The same load on plain files, no blockd: what this disk gives a lone fdatasync while
    # BUSY buffered writers stream, so the quiet volume's tail reads against it.
    floor_json="$work/floor.json"
    fio --output-format=json --output="$floor_json" --directory="$work" --time_based --runtime=15 \
        --name=busy --numjobs="$BUSY" --rw=randwrite --bs=64k --iodepth=16 --ioengine=io_uring --size=256m \
        --name=quiet --numjobs=1 --rw=randwrite --bs=4k --iodepth=1 --ioengine=psync --fdatasync=1 --size=64m \
        >/dev/null 2>&1 || true
    python3 - "$floor_json" <<'PY' || echo "disk floor: fio gave no result"
import json, sys
job = next(j for j in json.load(open(sys.argv[1]))["jobs"] if j["jobname"] == "quiet")
p = job["sync"]["lat_ns"]["percentile"]
print(f"disk floor (fio on plain files, same load): fdatasync p50 {p['50.000000'] / 1e6:.2f} ms, "
      f"p99 {p['99.000000'] / 1e6:.2f} ms")
PY
fi
if grep -qiE "fatal|precondition" "$log"; then fail "blockd log shows a crash"; tail -5 "$log"; fi
if (( failures > 0 )); then
    echo "many volumes: $failures failure(s)"
    exit 1
fi
echo "many volumes: all checks passed"
