#!/usr/bin/env bash
# Installs TimescaleDB (Apache-licensed edition) for PostgreSQL 15 on Debian
# bookworm and runs it in a separate test cluster "15 tsdb" on 127.0.0.1:5433
# (trust auth, user postgres), leaving the machine's own cluster on 5432 as it is.
#
# Bookworm has no TimescaleDB package, so this builds Debian trixie's *source*
# package against bookworm's PostgreSQL 15 (see
# shared/reference/timescaledb-on-bookworm.md). The source comes from the same
# Debian mirror the system already uses (its URI is read from the system's apt
# sources); the system's apt configuration is not changed.
#
# Idempotent: skips the build when the extension is installed, skips creating
# the cluster when it exists, starts it if it is stopped, and keeps its
# settings set exactly once. Quiet on success apart from a one-line summary;
# on failure prints what failed. Needs root.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
KTXH_LOG_PREFIX=install-timescaledb
KTXH_QUIET=1
# shellcheck source=scripts/lib-backends.sh
. scripts/lib-backends.sh

PG_MAJOR=15
CLUSTER=tsdb
PORT=5433
PG_CONFIG=/usr/lib/postgresql/$PG_MAJOR/bin/pg_config
CONTROL=/usr/share/postgresql/$PG_MAJOR/extension/timescaledb.control
CONF=/etc/postgresql/$PG_MAJOR/$CLUSTER/postgresql.conf
# Debian's suite whose source package builds against bookworm's PostgreSQL 15.
SOURCE_SUITE=${KTXH_TIMESCALEDB_SOURCE_SUITE:-trixie}

[ "$(id -u)" -eq 0 ] || ktxh_die "must run as root"

# One run at a time (test.sh may be started twice). fd 9 is closed for the
# commands run through ktxh_run_quiet, so the started server does not keep it.
exec 9>/tmp/ktxh-install-timescaledb.lock
flock 9

started=$(date +%s)
action="already installed"

# --- 1. build and install the extension (skipped when installed) ---------------
# in_dir DIR CMD [ARGS...] : runs CMD in DIR (in a subshell).
in_dir() ( cd "$1" && shift && "$@" )

build_timescaledb() {
    # cmake + server headers (as in the reference); the rest is usually present.
    ktxh_ensure_apt_packages cmake "postgresql-server-dev-$PG_MAJOR" gcc make xz-utils libssl-dev

    local d uri
    d=$(mktemp -d /tmp/ktxh-timescaledb-build.XXXXXX)
    chmod 755 "$d" # let apt's _apt user write its downloads
    # shellcheck disable=SC2064 # expand $d now
    trap "rm -rf '$d'" EXIT

    uri=$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
    if [ -z "$uri" ]; then
        # one-line style sources as a fallback
        uri=$(awk '$1 == "deb" && $2 !~ /^\[/ { print $2; exit }' /etc/apt/sources.list 2>/dev/null || true)
    fi
    [ -n "$uri" ] || ktxh_die "cannot find the Debian mirror URI in /etc/apt/sources.list.d/debian.sources"

    printf 'deb-src %s %s main\n' "$uri" "$SOURCE_SUITE" >"$d/sources.list"
    mkdir -p "$d/lists/partial" "$d/cache/archives/partial"
    local -a A=(
        -o "Dir::Etc::sourcelist=$d/sources.list"
        -o Dir::Etc::sourceparts=/dev/null
        -o "Dir::State::Lists=$d/lists"
        -o "Dir::Cache=$d/cache"
    )
    ktxh_run_quiet "apt-get update of the $SOURCE_SUITE source index (private lists)" \
        apt-get "${A[@]}" update
    ktxh_run_quiet "download of the timescaledb source package ($SOURCE_SUITE)" \
        in_dir "$d" apt-get "${A[@]}" source --download-only timescaledb

    local orig
    orig=$(find "$d" -maxdepth 1 -name 'timescaledb_*.orig.tar.*' ! -name '*.asc' | head -n 1)
    [ -n "$orig" ] || ktxh_die "no timescaledb_*.orig.tar.* in the downloaded source package"
    ktxh_run_quiet "unpack $orig" tar -C "$d" -xf "$orig"

    local src
    src=$(find "$d" -mindepth 1 -maxdepth 1 -type d -name 'timescaledb-*' | head -n 1)
    [ -n "$src" ] || ktxh_die "unpacked source has no timescaledb-* folder"

    # Apache-only edition; no telemetry by default (this machine must not phone home).
    ktxh_run_quiet "configure timescaledb (cmake)" \
        in_dir "$src" ./bootstrap -DAPACHE_ONLY=1 -DREGRESS_CHECKS=OFF -DTAP_CHECKS=OFF \
        -DWARNINGS_AS_ERRORS=OFF -DSEND_TELEMETRY_DEFAULT=OFF -DPG_CONFIG="$PG_CONFIG"
    ktxh_run_quiet "build timescaledb" make -C "$src/build" -j"$(nproc)"
    ktxh_run_quiet "install timescaledb" make -C "$src/build" install

    rm -rf "$d"
    trap - EXIT
    [ -f "$CONTROL" ] || ktxh_die "build finished but $CONTROL is missing"
    action="built from $SOURCE_SUITE source"
}

