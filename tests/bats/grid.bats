#!/usr/bin/env bats
# Grid setup: OSG and EGEE/gLite setup files, "no grid" vs "grid broken",
# and the special command.

load helpers/common

setup_file() { serve_fake_stage_two; }
teardown_file() { stop_servers; }
setup() {
    base_args
    OSG=("${BASE[@]/--wrappergrid=local/--wrappergrid=OSG}")
    unset OSG_GRID GLITE_LOCATION
}

@test "OSG declared but its setup file missing: exit 66" {
    mkdir "$BATS_TEST_TMPDIR/osg"
    OSG_GRID=$BATS_TEST_TMPDIR/osg run --separate-stderr bash "$WRAPPER" "${OSG[@]}"
    [ "$status" -eq 66 ]
    [[ $stderr == *"$BATS_TEST_TMPDIR/osg/setup.sh not found"* ]]
}

@test "OSG declared without OSG_GRID: exit 66" {
    run --separate-stderr bash "$WRAPPER" "${OSG[@]}"
    [ "$status" -eq 66 ]
    [[ $stderr == *"OSG_GRID is not set"* ]]
}

@test "OSG setup file failing: exit 67, not 66" {
    mkdir "$BATS_TEST_TMPDIR/osg"
    echo 'return 3' >"$BATS_TEST_TMPDIR/osg/setup.sh"
    OSG_GRID=$BATS_TEST_TMPDIR/osg run --separate-stderr bash "$WRAPPER" "${OSG[@]}"
    [ "$status" -eq 67 ]
    [[ $stderr == *"setup.sh failed (exit 3)"* ]]
}

@test "OSG setup and a module-style special command shape stage two's environment" {
    mkdir "$BATS_TEST_TMPDIR/osg"
    cat >"$BATS_TEST_TMPDIR/osg/setup.sh" <<'SETUP'
export FROM_OSG_SETUP=yes
module() { export LOADED_MODULE="$1 $2"; }
SETUP
    OSG_GRID=$BATS_TEST_TMPDIR/osg FAKE_SHOW_ENV="FROM_OSG_SETUP LOADED_MODULE" \
        run bash "$WRAPPER" "${OSG[@]}" "--wrapperspecialcmd=module load 'osg python'"
    [ "$status" -eq 0 ]
    [[ $output == *'ENV FROM_OSG_SETUP="yes"'* ]]
    [[ $output == *'ENV LOADED_MODULE="load osg python"'* ]]
}

@test "gLite sources GLITE_LOCATION/etc/profile.d/grid-env.sh" {
    mkdir -p "$BATS_TEST_TMPDIR/glite/etc/profile.d"
    echo 'export FROM_GLITE=yes' >"$BATS_TEST_TMPDIR/glite/etc/profile.d/grid-env.sh"
    GLITE_LOCATION=$BATS_TEST_TMPDIR/glite FAKE_SHOW_ENV=FROM_GLITE \
        run bash "$WRAPPER" "${BASE[@]/--wrappergrid=local/--wrappergrid=gLite}"
    [ "$status" -eq 0 ]
    [[ $output == *'ENV FROM_GLITE="yes"'* ]]
}

@test "EGEE declared but its setup file missing: exit 66" {
    GLITE_LOCATION=$BATS_TEST_TMPDIR/none run --separate-stderr bash "$WRAPPER" \
        "${BASE[@]/--wrappergrid=local/--wrappergrid=EGEE}"
    [ "$status" -eq 66 ]
    [[ $stderr == *"grid-env.sh not found"* ]]
}

@test "local and cloud source nothing" {
    OSG_GRID=$BATS_TEST_TMPDIR/none run bash "$WRAPPER" "${BASE[@]}"
    [ "$status" -eq 0 ]
    run bash "$WRAPPER" "${BASE[@]/--wrappergrid=local/--wrappergrid=cloud}"
    [ "$status" -eq 0 ]
}

@test "a failing special command: exit 68" {
    run --separate-stderr bash "$WRAPPER" "${BASE[@]}" --wrapperspecialcmd=false
    [ "$status" -eq 68 ]
    [[ $stderr == *"--wrapperspecialcmd failed (exit 1)"* ]]
}

@test "a setup file's shell state (set -eu, IFS, shopt) does not reach the wrapper" {
    mkdir "$BATS_TEST_TMPDIR/osg"
    printf 'set -eu\nIFS=:\nshopt -s failglob nullglob\n' >"$BATS_TEST_TMPDIR/osg/setup.sh"
    OSG_GRID=$BATS_TEST_TMPDIR/osg FAKE_SHOW_ENV=SPECIAL_SET \
        run bash "$WRAPPER" "${OSG[@]}" "--wrapperspecialcmd=export SPECIAL_SET=yes" --extra='a b'
    [ "$status" -eq 0 ]
    [[ $output == *'ENV SPECIAL_SET="yes"'* ]]
    [[ $output == *'ARG "--extra=a b"'* ]]
}

@test "the special command runs a site program named like one of the wrapper's functions" {
    mkdir "$BATS_TEST_TMPDIR/bin"
    printf '#!/bin/sh\necho "site fetch ran: $*"\n' >"$BATS_TEST_TMPDIR/bin/fetch"
    chmod +x "$BATS_TEST_TMPDIR/bin/fetch"
    PATH=$BATS_TEST_TMPDIR/bin:$PATH run bash "$WRAPPER" "${BASE[@]}" "--wrapperspecialcmd=fetch a b"
    [ "$status" -eq 0 ]
    [[ $output == *"site fetch ran: a b"* ]]
}
