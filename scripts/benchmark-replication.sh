#!/usr/bin/env bash
# Replication's cost, in one run on this machine (docs/BENCHMARKS.md, "Replication"): three
# `blockd serve` processes on loopback, one volume each way:
#   RF1           best_effort, no replicas (the baseline);
#   RF2 sync_all  a primary and one replica (a flush waits for the replica);
#   RF3 quorum    sync_quorum, a primary and two replicas (a flush waits for one);
# each measured with qemu-img bench: 4 KiB write + flush at depth 1, and 4 KiB writes at
# depth 32. Then a rebuild: a fresh replica joins a primary holding 1 GiB (256 MiB with
# --quick) of data, timed until it is in sync, beside fio writing the same bytes
# sequentially on the same disk. Last a catch-up: the RF2 replica is killed, the primary
# takes N MiB of 4 KiB writes, the replica returns; the bytes sent to it are compared with N.
#   scripts/benchmark-replication.sh [--quick]
# Environment: BLOCKD (default .build/release/blockd), WORK_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
BLOCKD=${BLOCKD:-.build/release/blockd}
IQN=iqn.2026-11.org.swift-block
quick=0
[[ ${1:-} == --quick ]] && quick=1
seconds=$([[ $quick == 1 ]] && echo 3 || echo 10)
rebuild_mib=$([[ $quick == 1 ]] && echo 256 || echo 1024)
catchup_mib=$([[ $quick == 1 ]] && echo 8 || echo 16)
[[ -x $BLOCKD ]] || { echo "no blockd at $BLOCKD (swift build -c release --product blockd)" >&2; exit 1; }

