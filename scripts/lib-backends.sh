# shellcheck shell=bash
# Shared helpers for scripts/test.sh and scripts/install-timescaledb.sh.
# Source it; do not execute it. Needs root (Debian bookworm, PostgreSQL 15).

# Log prefix; callers may override before sourcing. KTXH_QUIET=1 silences
# progress lines (failures are always printed).
: "${KTXH_LOG_PREFIX:=ktxh}"
# Debian packages that ktxh_ensure_apt_packages installed in this run.
KTXH_APT_INSTALLED=${KTXH_APT_INSTALLED:-}

export DEBIAN_FRONTEND=noninteractive

ktxh_log() { printf '%s: %s\n' "$KTXH_LOG_PREFIX" "$*"; }
ktxh_die() { printf '%s: FAILED: %s\n' "$KTXH_LOG_PREFIX" "$*" >&2; exit 1; }

# ktxh_run_quiet DESCRIPTION CMD [ARGS...]
# Runs CMD with its output captured; prints nothing on success. On failure
# prints what failed and the last lines of the output, then exits 1.
# File descriptor 9 is reserved for the scripts' flock and is closed for CMD,
# so that a server started by CMD does not inherit (and hold) the lock.
ktxh_run_quiet() {
    local what=$1 log rc=0
    shift
    log=$(mktemp "${TMPDIR:-/tmp}/ktxh-step.XXXXXX")
    "$@" >"$log" 2>&1 9>&- || rc=$?
    if [ "$rc" -ne 0 ]; then
        {
            printf '%s: FAILED (exit %s): %s\n' "$KTXH_LOG_PREFIX" "$rc" "$what"
            printf '%s: command: %s\n' "$KTXH_LOG_PREFIX" "$*"
            printf '%s: --- last 60 lines of output ---\n' "$KTXH_LOG_PREFIX"
            tail -n 60 "$log"
            printf '%s: --- end of output ---\n' "$KTXH_LOG_PREFIX"
        } >&2
        rm -f "$log"
        exit 1
    fi
    rm -f "$log"
}

# ktxh_missing_apt_packages PKG... : prints the packages that are not installed.
ktxh_missing_apt_packages() {
    local p
    for p in "$@"; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
            printf '%s\n' "$p"
        fi
    done
}

# ktxh_ensure_apt_packages PKG... : installs what is missing; runs
# `apt-get update` only when something is missing. Quiet on success.
ktxh_ensure_apt_packages() {
    local missing
    missing=$(ktxh_missing_apt_packages "$@")
    [ -z "$missing" ] && return 0
    missing=$(printf '%s' "$missing" | tr '\n' ' ')
    KTXH_APT_INSTALLED="${KTXH_APT_INSTALLED:+$KTXH_APT_INSTALLED }$missing"
    [ -n "${KTXH_QUIET:-}" ] || ktxh_log "installing Debian packages: $missing"
    ktxh_run_quiet "apt-get update" apt-get update
    # shellcheck disable=SC2086 # word splitting of the package list is wanted
    ktxh_run_quiet "apt-get install $missing" \
        apt-get install -y --no-install-recommends $missing
}

# ktxh_pg_ready PORT : true when a PostgreSQL server answers on 127.0.0.1:PORT.
ktxh_pg_ready() { pg_isready -q -h 127.0.0.1 -p "$1" -U postgres -d postgres >/dev/null 2>&1; }

# ktxh_pg_wait PORT [SECONDS] : waits until the server on PORT answers.
ktxh_pg_wait() {
    local port=$1 limit=${2:-30} i=0
    while ! ktxh_pg_ready "$port"; do
        i=$((i + 1))
        [ "$i" -gt "$limit" ] && return 1
        sleep 1
    done
}

# ktxh_cluster_exists VERSION NAME
ktxh_cluster_exists() {
    pg_lsclusters -h 2>/dev/null | awk -v v="$1" -v n="$2" '$1 == v && $2 == n { f = 1 } END { exit !f }'
}

# ktxh_cluster_online VERSION NAME
ktxh_cluster_online() {
    pg_lsclusters -h 2>/dev/null | awk -v v="$1" -v n="$2" '$1 == v && $2 == n && $4 ~ /^online/ { f = 1 } END { exit !f }'
}

# ktxh_cluster_start VERSION NAME PORT : starts the cluster if it is not
# answering, then waits for it.
ktxh_cluster_start() {
    local v=$1 n=$2 port=$3
    if ! ktxh_pg_ready "$port"; then
        if ! ktxh_cluster_online "$v" "$n"; then
            ktxh_run_quiet "start PostgreSQL cluster $v $n" \
                pg_ctlcluster --skip-systemctl-redirect "$v" "$n" start
        fi
        ktxh_pg_wait "$port" 30 || ktxh_die "PostgreSQL cluster $v $n does not answer on 127.0.0.1:$port (see /var/log/postgresql/postgresql-$v-$n.log)"
    fi
}

# The machine's own PostgreSQL (cluster "15 main" on 5432).
ktxh_ensure_main_postgres() {
    if ! ktxh_pg_ready 5432; then
        ktxh_log "starting PostgreSQL 15 main on 5432"
        ktxh_run_quiet "start PostgreSQL cluster 15 main" \
            pg_ctlcluster --skip-systemctl-redirect 15 main start
        ktxh_pg_wait 5432 30 || ktxh_die "PostgreSQL 15 main does not answer on 127.0.0.1:5432 (see /var/log/postgresql/postgresql-15-main.log)"
    fi
}
