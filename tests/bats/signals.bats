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

@test "SIGTERM is forwarded to stage two and its exit code returned" {
    local ready=$BATS_TEST_TMPDIR/ready line status=0
    mkfifo "$ready"
    exec 5<>"$ready"  # read-write: opening never blocks, read -t bounds the wait
    FAKE_MODE=signal FAKE_READY=$ready bash "$WRAPPER" "${BASE[@]}" >"$BATS_TEST_TMPDIR/out" 2>&1 3>&- &
    PID=$!
    read -r -t 15 -u 5 line
    [ "$line" = ready ]
    kill -TERM "$PID"
    wait "$PID" || status=$?
    PID=''
    exec 5<&-
    [ "$status" -eq 42 ]
    grep -q 'forwarding SIGTERM to stage two' "$BATS_TEST_TMPDIR/out"
    [ -z "$(ls -A "$TMPDIR")" ]
}

