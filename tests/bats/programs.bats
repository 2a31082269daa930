#!/usr/bin/env bats
# Missing programs are reported by name (simulated with a PATH of symlinks).

load helpers/common

setup_file() { serve_fake_stage_two; }
teardown_file() { stop_servers; }
setup() { base_args; }

# bin_without PROGRAM...: a directory of symlinks to what stage one uses, minus PROGRAMs.
bin_without() {
    local bin program skip
    bin=$(mktemp -d "$BATS_TEST_TMPDIR/bin.XXXXXX")
    for program in curl wget tar gzip sha256sum mktemp rm mkdir timeout sleep python3; do
        for skip in "$@"; do [ "$program" != "$skip" ] || continue 2; done
        if [ "$program" = python3 ]; then
            ln -s "$PYTHON" "$bin/python3"
        else
            ln -s "$(command -v "$program")" "$bin/$program"
        fi
    done
    echo "$bin"
}

@test "all programs present: the restricted PATH itself works" {
    PATH=$(bin_without) run "$BASH" "$WRAPPER" "${BASE[@]}"
    [ "$status" -eq 0 ]
}

@test "missing python3 is reported by name" {
    PATH=$(bin_without python3) run --separate-stderr "$BASH" "$WRAPPER" "${BASE[@]}"
    [ "$status" -eq 65 ]
    [[ $stderr == *"missing required program(s): python3"* ]]
}

@test "missing tar is reported by name" {
    PATH=$(bin_without tar) run --separate-stderr "$BASH" "$WRAPPER" "${BASE[@]}"
    [ "$status" -eq 65 ]
    [[ $stderr == *"missing required program(s): tar"* ]]
}

@test "missing curl and wget are reported together" {
    PATH=$(bin_without curl wget) run --separate-stderr "$BASH" "$WRAPPER" "${BASE[@]}"
    [ "$status" -eq 65 ]
    [[ $stderr == *"missing required program(s): curl or wget"* ]]
}

@test "several missing programs are all named" {
    PATH=$(bin_without python3 gzip) run --separate-stderr "$BASH" "$WRAPPER" "${BASE[@]}"
    [ "$status" -eq 65 ]
    [[ $stderr == *"missing required program(s): python3, gzip"* ]]
}

@test "wget is used when curl is missing" {
    PATH=$(bin_without curl) run "$BASH" "$WRAPPER" "${BASE[@]}" --marker=via-wget
    [ "$status" -eq 0 ]
    [[ $output == *'ARG "--marker=via-wget"'* ]]
}

@test "wget needs timeout and sleep, which time and space its tries" {
    PATH=$(bin_without curl timeout sleep) run --separate-stderr "$BASH" "$WRAPPER" "${BASE[@]}"
    [ "$status" -eq 65 ]
    [[ $stderr == *"missing required program(s): timeout, sleep"* ]]
    PATH=$(bin_without timeout sleep) run "$BASH" "$WRAPPER" "${BASE[@]}"
    [ "$status" -eq 0 ]
}
