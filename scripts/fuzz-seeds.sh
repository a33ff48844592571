#!/usr/bin/env bash
# Regenerates the committed seed corpora, Fuzz/Corpus/<FuzzerName>/, from the well-formed
# inputs built in Fuzz/Sources/FuzzSeeds (each fuzzer's directory is replaced). Run it after
# changing a seed or adding a fuzzer, and commit the result.
#   scripts/fuzz-seeds.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# Its own scratch path: the fuzzers' build uses other compiler flags.
swift run --package-path Fuzz --scratch-path .build-fuzz-seeds FuzzSeeds Fuzz/Corpus
