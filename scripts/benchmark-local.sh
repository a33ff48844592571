# The local half of scripts/benchmark.sh: the device's limits with fio on a file in the work
# directory's file system, and the engine through block-bench at the same shapes on a volume
# in the same directory. Sourced, not run; uses benchmark-common.sh and the settings of
# benchmark.sh (WORK, SIZE, TEST_SECONDS, RUNS, ENGINE_WAL, BLOCK_BENCH).

FIO_SHAPES=5
ENGINE_SHAPES=6

# fio_shapes RUN: the five fio reference shapes.
fio_shapes() {
    local run=$1
    fio_run fio.randwrite_qd32 "$run" "4 KiB random write QD32" --rw=randwrite --bs=4k --iodepth=32
    fio_run fio.randread_qd32 "$run" "4 KiB random read QD32" --rw=randread --bs=4k --iodepth=32
    fio_run fio.randwrite_qd32_sync "$run" "4 KiB random write QD32, fdatasync after each" \
        --rw=randwrite --bs=4k --iodepth=32 --fdatasync=1
    fio_run fio.randwrite_qd1_sync "$run" "4 KiB random write QD1, fdatasync after each" \
        --rw=randwrite --bs=4k --iodepth=1 --fdatasync=1
    fio_run fio.seqwrite_1m_qd8 "$run" "1 MiB sequential write QD8" --rw=write --bs=1M --iodepth=8
}

# engine_shapes RUN: the same shapes through the engine. Writes go on until the WAL wrapped
# three times (--min-wal-laps 3), so write-back is part of every write figure.
engine_shapes() {
    local run=$1
    [[ -f "$WORK/engine.blk" ]] || engine_prepare
    engine_run engine.randwrite_qd32 "$run" "4 KiB random write QD32, sustained" \
        --pattern randwrite --qd 32 --min-wal-laps 3
    engine_run engine.randread_qd32_data "$run" "4 KiB random read QD32 from the data region" \
        --pattern randread --qd 32 --prefill none
    engine_run engine.randread_qd32_wal "$run" "4 KiB random read QD32 from the WAL" \
        --pattern randread --qd 32 --prefill wal
    engine_run engine.randwrite_qd32_flush "$run" "4 KiB random write+flush QD32, sustained" \
        --pattern randwrite --qd 32 --durable flush --min-wal-laps 3
    engine_run engine.randwrite_qd1_flush "$run" "4 KiB random write+flush QD1, sustained" \
        --pattern randwrite --qd 1 --durable flush --min-wal-laps 3
    engine_run engine.seqwrite_1m_qd8 "$run" "1 MiB sequential write QD8, sustained" \
        --pattern seqwrite --bs 1MiB --qd 8 --min-wal-laps 3
}

# fio_run KEY RUN LABEL FIO-ARGS...: one time-based fio job with io_uring and O_DIRECT.
fio_run() {
    local key=$1 run=$2 label=$3
    shift 3
    local cmd=(fio --name="${key#fio.}" --filename="$WORK/fio.dat" --size="$SIZE" --ioengine=io_uring
        --direct=1 --randrepeat=0 --time_based --runtime="$TEST_SECONDS" --lat_percentiles=1 --output-format=json "$@")
    progress "fio run $run/$RUNS: $label"
    note_command "$key" "${cmd[@]}"
    run_tracked "${cmd[@]}" >"$WORK/$key.$run.json" 2>>"$WORK/fio.log" ||
        { echo "fio failed; see $WORK/fio.log" >&2; return 1; }
    local numbers
    read -r -a numbers < <(fio_numbers "$WORK/$key.$run.json")
    record "$key" "$run" "${numbers[@]}" ""
}

# fio_numbers JSON: "IOPS MiB/s CPU-us-per-IO p50-us" of a fio job. CPU is fio's usr+sys
# over the job's runtime; p50 is the total latency (submission + completion, as
# --lat_percentiles=1 reports it), plus the fdatasync's when it syncs (fio 3.33 leaves the
# sync section's total_ios at 0, so its latency count tells).
fio_numbers() {
    python3 - "$1" <<'PY'
import json, sys
job = json.load(open(sys.argv[1]))["jobs"][0]
side = job["write"] if job["write"]["total_ios"] > 0 else job["read"]
ios = max(side["total_ios"], 1)
latency = side["lat_ns"] if "percentile" in side.get("lat_ns", {}) else side["clat_ns"]
p50_ns = latency.get("percentile", {}).get("50.000000", 0)
sync = job.get("sync", {})
if sync.get("total_ios", 0) > 0 or sync.get("lat_ns", {}).get("N", 0) > 0:
    p50_ns += sync["lat_ns"].get("percentile", {}).get("50.000000", 0)
cpu_us = (job["usr_cpu"] + job["sys_cpu"]) / 100 * job["job_runtime"] * 1000
print(f'{side["iops"]:.0f} {side["bw_bytes"] / 1048576:.1f} {cpu_us / ios:.2f} {p50_ns / 1000:.1f}')
PY
}

# engine_prepare: creates the engine's volume and writes all of it once (not measured), as
# fio lays out its file before measuring.
engine_prepare() {
    say "engine: creating a $SIZE volume (WAL $ENGINE_WAL) and filling it (not measured)"
    local cmd=("$BLOCK_BENCH" --file "$WORK/engine.blk" --size "$SIZE" --wal-size "$ENGINE_WAL"
        --pattern seqwrite --prefill data --seconds 0 --keep 1)
    note_command engine.prepare "${cmd[@]}"
    run_tracked "${cmd[@]}" >/dev/null
}

# engine_run KEY RUN LABEL BLOCK-BENCH-ARGS...: one block-bench run on the prepared volume.
engine_run() {
    local key=$1 run=$2 label=$3
    shift 3
    local cmd=("$BLOCK_BENCH" --file "$WORK/engine.blk" --seconds "$TEST_SECONDS" --keep 1 "$@")
    progress "engine run $run/$RUNS: $label"
    note_command "$key" "${cmd[@]}"
    run_tracked "${cmd[@]}" >"$WORK/$key.$run.out" || { echo "block-bench failed: ${cmd[*]}" >&2; return 1; }
    local line
    line=$(tail -1 "$WORK/$key.$run.out")
    record "$key" "$run" "$(field iops "$line")" "$(field mibps "$line")" \
        "$(field cpu_us_per_io "$line")" "$(field p50_us "$line")" "$(wal_laps_note "$line")"
}

# wal_laps_note LINE: for a write run, how often the WAL wrapped, flagged when under three.
wal_laps_note() {
    local laps
    laps=$(field wal_laps "$1")
    [[ $(field written_bytes "$1") == 0 ]] && return 0
    if awk "BEGIN { exit !($laps < 3) }"; then
        echo "WAL laps $laps < 3: NOT sustained"
        echo "warning: $(field pattern "$1") run wrapped the WAL only $laps times" >&2
    else
        echo "WAL laps $laps"
    fi
}
