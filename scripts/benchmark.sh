#!/usr/bin/env bash
# The comparison benchmark (docs/BENCHMARKS.md): in one run on this machine, side by side,
#   - the device's limits with fio (io_uring, O_DIRECT) on a file in the work directory,
#   - the engine through block-bench at the same shapes (sustained: writes wrap the WAL 3+ times),
#   - `blockd serve` against tgtd over iSCSI on 127.0.0.1 with qemu-img bench, and each
#     target's CPU time per I/O;
#   - replication (scripts/benchmark-replication.sh, once per run of this script): RF1 vs RF2
#     sync_all vs RF3 sync_quorum, a rebuild against fio, the bytes a catch-up moves;
# then prints one table of medians with the ratios (engine/fio, blockd/tgtd) and writes it,
# with the date, the machine and the exact commands, into docs/BENCHMARKS.md.
#
#   scripts/benchmark.sh [--runs N] [--quick] [--only local|iscsi|replication] [--dir DIR] [--keep]
#                        [--no-docs | --write-docs]
#
#   --runs N      repetitions; the table shows medians (default 3, or 1 with --quick)
#   --quick       a short smoke run: small volume, 2-second shapes; does not touch the docs
#                 unless --write-docs
#   --only PART   only the fio/engine part (local), the iSCSI part (iscsi) or replication
#   --dir DIR     where the test files go (default /var/tmp); its file system is measured
#   --keep        keep the work directory (raw tool outputs, logs)
# Environment: BUILD_SCRATCH (default .build), BLOCK_BENCH and BLOCKD (default
# $BUILD_SCRATCH/release/{block-bench,blockd}, built with `swift build -c release
# --scratch-path $BUILD_SCRATCH` if missing; paths given here are never built).
# tgtd and blockd are started and stopped here; nothing is left running (traps).
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/lib.sh
source scripts/benchmark-common.sh
source scripts/benchmark-local.sh
source scripts/benchmark-targets.sh
source scripts/benchmark-report.sh

RUNS=
QUICK=0
ONLY=all
BENCH_DIR=/var/tmp
KEEP=0
WRITE_DOCS=
BUILD_SCRATCH=${BUILD_SCRATCH:-.build}
BINARIES_GIVEN="${BLOCK_BENCH:+block-bench} ${BLOCKD:+blockd}"
BLOCK_BENCH=${BLOCK_BENCH:-$BUILD_SCRATCH/release/block-bench}
BLOCKD=${BLOCKD:-$BUILD_SCRATCH/release/blockd}
BLOCKD_NOTE=

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }

parse_arguments() {
    while [[ $# -gt 0 ]]; do
        case $1 in
            --runs) RUNS=${2:?--runs needs a number}; shift ;;
            --quick) QUICK=1 ;;
            --only) ONLY=${2:?--only needs local, iscsi or replication}; shift ;;
            --dir) BENCH_DIR=${2:?--dir needs a directory}; shift ;;
            --keep) KEEP=1 ;;
            --no-docs) WRITE_DOCS=0 ;;
            --write-docs) WRITE_DOCS=1 ;;
            -h | --help) usage ;;
            *) echo "unknown argument $1" >&2; usage ;;
        esac
        shift
    done
    [[ $ONLY == all || $ONLY == local || $ONLY == iscsi || $ONLY == replication ]] || usage
}

# choose_sizes: volume/LUN size, seconds per shape, and the iSCSI probe counts per mode. The
# 1 MiB iSCSI writes cover the whole LUN (SIZE_MIB of them at least) before anything reads.
choose_sizes() {
    if [[ $QUICK == 1 ]]; then
        SIZE_MIB=512 TEST_SECONDS=2 ENGINE_WAL=16MiB PROBE_4K=2000 PROBE_FLUSH=200 PROBE_1M=64
        RUNS=${RUNS:-1} WRITE_DOCS=${WRITE_DOCS:-0}
    else
        SIZE_MIB=2048 TEST_SECONDS=10 ENGINE_WAL=64MiB PROBE_4K=10000 PROBE_FLUSH=1000 PROBE_1M=256
        RUNS=${RUNS:-3} WRITE_DOCS=${WRITE_DOCS:-1}
    fi
    [[ $ONLY == replication ]] && RUNS=1
    SIZE=${SIZE_MIB}MiB
    [[ $RUNS =~ ^[1-9][0-9]*$ ]] || { echo "--runs needs a positive number" >&2; exit 2; }
}

# ensure_built PRODUCT PATH: builds the product when PATH is missing (unless the path was
# given in the environment).
ensure_built() {
    [[ -x "$2" ]] && return 0
    [[ " $BINARIES_GIVEN " == *" $1 "* ]] && { echo "$2 does not exist" >&2; return 1; }
    say "building $1 (swift build -c release --product $1 --scratch-path $BUILD_SCRATCH)"
    swift build -c release --product "$1" --scratch-path "$BUILD_SCRATCH" >"$WORK/build-$1.log" 2>&1 ||
        { echo "building $1 failed; see $WORK/build-$1.log" >&2; return 1; }
    [[ -x "$2" ]] || { echo "$2 missing after the build" >&2; return 1; }
}

