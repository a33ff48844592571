#!/usr/bin/env bash
# Builds the libFuzzer targets in Fuzz/ (PDU framing, login keys and negotiation, CDB
# decoding, SCSI parameter lists through a logical unit, PDU sequences through a connection,
# replication frames, the replication handshake under attack) with -sanitize=fuzzer,address and runs each for SECONDS (default 30).
#   scripts/fuzz.sh [SECONDS]
# Each fuzzer starts from the committed seeds in Fuzz/Corpus/NAME/ (read only; regenerate
# them with scripts/fuzz-seeds.sh) and keeps what it finds in fuzz-artifacts/corpus-NAME/.
# A crash stops the run, saves the input under fuzz-artifacts/ and fails the script.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-30}
fuzzers=(PDUFuzzer LoginKeyFuzzer CDBFuzzer ParameterListFuzzer ConnectionFuzzer ReplicationFrameFuzzer
    ReplicationHandshakeFuzzer)
flags=(-c debug -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library --package-path Fuzz --scratch-path .build-fuzz)
# Product by product: the package also holds FuzzSeeds, a plain program these flags cannot link.
for fuzzer in "${fuzzers[@]}"; do swift build "${flags[@]}" --product "$fuzzer"; done
bin=$(swift build "${flags[@]}" --show-bin-path)
mkdir -p fuzz-artifacts
for fuzzer in "${fuzzers[@]}"; do
    corpus="fuzz-artifacts/corpus-$fuzzer"
    mkdir -p "$corpus"
    # libFuzzer reads every directory and adds new inputs to the first one only.
    corpora=("$corpus")
    seeds="Fuzz/Corpus/$fuzzer"
    if [[ -d $seeds ]]; then corpora+=("$seeds"); else echo "warning: $fuzzer has no seed corpus $seeds" >&2; fi
    echo "fuzzing $fuzzer for ${seconds}s" >&2
    log="fuzz-artifacts/$fuzzer.log"
    # -timeout: an input that hangs is a finding, not a run that never ends.
    if ! "$bin/$fuzzer" -max_total_time="$seconds" -max_len=4096 -timeout=30 -print_final_stats=1 \
        -artifact_prefix="fuzz-artifacts/$fuzzer-" "${corpora[@]}" >"$log" 2>&1; then
        echo "$fuzzer FAILED; the input is saved under fuzz-artifacts/ (replay: $bin/$fuzzer FILE)" >&2
        grep -E "Precondition|Fatal|ERROR|SUMMARY|Test unit written|Running:" "$log" | head -20 >&2
        exit 1
    fi
    grep "stat::" "$log" | head -2
done
