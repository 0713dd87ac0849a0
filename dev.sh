#!/usr/bin/env bash
# socialnet developer entry point.
#
#   ./dev.sh up     run the whole stack: in Docker when an engine answers (images are built
#                   locally, no registry needed), else as host processes
#   ./dev.sh test   run every test against real PostgreSQL, Redis and NGINX
#   ./dev.sh bench  seed 10,000 users / 100,000 posts and benchmark the timeline
#   ./dev.sh bench-load  `socialctl load --users 500 --duration 60s` with its CPU cost and
#                   trace completeness, then requests per CPU-second vs Locust (from PyPI)
#
# Each command installs the Debian packages it needs (apt-get, as root) and says so.
set -euo pipefail
cd "$(dirname "$0")"

# Bold on a terminal, plain in a pipe or with NO_COLOR set (https://no-color.org).
if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then
    say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
else
    say() { printf '==> %s\n' "$*"; }
fi
die() { printf 'error: %s\n' "$*" >&2; exit 2; }

RUN_DIR=${SOCIALNET_RUN_DIR:-/tmp/socialnet-$(id -u)}
mkdir -p "$RUN_DIR"
chmod 755 "$RUN_DIR"

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

RELEASE_BINS=(-p socialctl -p socialnet)
# Where cargo puts what it builds (CARGO_TARGET_DIR, when set, moves it).
TARGET=$(realpath -m "${CARGO_TARGET_DIR:-target}")

ensure_packages() {
    local missing=()
    [ -n "$(pg_bin)" ] && [ -x "$(pg_bin)/initdb" ] || missing+=(postgresql)
    [ -f "$(ls -d /usr/share/postgresql/*/extension 2>/dev/null | tail -n 1)/pg_trgm.control" ] || missing+=(postgresql-contrib)
    command -v redis-server >/dev/null || missing+=(redis-server)
    [ -x /usr/sbin/nginx ] || command -v nginx >/dev/null || missing+=(nginx-light)
    # The Docker runtime builds its offline base image with debootstrap.
    [ -x /usr/sbin/debootstrap ] || command -v debootstrap >/dev/null || missing+=(debootstrap)
    command -v docker-compose >/dev/null || missing+=(docker-compose)
    # The component-table test starts a tiny HTTP server with Python.
    command -v python3 >/dev/null || missing+=(python3)
    # The API fuzzer (schemathesis, from PyPI) lives in a virtual environment.
    python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
    if [ ${#missing[@]} -gt 0 ]; then
        [ "$(id -u)" = 0 ] || die "missing packages: ${missing[*]}; install them with: sudo apt-get install ${missing[*]}"
        say "installing Debian packages: ${missing[*]}"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
    command -v cargo >/dev/null || die "cargo is not installed; install Rust from rustup.rs"
}

# One address from `socialctl up --json`'s output.
json_field() {
    python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["addresses"][sys.argv[2]])' "$1" "$2"
}

# The throwaway PostgreSQL and Redis the tests use are started by socialctl itself, from
# the stack's component table (one way to start each thing), on ports outside the
# kernel's ephemeral range so no outgoing connection can hold them.
TEST_PG_PORT=${TEST_PG_PORT:-21432}
TEST_REDIS_PORT=${TEST_REDIS_PORT:-21379}

# schemathesis, the API fuzzer `./dev.sh test` runs against every service, pinned, in
# its own virtual environment (made once, reused).
SCHEMATHESIS_VERSION=4.32.5
ensure_schemathesis() {
    local venv="$RUN_DIR/venv-schemathesis-$SCHEMATHESIS_VERSION"
    if [ ! -x "$venv/bin/schemathesis" ]; then
        say "installing schemathesis $SCHEMATHESIS_VERSION from PyPI into $venv"
        rm -rf "$venv"
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
    fi
    export SCHEMATHESIS="$venv/bin/schemathesis"
}

cmd_test() {
    ensure_packages
    ensure_schemathesis
    say "building the workspace and its tests (once)"
    cargo build --workspace --all-targets --locked
    ctl="$TARGET/debug/socialctl" infra="$RUN_DIR/test-infra"
    stop_infra() { "$ctl" down --runtime local --volumes --state-dir "$infra" >/dev/null 2>&1 || true; }
    stop_infra
    trap stop_infra EXIT
    say "starting throwaway PostgreSQL and Redis: socialctl up --only postgres,redis"
    "$ctl" up --runtime local --ephemeral --only postgres,redis --project test-infra --state-dir "$infra" \
        --postgres-port "$TEST_PG_PORT" --redis-port "$TEST_REDIS_PORT" --json > "$infra.json"
    # Their URLs carry the project's generated passwords.
    TEST_DATABASE_URL="$(json_field "$infra.json" postgres)/postgres"
    TEST_REDIS_URL=$(json_field "$infra.json" redis)
    export TEST_DATABASE_URL TEST_REDIS_URL
    export SOCIALCTL="$ctl"
    say "running every test (PostgreSQL, Redis, NGINX and Docker are real)"
    local out="$RUN_DIR/test-output.log" rc=0
    export FUZZ_REPORT="$RUN_DIR/fuzz-totals.txt"
    rm -f "$FUZZ_REPORT"
    cargo test --workspace --locked --no-fail-fast "$@" 2>&1 | tee "$out" || rc=$?
    # One closing line with the totals of every test binary, and the fuzzer's per service.
    awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f }' "$out"
    [ ! -f "$FUZZ_REPORT" ] || cat "$FUZZ_REPORT"
    return "$rc"
}

