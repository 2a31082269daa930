#!/bin/bash
# Pilot wrapper, stage one: check the node, set up the grid environment,
# fetch the stage-two tarball and run its wrapper.py with the options.
# Needs only bash (4.4 or later) and coreutils until it has checked for the rest.
# Usage and options: docs/wrapper.md, or wrapper.sh --help.
# Its functions are named _w_*: the special command's first word and the grid
# setup file's functions cannot hit them by chance.
#
# Exit codes (the same table is in docs/wrapper.md):
#   0      the payload succeeded
#   64     bad option: missing, repeated, malformed, unknown grid or log level,
#          unbalanced quotes, bad download setting (one line on stderr names it)
#   65     a required program is missing (the message names it), or bash < 4.4
#   66     the declared grid's setup file is missing, or OSG_GRID unset ("no grid")
#   67     the grid setup file failed or exited when sourced ("grid broken")
#   68     the special command failed
#   69     no private work directory could be made
#   70     the stage-two tarball could not be fetched from any mirror
#   71     a mirror served a tarball whose sha256 did not match, and none matched
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
SHOWN=''
LOGLEVEL=info
JOBDIR=$PWD  # relative paths in options are relative to it, not to WORK
WORK=''
CHILD=''
FETCHER=''
SPECIAL_PID=''
SOURCING=''
PAYLOAD_GROUP=''  # the payload's process group while stage one stops it
PAYLOAD_SIGNALS=()  # signals for it, received meanwhile
EXITING=''

_w_log() {  # level message
    if [ "$1" = debug ] && [ "$LOGLEVEL" != debug ]; then
        return 0
    fi
    _w_mask_urls "$2"
    printf '%(%Y-%m-%dT%H:%M:%S%z)T wrapper.sh %s: %s\n' -1 "${1^^}" "$SHOWN" >&2
}

_w_die() {  # exit-code message: one line, even when it quotes a value with a newline
    _w_mask_urls "$2"
    printf 'wrapper.sh: error: %s\n' "${SHOWN//$'\n'/\\n}" >&2
    exit "$1"
}

# Sets SHOWN to $1 with the query string of each URL in it (from `?` to the next
# `,`, `#` or space) shown as `?<redacted>`, and its user:password@ as
# `<redacted>@`: monitor and mirror URLs may carry tokens there. As
# wrapperlib/log.py does.
_w_mask_urls() {
    local text=$1 tail='' re='^(.*://[^?#,[:space:]]*)\?[^#,[:space:]]*(.*)$'
    while [[ $text =~ $re ]]; do  # the last URL's query first
        text=${BASH_REMATCH[1]}
        tail="?<redacted>${BASH_REMATCH[2]}$tail"
    done
    text=$text$tail tail='' re='^(.*://)[^/?#@,[:space:]]*@(.*)$'
    while [[ $text =~ $re ]]; do
        text=${BASH_REMATCH[1]}
        tail="<redacted>@${BASH_REMATCH[2]}$tail"
    done
    SHOWN=$text$tail
}

