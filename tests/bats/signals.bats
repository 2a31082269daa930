#!/usr/bin/env bats
# Signals sent to stage one reach stage two, a real child process.

load helpers/common

setup_file() { serve_fake_stage_two; }
teardown_file() { stop_servers; }
setup() {
    base_args
    export TMPDIR=$BATS_TEST_TMPDIR/tmp
    mkdir "$TMPDIR"
}
teardown() {
    if [ -n "${PID:-}" ]; then kill "$PID" 2>/dev/null || true; fi
    if [ -n "${GROUP:-}" ]; then kill "$GROUP" 2>/dev/null || true; fi
}

# Runs the wrapper with OPTIONS, sends it SIGTERM once stage two is running,
# and sets STATUS to the wrapper's exit code; output in $BATS_TEST_TMPDIR/out.
term_when_ready() {  # options...
    local ready=$BATS_TEST_TMPDIR/ready line
    STATUS=0
    mkfifo "$ready"
    exec 5<>"$ready"  # read-write: opening never blocks, read -t bounds the wait
    FAKE_MODE=signal FAKE_READY=$ready bash "$WRAPPER" "$@" >"$BATS_TEST_TMPDIR/out" 2>&1 3>&- &
    PID=$!
    read -r -t 15 -u 5 line
    [ "$line" = ready ]
    kill -TERM "$PID"
    wait "$PID" || STATUS=$?
    PID=''
    exec 5<&-
}

@test "SIGTERM is forwarded to stage two and its exit code returned" {
    term_when_ready "${BASE[@]}"
    [ "$STATUS" -eq 42 ]
    grep -q 'forwarding SIGTERM to stage two' "$BATS_TEST_TMPDIR/out"
    [ -z "$(ls -A "$TMPDIR")" ]
}


@test "stage two's exit code is returned when it ends while the trap runs (a race: 10 tries)" {
    # It exits at once on SIGTERM: stage one's interrupted wait said 143 and, the child
    # already gone, was taken as its status (about one run in seven on a busy machine).
    for _ in $(seq 10); do
        term_when_ready "${BASE[@]}"
        [ "$STATUS" -eq 42 ]
        rm -f "$BATS_TEST_TMPDIR/ready"
    done
}

@test "SIGTERM is forwarded even when the grid setup file left set -e" {
    mkdir "$BATS_TEST_TMPDIR/osg"
    echo 'set -e' >"$BATS_TEST_TMPDIR/osg/setup.sh"
    OSG_GRID=$BATS_TEST_TMPDIR/osg term_when_ready "${BASE[@]/--wrappergrid=local/--wrappergrid=OSG}"
    [ "$STATUS" -eq 42 ]  # stage two's, not 143 with stage two left running
    [ -z "$(ls -A "$TMPDIR")" ]
}

# Starts `sleep` in a session (and process group) of its own, as stage two
# starts the payload: GROUP is its pgid, START its start time (/proc stat field 22).
start_group() {
    local line fields
    setsid sleep 60 3>&- &
    GROUP=$!
    # setsid execs sleep without a fork (a background job here leads no group): wait until it has made its session
    for _ in $(seq 100); do
        read -r line <"/proc/$GROUP/stat"
        read -ra fields <<<"${line##*) }"
        [ "${fields[2]}" != "$GROUP" ] || break
        sleep 0.05
    done
    [ "${fields[2]}" = "$GROUP" ]
    START=${fields[19]}
}

alive() {  # pid: running, not a zombie
    local line
    { read -r line <"/proc/$1/stat"; } 2>/dev/null || return 1
    line=${line##*) }
    [ "${line%% *}" != Z ]
}

@test "a recorded payload group left running when stage two ends is stopped" {
    start_group
    FAKE_GROUP="$GROUP $START 5" run --separate-stderr bash "$WRAPPER" "${BASE[@]}"
    [ "$status" -eq 0 ]  # stage two's
    [[ $stderr == *"its payload's process group $GROUP is running: SIGTERM, SIGKILL after 5s"* ]]
    [ -z "$(ls -A "$TMPDIR")" ]
    run ! alive "$GROUP"  # stage one waited for it
}

@test "a recorded group whose leader started at another time is left alone: a reused pid" {
    start_group
    FAKE_GROUP="$GROUP $((START + 1)) 5" run --separate-stderr bash "$WRAPPER" "${BASE[@]}"
    alive "$GROUP"
    [ "$status" -eq 0 ]
    [[ $stderr != *"process group"* ]]
}

@test "stage two learns where to record its payload's group, in the work directory" {
    FAKE_SHOW_ENV=WRAPPER_PAYLOAD_GROUP_FILE run --separate-stderr bash "$WRAPPER" "${BASE[@]}"
    [ "$status" -eq 0 ]
    local work
    work=$(grep '^CWD ' <<<"$output")
    [[ $output == *"ENV WRAPPER_PAYLOAD_GROUP_FILE=\"${work#CWD }/.payload.pgid\""* ]]
}
