#!/usr/bin/env bash
# Data integrity through real initiators: QEMU's iSCSI driver (qemu-io, qemu-img) against a
# freshly started `blockd serve`, including a SIGKILL of blockd after a flush.
#   scripts/qemu-integration.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
BLOCKD=${BLOCKD:-.build/debug/blockd}
work=$(mktemp -d)
trap 'stop_blockd; rm -rf "$work"' EXIT
log="$work/blockd.log"
port=$(free_port)
url="iscsi://127.0.0.1:$port/iqn.2026-11.org.swift-block:qemu/0"
failures=0

check() { # check NAME COMMAND...: runs a command; qemu-io prints pattern mismatches without failing
    local name=$1
    shift
    local output
    if output=$("$@" 2>&1) && ! grep -qiE "fail|error|mismatch" <<<"$output"; then
        echo "ok: $name"
    else
        echo "FAILED: $name"
        echo "$output" | tail -5 | sed 's/^/    /'
        failures=$((failures + 1))
    fi
}

start_blockd "$work/data" "$port" "$log" --create qemu:128MiB --create image:64MiB
image_url="iscsi://127.0.0.1:$port/iqn.2026-11.org.swift-block:image/0"

# Patterns at aligned and unaligned offsets, and across large requests.
check "aligned 4 KiB" qemu-io -f raw "$url" -c "write -P 0xa1 0 4k" -c "read -P 0xa1 0 4k"
check "unaligned 1000 bytes at 513" qemu-io -f raw "$url" -c "write -P 0xb2 513 1000" -c "read -P 0xb2 513 1000" \
    -c "read -P 0xa1 0 512" -c "read -P 0xa1 1513 2583"
check "straddling blocks" qemu-io -f raw "$url" -c "write -P 0xc3 8190 12000" -c "read -P 0xc3 8190 12000"
check "large 8 MiB request" qemu-io -f raw "$url" -c "write -P 0xd4 16M 8M" -c "read -P 0xd4 16M 8M"
check "large unaligned request" qemu-io -f raw "$url" -c "write -P 0xe5 33554433 5242879" -c "read -P 0xe5 33554433 5242879"
check "zeroes and discard" qemu-io -f raw "$url" -c "write -z 40M 1M" -c "read -P 0 40M 1M" \
    -c "write -P 0x11 41M 1M" -c "discard 41M 1M" -c "read -P 0 41M 1M"
check "fua write" qemu-io -f raw "$url" -c "write -f -P 0x66 44M 64k" -c "read -P 0x66 44M 64k"

# A 64 MiB random image copied onto the LUN must compare identical.
head -c $((64 << 20)) /dev/urandom >"$work/random.img"
check "qemu-img convert" qemu-img convert -n -f raw -O raw "$work/random.img" "$image_url"
check "qemu-img compare" qemu-img compare -f raw -F raw "$work/random.img" "$image_url"
check "qemu-img info" qemu-img info "$image_url"

# The admin API: a volume created over HTTP is served at once, takes I/O (counted at
# /metrics), and is gone after DELETE.
api_url="iscsi://127.0.0.1:$port/iqn.2026-11.org.swift-block:api/0"
api_volume_listed() { iscsi-ls "iscsi://127.0.0.1:$port" | grep -q "swift-block:api "; }
api_writes_counted() { admin_http GET /metrics | grep -qE '^blockengine_writes_total\{volume="api"\} [1-9]'; }
api_volume_gone() { ! api_volume_listed && [[ ! -e "$work/data/api.blk" ]]; }
check "admin API: create" expect_http 201 POST /v1/volumes '{"name":"api","sizeBytes":67108864}'
check "admin API: created volume is a target" api_volume_listed
check "admin API: created volume takes I/O" qemu-io -f raw "$api_url" -c "write -P 0x77 0 1M" -c "flush" -c "read -P 0x77 0 1M"
check "admin API: writes at /metrics" api_writes_counted
check "admin API: delete" expect_http 204 DELETE /v1/volumes/api
check "admin API: deleted volume is gone" api_volume_gone

# Written and flushed, then SIGKILL: the data must come back after a restart.
check "write and flush before kill" qemu-io -f raw "$url" -c "write -P 0x5a 100M 2M" -c "flush"
stop_blockd KILL
start_blockd "$work/data" "$port" "$log"
check "read back after SIGKILL" qemu-io -f raw "$url" -c "read -P 0x5a 100M 2M"
check "random image intact after SIGKILL" qemu-img compare -f raw -F raw "$work/random.img" "$image_url"
stop_blockd TERM
if grep -q "volume failed to open" "$log"; then
    echo "FAILED: a volume failed to open after restart"
    failures=$((failures + 1))
fi

if ((failures > 0)); then
    echo "$failures qemu integration check(s) failed; blockd log: $log"
    trap - EXIT
    stop_blockd
    exit 1
fi
echo "qemu integration: all checks passed"