# CPU seconds (user + system) a command used, from GNU time's output file.
cpu_of() { awk -F': ' '/User time/ {u=$2} /System time/ {s=$2} END {printf "%.2f", u+s}' "$1"; }

bench_load() {
    ensure_packages
    command -v /usr/bin/time >/dev/null || { say "installing GNU time"; apt-get install -y -qq time >/dev/null; }
    local users=${LOAD_USERS:-500} secs=${LOAD_SECONDS:-60} cmp_users=${CMP_USERS:-50} cmp_secs=${CMP_SECONDS:-30}
    say "building release binaries"
    cargo build --release --locked "${RELEASE_BINS[@]}"
    local ctl="$TARGET/release/socialctl" out="$RUN_DIR/bench-load"
    mkdir -p "$out"
    say "starting the stack (local runtime)"
    "$ctl" up --runtime local
    say "socialctl load --users $users --duration ${secs}s --verify"
    /usr/bin/time -v -o "$out/load.time" "$ctl" load --runtime local --users "$users" --duration "${secs}s" \
        --verify --record "$out/load.jsonl" | tee "$out/load.txt" || true
    say "load used $(cpu_of "$out/load.time") CPU s"

    if [ ! -x "$RUN_DIR/locust/bin/locust" ]; then
        say "installing Locust from PyPI into $RUN_DIR/locust"
        python3 -c 'import ensurepip' 2>/dev/null || apt-get install -y -qq python3-venv >/dev/null
        python3 -m venv "$RUN_DIR/locust" && "$RUN_DIR/locust/bin/pip" install -q locust
    fi
    say "one GET, $cmp_users users, ${cmp_secs}s, no think time: socialctl load"
    /usr/bin/time -v -o "$out/one-get.time" "$ctl" load --runtime local --users "$cmp_users" --duration "${cmp_secs}s" \
        --workload scenarios/load/one-get.workload --json --record "$out/one-get.jsonl" > "$out/one-get.json" || true
    say "one GET, $cmp_users users, ${cmp_secs}s, no wait time: Locust FastHttpUser"
    /usr/bin/time -v -o "$out/locust.time" "$RUN_DIR/locust/bin/locust" -f scenarios/load/locustfile.py --headless \
        -u "$cmp_users" -r "$cmp_users" -t "${cmp_secs}s" --host http://127.0.0.1:8080 --only-summary \
        --csv "$out/locust" > "$out/locust.txt" 2>&1 || true
    python3 - "$out" <<'PY'
import csv, json, re, sys
out = sys.argv[1]
def cpu(name):
    t = open(f"{out}/{name}.time").read()
    return sum(float(re.search(rf"{k} time \(seconds\): ([0-9.]+)", t).group(1)) for k in ("User", "System"))
ours = json.load(open(f"{out}/one-get.json"))
ours_n = next(r["requests"] for r in ours["endpoints"] if r["endpoint"] == "GET /api/profiles/{username}")
rows = list(csv.DictReader(open(f"{out}/locust_stats.csv")))
loc = next(r for r in rows if r["Name"] == "GET /api/profiles/{username}")
loc_n = int(loc["Request Count"])
a, b = ours_n / cpu("one-get"), loc_n / cpu("locust")
print(f"socialctl load: {ours_n} requests in {ours['seconds']:.0f} s, {cpu('one-get'):.2f} CPU s: {a:.0f} requests per CPU-second")
print(f"locust        : {loc_n} requests, {cpu('locust'):.2f} CPU s: {b:.0f} requests per CPU-second")
print(f"ratio         : {a / b:.1f}x (goal: at least 10x)")
PY
}

case "${1:-help}" in
    test) shift; cmd_test "$@" ;;
    up) shift; ensure_packages; say "building socialctl and the services (release)"
        cargo build --release --locked "${RELEASE_BINS[@]}"
        exec "$TARGET/release/socialctl" up "$@" ;;
    bench) shift; ensure_packages; cargo build --release --locked "${RELEASE_BINS[@]}"
        exec "$TARGET/release/socialctl" bench "$@" ;;
    bench-load) shift; bench_load "$@" ;;
    *) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