# Maps an option name, including the older --panda* and APF spellings, to its
# canonical key in KEY; empty for options that belong to stage two only.
_w_option_key() {
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
_w_split_words() {
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
_w_split_commas() {
    local rest=${1:+$1,}
    LIST=()
    while [ -n "$rest" ]; do
        LIST+=("${rest%%,*}")
        rest=${rest#*,}
    done
}

_w_parse_options() {
    local arg name
    for arg in "$@"; do
        name=${arg%%=*}
        _w_option_key "$name"
        if [ -z "$KEY" ]; then
            PASSTHROUGH+=("$arg")
            continue
        fi
        [[ $arg == *=* ]] || _w_die 64 "$name: expects $name=VALUE"
        [ -z "${GIVEN[$KEY]:-}" ] || _w_die 64 "$name: given more than once (also as ${GIVEN[$KEY]})"
        GIVEN[$KEY]=$name
        # An empty value counts as not given: submit templates often leave them blank.
        if [ -n "${arg#*=}" ]; then OPT[$KEY]=${arg#*=}; fi
    done
}

# Option name as the user spelled it, for error messages.
_w_spelled() {
    printf '%s' "${GIVEN[$1]:---wrapper$1}"
}

_w_check_format() {  # key regex description
    local value=${OPT[$1]:-}
    if [ -n "$value" ] && ! [[ $value =~ $2 ]]; then
        _w_die 64 "$(_w_spelled "$1"): $3"
    fi
}

_w_check_urls() {  # key
    local url
    local re='^https?://([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?(/[^[:space:][:cntrl:]]*)?$'
    _w_split_commas "${OPT[$1]:-}"
    for url in "${LIST[@]}"; do
        [[ $url =~ $re ]] || _w_die 64 "$(_w_spelled "$1"): not an http(s) URL: '$url'"
    done
}

# The server URL is one URL: stage two appends <pilottype>.tar.gz to it.
_w_check_url() {  # key
    _w_check_urls "$1"
    [ "${#LIST[@]}" -le 1 ] || _w_die 64 "$(_w_spelled "$1"): expects one URL, not a comma list"
}

# TYPE[:WEIGHT],... as stage two reads it: `-` alone means none, is no type
# in a list, and the weights must not all be zero.
_w_check_pilottypes() {
    local item weighted=0
    _w_check_format pilottype '^[A-Za-z0-9_.+-]+(:[0-9]+)?(,[A-Za-z0-9_.+-]+(:[0-9]+)?)*$' \
        "expects TYPE[:WEIGHT][,TYPE[:WEIGHT]...]"
    [ -n "${OPT[pilottype]:-}" ] && [ "${OPT[pilottype]}" != - ] || return 0
    _w_split_commas "${OPT[pilottype]}"
    for item in "${LIST[@]}"; do
        [ "${item%%:*}" != - ] || _w_die 64 "$(_w_spelled pilottype): '-' (no pilot type) cannot be in a list"
        if [[ $item != *:* || ${item#*:} == *[1-9]* ]]; then weighted=1; fi
    done
    [ "$weighted" = 1 ] || _w_die 64 "$(_w_spelled pilottype): weights add up to zero"
}

# Download settings are decimal (08 is 8, not bad octal); a time limit of 0
# would mean none.
_w_check_download_settings() {
    local timeout=${WRAPPER_DOWNLOAD_TIMEOUT:-120} retries=${WRAPPER_DOWNLOAD_RETRIES:-2}
    if ! [[ $timeout =~ ^[0-9]{1,9}$ ]] || [ "$((10#$timeout))" -eq 0 ]; then
        _w_die 64 "WRAPPER_DOWNLOAD_TIMEOUT: expects a whole number of seconds, at least 1"
    fi
    [[ $retries =~ ^[0-9]{1,9}$ ]] || _w_die 64 "WRAPPER_DOWNLOAD_RETRIES: expects a whole number of tries"
}

_w_validate_options() {
    local key
    for key in queue grid tarballurl tarballchecksum; do
        [ -n "${OPT[$key]:-}" ] || _w_die 64 "--wrapper$key: required option missing"
    done
    if [ -z "${OPT[site]:-}" ]; then OPT[site]=${OPT[queue]}; fi
    local name='^[A-Za-z0-9_.@+:/-]+$' word='^[A-Za-z0-9_.-]+$'
    for key in site queue batchqueue vo; do
        _w_check_format "$key" "$name" "invalid name (allowed: letters, digits, _ . @ + : / -)"
    done
    _w_check_format purpose "$word" "invalid value (allowed: letters, digits, _ . -)"
    _w_check_format mode "$word" "invalid value (allowed: letters, digits, _ . -)"
    case ${OPT[grid],,} in
        osg | egee | glite | local | cloud) ;;
        *)
            _w_die 64 "$(_w_spelled grid): unknown grid flavour '${OPT[grid]}' (expected OSG, EGEE, gLite, local or cloud)"
            ;;
    esac
    case ${OPT[loglevel]:=info} in
        debug | info) LOGLEVEL=${OPT[loglevel]} ;;
        *) _w_die 64 "$(_w_spelled loglevel): unknown log level '${OPT[loglevel]}' (expected debug or info)" ;;
    esac
    _w_check_format tarballchecksum '^[0-9A-Fa-f]{64}$' "expects a sha256 as 64 hex digits"
    _w_check_format plugin '^[a-z][a-z0-9_]*$' "invalid plugin name"
    _w_check_pilottypes
    _w_check_format pilotcoderatio '^[0-9]+(,[0-9]+)*$' "expects WEIGHT[,WEIGHT...]"
    _w_check_urls tarballurl
    _w_check_url serverurl
    _w_check_urls pilotcodeurl
    if [ -n "${OPT[specialcmd]:-}" ]; then
        _w_split_words "${OPT[specialcmd]}" ||
            _w_die 64 "$(_w_spelled specialcmd): unbalanced quote or trailing backslash"
        SPECIAL=("${WORDS[@]}")
    fi
    _w_check_download_settings
}

# Sources the grid flavour's setup file: OSG $OSG_GRID/setup.sh, EGEE/gLite
# ${GLITE_LOCATION:-/opt/glite}/etc/profile.d/grid-env.sh, local/cloud none.
_w_grid_setup() {
    local setup grid=${OPT[grid]}
    case ${grid,,} in
        osg)
            [ -n "${OSG_GRID:-}" ] || _w_die 66 "grid $grid: OSG_GRID is not set, no OSG setup to source"
            setup=$OSG_GRID/setup.sh
            ;;
        egee | glite) setup=${GLITE_LOCATION:-/opt/glite}/etc/profile.d/grid-env.sh ;;
        *) return 0 ;;
    esac
    [ -r "$setup" ] || _w_die 66 "grid $grid: setup file $setup not found"
    _w_log info "grid $grid: sourcing $setup"
    # The file's shell state (set -e, set -u, IFS=:, shopt ...) is undone after
    # it: the wrapper relies on bash's defaults (under set -e, a signal
    # interrupting `wait` would end it at once). Locals named _w_* so that the
    # file's own variables do not overwrite them.
    local _w_status=0 _w_set _w_shopt _w_ifs=$IFS _w_where="grid $grid: setup file $setup"
    _w_set=$(set +o)
    _w_shopt=$(shopt -p)
    # SOURCING makes _w_on_exit report an `exit` in the file as "grid broken".
    SOURCING=$_w_where
    # shellcheck source=/dev/null
    . "$setup" || _w_status=$?
    SOURCING=''
    eval "$_w_set"
    eval "$_w_shopt"
    IFS=$_w_ifs
    [ "$_w_status" -eq 0 ] || _w_die 67 "$_w_where failed (exit $_w_status)"
    _w_set_traps  # the file may have set its own
}

