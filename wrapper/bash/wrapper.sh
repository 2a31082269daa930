#!/bin/bash
# Pilot wrapper, stage one: check the node, set up the grid environment,
# fetch the stage-two tarball and run its wrapper.py with the options.
# Needs only bash and coreutils until it has checked for the rest.
# Usage and options: docs/wrapper.md, or wrapper.sh --help.
#
# Exit codes (the same table is in docs/wrapper.md):
#   0      the payload succeeded
#   64     bad option: missing, repeated, malformed, unknown grid or log level,
#          unbalanced quotes (one line on stderr names the option)
#   65     a required program is missing (the message names it)
#   66     the declared grid's setup file is missing ("no grid")
#   67     the grid setup file failed when sourced ("grid broken")
#   68     the special command failed
#   69     no private work directory could be made
#   70     the stage-two tarball could not be fetched from any mirror
#   71     a mirror served a tarball whose sha256 did not match
#   72     the tarball did not unpack or has no wrapper.py
#   80-87  stage two (docs/wrapper.md)
#   128+N  stopped by signal N
#   other  the payload's own exit code

readonly USAGE='usage: wrapper.sh --wrapperqueue=Q --wrappergrid=OSG|EGEE|gLite|local|cloud
    --wrappertarballurl=URL[,URL...] --wrappertarballchecksum=SHA256 [--wrappersite=S]
    [--wrappervo=VO] [--wrapperserverurl=URL] [--wrapperspecialcmd=CMD]
    [--wrapperplugin=P] [--wrapperpilottype=T[:W],...] [--wrapperloglevel=debug|info]
    [other --options, passed to stage two]   (see docs/wrapper.md)'

# Canonical option names, in the order they are handed to stage two.
readonly KEYS=(site queue batchqueue grid vo serverurl tarballurl tarballchecksum
    specialcmd plugin pilottype loglevel purpose mode pilotcodeurl pilotcoderatio)

declare -A OPT=() GIVEN=()
PASSTHROUGH=()
WORDS=()
SPECIAL=()
LOGLEVEL=info
WORK=''
CHILD=''

log() {  # level message
    if [ "$1" = debug ] && [ "$LOGLEVEL" != debug ]; then
        return 0
    fi
    printf '%(%Y-%m-%dT%H:%M:%S%z)T wrapper.sh %s: %s\n' -1 "${1^^}" "$2" >&2
}

die() {  # exit-code message
    printf 'wrapper.sh: error: %s\n' "$2" >&2
    exit "$1"
}

# Maps an option name, including the older --panda* and APF spellings, to its
# canonical key in KEY; empty for options that belong to stage two only.
option_key() {
    case $1 in
        --wrappersite | --pandasite) KEY=site ;;
        --wrapperqueue | --pandaqueue | --wrapperwmsqueue) KEY=queue ;;
        --wrapperbatchqueue) KEY=batchqueue ;;
        --wrappergrid | --pandagrid) KEY=grid ;;
        --wrappervo | --pandaproject) KEY=vo ;;
        --wrapperserverurl | --pandaserverurl) KEY=serverurl ;;
        --wrappertarballurl | --pandawrappertarballurl) KEY=tarballurl ;;
        --wrappertarballchecksum) KEY=tarballchecksum ;;
        --wrapperspecialcmd | --pandaspecialcmd) KEY=specialcmd ;;
        --wrapperplugin | --pandaplugin) KEY=plugin ;;
        --wrapperpilottype | --pandapilottype) KEY=pilottype ;;
        --wrapperloglevel | --pandaloglevel) KEY=loglevel ;;
        --wrapperpurpose) KEY=purpose ;;
        --wrappermode) KEY=mode ;;
        --wrapperpilotcodeurl) KEY=pilotcodeurl ;;
        --wrapperpilotcoderatio) KEY=pilotcoderatio ;;
        *) KEY='' ;;
    esac
}

