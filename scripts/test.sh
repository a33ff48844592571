#!/usr/bin/env bash
# The test command: installs what the tests need, builds, and runs every test.
# BLOCKENGINE_CRASH_POINTS=20000 scripts/test.sh runs a longer crash simulation.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-debian.sh --test
swift build --build-tests
swift test --skip-build