work=$(mktemp -d "${WORK_DIR:-/var/tmp}/bench-replication.XXXXXX")
declare -A PID ADMIN PORTAL REPL
cleanup() {
    for name in "${!PID[@]}"; do [[ -n ${PID[$name]:-} ]] && kill -9 "${PID[$name]}" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
head -c 32 /dev/urandom >"$work/secret"
chmod 600 "$work/secret"

start() {
    local name=$1
    PORTAL[$name]=${PORTAL[$name]:-$(free_port)}
    REPL[$name]=${REPL[$name]:-$(free_port)}
    mkdir -p "$work/$name"
    start_blockd "$work/$name" "${PORTAL[$name]}" "$work/$name.log" --log-level warning \
        --replication-listen "127.0.0.1:${REPL[$name]}" --replication-secret-file "$work/secret"
    PID[$name]=$BLOCKD_PID
    ADMIN[$name]=$BLOCKD_ADMIN_PORT
}
api() { local name=$1; shift; BLOCKD_ADMIN_PORT=${ADMIN[$name]} admin_http "$@"; }
create() { # create SERVER VOLUME DURABILITY RF SIZE
    api "$1" POST /v1/volumes "{\"name\":\"$2\",\"sizeBytes\":$5,\"durability\":\"$3\",\"replicaFactor\":$4}" >/dev/null
}
role() { # role SERVER VOLUME ROLE EPOCH [REPLICA_SERVER...]
    local server=$1 volume=$2 role=$3 epoch=$4
    shift 4
    local list=""
    for replica in "$@"; do list+="${list:+,}\"127.0.0.1:${REPL[$replica]}\""; done
    local extra=""
    [[ -n $list ]] && extra=",\"replicas\":[$list]"
    api "$server" PUT "/v1/volumes/$volume/role" "{\"role\":\"$role\",\"epoch\":$epoch$extra}" >/dev/null
}
in_sync() { api "$1" GET "/v1/volumes/$2" | grep -q '"state":"inSync"' && ! api "$1" GET "/v1/volumes/$2" | grep -qE '"state":"(catchingUp|rebuilding|disconnected)"'; }
wait_in_sync() { for _ in $(seq 1 6000); do in_sync "$1" "$2" && return 0; sleep 0.05; done; echo "not in sync: $(api "$1" GET "/v1/volumes/$2")" >&2; return 1; }
url() { echo "iscsi://127.0.0.1:${PORTAL[$1]}/$IQN:$2/0"; }
# iops SERVER VOLUME DEPTH FLUSH_INTERVAL: 4 KiB random writes for about $seconds seconds.
iops() {
    local count=$(( $3 == 1 ? 1500 * seconds : 20000 * seconds ))
    local flush=()
    [[ $4 -gt 0 ]] && flush=(--flush-interval="$4")
    local start end
    start=$(date +%s.%N)
    qemu-img bench -f raw -w -t none -d "$3" -s 4k -c "$count" "${flush[@]}" "$(url "$1" "$2")" >/dev/null 2>&1
    end=$(date +%s.%N)
    echo "$count / ($end - $start)" | bc -l
}

start A
start B
start C
size=$((1 << 30))
create A rf1 best_effort 1 "$size"
for server in A B; do create "$server" rf2 sync_all 2 "$size"; done
for server in A B C; do create "$server" rf3 sync_quorum 3 "$size"; done
role B rf2 replica 1
role A rf2 primary 1 B
role B rf3 replica 1
role C rf3 replica 1
role A rf3 primary 1 B C
wait_in_sync A rf2
wait_in_sync A rf3

declare -A result
for volume in rf1 rf2 rf3; do
    result[$volume.qd1]=$(iops A "$volume" 1 1)
    result[$volume.qd32]=$(iops A "$volume" 32 0)
done
printf "\n| Volume | 4 KiB write + flush QD1 (IOPS) | ratio to RF1 | 4 KiB writes QD32 (IOPS) | ratio to RF1 |\n|---|---|---|---|---|\n"
for volume in rf1 rf2 rf3; do
    printf "| %s | %.0f | %.2f | %.0f | %.2f |\n" "$volume" "${result[$volume.qd1]}" \
        "$(echo "${result[$volume.qd1]} / ${result[rf1.qd1]}" | bc -l)" "${result[$volume.qd32]}" \
        "$(echo "${result[$volume.qd32]} / ${result[rf1.qd32]}" | bc -l)"
done

# Rebuild: a fresh replica of a primary that holds rebuild_mib MiB (written back).
create A big best_effort 2 "$size"
create C big best_effort 2 "$size"
role A big primary 1
qemu-img bench -f raw -w -t none -d 8 -s 1M -c "$rebuild_mib" "$(url A big)" >/dev/null 2>&1
sleep 1
role C big replica 1
start_s=$(date +%s.%N)
role A big primary 1 C
wait_in_sync A big
rebuild_s=$(echo "$(date +%s.%N) - $start_s" | bc -l)
fio_mibs=$(fio --name=seq --filename="$work/fio.dat" --size="${rebuild_mib}M" --rw=write --bs=1M --iodepth=8 \
    --ioengine=io_uring --direct=1 --end_fsync=1 --output-format=terse 2>/dev/null | awk -F';' '{print $48/1024}')
printf "\nrebuild of %d MiB: %.2f s = %.0f MiB/s; fio sequential write on the same disk: %.0f MiB/s (ratio %.2f)\n" \
    "$rebuild_mib" "$rebuild_s" "$(echo "$rebuild_mib / $rebuild_s" | bc -l)" "$fio_mibs" \
    "$(echo "($rebuild_mib / $rebuild_s) / $fio_mibs" | bc -l)"
# Catch-up: the replica of rf2 stops (kill -9) while the primary takes catchup_mib MiB of
# 4 KiB random writes (no flushes: sync_all would fail them), then returns; the bytes the
# primary sent it in between (shippedBytes) against the bytes written.
shipped() { api A GET /v1/volumes/rf2 | python3 -c 'import json, sys; print(sum(r["shippedBytes"] for r in json.loads(sys.stdin.read().split(" ", 1)[1])["replicas"]))'; }
wait_in_sync A rf2
before=$(shipped)
kill -9 "${PID[B]}"
wait "${PID[B]}" 2>/dev/null || true
qemu-img bench -f raw -w -t none -d 8 -s 4k -c $((catchup_mib * 256)) "$(url A rf2)" >/dev/null 2>&1
start B
start_s=$(date +%s.%N)
wait_in_sync A rf2
catchup_s=$(echo "$(date +%s.%N) - $start_s" | bc -l)
moved=$(( $(shipped) - before ))
printf "
catch-up after %d MiB of 4 KiB writes (the replica down): %.1f MiB moved (%.2f x the divergence) in %.2f s\n" \
    "$catchup_mib" "$(echo "$moved / 1048576" | bc -l)" "$(echo "$moved / ($catchup_mib * 1048576)" | bc -l)" "$catchup_s"
echo "(commands: qemu-img bench -f raw -w -t none -d 1|32 -s 4k [--flush-interval=1]; fio --rw=write --bs=1M --iodepth=8 --direct=1)"