# Splits $1 into WORDS the way a shell splits words, honouring '...', "..."
# and backslash, but expanding and executing nothing. Fails on an unbalanced
# quote or a trailing backslash.
split_words() {
    local LC_ALL=C
    local s=$1 i=0 n=${#1} c word='' started=0 quote=''
    WORDS=()
    while [ "$i" -lt "$n" ]; do
        c=${s:i:1}
        if [ "$quote" = "'" ]; then
            if [ "$c" = "'" ]; then quote=''; else word+=$c; fi
        elif [ "$quote" = '"' ]; then
            if [ "$c" = '"' ]; then
                quote=''
            elif [ "$c" = "\\" ] && [[ ${s:i+1:1} == ['"\$`'] ]]; then
                i=$((i + 1))
                word+=${s:i:1}
            else
                word+=$c
            fi
        else
            case $c in
                ' ' | $'\t' | $'\n')
                    if [ "$started" = 1 ]; then
                        WORDS+=("$word")
                        word=''
                        started=0
                    fi
                    ;;
                "'" | '"') quote=$c; started=1 ;;
                "\\")
                    i=$((i + 1))
                    [ "$i" -lt "$n" ] || return 1
                    word+=${s:i:1}
                    started=1
                    ;;
                *) word+=$c; started=1 ;;
            esac
        fi
        i=$((i + 1))
    done
    [ -z "$quote" ] || return 1
    if [ "$started" = 1 ]; then WORDS+=("$word"); fi
    return 0
}

parse_options() {
    local arg name
    for arg in "$@"; do
        case $arg in
            -h | --help) printf '%s\n' "$USAGE"; exit 0 ;;
        esac
        name=${arg%%=*}
        option_key "$name"
        if [ -z "$KEY" ]; then
            PASSTHROUGH+=("$arg")
            continue
        fi
        [[ $arg == *=* ]] || die 64 "$name: expects $name=VALUE"
        [ -z "${GIVEN[$KEY]:-}" ] || die 64 "$name: given more than once (also as ${GIVEN[$KEY]})"
        GIVEN[$KEY]=$name
        # An empty value counts as not given: submit templates often leave them blank.
        if [ -n "${arg#*=}" ]; then OPT[$KEY]=${arg#*=}; fi
    done
}

# Option name as the user spelled it, for error messages.
spelled() {
    printf '%s' "${GIVEN[$1]:---wrapper$1}"
}

check_format() {  # key regex description
    local value=${OPT[$1]:-}
    if [ -n "$value" ] && ! [[ $value =~ $2 ]]; then
        die 64 "$(spelled "$1"): $3"
    fi
}

check_urls() {  # key
    local url urls
    local re='^https?://([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?(/[^[:space:][:cntrl:]]*)?$'
    IFS=, read -r -a urls <<<"${OPT[$1]:-}"
    for url in "${urls[@]}"; do
        [[ $url =~ $re ]] || die 64 "$(spelled "$1"): not an http(s) URL: '$url'"
    done
}

