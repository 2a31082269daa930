#!/bin/bash
# Pilot wrapper, stage one: check the node, set up the grid environment,
# fetch the stage-two tarball and run its wrapper.py with the options.
# Needs only bash (4.4 or later) and coreutils until it has checked for the rest.
# Usage and options: docs/wrapper.md, or wrapper.sh --help.
#
# Exit codes (the same table is in docs/wrapper.md):
#   0      the payload succeeded
#   64     bad option: missing, repeated, malformed, unknown grid or log level,
#          unbalanced quotes (one line on stderr names the option)
#   65     a required program is missing (the message names it)
#   66     the declared grid's setup file is missing ("no grid")
#   67     the grid setup file failed or exited when sourced ("grid broken")
#   68     the special command failed
#   69     no private work directory could be made
#   70     the stage-two tarball could not be fetched from any mirror
#   71     a mirror served a tarball whose sha256 did not match
#   72     the tarball did not unpack or has no wrapper.py
#   80-87  stage two (docs/wrapper.md)
#   128+N  stopped by signal N
#   other  the payload's own exit code

if ((BASH_VERSINFO[0] < 4 || (BASH_VERSINFO[0] == 4 && BASH_VERSINFO[1] < 4))); then
    echo "wrapper.sh: error: needs bash 4.4 or later, this is $BASH_VERSION" >&2
    exit 65
fi

readonly USAGE='usage: wrapper.sh --wrapperqueue=Q --wrappergrid=OSG|EGEE|gLite|local|cloud
    --wrappertarballurl=URL[,URL...] --wrappertarballchecksum=SHA256 [--wrappersite=S]
    [--wrappervo=VO] [--wrapperserverurl=URL] [--wrapperspecialcmd=CMD]
    [--wrapperplugin=P] [--wrapperpilottype=T[:W],...] [--wrapperloglevel=debug|info]
    [other --options, passed to stage two]   (see docs/wrapper.md)'

# Canonical option names, in the order they are handed to stage two.
readonly KEYS=(site queue batchqueue grid vo serverurl tarballurl tarballchecksum
    specialcmd plugin pilottype loglevel purpose mode pilotcodeurl pilotcoderatio)

# Option names whose values are never logged (as in wrapperlib/log.py), any case.
readonly SECRET_WORDS='token|secret|password|passwd'

declare -A OPT=() GIVEN=()
PASSTHROUGH=()
WORDS=()
LIST=()
SPECIAL=()
REDACTED=''
LOGLEVEL=info
WORK=''
CHILD=''
FETCHER=''
SOURCING=''

log() {  # level message
    if [ "$1" = debug ] && [ "$LOGLEVEL" != debug ]; then
        return 0
    fi
    printf '%(%Y-%m-%dT%H:%M:%S%z)T wrapper.sh %s: %s\n' -1 "${1^^}" "$2" >&2
}