# The special command is one command line split by _w_split_words and run
# without eval: no pipes, redirections or expansions. It runs in a subshell,
# so that neither `exit` nor an assignment changes the wrapper's own state;
# the environment it leaves is then taken over, so that a function such as
# `module load X` (from the grid setup) shapes what stage two inherits.
# That subshell is a job in a process group of its own (set -m), so that a
# signal stops all it started: _w_on_exit sends SPECIAL_PID a TERM, which
# it passes on to the group.
_w_run_special() {
    [ "${#SPECIAL[@]}" -gt 0 ] || return 0
    _w_redact "${SPECIAL[@]}"
    _w_log info "running special command: $REDACTED"
    local status=0 stdout records_fd records=()
    exec {stdout}>&1
    exec {records_fd}< <(
        job=''
        trap '[ -z "$job" ] || kill -TERM -- "-$job" 2>/dev/null; exit 143' TERM
        set -m
        { "${SPECIAL[@]}" >&"$stdout" {stdout}>&- && _w_give_environment; } &
        job=$!
        wait "$job"
    )
    SPECIAL_PID=$!
    mapfile -d '' -u "$records_fd" records
    exec {records_fd}<&-
    wait "$SPECIAL_PID" || status=$?
    SPECIAL_PID=''
    exec {stdout}>&-
    [ "$status" -eq 0 ] || _w_die 68 "$(_w_spelled specialcmd) failed (exit $status)"
    # None after an `exit 0`: the environment is not known then.
    [ "${#records[@]}" -eq 0 ] || _w_take_environment "${records[@]}"
}

# In the special command's subshell: NAME VALUE of each exported variable,
# NUL-terminated.
_w_give_environment() {
    local name
    for name in $(compgen -e); do
        printf '%s\0%s\0' "$name" "${!name}"
    done
}