validate_options() {
    local key
    for key in queue grid tarballurl tarballchecksum; do
        [ -n "${OPT[$key]:-}" ] || die 64 "--wrapper$key: required option missing"
    done
    if [ -z "${OPT[site]:-}" ]; then OPT[site]=${OPT[queue]}; fi
    local name='^[A-Za-z0-9_.@+:/-]+$' word='^[A-Za-z0-9_.-]+$'
    for key in site queue batchqueue vo; do
        check_format "$key" "$name" "invalid name (allowed: letters, digits, _ . @ + : / -)"
    done
    check_format purpose "$word" "invalid value (allowed: letters, digits, _ . -)"
    check_format mode "$word" "invalid value (allowed: letters, digits, _ . -)"
    case ${OPT[grid],,} in
        osg | egee | glite | local | cloud) ;;
        *) die 64 "$(spelled grid): unknown grid flavour '${OPT[grid]}' (expected OSG, EGEE, gLite, local or cloud)" ;;
    esac
    case ${OPT[loglevel]:=info} in
        debug | info) LOGLEVEL=${OPT[loglevel]} ;;
        *) die 64 "$(spelled loglevel): unknown log level '${OPT[loglevel]}' (expected debug or info)" ;;
    esac
    check_format tarballchecksum '^[0-9A-Fa-f]{64}$' "expects a sha256 as 64 hex digits"
    check_format plugin '^[a-z][a-z0-9_]*$' "invalid plugin name"
    check_format pilottype '^[A-Za-z0-9_.+-]+(:[0-9]+)?(,[A-Za-z0-9_.+-]+(:[0-9]+)?)*$' \
        "expects TYPE[:WEIGHT][,TYPE[:WEIGHT]...]"
    check_format pilotcoderatio '^[0-9]+(,[0-9]+)*$' "expects WEIGHT[,WEIGHT...]"
    check_urls tarballurl
    check_urls serverurl
    check_urls pilotcodeurl
    if [ -n "${OPT[specialcmd]:-}" ]; then
        split_words "${OPT[specialcmd]}" || die 64 "$(spelled specialcmd): unbalanced quote or trailing backslash"
        SPECIAL=("${WORDS[@]}")
    fi
    for key in WRAPPER_DOWNLOAD_TIMEOUT WRAPPER_DOWNLOAD_RETRIES; do
        [[ ${!key:-0} =~ ^[0-9]+$ ]] || die 64 "$key: expects a whole number of seconds/tries"
    done
}

# Sources the grid flavour's setup file: OSG $OSG_GRID/setup.sh, EGEE/gLite
# ${GLITE_LOCATION:-/opt/glite}/etc/profile.d/grid-env.sh, local/cloud none.
grid_setup() {
    local setup grid=${OPT[grid]}
    case ${grid,,} in
        osg)
            [ -n "${OSG_GRID:-}" ] || die 66 "grid $grid: OSG_GRID is not set, no OSG setup to source"
            setup=$OSG_GRID/setup.sh
            ;;
        egee | glite) setup=${GLITE_LOCATION:-/opt/glite}/etc/profile.d/grid-env.sh ;;
        *) return 0 ;;
    esac
    [ -r "$setup" ] || die 66 "grid $grid: setup file $setup not found"
    log info "grid $grid: sourcing $setup"
    # shellcheck source=/dev/null
    . "$setup" || die 67 "grid $grid: setup file $setup failed (exit $?)"
}

# The special command is one command line split by split_words and run
# without eval: no pipes, redirections or expansions. It runs in this shell
# so that a function such as `module load X` changes the environment that
# stage two inherits.
run_special() {
    [ "${#SPECIAL[@]}" -gt 0 ] || return 0
    log info "running special command: ${SPECIAL[*]}"
    local status=0
    "${SPECIAL[@]}" || status=$?
    [ "$status" -eq 0 ] || die 68 "$(spelled specialcmd) failed (exit $status)"
}

# Checked after the grid setup and special command because those may put
# programs (e.g. python3 through `module load`) on PATH.
check_programs() {
    local missing=() p
    if command -v curl >/dev/null; then
        DOWNLOADER=curl
    elif command -v wget >/dev/null; then
        DOWNLOADER=wget
    else
        missing+=("curl or wget")
    fi
    for p in python3 tar gzip sha256sum mktemp rm; do
        command -v "$p" >/dev/null || missing+=("$p")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        local list
        printf -v list '%s, ' "${missing[@]}"
        die 65 "missing required program(s): ${list%, }"
    fi
}

fetch() {  # url destination
    local timeout=${WRAPPER_DOWNLOAD_TIMEOUT:-120} retries=${WRAPPER_DOWNLOAD_RETRIES:-2}
    if [ "$DOWNLOADER" = curl ]; then
        curl --fail --silent --show-error --location --proto =http,https --proto-redir =http,https \
            --connect-timeout $((timeout < 10 ? timeout : 10)) --max-time "$timeout" \
            --retry "$retries" --output "$2" "$1"
    else
        wget --quiet --timeout="$timeout" --tries=$((retries + 1)) --output-document="$2" "$1"
    fi
}

