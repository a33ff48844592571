# The iSCSI half of scripts/benchmark.sh: tgtd and `blockd serve` on 127.0.0.1, each with a
# LUN of the same size (4096-byte blocks) in the work directory, driven by the same client,
# `qemu-img bench`, at the same shapes; the target's CPU time per I/O from /proc/PID/stat.
# Sourced, not run; uses scripts/lib.sh (ports, start_blockd/stop_blockd),
# benchmark-common.sh and the settings of benchmark.sh (WORK, SIZE, TEST_SECONDS, RUNS,
# BLOCKD, PROBE_*).

ISCSI_SHAPES=5
TGTD_PID=
TGTD_CONTROL_PORT=
BLOCKD_IQN=iqn.2026-11.org.swift-block:bench
TGTD_IQN=iqn.2026-11.org.swift-block.reference:bench
CLOCK_TICKS=$(getconf CLK_TCK)

# iscsi_shapes TARGET RUN URL PID: the five client shapes against one running target. The
# 1 MiB writes come first so that the LUN is written through before anything reads it.
iscsi_shapes() {
    local target=$1 run=$2 url=$3 pid=$4
    iscsi_run "$target.write_1m_qd8" "$run" "$url" "$pid" "$PROBE_1M" "$SIZE_MIB" "1 MiB write QD8" -d 8 -s 1M -w
    iscsi_run "$target.write_4k_qd32" "$run" "$url" "$pid" "$PROBE_4K" 0 "4 KiB write QD32" -d 32 -s 4k -w
    iscsi_run "$target.write_flush_4k_qd1" "$run" "$url" "$pid" "$PROBE_FLUSH" 0 \
        "4 KiB write + flush QD1" -d 1 -s 4k -w --flush-interval=1
    iscsi_run "$target.read_4k_qd32" "$run" "$url" "$pid" "$PROBE_4K" 0 "4 KiB read QD32" -d 32 -s 4k
    iscsi_run "$target.read_1m_qd8" "$run" "$url" "$pid" "$PROBE_1M" 0 "1 MiB read QD8" -d 8 -s 1M
}

# iscsi_run KEY RUN URL PID PROBE_COUNT MIN_COUNT LABEL BENCH-ARGS...: a short probe of
# PROBE_COUNT I/Os (also a warm-up) sizes the measured run to about TEST_SECONDS, and at
# least MIN_COUNT I/Os.
iscsi_run() {
    local key=$1 run=$2 url=$3 pid=$4 probe=$5 minimum=$6 label=$7
    shift 7
    progress "${key%%.*} run $run/$RUNS: $label"
    local count ticks_before seconds ticks_after
    qemu_bench "$key.probe" "$url" "$probe" "$@" || return 1
    count=$(awk "BEGIN { c = int($probe / ($QEMU_SECONDS + 0.001) * $TEST_SECONDS)
        m = ($minimum > $probe ? $minimum : $probe); print (c < m ? m : c) }")
    ticks_before=$(cpu_ticks "$pid")
    qemu_bench "$key" "$url" "$count" "$@" || return 1
    seconds=$QEMU_SECONDS
    ticks_after=$(cpu_ticks "$pid")
    note_command "$key" qemu-img bench -f raw -c "$count" "$@" "$url"
    record "$key" "$run" "$(calc "$count / $seconds")" "$(calc "$count * $(bench_bytes "$@") / 1048576 / $seconds")" \
        "$(cpu_per_io "$ticks_before" "$ticks_after" "$count")" "-" "$count I/Os"
}

# qemu_bench KEY URL COUNT BENCH-ARGS...: runs qemu-img bench; sets QEMU_SECONDS to the time
# it reports.
qemu_bench() {
    local key=$1 url=$2 count=$3
    shift 3
    run_tracked qemu-img bench -f raw -c "$count" "$@" "$url" >"$WORK/$key.out" 2>&1 ||
        { echo "qemu-img bench failed:" >&2; tail -5 "$WORK/$key.out" >&2; return 1; }
    QEMU_SECONDS=$(awk '/Run completed in/ { print $4 }' "$WORK/$key.out")
    [[ -n "$QEMU_SECONDS" ]] || { echo "no time in $WORK/$key.out" >&2; return 1; }
}

# bench_bytes BENCH-ARGS...: the request size given by -s (4k or 1M) in bytes.
bench_bytes() {
    while [[ $# -gt 0 && $1 != "-s" ]]; do shift; done
    case ${2:-4k} in
        4k) echo 4096 ;;
        1M) echo 1048576 ;;
        *) echo "unknown size $2" >&2; return 1 ;;
    esac
}