# Makes this shell's environment the special command's: new and changed
# variables exported, those it unset removed. The wrapper's own variables,
# which it never exports, are left alone.
_w_take_environment() {  # NAME VALUE ...
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
_w_check_programs() {
    local missing=() p needed=(python3 tar gzip sha256sum mktemp rm mkdir)
    if command -v curl >/dev/null; then
        DOWNLOADER=curl
    elif command -v wget >/dev/null; then
        DOWNLOADER=wget
        needed+=(timeout sleep)  # _w_fetch times and spaces wget's tries with them
    else
        missing+=("curl or wget")
    fi
    for p in "${needed[@]}"; do
        command -v "$p" >/dev/null || missing+=("$p")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        local list
        printf -v list '%s, ' "${missing[@]}"
        _w_die 65 "missing required program(s): ${list%, }"
    fi
}

# Downloads with a time limit per try and retries. curl does both itself.
# wget's --timeout limits idle time only and it does not retry server errors,
# so each of its tries runs under timeout(1) and is retried here as curl
# would: a time-out, a network error (a refused connection too) or HTTP 408,
# 429, 500, 502, 503, 504, after 1 s, then twice as long each time.
_w_fetch() {  # url destination
    local timeout=$((10#${WRAPPER_DOWNLOAD_TIMEOUT:-120})) retries=$((10#${WRAPPER_DOWNLOAD_RETRIES:-2}))
    if [ "$DOWNLOADER" = curl ]; then
        curl --fail --silent --show-error --location --globoff --proto =http,https --proto-redir =http,https \
            --connect-timeout $((timeout < 10 ? timeout : 10)) --max-time "$timeout" \
            --retry "$retries" --retry-connrefused --output "$2" "$1" &
        _w_wait_fetcher
        return
    fi
    local try=0 pause=1 status
    while :; do
        timeout "$timeout" wget --quiet --server-response --timeout="$timeout" --tries=1 \
            --output-document="$2" "$1" 2>"$WORK/wget.log" &
        status=0
        _w_wait_fetcher || status=$?
        if [ "$status" -eq 0 ] || [ "$try" -ge "$retries" ] || ! _w_transient "$status"; then
            return "$status"
        fi
        try=$((try + 1))
        sleep "$pause" &
        _w_wait_fetcher
        pause=$((pause * 2))
    done
}

# Waits for the downloader (or its pause) just started in the background: so
# a signal's trap runs at once rather than when it ends; _w_on_exit stops it.
_w_wait_fetcher() {
    FETCHER=$!
    local status=0
    wait "$FETCHER" || status=$?
    FETCHER=''
    return "$status"
}

# Whether a failed wget try is worth another: a time-out (124, timeout's), a
# network error (4), or a server error (8) whose last HTTP status curl retries.
_w_transient() {  # status
    local line code=''
    case $1 in
        124 | 4) return 0 ;;
        8) ;;
        *) return 1 ;;
    esac
    while IFS= read -r line; do
        if [[ $line =~ ^\ *HTTP/[0-9.]+\ ([0-9]{3}) ]]; then code=${BASH_REMATCH[1]}; fi
    done <"$WORK/wget.log"
    case $code in
        408 | 429 | 500 | 502 | 503 | 504) return 0 ;;
    esac
    return 1
}

# Tries each mirror in turn; the first whose tarball has the right sha256 wins.
_w_download_stage_two() {
    local url urls sum mismatch='' tarball=$WORK/wrapper.tar.gz
    local want=${OPT[tarballchecksum],,}
    _w_split_commas "${OPT[tarballurl]}"
    urls=("${LIST[@]}")
    for url in "${urls[@]}"; do
        _w_log info "fetching $url"
        if ! _w_fetch "$url" "$tarball"; then
            _w_log info "mirror failed: $url"
            continue
        fi
        sum=$(sha256sum "$tarball")
        if [ "${sum%% *}" = "$want" ]; then
            return 0
        fi
        # The URL ends at a space: _w_mask_urls would take punctuation for its query.
        _w_log info "checksum mismatch from $url (got ${sum%% *}, want $want)"
        mismatch=$url
    done
    [ -z "$mismatch" ] || _w_die 71 "stage-two tarball checksum mismatch, last from $mismatch"
    _w_die 70 "stage-two tarball unavailable from every mirror: ${OPT[tarballurl]}"
}

_w_unpack_stage_two() {
    if ! mkdir "$WORK/stage2" || ! tar -xzf "$WORK/wrapper.tar.gz" -C "$WORK/stage2" --no-same-owner ||
        [ ! -f "$WORK/stage2/wrapper.py" ]; then
        _w_die 72 "stage-two tarball did not unpack or has no wrapper.py"
    fi
}

