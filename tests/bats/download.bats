#!/usr/bin/env bats
# Fetching stage two: mirrors, checksums, timeouts, unpacking, the real tarball.

load helpers/common

setup_file() {
    serve_fake_stage_two
    cp "$WWW/fake.tar.gz" "$WWW/tampered.tar.gz"
    echo tampered >>"$WWW/tampered.tar.gz"
    echo 'not a tarball' >"$WWW/garbage.tar.gz"
    GARBAGE_SUM=$(sha256 "$WWW/garbage.tar.gz")
    REAL_SUM=$(cd "$REPO" && "$PYTHON" -c \
        'import sys; from provisioner.wrapperpack import pack; print(pack(sys.argv[1])[1])' "$WWW")
    start_server HANG_PORT --hang
    export GARBAGE_SUM REAL_SUM
}
teardown_file() { stop_servers; }
setup() {
    base_args
    export TMPDIR=$BATS_TEST_TMPDIR/tmp
    mkdir "$TMPDIR"
}

# mirrors URL...: the base options with these stage-two mirrors.
mirrors() {
    local IFS=,
    ARGS=(--wrapperqueue=Q --wrappergrid=local "--wrappertarballurl=$*" "--wrappertarballchecksum=$FAKE_SUM")
}

@test "the real packed stage two runs the trivial plugin; the work directory is removed" {
    run bash "$WRAPPER" --wrapperqueue=Q --wrappergrid=local --wrapperplugin=trivial \
        "--wrappertarballurl=$URL/wrapper.tar.gz" "--wrappertarballchecksum=$REAL_SUM"
    [ "$status" -eq 0 ]
    [[ $output == *"trivial: site=Q queue=Q grid=local"* ]]
    [[ $output == *"exit=0 (success)"* ]]
    [ -z "$(ls -A "$TMPDIR")" ]
}

@test "stage two runs in the private work directory" {
    run bash "$WRAPPER" "${BASE[@]}"
    [ "$status" -eq 0 ]
    [[ $output == *"CWD $TMPDIR/wrapper."* ]]
}

@test "404 on the first mirror, the second succeeds" {
    mirrors "$URL/missing.tar.gz" "$URL/fake.tar.gz"
    run bash "$WRAPPER" "${ARGS[@]}"
    [ "$status" -eq 0 ]
    [[ $output == *"mirror failed: $URL/missing.tar.gz"* ]]
    [[ $output == *"CWD "* ]]
}

@test "every mirror failing: exit 70" {
    mirrors "$URL/missing.tar.gz" "$URL/gone.tar.gz"
    run --separate-stderr bash "$WRAPPER" "${ARGS[@]}"
    [ "$status" -eq 70 ]
    [[ $stderr == *"unavailable from every mirror"* ]]
}

@test "checksum mismatch is refused: exit 71, stage two not run" {
    mirrors "$URL/tampered.tar.gz"
    run --separate-stderr bash "$WRAPPER" "${ARGS[@]}"
    [ "$status" -eq 71 ]
    [[ $stderr == *"checksum mismatch"* ]]
    [[ $output != *"CWD "* ]]
}

@test "a mismatch from a mirror with a token in its query: the log hides it, and keeps the rest of the line" {
    mirrors "$URL/tampered.tar.gz?token=SECRET"
    run --separate-stderr bash "$WRAPPER" "${ARGS[@]}"
    [ "$status" -eq 71 ]
    [[ $stderr != *SECRET* ]]
    [[ $stderr == *"checksum mismatch from $URL/tampered.tar.gz?<redacted> (got "*", want $FAKE_SUM)"* ]]
    [[ $stderr == *"error: stage-two tarball checksum mismatch, last from $URL/tampered.tar.gz?<redacted>" ]]
}

@test "a mirror with a bad checksum is skipped for the next one" {
    mirrors "$URL/tampered.tar.gz" "$URL/fake.tar.gz"
    run bash "$WRAPPER" "${ARGS[@]}"
    [ "$status" -eq 0 ]
    [[ $output == *"CWD "* ]]
}

@test "a server that never answers times out, bounded, then the next mirror serves" {
    mirrors "http://127.0.0.1:$HANG_PORT/wrapper.tar.gz" "$URL/fake.tar.gz"
    local start=$SECONDS
    WRAPPER_DOWNLOAD_TIMEOUT=1 WRAPPER_DOWNLOAD_RETRIES=0 run bash "$WRAPPER" "${ARGS[@]}"
    [ "$status" -eq 0 ]
    [ $((SECONDS - start)) -le 5 ]
}

@test "a server that never answers alone: exit 70, bounded" {
    mirrors "http://127.0.0.1:$HANG_PORT/wrapper.tar.gz"
    local start=$SECONDS
    WRAPPER_DOWNLOAD_TIMEOUT=1 WRAPPER_DOWNLOAD_RETRIES=1 run bash "$WRAPPER" "${ARGS[@]}"
    [ "$status" -eq 70 ]
    [ $((SECONDS - start)) -le 8 ]
}

@test "a tarball that does not unpack: exit 72" {
    run --separate-stderr bash "$WRAPPER" --wrapperqueue=Q --wrappergrid=local \
        "--wrappertarballurl=$URL/garbage.tar.gz" "--wrappertarballchecksum=$GARBAGE_SUM"
    [ "$status" -eq 72 ]
    [[ $stderr == *"did not unpack"* ]]
}

@test "stage two's exit code is the wrapper's" {
    FAKE_EXIT=7 run bash "$WRAPPER" "${BASE[@]}"
    [ "$status" -eq 7 ]
    [ -z "$(ls -A "$TMPDIR")" ]
}

@test "a bad download setting is a bad option" {
    WRAPPER_DOWNLOAD_TIMEOUT=soon run --separate-stderr bash "$WRAPPER" "${BASE[@]}"
    [ "$status" -eq 64 ]
    [[ $stderr == *WRAPPER_DOWNLOAD_TIMEOUT* ]]
}

@test "a relative TMPDIR is the job directory's" {
    mkdir -p "$BATS_TEST_TMPDIR/job/scratch"
    cd "$BATS_TEST_TMPDIR/job"
    TMPDIR=scratch run bash "$WRAPPER" "${BASE[@]}"
    [ "$status" -eq 0 ]
    [[ $output == *"CWD $BATS_TEST_TMPDIR/job/scratch/wrapper."* ]]
    [ -z "$(ls -A scratch)" ]
}
