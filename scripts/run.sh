#!/usr/bin/env bash
# The main job: builds blockd (release) and serves every volume in ./data over iSCSI on
# 127.0.0.1:3260, creating a 1 GiB demo volume the first time. Ctrl-C stops it gracefully.
#   scripts/run.sh [extra blockd serve arguments]
# Then, for example: iscsi-ls iscsi://127.0.0.1:3260
#                    qemu-img info iscsi://127.0.0.1:3260/iqn.2026-11.org.swift-block:demo/0
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-debian.sh
swift build -c release --product blockd
exec .build/release/blockd serve --data-dir data --portal 127.0.0.1:3260 --create demo:1GiB "$@"
