#!/usr/bin/env bash
# The project's test command (README.md: `scripts/test.sh`; CI runs it through .ci/run).
#
# Works on a fresh machine of the project's kind (Debian bookworm, root,
# PostgreSQL 15 on 5432) and is fast where everything is already installed:
#   1. makes sure the machine's PostgreSQL 15 "main" answers on 127.0.0.1:5432;
#   2. runs scripts/install-timescaledb.sh (TimescaleDB cluster "15 tsdb" on 5433);
#   3. exports the test backends' admin URLs (tests create and drop their own
#      uniquely named databases) and requires every backend;
#   4. runs the setup hooks below (each acts only when its input file exists);
#   5. cargo fmt --check, cargo clippy -D warnings, cargo deny check and cargo audit
#      (deny.toml), cargo test (output unfiltered), the fuzz corpora replayed.
# Exits non-zero on any failure.
#
#   scripts/test.sh               everything
#   scripts/test.sh --setup-only  steps 1-4 only (install what the tests need)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
KTXH_LOG_PREFIX=test.sh
# shellcheck source=scripts/lib-backends.sh
. scripts/lib-backends.sh

SETUP_ONLY=0
case "${1:-}" in
    "") ;;
    --setup-only) SETUP_ONLY=1 ;;
    -h | --help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) ktxh_die "unknown argument '$1' (try --help)" ;;
esac

# Name of the step in progress, reported if the script fails.
STEP="start"
trap 'rc=$?; if [ "$rc" -ne 0 ]; then printf "%s: FAILED (exit %s) during: %s\n" "$KTXH_LOG_PREFIX" "$rc" "$STEP" >&2; fi' EXIT

step() { STEP=$1; printf '\n==> %s\n' "$1"; }

# ------------------------------------------------------------------------------
# Backends
# ------------------------------------------------------------------------------
setup_backends() {
    STEP="PostgreSQL 15 main on 5432"
    ktxh_ensure_main_postgres
    STEP="scripts/install-timescaledb.sh"
    scripts/install-timescaledb.sh

    # Admin URLs: the tests create uniquely named databases from these and drop
    # them afterwards. With REQUIRE set, a missing backend fails instead of skipping.
    export KTXH_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres
    export KTXH_TEST_TIMESCALE_URL=postgres://postgres@127.0.0.1:5433/postgres
    export KTXH_TEST_REQUIRE_ALL_BACKENDS=1

    # Databases left behind by an interrupted earlier run.
    local port db
    for port in 5432 5433; do
        for db in $(psql -h 127.0.0.1 -p "$port" -U postgres -Atc \
            "SELECT datname FROM pg_database WHERE datname LIKE 'ktxh\_test\_%'"); do
            psql -h 127.0.0.1 -p "$port" -U postgres -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null
        done
    done
}

# ------------------------------------------------------------------------------
# Setup hooks. Each one acts only when its input file exists, so they cost
# nothing until the project needs them. To add one: write a function here and
# append its name to SETUP_HOOKS.
# ------------------------------------------------------------------------------

# files_hash FILE... : one sha256 over the files that exist (for "reinstall
# only when the inputs changed" stamps).
files_hash() {
    local f
    for f in "$@"; do
        if [ -f "$f" ]; then printf '%s\n' "${f##*/}"; cat "$f"; fi
    done | sha256sum | cut -d' ' -f1
}

# Browser tests: Debian's chromium + chromium-driver, and the npm packages of
# tests/browser/package.json (plus playwright-core, which never downloads a
# browser of its own) in tests/browser/node_modules.
# Exports KTXH_TEST_CHROMIUM, KTXH_TEST_CHROMEDRIVER, KTXH_TEST_BROWSER_DIR.
setup_browser_tools() {
    local dir=$ROOT/tests/browser
    [ -f "$dir/package.json" ] || return 0
    STEP="browser tools (chromium, chromium-driver, npm in tests/browser)"

    ktxh_ensure_apt_packages chromium chromium-driver
    command -v npm >/dev/null 2>&1 || ktxh_ensure_apt_packages nodejs npm

    # Reinstall only when package.json / package-lock.json changed.
    local stamp=$dir/node_modules/.ktxh-installed want
    want=$(files_hash "$dir/package.json" "$dir/package-lock.json")
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ] || [ ! -d "$dir/node_modules/playwright-core" ]; then
        ktxh_log "installing npm packages in tests/browser"
        export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
        if [ -f "$dir/package-lock.json" ]; then
            ktxh_run_quiet "npm ci in tests/browser" \
                npm --prefix "$dir" ci --no-audit --no-fund
        else
            # no lock file: install without writing one into the work tree
            ktxh_run_quiet "npm install in tests/browser" \
                npm --prefix "$dir" install --no-audit --no-fund --no-package-lock
        fi
        if [ ! -d "$dir/node_modules/playwright-core" ]; then
            ktxh_run_quiet "npm install playwright-core in tests/browser" \
                npm --prefix "$dir" install --no-audit --no-fund --no-save --no-package-lock playwright-core
        fi
        printf '%s\n' "$want" >"$stamp"
    fi

    export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
    export KTXH_TEST_CHROMIUM=/usr/bin/chromium
    export KTXH_TEST_CHROMEDRIVER=/usr/bin/chromedriver
    export KTXH_TEST_BROWSER_DIR=$dir
}

