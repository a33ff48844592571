#!/usr/bin/env bash
# The main job: builds blockd (release) and creates a demo volume under ./data, then
# describes it. Arguments are passed to `blockd volume inspect`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-debian.sh
swift build -c release --product blockd
blockd=".build/release/blockd"
mkdir -p data
if [[ ! -e data/demo.blk ]]; then
    "$blockd" volume create data/demo.blk --size 1GiB
fi
"$blockd" volume check data/demo.blk
exec "$blockd" volume inspect data/demo.blk "$@"
