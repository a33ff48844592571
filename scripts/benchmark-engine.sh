#!/usr/bin/env bash
# The engine benchmarks: the package-benchmark suite in Benchmarks/ (a separate package that
# depends on this one by path), run from that directory with the benchmark plugin.
#
#   scripts/benchmark-engine.sh                      full run (up to 5 s per benchmark), tables
#   scripts/benchmark-engine.sh --smoke              seconds: checks that every benchmark runs
#                                                    and produces numbers (for CI; no timing checks)
#   scripts/benchmark-engine.sh --check              full run compared with the p90 thresholds in
#                                                    Benchmarks/Thresholds (fails on a regression
#                                                    beyond the tolerances in the suite's code)
#   scripts/benchmark-engine.sh --update-thresholds  full run that rewrites Benchmarks/Thresholds
# Further arguments go to `swift package benchmark` (e.g. --filter 'Recovery.*', a regular expression).
# Volume files go to BLOCK_BENCH_DIR (default /var/tmp; its file system is what is measured).
set -euo pipefail
cd "$(dirname "$0")/../Benchmarks"
export BLOCK_BENCH_DIR=${BLOCK_BENCH_DIR:-/var/tmp}

mode=run
if [[ $# -gt 0 ]]; then
    case $1 in
        --smoke) mode=smoke; shift ;;
        --check) mode=check; shift ;;
        --update-thresholds) mode=update; shift ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    esac
fi

case $mode in
    run)
        swift package --disable-sandbox benchmark "$@"
        ;;
    smoke)
        out=$(mktemp)
        trap 'rm -f "$out"' EXIT
        BLOCK_BENCH_SMOKE=1 swift package --disable-sandbox benchmark --no-progress "$@" | tee "$out"
        measured=$(grep -c 'Throughput' "$out" || true)
        echo "engine benchmark smoke: $measured benchmarks produced numbers"
        [[ $measured -gt 0 ]]
        ;;
    check)
        swift package --disable-sandbox benchmark thresholds check "$@"
        ;;
    update)
        swift package --disable-sandbox --allow-writing-to-package-directory benchmark thresholds update "$@"
        ;;
esac