# Python tools: a venv in target/test-venv with tests/requirements.txt installed
# (reinstalled only when the file changes); its bin/ goes first on PATH.
# Exports KTXH_TEST_PYTHON and VIRTUAL_ENV.
setup_python_tools() {
    local req=$ROOT/tests/requirements.txt
    [ -f "$req" ] || return 0
    STEP="python tools (target/test-venv from tests/requirements.txt)"

    local venv=$ROOT/target/test-venv
    local stamp=$venv/.ktxh-requirements.sha256 want
    if [ ! -x "$venv/bin/python" ]; then
        ktxh_log "creating the Python venv target/test-venv"
        mkdir -p "$ROOT/target"
        if ! python3 -m venv "$venv" >/dev/null 2>&1; then
            # fall back to Debian's Python with its venv module
            rm -rf "$venv"
            ktxh_ensure_apt_packages python3 python3-venv
            ktxh_run_quiet "create venv target/test-venv" /usr/bin/python3 -m venv "$venv"
        fi
    fi
    want=$(files_hash "$req")
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
        ktxh_log "installing tests/requirements.txt into target/test-venv"
        ktxh_run_quiet "pip install -r tests/requirements.txt" \
            "$venv/bin/python" -m pip install --disable-pip-version-check --no-input -r "$req"
        printf '%s\n' "$want" >"$stamp"
    fi

    export VIRTUAL_ENV=$venv
    export PATH=$venv/bin:$PATH
    export KTXH_TEST_PYTHON=$venv/bin/python
}

# Alertmanager for the delivery tests (tests/delivery.rs): Debian's
# prometheus-alertmanager, started by the tests themselves (never as a service).
# Exports KTXH_TEST_ALERTMANAGER.
setup_alertmanager() {
    STEP="alertmanager (Debian's prometheus-alertmanager)"
    if ! command -v prometheus-alertmanager >/dev/null 2>&1; then
        ktxh_ensure_apt_packages prometheus-alertmanager
    fi
    export KTXH_TEST_ALERTMANAGER=/usr/bin/prometheus-alertmanager
}

# promtool for the observability tests (tests/api/observability.rs): Debian's
# prometheus package (its service is never started; the tests only run promtool).
# Exports KTXH_TEST_PROMTOOL.
setup_promtool() {
    [ -d "$ROOT/dashboards/prometheus" ] || return 0
    STEP="promtool (Debian's prometheus)"
    if ! command -v promtool >/dev/null 2>&1; then
        ktxh_ensure_apt_packages prometheus
    fi
    KTXH_TEST_PROMTOOL=$(command -v promtool)
    export KTXH_TEST_PROMTOOL
}

# nginx for the reverse-proxy test (tests/proxy.rs): Debian's nginx-light, started by the test
# itself as a non-root process on config/nginx/ktxh.conf (never as a service).
# Exports KTXH_TEST_NGINX.
setup_nginx() {
    [ -f "$ROOT/config/nginx/ktxh.conf" ] || return 0
    STEP="nginx (Debian's nginx-light)"
    if [ ! -x /usr/sbin/nginx ]; then
        ktxh_ensure_apt_packages nginx-light
    fi
    export KTXH_TEST_NGINX=/usr/sbin/nginx
}

# Supply-chain tools for the check below: cargo-deny and cargo-audit from crates.io at the
# versions pinned here, built with their own lock files; skipped when that version is already
# installed (a first install builds for several minutes).
CARGO_DENY_VERSION=0.20.2
CARGO_AUDIT_VERSION=0.22.2
setup_supply_chain_tools() {
    [ -f "$ROOT/deny.toml" ] || return 0
    STEP="supply-chain tools (cargo-deny $CARGO_DENY_VERSION, cargo-audit $CARGO_AUDIT_VERSION)"
    local crate version have
    for crate in cargo-deny cargo-audit; do
        case $crate in
            cargo-deny) version=$CARGO_DENY_VERSION ;;
            cargo-audit) version=$CARGO_AUDIT_VERSION ;;
        esac
        have=$(cargo "${crate#cargo-}" --version 2>/dev/null | awk '{ print $NF }') || true
        if [ "$have" != "$version" ]; then
            ktxh_log "installing $crate $version (cargo install --locked)"
            ktxh_run_quiet "cargo install $crate $version" \
                cargo install --locked --version "$version" "$crate"
        fi
    done
}

SETUP_HOOKS=(
    setup_browser_tools
    setup_python_tools
    setup_alertmanager
    setup_promtool
    setup_nginx
    setup_supply_chain_tools
)

# ------------------------------------------------------------------------------
# Main
# ------------------------------------------------------------------------------
setup_backends
for hook in "${SETUP_HOOKS[@]}"; do
    "$hook"