# Whether a process of group $1 runs. Zombies do not count: the payload's are
# init's to reap once stage two is gone, which some containers' init is slow to do.
_w_group_alive() {  # pgid
    local stat line rest
    kill -0 -- "-$1" 2>/dev/null || return 1
    for stat in /proc/[0-9]*/stat; do
        { read -r line <"$stat"; } 2>/dev/null || continue  # gone meanwhile
        rest=${line##*) }  # state ppid pgrp ...: the name before may hold anything
        [[ $rest =~ ^([A-Za-z])\ -?[0-9]+\ ([0-9]+)\  ]] || continue
        [ "${BASH_REMATCH[2]}" != "$1" ] || [ "${BASH_REMATCH[1]}" = Z ] || return 0
    done
    return 1
}

# Stage two, killed (the OOM killer, a batch system ending only the top process)
# while its payload ran, leaves that payload's process group, in a session of its
# own, running. Stage two records "PGID STARTTIME GRACE" in the file while the
# payload runs (and removes it once the group is gone): this stops that group as
# stage two would, SIGTERM and SIGKILL after its --wrapperkillgrace. The group is
# the recorded one if its leader still has the recorded start time (a later
# process given the pid has another), or, the leader gone, while the group has
# members (its number is not given to a new process before the group is empty).
_w_stop_payload() {  # group-file
    local pgid start grace line fields tries name
    { read -r pgid start grace <"$1"; } 2>/dev/null || return 0
    [[ "$pgid $start $grace" =~ ^[1-9][0-9]{0,9}\ [0-9]{1,20}\ [0-9]{1,9}$ ]] || return 0
    if { read -r line <"/proc/$pgid/stat"; } 2>/dev/null; then
        read -ra fields <<<"${line##*) }"
        [ "${fields[19]}" = "$start" ] || return 0
    fi
    _w_group_alive "$pgid" || return 0
    PAYLOAD_GROUP=$pgid
    _w_log warning "stage two is gone but its payload's process group $pgid is running: SIGTERM, SIGKILL after ${grace}s"
    kill -TERM -- "-$pgid" 2>/dev/null
    for ((tries = grace * 10; tries > 0; tries--)); do
        for name in "${PAYLOAD_SIGNALS[@]}"; do
            _w_log info "forwarding SIG$name to the payload's process group $pgid"
            kill -s "$name" -- "-$pgid" 2>/dev/null
        done
        PAYLOAD_SIGNALS=()
        _w_group_alive "$pgid" || break
        sleep 0.1
    done
    if _w_group_alive "$pgid"; then
        _w_log error "payload's process group $pgid still running ${grace}s after SIGTERM: killing it"
        kill -KILL -- "-$pgid" 2>/dev/null
    fi
    PAYLOAD_GROUP=''
}

# The EXIT trap: reports an `exit` in the grid setup file as "grid broken",
# stops a running special command or download, or the payload of a killed stage
# two, and removes the work directory.
_w_on_exit() {
    local status=$?
    EXITING=1
    if [ -n "$SOURCING" ]; then
        printf 'wrapper.sh: error: %s exited (exit %d)\n' "$SOURCING" "$status" >&2
        status=67
    fi
    if [ -n "$SPECIAL_PID" ]; then
        kill -TERM "$SPECIAL_PID" 2>/dev/null
        wait "$SPECIAL_PID" 2>/dev/null
    fi
    if [ -n "$FETCHER" ]; then
        kill "$FETCHER" 2>/dev/null
        wait "$FETCHER" 2>/dev/null
    fi
    if [ -n "$WORK" ]; then _w_stop_payload "$WORK/.payload.pgid"; fi
    if [ -n "$WORK" ] && cd /; then
        # The payload may leave read-only directories (Go's module cache, a pilot tarball's modes).
        rm -rf -- "$WORK" 2>/dev/null || { chmod -R u+rwX -- "$WORK" && rm -rf -- "$WORK"; } 2>/dev/null ||
            _w_log warning "cannot remove the work directory $WORK"
    fi
    exit "$status"
}

_w_on_signal() {  # name number
    if [ -n "$CHILD" ]; then
        _w_log info "forwarding SIG$1 to stage two (pid $CHILD)"
        kill -s "$1" "$CHILD" 2>/dev/null
    elif [ -n "$PAYLOAD_GROUP" ]; then  # _w_stop_payload forwards it: here stderr may be /dev/null
        PAYLOAD_SIGNALS+=("$1")
    elif [ -z "$EXITING" ]; then  # an exit in the EXIT trap would cut its cleanup short
        SOURCING=''  # stopped, not broken
        exit $((128 + $2))
    fi
}

_w_set_traps() {
    trap '_w_on_signal TERM 15' TERM
    trap '_w_on_signal INT 2' INT
    trap '_w_on_signal HUP 1' HUP
    trap '_w_on_signal USR1 10' USR1
    trap '_w_on_signal USR2 12' USR2
    trap _w_on_exit EXIT
}

# Sets REDACTED to the arguments with the values of secret-looking options
# hidden, in both forms: --name=VALUE and --name VALUE.
_w_redact() {
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

_w_run_stage_two() {
    local key special args=() shown=() status again
    _w_redact "${SPECIAL[@]}"  # the special command's own secrets hidden, as _w_run_special logs it
    special=$REDACTED
    for key in "${KEYS[@]}"; do
        [ -n "${OPT[$key]:-}" ] || continue
        args+=("--wrapper$key=${OPT[$key]}")
        if [ "$key" = specialcmd ]; then shown+=("--wrapper$key=$special"); else shown+=("${args[-1]}"); fi
    done
    _w_redact "${shown[@]}" "${PASSTHROUGH[@]}"
    _w_log debug "stage two: $REDACTED"
    cd "$WORK" || _w_die 69 "cannot enter $WORK"
    # -E -S: stage two uses only the standard library, so skip PYTHON* and
    # site-packages (faster, and immune to a node's broken site setup).
    # WRAPPER_JOBDIR: stage two resolves relative paths in options against it.
    # WRAPPER_PAYLOAD_GROUP_FILE: where it records the payload's group (_w_stop_payload).
    WRAPPER_JOBDIR=$JOBDIR WRAPPER_PAYLOAD_GROUP_FILE=$WORK/.payload.pgid \
        python3 -E -S "$WORK/stage2/wrapper.py" "${args[@]}" "${PASSTHROUGH[@]}" &
    CHILD=$!
    while :; do
        wait "$CHILD"
        status=$?
        # Above 128 is either the child's death by signal or our own trap
        # interrupting wait; only a child still running means the latter.
        if [ "$status" -le 128 ]; then
            break
        elif ! kill -0 "$CHILD" 2>/dev/null; then
            # It ended while the trap ran: bash kept its own status for one more wait (127: none kept).
            wait "$CHILD"
            again=$?
            [ "$again" -eq 127 ] || status=$again
            break
        fi
    done
    CHILD=''
    _w_log info "stage two exited with $status"
    return "$status"
}

_w_main() {
    # One argument with whitespace is a whole argument string, as HTCondor
    # passes `arguments = "..."` to some wrappers: split it safely.
    if [ "$#" -eq 1 ] && [[ $1 == *[[:space:]]* ]]; then
        _w_split_words "$1" || _w_die 64 "argument string: unbalanced quote or trailing backslash"
        set -- "${WORDS[@]}"
    fi
    # Help only when it is all there is: elsewhere -h may be the payload's (-h, -hv, --opt -h).
    if [ "$#" -eq 1 ] && [[ $1 == -h || $1 == --help ]]; then
        printf '%s\n' "$USAGE"
        exit 0
    fi
    _w_parse_options "$@"
    _w_validate_options
    _w_set_traps
    _w_log info "site ${OPT[site]} queue ${OPT[queue]} grid ${OPT[grid]}"
    _w_grid_setup
    _w_run_special
    _w_check_programs
    # A relative TMPDIR is the job directory's: stage two and the payload run elsewhere.
    if [ -n "${TMPDIR:-}" ] && [[ $TMPDIR != /* ]]; then export TMPDIR=$JOBDIR/$TMPDIR; fi
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/wrapper.XXXXXXXX") ||
        _w_die 69 "cannot create a work directory in ${TMPDIR:-/tmp}"
    _w_log debug "work directory $WORK"
    _w_download_stage_two
    _w_unpack_stage_two
    _w_run_stage_two
}

_w_main "$@"