# Tries each mirror in turn; the first whose tarball has the right sha256 wins.
download_stage_two() {
    local url urls sum mismatch='' tarball=$WORK/wrapper.tar.gz
    local want=${OPT[tarballchecksum],,}
    IFS=, read -r -a urls <<<"${OPT[tarballurl]}"
    for url in "${urls[@]}"; do
        log info "fetching $url"
        if ! fetch "$url" "$tarball"; then
            log info "mirror failed: $url"
            continue
        fi
        sum=$(sha256sum "$tarball")
        if [ "${sum%% *}" = "$want" ]; then
            return 0
        fi
        log info "checksum mismatch from $url: got ${sum%% *}, want $want"
        mismatch=$url
    done
    [ -z "$mismatch" ] || die 71 "stage-two tarball checksum mismatch (last from $mismatch)"
    die 70 "stage-two tarball unavailable from every mirror: ${OPT[tarballurl]}"
}

unpack_stage_two() {
    if ! mkdir "$WORK/stage2" || ! tar -xzf "$WORK/wrapper.tar.gz" -C "$WORK/stage2" --no-same-owner ||
        [ ! -f "$WORK/stage2/wrapper.py" ]; then
        die 72 "stage-two tarball did not unpack or has no wrapper.py"
    fi
}

cleanup() {
    if [ -n "$WORK" ]; then
        cd / && rm -rf -- "$WORK"
    fi
}

on_signal() {  # name number
    if [ -n "$CHILD" ]; then
        log info "forwarding SIG$1 to stage two (pid $CHILD)"
        kill -s "$1" "$CHILD" 2>/dev/null
    else
        exit $((128 + $2))
    fi
}

redacted() {  # arguments: secrets in passed-through options are not logged
    local arg out=()
    for arg in "$@"; do
        case ${arg%%=*} in
            *token* | *secret* | *password* | *passwd*) out+=("${arg%%=*}=<redacted>") ;;
            *) out+=("$arg") ;;
        esac
    done
    printf '%s' "${out[*]}"
}

run_stage_two() {
    local key args=() status
    for key in "${KEYS[@]}"; do
        if [ -n "${OPT[$key]:-}" ]; then args+=("--wrapper$key=${OPT[$key]}"); fi
    done
    log debug "stage two: ${args[*]} $(redacted "${PASSTHROUGH[@]}")"
    cd "$WORK" || die 69 "cannot enter $WORK"
    # -E -S: stage two uses only the standard library, so skip PYTHON* and
    # site-packages (faster, and immune to a node's broken site setup).
    python3 -E -S "$WORK/stage2/wrapper.py" "${args[@]}" "${PASSTHROUGH[@]}" &
    CHILD=$!
    while :; do
        wait "$CHILD"
        status=$?
        # Above 128 is either the child's death by signal or our own trap
        # interrupting wait; only a child still running means the latter.
        if [ "$status" -le 128 ] || ! kill -0 "$CHILD" 2>/dev/null; then
            break
        fi
    done
    CHILD=''
    log info "stage two exited with $status"
    return "$status"
}

main() {
    # One argument with whitespace is a whole argument string, as HTCondor
    # passes `arguments = "..."` to some wrappers: split it safely.
    if [ "$#" -eq 1 ] && [[ $1 == *[[:space:]]* ]]; then
        split_words "$1" || die 64 "argument string: unbalanced quote or trailing backslash"
        set -- "${WORDS[@]}"
    fi
    parse_options "$@"
    validate_options
    trap 'on_signal TERM 15' TERM
    trap 'on_signal INT 2' INT
    trap 'on_signal HUP 1' HUP
    trap 'on_signal USR1 10' USR1
    trap 'on_signal USR2 12' USR2
    trap cleanup EXIT
    log info "site ${OPT[site]} queue ${OPT[queue]} grid ${OPT[grid]}"
    grid_setup
    run_special
    check_programs
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/wrapper.XXXXXXXX") || die 69 "cannot create a work directory in ${TMPDIR:-/tmp}"
    log debug "work directory $WORK"
    download_stage_two
    unpack_stage_two
    run_stage_two
}

main "$@"