done
STEP="setup"
ktxh_log "backends ready: KTXH_TEST_POSTGRES_URL=$KTXH_TEST_POSTGRES_URL KTXH_TEST_TIMESCALE_URL=$KTXH_TEST_TIMESCALE_URL KTXH_TEST_REQUIRE_ALL_BACKENDS=$KTXH_TEST_REQUIRE_ALL_BACKENDS"
if [ "$SETUP_ONLY" -eq 1 ]; then
    exit 0
fi

step "cargo fmt --all -- --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets --locked -- -D warnings"
cargo clippy --all-targets --locked -- -D warnings

# Advisories, bans, licences and sources of the dependency tree (deny.toml), and cargo audit
# over Cargo.lock, excepting only the advisories deny.toml lists with their reasons. Both need
# the RustSec advisory database: the snapshot committed in scripts/advisory-db (whose date is
# printed: refresh it when old), or with KTXH_ADVISORY_DB=live the database's own repository,
# for machines that reach it (CI machines here reach the package registries only).
step "supply chain: cargo deny check, cargo audit"
mapfile -t audit_ignores < <(grep -o 'id = "RUSTSEC-[0-9]*-[0-9]*"' deny.toml |
    grep -o 'RUSTSEC-[0-9]*-[0-9]*' | sed 's/^/--ignore=/')
advisory_repo=https://github.com/rustsec/advisory-db
if [ "${KTXH_ADVISORY_DB:-snapshot}" = live ]; then
    ktxh_log "advisory database: $advisory_repo"
    cargo deny --locked check
    cargo audit "${audit_ignores[@]}"
else
    supply=$ROOT/target/supply-chain
    rm -rf "$supply"
    mkdir -p "$supply/dbs"
    read -r _ snapshot_commit snapshot_date < <(grep -v '^#' scripts/advisory-db/SNAPSHOT)
    ktxh_log "advisory database: using the snapshot in scripts/advisory-db (commit $snapshot_commit of $snapshot_date)"
    # The same deny.toml, told where the database lives and that it is not to be fetched.
    sed -e "s|^db-urls = .*|&\ndb-path = \"$supply/dbs\"\nmaximum-db-staleness = \"P365D\"|" \
        deny.toml >"$supply/deny.toml"
    cargo metadata --format-version 1 --locked >"$supply/metadata.json"
    deny=(cargo deny --offline --metadata-path "$supply/metadata.json" --config "$supply/deny.toml")
    # cargo-deny keeps each database in a directory named after a hash of its URL; it names it
    # in its debug log when asked to open one that is not there yet.
    db_dir=$("${deny[@]}" -L debug check advisories 2>&1 |
        sed -n "s/.*Opening advisory database at '\(.*\)'.*/\1/p" | head -n 1) || true
    [ -n "$db_dir" ] || ktxh_die "cargo deny did not say where it keeps the advisory database"
    cp -r scripts/advisory-db "$db_dir"
    (
        cd "$db_dir"
        git init -q -b main
        git add -A
        GIT_AUTHOR_DATE=$snapshot_date GIT_COMMITTER_DATE=$snapshot_date \
            git -c user.name=ktxh -c user.email=ktxh@localhost -c commit.gpgsign=false \
            commit -q --no-verify -m "advisory-db $snapshot_commit"
    )
    "${deny[@]}" check
    cargo audit --db "$db_dir" --no-fetch --stale "${audit_ignores[@]}"
fi

# Not --all-targets: that would run the benchmarks (harness = false) as tests.
step "cargo test --locked"
test_log=$(mktemp)
cargo test --locked 2>&1 | tee "$test_log"
# One closing line for the whole run: cargo prints one summary per test binary, and the last
# one (doc tests) may well count nothing.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "\ntests: %d passed, %d failed\n", p, f }' "$test_log"
rm -f "$test_log"

# The parsers' fuzz targets (fuzz/, a workspace of its own; docs/development.md "Fuzzing") built on stable,
# which links libFuzzer without sanitizers, and every committed corpus replayed once: a target
# that no longer builds, or an input that crashes again, fails the run. Not --locked: a
# dependency added to the service is added to fuzz/Cargo.lock here, at the version it resolves.
# Built into the service's own target directory, which already holds nearly every dependency.
step "fuzz targets: build, replay fuzz/corpus"
cargo fmt --manifest-path fuzz/Cargo.toml -- --check
CARGO_TARGET_DIR=$ROOT/target cargo build --manifest-path fuzz/Cargo.toml --bins
for corpus in fuzz/corpus/*/; do
    target=$(basename "$corpus")
    if ! replay=$("$ROOT/target/debug/$target" -runs=0 -rss_limit_mb=512 -malloc_limit_mb=256 \
        "$corpus" 2>&1); then
        printf '%s\n' "$replay"
        ktxh_die "fuzz target $target fails on its corpus $corpus"
    fi
    printf '%-11s %s\n' "$target" "$(printf '%s\n' "$replay" | tail -n 1)"
done

STEP="done"
ktxh_log "all checks passed"
