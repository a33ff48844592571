#!/usr/bin/env bash
# Two `blockd serve` processes on loopback replicate a volume and fail over, driven through
# the admin API with qemu-io as the initiator (docs/REPLICATION.md):
#   1. server A is primary (epoch 1, sync_all, RF 2), server B its replica; qemu-io writes a
#      pattern to A and flushes (the flush returns only once B has it durable);
#   2. A is killed (SIGKILL); B is promoted (epoch 2) and must read back every flushed write;
#   3. A restarts: it was primary at epoch 1 and refuses writes until assigned again; it is
#      made B's replica at epoch 2, catches up, and B's writes flush again (sync_all, so the
#      flush proves A has them); an assignment older than its epoch is refused with 409;
#   4. B is stopped, A promoted (epoch 3): A holds everything B flushed.
# Environment: BLOCKD (default .build/release/blockd), ROUNDS (failovers, default 1; the long
# form of this test is ROUNDS=100), WORK_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
BLOCKD=${BLOCKD:-.build/release/blockd}
ROUNDS=${ROUNDS:-1}
IQN=iqn.2026-11.org.swift-block
[[ -x $BLOCKD ]] || { echo "no blockd at $BLOCKD (swift build -c release --product blockd)" >&2; exit 1; }

work=$(mktemp -d "${WORK_DIR:-/var/tmp}/replication.XXXXXX")
declare -A PID ADMIN PORTAL REPL
cleanup() {
    for name in A B; do [[ -n ${PID[$name]:-} ]] && kill -9 "${PID[$name]}" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
head -c 32 /dev/urandom >"$work/secret"
chmod 600 "$work/secret"
failures=0
fail() { echo "FAILED: $*"; failures=$((failures + 1)); }

start() { # start NAME
    local name=$1
    PORTAL[$name]=${PORTAL[$name]:-$(free_port)}
    REPL[$name]=${REPL[$name]:-$(free_port)}
    mkdir -p "$work/$name"
    start_blockd "$work/$name" "${PORTAL[$name]}" "$work/$name.log" --log-level info \
        --replication-listen "127.0.0.1:${REPL[$name]}" --replication-secret-file "$work/secret"
    PID[$name]=$BLOCKD_PID
    ADMIN[$name]=$BLOCKD_ADMIN_PORT
}
kill_server() { kill -9 "${PID[$1]}" 2>/dev/null || true; wait "${PID[$1]}" 2>/dev/null || true; PID[$1]=; }
api() { # api NAME METHOD PATH [JSON] -> "STATUS BODY"
    local name=$1
    shift
    BLOCKD_ADMIN_PORT=${ADMIN[$name]} admin_http "$@"
}
expect_status() { # expect_status CODE WHAT -- api arguments
    local code=$1 what=$2
    shift 3
    local reply
    reply=$(api "$@")
    [[ ${reply%% *} == "$code" ]] || fail "$what: expected $code, got $reply"
}
url() { echo "iscsi://127.0.0.1:${PORTAL[$1]}/$IQN:vol/0"; }
qio() { # qio NAME COMMANDS... (each -c)
    local name=$1
    shift
    local args=()
    for command in "$@"; do args+=(-c "$command"); done
    qemu-io -f raw "$(url "$name")" "${args[@]}" 2>&1 || true
}
role() { # role NAME ROLE EPOCH [REPLICA]
    local replicas=""
    [[ -n ${4:-} ]] && replicas=",\"replicas\":[\"127.0.0.1:${REPL[$4]}\"]"
    expect_status 200 "$1 $2 at epoch $3" -- "$1" PUT /v1/volumes/vol/role "{\"role\":\"$2\",\"epoch\":$3$replicas}"
}
wait_in_sync() { # wait_in_sync PRIMARY
    for _ in $(seq 1 200); do
        api "$1" GET /v1/volumes/vol | grep -q '"state":"inSync"' && return 0
        sleep 0.05
    done
    fail "the replica of $1 did not get in sync: $(api "$1" GET /v1/volumes/vol)"
}

start A
start B
for name in A B; do
    expect_status 201 "create on $name" -- "$name" POST /v1/volumes \
        '{"name":"vol","sizeBytes":268435456,"durability":"sync_all","replicaFactor":2}'
done
role B replica 1
role A primary 1 B
wait_in_sync A
epoch=1
primary=A
replica=B
offset=0
for ((round = 1; round <= ROUNDS; round++)); do
    pattern=$(((round % 250) + 1))
    out=$(qio "$primary" "write -P $pattern $((offset))M 4M" "flush")
    grep -qiE "error|fail" <<<"$out" && fail "round $round: write + flush on $primary: $out"
    # The primary dies; the replica, which confirmed the flush, is promoted.
    kill_server "$primary"
    epoch=$((epoch + 1))
    role "$replica" primary "$epoch"
    out=$(qio "$replica" "read -P $pattern $((offset))M 4M")
    grep -qiE "error|fail|mismatch" <<<"$out" && fail "round $round: flushed data missing on $replica after promotion: $out"
    # The old primary returns fenced (it was primary at an older epoch and was not told again).
    start "$primary"
    out=$(qio "$primary" "write -P 9 0 4k")
    grep -qiE "error|fail" <<<"$out" || fail "round $round: the restarted old primary accepted a write"
    expect_status 409 "round $round: a stale assignment" -- "$primary" PUT /v1/volumes/vol/role \
        "{\"role\":\"primary\",\"epoch\":$((epoch - 2))}"
    role "$primary" replica "$epoch"
    role "$replica" primary "$epoch" "$primary"
    wait_in_sync "$replica"
    offset=$(((offset + 4) % 200))
    out=$(qio "$replica" "write -P $pattern $((offset))M 4M" "flush")
    grep -qiE "error|fail" <<<"$out" && fail "round $round: write + flush on the new primary with its replica back: $out"
    tmp=$primary
    primary=$replica
    replica=$tmp
    offset=$(((offset + 4) % 200))
    (( failures == 0 )) || break
done

if grep -qiE "fatal|precondition" "$work/A.log" "$work/B.log"; then fail "a blockd log shows a crash"; fi
for name in A B; do [[ -n ${PID[$name]:-} ]] && kill "${PID[$name]}" 2>/dev/null || true; done
if (( failures > 0 )); then
    tail -n 20 "$work/A.log" "$work/B.log"
    echo "replication: $failures failure(s)"
    exit 1
fi
echo "replication: $ROUNDS failover(s), every flushed write readable after each, stale primary refused: all checks passed"
