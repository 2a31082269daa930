#!/usr/bin/env bats
# Stage one's options: re-tokenizing, hostile values, validation, aliases.

load helpers/common

setup_file() { serve_fake_stage_two; }
teardown_file() { stop_servers; }
setup() {
    base_args
    T=$BATS_TEST_TMPDIR
}

@test "one argument string is split with quoted values kept whole" {
    run bash "$WRAPPER" "${BASE[*]} --note='two words' --dq=\"say \\\"hi\\\"\" --esc=a\\ b --empty=''"
    [ "$status" -eq 0 ]
    [[ $output == *'ARG "--note=two words"'* ]]
    [[ $output == *'ARG "--dq=say \"hi\""'* ]]
    [[ $output == *'ARG "--esc=a b"'* ]]
    [[ $output == *'ARG "--empty="'* ]]
}

@test "hostile values in an argument string are never executed" {
    local hostile="--x='\$(touch $T/p1)' --y=\"\`touch $T/p2\`\" --z=a;touch --w='l1
l2' --v=\$(touch\ $T/p3)"
    run bash "$WRAPPER" "${BASE[*]} $hostile"
    [ "$status" -eq 0 ]
    [[ $output == *"ARG \"--x=\$(touch $T/p1)\""* ]]
    [[ $output == *"ARG \"--y=\`touch $T/p2\`\""* ]]
    [[ $output == *'ARG "--z=a;touch"'* ]]
    [[ $output == *'ARG "--w=l1\nl2"'* ]]
    [[ $output == *"ARG \"--v=\$(touch $T/p3)\""* ]]
    [ ! -e "$T/p1" ] && [ ! -e "$T/p2" ] && [ ! -e "$T/p3" ]
}

@test "hostile values as separate arguments are passed through verbatim" {
    run bash "$WRAPPER" "${BASE[@]}" "--x=\$(touch $T/p1)" "--y=\`touch $T/p2\`" "--z=a; touch $T/p3" \
        $'--n=l1\nl2' "--q='\""
    [ "$status" -eq 0 ]
    [[ $output == *"ARG \"--x=\$(touch $T/p1)\""* ]]
    [[ $output == *"ARG \"--z=a; touch $T/p3\""* ]]
    [[ $output == *'ARG "--n=l1\nl2"'* ]]
    [[ $output == *"ARG \"--q='\\\"\""* ]]
    [ ! -e "$T/p1" ] && [ ! -e "$T/p2" ] && [ ! -e "$T/p3" ]
}

@test "a hostile site name is refused, not executed" {
    expect_bad_option --wrappersite "${BASE[@]}" "--wrappersite=\$(touch $T/p1)"
    [ ! -e "$T/p1" ]
}

@test "the special command runs as one command line, without a shell" {
    run bash "$WRAPPER" "${BASE[@]}" "--wrapperspecialcmd=echo '\$(touch $T/p1)' \`touch $T/p2\` ';' touch $T/p3"
    [ "$status" -eq 0 ]
    [[ $output == *"\$(touch $T/p1) \`touch $T/p2\` ; touch $T/p3"* ]]
    [ ! -e "$T/p1" ] && [ ! -e "$T/p2" ] && [ ! -e "$T/p3" ]
}

@test "missing required option" {
    expect_bad_option --wrappergrid --wrapperqueue=Q "--wrappertarballurl=$URL/fake.tar.gz" \
        "--wrappertarballchecksum=$FAKE_SUM"
}

@test "no options at all" {
    expect_bad_option --wrapperqueue
}

@test "unknown grid flavour" {
    expect_bad_option --wrappergrid "${BASE[@]/--wrappergrid=local/--wrappergrid=moon}"
}

@test "unknown log level" {
    expect_bad_option --wrapperloglevel "${BASE[@]}" --wrapperloglevel=loud
}

@test "malformed URLs" {
    expect_bad_option --wrappertarballurl --wrapperqueue=Q --wrappergrid=local \
        "--wrappertarballurl=$URL/fake.tar.gz,ftp://example.org/x" "--wrappertarballchecksum=$FAKE_SUM"
    expect_bad_option --wrapperserverurl "${BASE[@]}" "--wrapperserverurl=http://exa mple.org"
    # refused for its user:password@, which the error must not quote
    expect_bad_option --wrapperpilotcodeurl "${BASE[@]}" "--wrapperpilotcodeurl=https://pilot:s3cret@example.org/x"
    [[ $stderr == *"https://<redacted>@example.org/x"* ]] && [[ $stderr != *s3cret* ]]
}

@test "malformed checksum, pilot type and plugin" {
    expect_bad_option --wrappertarballchecksum --wrapperqueue=Q --wrappergrid=local \
        "--wrappertarballurl=$URL/fake.tar.gz" --wrappertarballchecksum=abc
    expect_bad_option --wrapperpilottype "${BASE[@]}" --wrapperpilottype=a:x
    expect_bad_option --wrapperplugin "${BASE[@]}" --wrapperplugin=../evil
}

@test "an option given twice, also under an older name" {
    expect_bad_option --pandaqueue "${BASE[@]}" --pandaqueue=Q2
}

@test "an option without a value" {
    expect_bad_option --wrappersite "${BASE[@]}" --wrappersite
}

@test "unbalanced quote in an argument string" {
    expect_bad_option "argument string" "${BASE[*]} --note='open"
}

@test "older and APF spellings reach stage two under the canonical names" {
    run bash "$WRAPPER" --pandasite=S --wrapperwmsqueue=W --pandagrid=local --pandaproject=atlas \
        "--pandawrappertarballurl=$URL/fake.tar.gz" "--wrappertarballchecksum=$FAKE_SUM" \
        --pandapilottype=p:1 --wrapperpurpose=test --wrapperpilotcoderatio=99,1
    [ "$status" -eq 0 ]
    for expected in --wrappersite=S --wrapperqueue=W --wrappergrid=local --wrappervo=atlas \
        --wrapperpilottype=p:1 --wrapperpurpose=test --wrapperpilotcoderatio=99,1; do
        [[ $output == *"ARG \"$expected\""* ]]
    done
}

@test "unknown options are passed through in order" {
    run bash "$WRAPPER" "${BASE[@]}" --first=1 positional --second=2
    [ "$status" -eq 0 ]
    [[ $output == *$'ARG "--first=1"\nARG "positional"\nARG "--second=2"'* ]]
}

@test "--help prints the usage" {
    run bash "$WRAPPER" --help
    [ "$status" -eq 0 ]
    [[ $output == usage:* ]]
}

@test "-h alone prints the usage" {
    run bash "$WRAPPER" -h
    [ "$status" -eq 0 ]
    [[ $output == usage:* ]]
}

@test "-h and --help among other options, and options starting with -h, are passed through" {
    run bash "$WRAPPER" "${BASE[@]}" -hostname foo -host=x -hv --payloadopt -h --help
    [ "$status" -eq 0 ]
    [[ $output == *$'ARG "-hostname"\nARG "foo"\nARG "-host=x"\nARG "-hv"\nARG "--payloadopt"\nARG "-h"\nARG "--help"'* ]]
}

@test "an option given empty and again is given twice" {
    expect_bad_option --wrappervo "${BASE[@]}" --wrappervo= --wrappervo=atlas
}
