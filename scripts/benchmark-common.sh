# Shared helpers of scripts/benchmark.sh: progress lines, the results file, the list of
# commands run, and running a tool so that an interrupt can stop it. Sourced, not run.
# Expects WORK (the work directory) to be set.

BENCH_STARTED_AT=$(date +%s)
STEP=0
TOTAL_STEPS=0
CHILD_PID=

# progress TEXT: prints "[step/total mm:ss] TEXT" on stderr and counts the step.
progress() {
    STEP=$((STEP + 1))
    local elapsed=$(($(date +%s) - BENCH_STARTED_AT))
    printf '[%2d/%d %02d:%02d] %s\n' "$STEP" "$TOTAL_STEPS" $((elapsed / 60)) $((elapsed % 60)) "$*" >&2
}

# say TEXT: an unnumbered progress line.
say() { printf '           %s\n' "$*" >&2; }

# record KEY RUN IOPS MIBPS CPU_US_PER_IO P50_US NOTE: one measurement (numbers may be "-").
record() {
    local IFS=$'\t'
    echo "$*" >>"$WORK/results.tsv"
    say "-> $3 IOPS, $4 MiB/s, CPU $5 us/IO, p50 $6 us${7:+ ($7)}"
}

# note_command KEY COMMAND...: remembers the command line of KEY (the first run's).
note_command() {
    local key=$1
    shift
    grep -q "^$key"$'\t' "$WORK/commands.tsv" 2>/dev/null && return 0
    printf '%s\t%s\n' "$key" "$*" >>"$WORK/commands.tsv"
}

# run_tracked COMMAND...: runs COMMAND in the background and waits for it, so that the
# script's traps run at once on an interrupt and can stop it (CHILD_PID).
run_tracked() {
    "$@" &
    CHILD_PID=$!
    local status=0
    wait "$CHILD_PID" || status=$?
    CHILD_PID=
    return "$status"
}

# stop_child: stops a tool still running under run_tracked.
stop_child() {
    if [[ -n "$CHILD_PID" ]] && kill -0 "$CHILD_PID" 2>/dev/null; then
        kill -TERM "$CHILD_PID" 2>/dev/null || true
        wait "$CHILD_PID" 2>/dev/null || true
    fi
    CHILD_PID=
}

# field KEY LINE: the value of KEY=value in a line of key=value pairs.
field() {
    local pair
    for pair in $2; do
        [[ $pair == "$1="* ]] && { echo "${pair#*=}"; return 0; }
    done
    echo "-"
}

# calc EXPRESSION: floating-point arithmetic (awk), printed with up to 1 decimal.
calc() { awk "BEGIN { v = $1; printf (v == int(v) ? \"%d\n\" : \"%.1f\n\"), v }"; }