die() {  # exit-code message: one line, even when it quotes a value with a newline
    printf 'wrapper.sh: error: %s\n' "${2//$'\n'/\\n}" >&2
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

# Splits $1 at commas into LIST, keeping empty items and newlines as they are
# (read -a would drop a trailing empty item and stop at a newline).
split_commas() {
    local rest=${1:+$1,}
    LIST=()
    while [ -n "$rest" ]; do
        LIST+=("${rest%%,*}")
        rest=${rest#*,}
    done
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
    local url
    local re='^https?://([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?(/[^[:space:][:cntrl:]]*)?$'
    split_commas "${OPT[$1]:-}"
    for url in "${LIST[@]}"; do
        [[ $url =~ $re ]] || die 64 "$(spelled "$1"): not an http(s) URL: '$url'"
    done
}

# The server URL is one URL: stage two appends <pilottype>.tar.gz to it.
check_url() {  # key
    check_urls "$1"
    [ "${#LIST[@]}" -le 1 ] || die 64 "$(spelled "$1"): expects one URL, not a comma list"
}

# TYPE[:WEIGHT],... as stage two reads it: `-` alone means none, is no type
# in a list, and the weights must not all be zero.
check_pilottypes() {
    local item weighted=0
    check_format pilottype '^[A-Za-z0-9_.+-]+(:[0-9]+)?(,[A-Za-z0-9_.+-]+(:[0-9]+)?)*$' \
        "expects TYPE[:WEIGHT][,TYPE[:WEIGHT]...]"
    [ -n "${OPT[pilottype]:-}" ] && [ "${OPT[pilottype]}" != - ] || return 0
    split_commas "${OPT[pilottype]}"
    for item in "${LIST[@]}"; do
        [ "${item%%:*}" != - ] || die 64 "$(spelled pilottype): '-' (no pilot type) cannot be in a list"
        if [[ $item != *:* || ${item#*:} == *[1-9]* ]]; then weighted=1; fi
    done
    [ "$weighted" = 1 ] || die 64 "$(spelled pilottype): weights add up to zero"
}

# Download settings are decimal (08 is 8, not bad octal); a time limit of 0
# would mean none.
check_download_settings() {
    local timeout=${WRAPPER_DOWNLOAD_TIMEOUT:-120} retries=${WRAPPER_DOWNLOAD_RETRIES:-2}
    if ! [[ $timeout =~ ^[0-9]{1,9}$ ]] || [ "$((10#$timeout))" -eq 0 ]; then
        die 64 "WRAPPER_DOWNLOAD_TIMEOUT: expects a whole number of seconds, at least 1"
    fi
    [[ $retries =~ ^[0-9]{1,9}$ ]] || die 64 "WRAPPER_DOWNLOAD_RETRIES: expects a whole number of tries"
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
    check_pilottypes
    check_format pilotcoderatio '^[0-9]+(,[0-9]+)*$' "expects WEIGHT[,WEIGHT...]"
    check_urls tarballurl
    check_url serverurl
    check_urls pilotcodeurl
    if [ -n "${OPT[specialcmd]:-}" ]; then
        split_words "${OPT[specialcmd]}" || die 64 "$(spelled specialcmd): unbalanced quote or trailing backslash"
        SPECIAL=("${WORDS[@]}")
    fi
    check_download_settings
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
    local status=0
    # SOURCING makes on_exit report an `exit` in the file as "grid broken".
    SOURCING="grid $grid: setup file $setup"
    # shellcheck source=/dev/null
    . "$setup" || status=$?
    SOURCING=''
    [ "$status" -eq 0 ] || die 67 "grid $grid: setup file $setup failed (exit $status)"
    set_traps  # the file may have set its own
}

# The special command is one command line split by split_words and run
# without eval: no pipes, redirections or expansions. It runs in a subshell,
# so that neither `exit` nor an assignment changes the wrapper's own state;
# the environment it leaves is then taken over, so that a function such as
# `module load X` (from the grid setup) shapes what stage two inherits.
run_special() {
    [ "${#SPECIAL[@]}" -gt 0 ] || return 0
    redact "${SPECIAL[@]}"
    log info "running special command: $REDACTED"
    local status=0 stdout records=()
    exec {stdout}>&1
    mapfile -d '' records < <("${SPECIAL[@]}" >&"$stdout" {stdout}>&- && give_environment)
    wait "$!" || status=$?
    exec {stdout}>&-
    [ "$status" -eq 0 ] || die 68 "$(spelled specialcmd) failed (exit $status)"
    # None after an `exit 0`: the environment is not known then.
    [ "${#records[@]}" -eq 0 ] || take_environment "${records[@]}"
}

# In the special command's subshell: NAME VALUE of each exported variable,
# NUL-terminated.
give_environment() {
    local name
    for name in $(compgen -e); do
        printf '%s\0%s\0' "$name" "${!name}"
    done
}

# Makes this shell's environment the special command's: new and changed
# variables exported, those it unset removed. The wrapper's own variables,
# which it never exports, are left alone.
take_environment() {  # NAME VALUE ...
    local name
    local -A sent=() exported=()
    for name in $(compgen -e); do exported[$name]=1; done
    while [ "$#" -ge 2 ]; do
        sent[$1]=1
        # Skipped: unchanged (perhaps read-only), or one of the wrapper's own.
        if [ -z "${!1+set}" ] || { [ "${!1}" != "$2" ] && [ -n "${exported[$1]:-}" ]; }; then
            export "$1=$2"
        fi
        shift 2
    done
    for name in "${!exported[@]}"; do
        [ -n "${sent[$name]:-}" ] || unset "$name"
    done
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
    for p in python3 tar gzip sha256sum mktemp rm mkdir; do
        command -v "$p" >/dev/null || missing+=("$p")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        local list
        printf -v list '%s, ' "${missing[@]}"
        die 65 "missing required program(s): ${list%, }"
    fi
}

# The downloader runs in the background so that a signal's trap runs at once
# rather than when it ends; on_exit stops it.
fetch() {  # url destination
    local timeout=$((10#${WRAPPER_DOWNLOAD_TIMEOUT:-120})) retries=$((10#${WRAPPER_DOWNLOAD_RETRIES:-2})) status=0
    if [ "$DOWNLOADER" = curl ]; then
        curl --fail --silent --show-error --location --globoff --proto =http,https --proto-redir =http,https \
            --connect-timeout $((timeout < 10 ? timeout : 10)) --max-time "$timeout" \
            --retry "$retries" --retry-connrefused --output "$2" "$1" &
    else
        wget --quiet --timeout="$timeout" --tries=$((retries + 1)) --retry-connrefused \
            --output-document="$2" "$1" &
    fi
    FETCHER=$!
    wait "$FETCHER" || status=$?
    FETCHER=''
    return "$status"
}

# Tries each mirror in turn; the first whose tarball has the right sha256 wins.
download_stage_two() {
    local url urls sum mismatch='' tarball=$WORK/wrapper.tar.gz
    local want=${OPT[tarballchecksum],,}
    split_commas "${OPT[tarballurl]}"
    urls=("${LIST[@]}")
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

# The EXIT trap: reports an `exit` in the grid setup file as "grid broken",
# stops a running download and removes the work directory.
on_exit() {
    local status=$?
    if [ -n "$SOURCING" ]; then
        printf 'wrapper.sh: error: %s exited (exit %d)\n' "$SOURCING" "$status" >&2
        status=67
    fi
    if [ -n "$FETCHER" ]; then
        kill "$FETCHER" 2>/dev/null
        wait "$FETCHER" 2>/dev/null
    fi
    if [ -n "$WORK" ]; then
        cd / && rm -rf -- "$WORK"
    fi
    exit "$status"
}

on_signal() {  # name number
    if [ -n "$CHILD" ]; then
        log info "forwarding SIG$1 to stage two (pid $CHILD)"
        kill -s "$1" "$CHILD" 2>/dev/null
    else
        SOURCING=''  # stopped, not broken
        exit $((128 + $2))
    fi
}

set_traps() {
    trap 'on_signal TERM 15' TERM
    trap 'on_signal INT 2' INT
    trap 'on_signal HUP 1' HUP
    trap 'on_signal USR1 10' USR1
    trap 'on_signal USR2 12' USR2
    trap on_exit EXIT
}

# Sets REDACTED to the arguments with the values of secret-looking options
# hidden, in both forms: --name=VALUE and --name VALUE.
redact() {
    local arg name hide=0 out=()
    for arg in "$@"; do
        name=${arg%%=*}
        if [ "$hide" = 1 ]; then
            out+=('<redacted>')
            hide=0
        elif ! [[ ${name,,} =~ $SECRET_WORDS ]]; then
            out+=("$arg")
        elif [[ $arg == *=* ]]; then
            out+=("$name=<redacted>")
        else
            out+=("$arg")
            [[ $arg != -* ]] || hide=1
        fi
    done
    REDACTED=${out[*]}
}

run_stage_two() {
    local key args=() status
    for key in "${KEYS[@]}"; do
        if [ -n "${OPT[$key]:-}" ]; then args+=("--wrapper$key=${OPT[$key]}"); fi
    done
    redact "${args[@]}" "${PASSTHROUGH[@]}"
    log debug "stage two: $REDACTED"
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
    set_traps
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
