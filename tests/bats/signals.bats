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


@test "SIGTERM is forwarded even when the grid setup file left set -e" {
    mkdir "$BATS_TEST_TMPDIR/osg"
    echo 'set -e' >"$BATS_TEST_TMPDIR/osg/setup.sh"
    OSG_GRID=$BATS_TEST_TMPDIR/osg term_when_ready "${BASE[@]/--wrappergrid=local/--wrappergrid=OSG}"
    [ "$STATUS" -eq 42 ]  # stage two's, not 143 with stage two left running
    [ -z "$(ls -A "$TMPDIR")" ]
}