check_tools() {
    local tool
    for tool in fio tgtd tgtadm qemu-img python3; do
        command -v "$tool" >/dev/null ||
            { echo "missing $tool (scripts/setup-debian.sh --test installs it)" >&2; exit 1; }
    done
}

# prepare_binaries: block-bench is required for the local half; without a working
# `blockd serve` the blockd columns stay empty and the table says why.
prepare_binaries() {
    if wants local; then ensure_built block-bench "$BLOCK_BENCH"; fi
    [[ $ONLY == local ]] && return 0
    if ! ensure_built blockd "$BLOCKD" || ! blockd_serves; then
        BLOCKD_NOTE="not measured: $BLOCKD has no working serve command"
        echo "warning: $BLOCKD_NOTE; measuring tgtd only" >&2
    fi
}

cleanup() {
    stop_child
    stop_tgtd
    stop_blockd
    if [[ $KEEP == 1 ]]; then echo "work directory kept: $WORK" >&2; else rm -rf "$WORK"; fi
}

count_steps() {
    local per_run=0
    wants local && per_run=$((FIO_SHAPES + ENGINE_SHAPES))
    wants iscsi && per_run=$((per_run + ISCSI_SHAPES))
    wants iscsi && [[ -z $BLOCKD_NOTE ]] && per_run=$((per_run + ISCSI_SHAPES))
    TOTAL_STEPS=$((RUNS * per_run))
}

measure() {
    local run
    for run in $(seq 1 "$RUNS"); do
        if wants local; then fio_shapes "$run"; engine_shapes "$run"; fi
        if wants iscsi; then
            tgtd_shapes "$run"
            [[ -n $BLOCKD_NOTE ]] || blockd_shapes "$run"
        fi
    done
}

# wants PART: whether this run measures PART (local, iscsi, replication).
wants() { [[ $ONLY == all || $ONLY == "$1" ]]; }

# replication: scripts/benchmark-replication.sh once (its own three blockd processes); the
# output goes into the report as it is.
replication() {
    : >"$WORK/replication.txt"
    wants replication || return 0
    [[ -z $BLOCKD_NOTE ]] || { echo "replication not measured: $BLOCKD_NOTE" >"$WORK/replication.txt"; return 0; }
    say "replication: RF1 vs RF2 vs RF3, rebuild, catch-up (scripts/benchmark-replication.sh)"
    local quick=()
    [[ $QUICK == 1 ]] && quick=(--quick)
    BLOCKD=$BLOCKD WORK_DIR=$WORK scripts/benchmark-replication.sh "${quick[@]}" >"$WORK/replication.txt" 2>&1 ||
        { echo "benchmark-replication.sh failed:" >&2; tail -20 "$WORK/replication.txt" >&2; return 1; }
}

# report: prints the table; writes it into docs/BENCHMARKS.md when asked.
report() {
    local mode=full
    [[ $QUICK == 1 ]] && mode="quick (smoke, noisy)"
    local section="$WORK/section.md"
    {
        echo "### Results of $(date -u '+%Y-%m-%d %H:%M UTC'): $mode run, median of $RUNS"
        echo
        echo "Machine: $(machine_description)."
        echo "Tools: $(tool_versions). Volume and LUN size $SIZE, engine WAL $ENGINE_WAL, $TEST_SECONDS s per shape."
        echo
        if wants local || wants iscsi; then summary_table "Medians of $RUNS run(s)" "$BLOCKD_NOTE"; fi
        if [[ -s $WORK/replication.txt ]]; then
            echo "Replication (scripts/benchmark-replication.sh$([[ $QUICK == 1 ]] && echo " --quick"), one run):"
            echo
            cat "$WORK/replication.txt"
            echo
        fi
        echo "Command: \`scripts/benchmark.sh $ORIGINAL_ARGUMENTS\`."
        if wants local || wants iscsi; then
            echo "Each shape's command (first run; qemu-img counts are sized per run from a probe):"
            echo
            commands_block
        fi
    } >"$section"
    echo >&2
    cat "$section"
    if [[ $WRITE_DOCS == 1 ]]; then
        write_doc_results docs/BENCHMARKS.md "$section"
        echo "written into docs/BENCHMARKS.md" >&2
    fi
}

ORIGINAL_ARGUMENTS="$*"
parse_arguments "$@"
choose_sizes
check_tools
mkdir -p "$BENCH_DIR"
WORK=$(mktemp -d "$(realpath "$BENCH_DIR")/block-bench.XXXXXX")
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
prepare_binaries
count_steps
say "work directory $WORK ($(df -T "$WORK" | awk 'NR == 2 { print $2 }')), $RUNS run(s), $TOTAL_STEPS measured steps"
measure
replication
report
