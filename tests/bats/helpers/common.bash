# Shared by the stage-one tests: loopback HTTP servers and stage-two tarballs.
# Servers are started once per file (setup_file) and stopped in teardown_file.

REPO=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
WRAPPER=$REPO/wrapper/bash/wrapper.sh
HELPERS=$BATS_TEST_DIRNAME/helpers
PYTHON=$(python3 -c 'import sys; print(sys.executable)')
export REPO WRAPPER HELPERS PYTHON

bats_require_minimum_version 1.5.0

# start_server VAR [httpserver.py options]: starts a server, exports its port as VAR.
start_server() {
    local fifo=$BATS_FILE_TMPDIR/$1.fifo port
    mkfifo "$fifo"
    # 3>&- : bats waits for processes holding its fd 3.
    "$PYTHON" "$HELPERS/httpserver.py" "${@:2}" >"$fifo" 2>>"$BATS_FILE_TMPDIR/servers.log" 3>&- &
    echo "$!" >>"$BATS_FILE_TMPDIR/servers.pids"
    read -r -t 10 port <"$fifo"
    export "$1=$port"
}

stop_servers() {
    local pid
    if [ -f "$BATS_FILE_TMPDIR/servers.pids" ]; then
        while read -r pid; do kill "$pid" 2>/dev/null || true; done <"$BATS_FILE_TMPDIR/servers.pids"
    fi
}

sha256() {
    local sum
    sum=$(sha256sum "$1")
    echo "${sum%% *}"
}

# Serves fake_stage2.py as fake.tar.gz (FAKE_SUM) from WWW on PORT (URL).
serve_fake_stage_two() {
    WWW=$BATS_FILE_TMPDIR/www
    mkdir -p "$WWW" "$BATS_FILE_TMPDIR/fake"
    cp "$HELPERS/fake_stage2.py" "$BATS_FILE_TMPDIR/fake/wrapper.py"
    tar -czf "$WWW/fake.tar.gz" -C "$BATS_FILE_TMPDIR/fake" wrapper.py
    FAKE_SUM=$(sha256 "$WWW/fake.tar.gz")
    start_server PORT --dir "$WWW"
    URL=http://127.0.0.1:$PORT
    export WWW FAKE_SUM URL
}

# The options every run needs, fetching the fake stage two.
base_args() {
    BASE=(--wrapperqueue=Q --wrappergrid=local "--wrappertarballurl=$URL/fake.tar.gz"
        "--wrappertarballchecksum=$FAKE_SUM")
}

# expect_bad_option OPTION ARGS...: exit 64 and one stderr line naming OPTION.
expect_bad_option() {
    local option=$1
    shift
    run --separate-stderr bash "$WRAPPER" "$@"
    [ "$status" -eq 64 ]
    [ "${#stderr_lines[@]}" -eq 1 ]
    [[ $stderr == *"$option"* ]]
    [ -z "$output" ]
}