if [ ! -f "$CONTROL" ] || ! compgen -G "/usr/lib/postgresql/$PG_MAJOR/lib/timescaledb*.so" >/dev/null; then
    build_timescaledb
fi

# --- 2. the test cluster "15 tsdb" on 5433 -------------------------------------
if ! ktxh_cluster_exists "$PG_MAJOR" "$CLUSTER"; then
    ktxh_run_quiet "create PostgreSQL cluster $PG_MAJOR $CLUSTER on port $PORT" \
        pg_createcluster "$PG_MAJOR" "$CLUSTER" --port "$PORT" -- --auth=trust
    action="$action; cluster created"
fi

# Settings of this throwaway test cluster, each set exactly once: every
# uncommented line for the key is removed and one `key = 'value'` line is
# appended, unless that line is already the only one.
need_restart=0
set_conf() {
    local key=$1 value=$2 re want
    re="^[[:space:]]*${key//./\\.}[[:space:]]*="
    want="$key = '$value'"
    if [ "$(grep -cE "$re" "$CONF" || true)" -ne 1 ] || ! grep -qxF "$want" "$CONF"; then
        ktxh_run_quiet "remove old $key lines from $CONF" sed -i -E "/$re/d" "$CONF"
        printf '%s\n' "$want" >>"$CONF" || ktxh_die "cannot write $CONF"
        need_restart=1
    fi
}
set_conf shared_preload_libraries timescaledb
# No telemetry: only the registries are reachable, and nothing should try others.
set_conf timescaledb.telemetry_level off
# Tests create a database each; every database with the extension has a
# scheduler background worker, so leave room for them.
set_conf max_worker_processes 32
set_conf timescaledb.max_background_workers 24
# Durability is not wanted in a test cluster; speed is (CREATE/DROP DATABASE).
set_conf fsync off
set_conf synchronous_commit off
set_conf full_page_writes off

port_conf=$(pg_conftool -s "$PG_MAJOR" "$CLUSTER" show port 2>/dev/null || true)
[ "$port_conf" = "$PORT" ] || ktxh_die "cluster $PG_MAJOR $CLUSTER exists but uses port '${port_conf}', not $PORT"

if [ "$need_restart" -eq 1 ] && ktxh_cluster_online "$PG_MAJOR" "$CLUSTER"; then
    ktxh_run_quiet "restart cluster $PG_MAJOR $CLUSTER to apply its settings" \
        pg_ctlcluster --skip-systemctl-redirect "$PG_MAJOR" "$CLUSTER" restart
fi
if ! ktxh_pg_ready "$PORT"; then
    ktxh_cluster_start "$PG_MAJOR" "$CLUSTER" "$PORT"
    action="$action; cluster started"
fi

# --- 3. verify -----------------------------------------------------------------
psql_tsdb() {
    PGOPTIONS='-c client_min_messages=error' \
        psql -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U postgres -d postgres "$@"
}
preload=$(psql_tsdb -c 'SHOW shared_preload_libraries' 2>&1) || ktxh_die "cannot query cluster on 5433: $preload"
case ",${preload// /}," in
    *,timescaledb,*) ;;
    *) ktxh_die "shared_preload_libraries on 5433 is '$preload', not timescaledb" ;;
esac
out=$(psql_tsdb -c 'CREATE EXTENSION IF NOT EXISTS timescaledb' 2>&1) ||
    ktxh_die "CREATE EXTENSION timescaledb on 5433: $out"
version=$(psql_tsdb -c "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'" 2>&1) ||
    ktxh_die "SELECT extversion on 5433: $version"
[ -n "$version" ] || ktxh_die "timescaledb is not in pg_extension on 5433 after CREATE EXTENSION"

[ -z "$KTXH_APT_INSTALLED" ] || action="$action; installed Debian packages: $KTXH_APT_INSTALLED"
ktxh_log "timescaledb $version ready on 127.0.0.1:$PORT (cluster $PG_MAJOR $CLUSTER; $action; $(($(date +%s) - started))s)"