# cpu_per_io TICKS_BEFORE TICKS_AFTER IOS: microseconds of CPU per I/O.
cpu_per_io() {
    awk "BEGIN { printf \"%.2f\", ($2 - $1) * 1000000 / $CLOCK_TICKS / $3 }"
}

# cpu_ticks PID: user + system clock ticks of the process, all its threads (fields 14 and 15
# of /proc/PID/stat; counted after the parenthesized command name, which may hold spaces).
cpu_ticks() {
    sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'
}

# start_tgtd PORT LUN_FILE: tgtd on 127.0.0.1:PORT with a private control socket (and lock
# file) under WORK, one target with the file as LUN 1, open to every initiator.
start_tgtd() {
    local port=$1 lun=$2
    export TGT_IPC_SOCKET="$WORK/tgtd/socket"
    TGTD_CONTROL_PORT=$((1000 + $$ % 30000)) # tgtd accepts 0..32767
    mkdir -p "$WORK/tgtd"
    tgtd -f -C "$TGTD_CONTROL_PORT" --iscsi "portal=127.0.0.1:$port" >>"$WORK/tgtd/tgtd.log" 2>&1 &
    TGTD_PID=$!
    wait_for_tgtadm || { echo "tgtd did not start; its log:" >&2; tail -5 "$WORK/tgtd/tgtd.log" >&2; return 1; }
    tgt_admin --lld iscsi --op new --mode target --tid 1 -T "$TGTD_IQN" &&
        tgt_admin --lld iscsi --op new --mode logicalunit --tid 1 --lun 1 -b "$lun" --blocksize 4096 &&
        tgt_admin --lld iscsi --op bind --mode target --tid 1 -I ALL &&
        wait_for_port "$port"
}

tgt_admin() { tgtadm -C "$TGTD_CONTROL_PORT" "$@"; }

wait_for_tgtadm() {
    for _ in $(seq 1 100); do
        kill -0 "$TGTD_PID" 2>/dev/null || return 1
        tgt_admin --op show --mode system >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    return 1
}

# stop_tgtd: deletes the target and asks tgtd to exit; kills it if it does not.
stop_tgtd() {
    [[ -n "$TGTD_PID" ]] || return 0
    if kill -0 "$TGTD_PID" 2>/dev/null; then
        tgt_admin --lld iscsi --op delete --force --mode target --tid 1 >/dev/null 2>&1 || true
        tgt_admin --op delete --mode system >/dev/null 2>&1 || true
        for _ in $(seq 1 50); do
            kill -0 "$TGTD_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$TGTD_PID" 2>/dev/null || true
    fi
    wait "$TGTD_PID" 2>/dev/null || true
    TGTD_PID=
}

# tgtd_shapes RUN: starts tgtd on a sparse LUN file (kept across runs), measures, stops it.
tgtd_shapes() {
    local run=$1 port
    [[ -f "$WORK/tgtd-lun.img" ]] || truncate -s "$SIZE" "$WORK/tgtd-lun.img"
    port=$(free_port)
    say "tgtd: starting on 127.0.0.1:$port"
    start_tgtd "$port" "$WORK/tgtd-lun.img"
    local admin="tgtadm -C $TGTD_CONTROL_PORT --lld iscsi"
    note_command tgtd.setup "TGT_IPC_SOCKET=$TGT_IPC_SOCKET tgtd -f -C $TGTD_CONTROL_PORT" \
        "--iscsi portal=127.0.0.1:$port; $admin --op new --mode target --tid 1 -T $TGTD_IQN;" \
        "$admin --op new --mode logicalunit --tid 1 --lun 1 -b LUN_FILE --blocksize 4096;" \
        "$admin --op bind --mode target --tid 1 -I ALL"
    iscsi_shapes tgtd "$run" "iscsi://127.0.0.1:$port/$TGTD_IQN/1" "$TGTD_PID"
    stop_tgtd
}

# blockd_shapes RUN: starts blockd serve on its volume (created on the first run, kept
# across runs), measures, stops it with SIGTERM.
blockd_shapes() {
    local run=$1 port
    port=$(free_port)
    say "blockd: starting on 127.0.0.1:$port"
    start_blockd "$WORK/blockd" "$port" "$WORK/blockd.log" --create "bench:$SIZE"
    note_command blockd.setup "$BLOCKD" serve --data-dir DATA_DIR --portal "127.0.0.1:$port" --create "bench:$SIZE"
    iscsi_shapes blockd "$run" "iscsi://127.0.0.1:$port/$BLOCKD_IQN/0" "$BLOCKD_PID"
    stop_blockd
}

# blockd_serves: true when $BLOCKD has a working `serve` command.
blockd_serves() {
    [[ -x "$BLOCKD" ]] && "$BLOCKD" serve --help >/dev/null 2>&1
}
