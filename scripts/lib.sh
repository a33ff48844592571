# Shared helpers for the end-to-end scripts: start and stop blockd, wait for a port.
# Sourced, not run.

# start_blockd DATA_DIR PORT LOG [extra serve arguments...]: starts blockd serve in the
# background and sets BLOCKD_PID and BLOCKD_ADMIN_PORT; waits until the portal accepts
# connections. The admin API gets a free port of its own, so a run never depends on the
# default one being free.
start_blockd() {
    local data_dir=$1 port=$2 log=$3
    shift 3
    local admin=()
    BLOCKD_ADMIN_PORT=
    # (A blockd built before the admin API, as benchmarks may run, has no --admin.)
    if "$BLOCKD" serve --help 2>/dev/null | grep -q -- '--admin '; then
        BLOCKD_ADMIN_PORT=$(free_port)
        admin=(--admin "127.0.0.1:$BLOCKD_ADMIN_PORT")
    fi
    # Started from a subshell so this shell never reports the job's death (SIGKILL tests).
    BLOCKD_PID=$("$BLOCKD" serve --data-dir "$data_dir" --portal "127.0.0.1:$port" \
        "${admin[@]}" "$@" >>"$log" 2>&1 </dev/null & echo $!)
    wait_for_port "$port" || { echo "blockd did not start; log:" >&2; tail -20 "$log" >&2; return 1; }
}

# admin_http METHOD PATH [JSON]: one request to the admin API of the blockd that
# start_blockd started; prints the HTTP status, a space and the body.
admin_http() {
    python3 - "$BLOCKD_ADMIN_PORT" "$@" <<'PY'
import sys, urllib.error, urllib.request
port, method, path = sys.argv[1:4]
data = sys.argv[4].encode() if len(sys.argv) > 4 else None
request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method,
                                 headers={"Content-Type": "application/json"})
try:
    with urllib.request.urlopen(request, timeout=30) as reply:
        print(reply.status, reply.read().decode())
except urllib.error.HTTPError as error:
    print(error.code, error.read().decode())
PY
}

# expect_http STATUS METHOD PATH [JSON]: admin_http, failing unless the answer has STATUS.
expect_http() {
    local expected=$1 reply
    shift
    reply=$(admin_http "$@")
    [[ ${reply%% *} == "$expected" ]] || { echo "expected $expected from $1 $2, got: $reply"; return 1; }
}

# stop_blockd [SIGNAL]: stops the blockd started by start_blockd (TERM by default) and waits.
stop_blockd() {
    local signal=${1:-TERM}
    if [[ -n "${BLOCKD_PID:-}" ]] && kill -0 "$BLOCKD_PID" 2>/dev/null; then
        kill -"$signal" "$BLOCKD_PID" 2>/dev/null || true
        for _ in $(seq 1 100); do
            kill -0 "$BLOCKD_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$BLOCKD_PID" 2>/dev/null || true
    fi
    BLOCKD_PID=
}

# wait_for_port PORT: up to 20 s for 127.0.0.1:PORT to accept a TCP connection.
wait_for_port() {
    for _ in $(seq 1 200); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    return 1
}

# free_port: a TCP port nothing listens on.
free_port() {
    local port
    for _ in $(seq 1 50); do
        port=$((20000 + RANDOM % 20000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then echo "$port"; return 0; fi
    done
    return 1
}

# start_sampler PID FILE: appends "rss_kib threads" of process PID to FILE every 0.2 s,
# in the background, until stop_sampler or until PID is gone; sets SAMPLER_PID.
start_sampler() {
    local pid=$1 file=$2
    (
        while status=$(cat "/proc/$pid/status" 2>/dev/null); do
            awk '/^VmRSS:/ {rss = $2} /^Threads:/ {threads = $2} END {print rss, threads}' <<<"$status"
            sleep 0.2
        done
    ) >"$file" &
    SAMPLER_PID=$!
}

# stop_sampler FILE: stops the sampler and sets PEAK_RSS_KIB and PEAK_THREADS from FILE.
stop_sampler() {
    if [[ -n "${SAMPLER_PID:-}" ]]; then
        kill "$SAMPLER_PID" 2>/dev/null || true
        wait "$SAMPLER_PID" 2>/dev/null || true
    fi
    SAMPLER_PID=
    read -r PEAK_RSS_KIB PEAK_THREADS < <(awk 'NF == 2 {if ($1 > r) r = $1; if ($2 > t) t = $2} END {print r + 0, t + 0}' "$1")
}
