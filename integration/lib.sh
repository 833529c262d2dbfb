# shellcheck shell=bash
# integration/lib.sh: the shell helpers of the integration scripts (up, down, images/*, vm/*, and
# any other script below integration/). Source it, from bash, near the top:
#
#     . "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"          (from integration/up)
#     . "$(dirname -- "${BASH_SOURCE[0]}")/../lib.sh"       (from integration/vm/run)
#
# Messages start with the script's name below integration/ ("up: ", "vm/run: "), taken from $0.
#
#   say MESSAGE...              "NAME: MESSAGE" on stdout
#   die MESSAGE...              "NAME: error: MESSAGE" on stderr, then exit $DIE_STATUS (default 1;
#                               a script with documented statuses sets DIE_STATUS before it may die)
#   require_root                die unless run as root
#   wait_for SECONDS CMD...     run CMD (output discarded) once a second until it succeeds;
#                               false if it has not within SECONDS
#   is_installed PACKAGE        true if the Debian PACKAGE is installed
#   apt_install LOG PACKAGE...  install those of the Debian PACKAGEs that are missing, quietly
#                               (apt-get's output in LOG); if that fails, update the lists and try
#                               again; false if it still fails
#   pid_of PIDFILE EXE          print the pid PIDFILE holds if that process is alive and runs a
#                               program named EXE (a pid file can outlive its daemon, a pid be reused)
#   pid_alive PIDFILE EXE       true if pid_of would print a pid
#   drop_stale PIDFILE EXE      remove PIDFILE if it names no live EXE
#   stop_daemon PIDFILE EXE SECONDS
#                               SIGTERM to the EXE that PIDFILE names, if alive; SIGKILL if it is
#                               still there after SECONDS; says what it did

SCRIPT_NAME=$(realpath --relative-to="$(dirname -- "$(realpath -- "${BASH_SOURCE[0]}")")" -- "$0")

say() { echo "$SCRIPT_NAME: $*"; }

die() {
    echo "$SCRIPT_NAME: error: $*" >&2
    exit "${DIE_STATUS:-1}"
}

require_root() {
    [ "$(id -u)" = 0 ] || die "must run as root"
}

wait_for() {
    local seconds=$1 i
    shift
    for ((i = 0; i < seconds; i++)); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 1
    done
    return 1
}

is_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

apt_install() {
    local log=$1 package missing=()
    shift
    for package in "$@"; do
        is_installed "$package" || missing+=("$package")
    done
    [ ${#missing[@]} -gt 0 ] || return 0
    say "installing ${missing[*]}"
    local options=(-y -q -o DPkg::Lock::Timeout=600 -o Dpkg::Options::=--force-confdef
                   -o Dpkg::Options::=--force-confold --no-install-recommends)
    DEBIAN_FRONTEND=noninteractive apt-get install "${options[@]}" "${missing[@]}" >"$log" 2>&1 && return 0
    apt-get -q -o DPkg::Lock::Timeout=600 update >>"$log" 2>&1 &&
        DEBIAN_FRONTEND=noninteractive apt-get install "${options[@]}" "${missing[@]}" >>"$log" 2>&1
}

pid_of() {
    local pid exe
    [ -s "$1" ] || return 1
    pid=$(tr -dc 0-9 <"$1")
    [ -n "$pid" ] || return 1
    exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
    [ "$(basename -- "${exe% (deleted)}")" = "$2" ] || return 1
    echo "$pid"
}

pid_alive() {
    pid_of "$1" "$2" >/dev/null
}

drop_stale() {
    if [ -e "$1" ] && ! pid_alive "$1" "$2"; then rm -f -- "$1"; fi
}

stop_daemon() {
    local pidfile=$1 exe=$2 seconds=$3 pid i
    if ! pid=$(pid_of "$pidfile" "$exe"); then
        say "$exe: not running"
        return 0
    fi
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < seconds * 2; i++)); do
        kill -0 "$pid" 2>/dev/null || { say "$exe: stopped (pid $pid)"; return 0; }
        sleep 0.5
    done
    say "$exe: still running after ${seconds}s, sending SIGKILL to $pid"
    kill -KILL "$pid" 2>/dev/null || true
    sleep 0.5
}

# Daemons a script starts outlive it: they must not keep what its caller left open, such as the
# descriptor of `flock LOCK integration/up`, which would then stay locked for as long as they run.
close_inherited_descriptors() {
    local fd
    for fd in "/proc/$$/fd/"*; do
        fd=${fd##*/}
        if [ "$fd" -gt 2 ] && [ "$fd" != 255 ]; then  # 255: the script bash is reading
            eval "exec $fd>&-" 2>/dev/null || true
        fi
    done
}
