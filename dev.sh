#!/usr/bin/env bash
# socialnet developer entry point.
#
#   ./dev.sh up     run the whole stack: in Docker when an engine answers (images are built
#                   locally, no registry needed), else as host processes
#   ./dev.sh test   run every test against real PostgreSQL, Redis and NGINX
#   ./dev.sh bench  seed 10,000 users / 100,000 posts and benchmark the timeline
#   ./dev.sh bench-load  `socialctl load --users 500 --duration 60s` three times in a row on
#                   each runtime (Docker, then host processes) on a fresh data set, each
#                   run's thresholds, trace completeness and peak memory in one table,
#                   then requests per CPU-second vs Locust (from PyPI) and wrk
#                   (BENCH_RUNTIMES="docker local", LOAD_RUNS=3, LOAD_USERS, LOAD_SECONDS)
#   ./dev.sh bench-all   every benchmark (timeline, load, generators, web, messaging, sink,
#                   warm up, memory) on a stack of its own, written as one Markdown
#                   table and one JSON file with the machine's description
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
    # Media checks video with ffprobe and makes its poster frames with ffmpeg.
    command -v ffprobe >/dev/null || missing+=(ffmpeg)
    # The component-table test starts a tiny HTTP server with Python.
    command -v python3 >/dev/null || missing+=(python3)
    # The web frontend is tested in a real headless Chromium over WebDriver.
    command -v chromium >/dev/null || missing+=(chromium)
    command -v chromedriver >/dev/null || missing+=(chromium-driver)
    # The API fuzzer (schemathesis, from PyPI) lives in a virtual environment.
    python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
    if [ ${#missing[@]} -gt 0 ]; then
        [ "$(id -u)" = 0 ] || die "missing packages: ${missing[*]}; install them with: sudo apt-get install ${missing[*]}"
        say "installing Debian packages: ${missing[*]}"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
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
    # Where tests keep what a person may want to look at (the browser test's screenshots).
    export SOCIALNET_RUN_DIR="$RUN_DIR"
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

# The stack's memory, sampled every 5 s into $1 (one status JSON per line) until
# stopped with `kill "$SAMPLER"`; at most $2 samples, so it always ends by itself.
sample_memory() {
    local file=$1 count=$2; shift 2
    ( for _ in $(seq 1 "$count"); do sleep 5; "$ctl" status "$@" --json |
        python3 -c 'import json, sys; print(json.dumps(json.load(sys.stdin)))'; done ) > "$file" 2>/dev/null &
    SAMPLER=$!
}

# One GET, no think time, $2 users for $3 seconds: socialctl load, Locust (installed from
# PyPI into a throwaway virtualenv) and wrk, each under GNU time, all aimed at $4 (where
# `load` aimed); outputs one-get.*, locust.* and wrk.* in $1. The rest is the stack.
compare_generators() {
    local dir=$1 users=$2 secs=$3 aim=$4; shift 4
    say "one GET, $users users, ${secs}s, no think time: socialctl load"
    /usr/bin/time -v -o "$dir/one-get.time" "$ctl" load "$@" --users "$users" --duration "${secs}s" \
        --workload scenarios/load/one-get.workload --json --record "$dir/one-get.jsonl" > "$dir/one-get.json" || true
    if [ ! -x "$RUN_DIR/locust/bin/locust" ]; then
        say "installing Locust from PyPI into $RUN_DIR/locust"
        python3 -m venv "$RUN_DIR/locust" && "$RUN_DIR/locust/bin/pip" install -q locust
    fi
    say "one GET, $users users, ${secs}s, no wait time: Locust FastHttpUser"
    /usr/bin/time -v -o "$dir/locust.time" "$RUN_DIR/locust/bin/locust" -f scenarios/load/locustfile.py --headless \
        -u "$users" -r "$users" -t "${secs}s" --host "$aim" --only-summary \
        --csv "$dir/locust" > "$dir/locust.txt" 2>&1 || true
    say "one GET, $users connections, ${secs}s: wrk (the physical limit: no spans, no bookkeeping)"
    /usr/bin/time -v -o "$dir/wrk.time" wrk -t1 -c"$users" -d"${secs}s" \
        "$aim/api/profiles/user00001" > "$dir/wrk.txt" 2>&1 || true
}

bench_load() {
    ensure_packages
    command -v /usr/bin/time >/dev/null || { say "installing GNU time"; apt-get install -y -qq time >/dev/null; }
    command -v wrk >/dev/null || { say "installing wrk"; apt-get install -y -qq wrk >/dev/null; }
    local users=${LOAD_USERS:-500} secs=${LOAD_SECONDS:-60} runs=${LOAD_RUNS:-3}
    local cmp_users=${CMP_USERS:-50} cmp_secs=${CMP_SECONDS:-30} runtimes=${BENCH_RUNTIMES:-docker local}
    say "building release binaries"
    cargo build --release --locked "${RELEASE_BINS[@]}"
    local ctl="$TARGET/release/socialctl" out="$RUN_DIR/bench-load"
    rm -rf "$out" && mkdir -p "$out"
    # A stack of its own (project bench-load, ports 29xxx): the default one is left alone.
    local -a ports=(--gateway-port 29080 --service-base-port 29081 --postgres-port 29432 --redis-port 29379
        --otlp-grpc-port 29317 --otlp-http-port 29318)
    local rt last=""
    for rt in $runtimes; do
        if [ "$rt" = docker ] && ! docker info >/dev/null 2>&1; then
            say "no Docker engine answers: the docker runtime is not measured"; continue
        fi
        local -a stack=(--project bench-load --runtime "$rt")
        "$ctl" down "${stack[@]}" --volumes >/dev/null 2>&1 || true
        say "$rt runtime: up, then a fresh data set (socialctl seed --reset)"
        "$ctl" up "${stack[@]}" "${ports[@]}" > "$out/$rt-up.txt"
        "$ctl" seed "${stack[@]}" --reset > "$out/$rt-seed.txt"
        local i
        for i in $(seq 1 "$runs"); do
            say "$rt runtime, run $i of $runs: socialctl load --users $users --duration ${secs}s, then verify-traces --sent"
            # The stack's memory, sampled every 5 s while the run lasts.
            sample_memory "$out/$rt-$i.status.jsonl" $(( (secs + 300) / 5 )) "${stack[@]}"
            local sampler=$SAMPLER rc=0
            /usr/bin/time -v -o "$out/$rt-$i.time" "$ctl" load "${stack[@]}" --users "$users" --duration "${secs}s" \
                --json --record "$out/$rt-$i.jsonl" > "$out/$rt-$i.json" || rc=$?
            kill "$sampler" 2>/dev/null; wait "$sampler" 2>/dev/null || true
            echo "$rc" > "$out/$rt-$i.rc"
            "$ctl" verify-traces "${stack[@]}" --sent "$out/$rt-$i.jsonl" --json > "$out/$rt-$i.verify.json" || true
        done
        last=$rt
        if [ "$rt" != "${runtimes##* }" ]; then "$ctl" down "${stack[@]}" --volumes > /dev/null; fi
    done
    [ -n "$last" ] || die "no runtime was measured"
    local -a stack=(--project bench-load --runtime "$last")
    # Locust and wrk aim where `load` aimed (on Docker, the gateway's container address).
    local aim
    aim=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["target"].split(" ")[0])' "$out/$last-1.json")
    compare_generators "$out" "$cmp_users" "$cmp_secs" "$aim" "${stack[@]}"
    "$ctl" down "${stack[@]}" --volumes > /dev/null
    python3 - "$out" "$runtimes" "$runs" <<'PY'
import csv, glob, json, os, re, sys
out, runtimes, runs = sys.argv[1], sys.argv[2].split(), int(sys.argv[3])
def cpu(name):
    t = open(f"{out}/{name}.time").read()
    return sum(float(re.search(rf"{k} time \(seconds\): ([0-9.]+)", t).group(1)) for k in ("User", "System"))
def p99(report, endpoint):
    r = next((r for r in report["endpoints"] if r["endpoint"] == endpoint), None)
    return f"{r['p99_ms']:.0f}" if r else "-"
def peak(name):
    """Peak MiB of the social network's components (the sink, the measuring store, apart)."""
    try:
        rows = [json.loads(l) for l in open(f"{out}/{name}.status.jsonl") if l.strip()]
    except OSError:
        return "-"
    mem = lambda s: sum(c.get("memory_bytes") or 0 for c in s["components"] if c["name"] != "sink") / 2**20
    return f"{max(map(mem, rows)):.0f}" if rows else "-"
print("| runtime | run | exit | requests | timeline p99 ms | post p99 ms | WS send p99 ms | sign-in phase p99 ms | traces complete | peak memory MiB |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for rt in runtimes:
    for i in range(1, runs + 1):
        n = f"{rt}-{i}"
        if not os.path.exists(f"{out}/{n}.json"):
            continue
        try:
            r = json.load(open(f"{out}/{n}.json"))
        except ValueError:
            print(f"| {rt} | {i} | {open(f'{out}/{n}.rc').read().strip()} | no report | | | | | | |")
            continue
        try:
            v = json.load(open(f"{out}/{n}.verify.json"))
            done = f"{100 * v['completeness']:.3f} %"
        except (OSError, ValueError, KeyError):
            done = "-"
        si = r.get("sign_in") or {}
        print(f"| {rt} | {i} | {open(f'{out}/{n}.rc').read().strip()} | {r['total']['requests']} | "
              f"{p99(r, 'GET /api/feed/timeline')} | {p99(r, 'POST /api/feed/posts')} | {p99(r, 'WS send')} | "
              f"{si.get('p99_ms', 0):.0f} | {done} | {peak(n)} |")
print()
ours = json.load(open(f"{out}/one-get.json"))
ours_n = next(r["requests"] for r in ours["endpoints"] if r["endpoint"] == "GET /api/profiles/{username}")
rows = list(csv.DictReader(open(f"{out}/locust_stats.csv")))
loc = next(r for r in rows if r["Name"] == "GET /api/profiles/{username}")
loc_n = int(loc["Request Count"])
a, b = ours_n / cpu("one-get"), loc_n / cpu("locust")
print(f"generators on {ours['target']}:")
print(f"socialctl load: {ours_n} requests in {ours['seconds']:.0f} s, {cpu('one-get'):.2f} CPU s: {a:.0f} requests per CPU-second")
print(f"locust        : {loc_n} requests, {cpu('locust'):.2f} CPU s: {b:.0f} requests per CPU-second")
print(f"ratio         : {a / b:.1f}x")
wrk_n = int(re.search(r"([0-9]+) requests in", open(f"{out}/wrk.txt").read()).group(1))
w = wrk_n / cpu("wrk")
print(f"wrk           : {wrk_n} requests, {cpu('wrk'):.2f} CPU s: {w:.0f} requests per CPU-second")
print(f"socialctl/wrk : {a / w:.2f}x (goal: at least 0.5x)")
PY
}

# Every benchmark, on a stack of its own (project bench-all, ports 28xxx), into one
# figure table: $RUN_DIR/bench-all-figures/figures.md and figures.json.
bench_all() {
    ensure_packages
    command -v /usr/bin/time >/dev/null || { say "installing GNU time"; apt-get install -y -qq time >/dev/null; }
    command -v wrk >/dev/null || { say "installing wrk"; apt-get install -y -qq wrk >/dev/null; }
    say "building release binaries"
    cargo build --release --locked "${RELEASE_BINS[@]}"
    local ctl="$TARGET/release/socialctl" out="$RUN_DIR/bench-all-figures" rt=${BENCH_RUNTIME:-}
    if [ -z "$rt" ]; then
        if docker info >/dev/null 2>&1; then rt=docker; else rt=local; fi
    fi
    rm -rf "$out" && mkdir -p "$out"
    local -a stack=(--project bench-all --runtime "$rt")
    local -a ports=(--gateway-port 28080 --service-base-port 28081 --postgres-port 28432 --redis-port 28379
        --otlp-grpc-port 28317 --otlp-http-port 28318)
    local gw=http://127.0.0.1:28080
    say "bench-all on the $rt runtime; figures go to $out"
    "$ctl" down "${stack[@]}" --volumes >/dev/null 2>&1 || true
    say "up (first start, not measured)"
    "$ctl" up "${stack[@]}" "${ports[@]}" > "$out/up-first.txt"
    "$ctl" down "${stack[@]}" > /dev/null
    say "up again, warm (measured)"
    local t0 t1
    t0=$(date +%s.%N); "$ctl" up "${stack[@]}" "${ports[@]}" > "$out/up-warm.txt"; t1=$(date +%s.%N)
    echo "$t0 $t1" | awk '{printf "%.2f\n", $2 - $1}' > "$out/up-warm.seconds"
    say "idle memory (after 10 s idle)"
    sleep 10
    "$ctl" status "${stack[@]}" --json > "$out/idle.status.json"
    say "socialctl bench: timeline, tracing on and off, three alternating rounds"
    "$ctl" bench "${stack[@]}" --json > "$out/bench.json"
    say "socialctl load --users 500 --duration 60s, then verify-traces --sent (fresh data set)"
    "$ctl" seed "${stack[@]}" --reset > "$out/seed.txt"
    sample_memory "$out/loaded.status.jsonl" 14 "${stack[@]}"
    local sampler=$SAMPLER
    /usr/bin/time -v -o "$out/load.time" "$ctl" load "${stack[@]}" --users 500 --duration 60s \
        --json --record "$out/load.jsonl" > "$out/load.json" || true
    wait "$sampler" || true
    "$ctl" verify-traces "${stack[@]}" --sent "$out/load.jsonl" --json > "$out/verify.json" || true
    # Locust and wrk aim where `load` aimed (on Docker, the gateway's container address).
    local aim
    aim=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["target"].split(" ")[0])' "$out/load.json" 2>/dev/null || echo "$gw")
    compare_generators "$out" 50 30 "$aim" "${stack[@]}"
    say "socialctl bench-web: the home page at 100 req/s for 20 s, its weight, 5 loads in Chromium"
    "$ctl" bench-web "${stack[@]}" --rate 100 --duration 20s --json > "$out/web.json" || true
    say "socialctl bench-messaging: two messaging replicas, 1,000 sockets, 2,000 messages/s"
    "$ctl" up "${stack[@]}" "${ports[@]}" --scale messaging=2 > /dev/null
    "$ctl" bench-messaging "${stack[@]}" --sockets 1000 --rate 2000 --duration 20s --json > "$out/messaging.json" || true
    "$ctl" down "${stack[@]}" --volumes > /dev/null
    say "socialctl bench-sink (its own sink, in process)"
    "$ctl" bench-sink --json > "$out/sink.json"
    python3 - "$out" "$rt" <<'PY'
import csv, json, os, platform, re, subprocess, sys, datetime
out, rt = sys.argv[1], sys.argv[2]
def load(name):
    try:
        return json.load(open(f"{out}/{name}"))
    except Exception:
        return None
def cpu(name):
    t = open(f"{out}/{name}.time").read()
    return sum(float(re.search(rf"{k} time \(seconds\): ([0-9.]+)", t).group(1)) for k in ("User", "System"))
def mem(status, sink=False):
    """MiB of the social network's components, or of the sink (the measuring store)."""
    return sum(c.get("memory_bytes") or 0 for c in status["components"] if (c["name"] == "sink") == sink) / 2**20
machine = {
    "cpus": os.cpu_count(),
    "cpu": next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?"),
    "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
    "kernel": platform.release(),
    "os": next((l.split("=", 1)[1].strip().strip('"') for l in open("/etc/os-release") if l.startswith("PRETTY_NAME")), "?"),
    "runtime": rt,
    "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip(),
    "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
}
rows = []
def add(name, value, unit, goal="", command=""):
    rows.append({"figure": name, "value": value, "unit": unit, "goal": goal, "command": command})
b = load("bench.json")
if b:
    s = b["summary"]
    add("timeline, tracing on (median)", round(s["rps_on"]), "req/s", "≥ 3000", "socialctl bench")
    add("timeline, tracing on, p99 (median)", round(s["p99_on_ms"], 1), "ms", "≤ 50", "socialctl bench")
    add("timeline, tracing off (median)", round(s["rps_off"]), "req/s", "", "socialctl bench")
    add("tracing overhead (medians)", round(s["overhead_pct"], 1), "%", "≤ 3", "socialctl bench")
    add("round-to-round spread, tracing on", round(100 * (s["rps_on_max"] - s["rps_on_min"]) / s["rps_on"], 1), "% of median", "", "socialctl bench")
l, v = load("load.json"), load("verify.json")
if l:
    tl = next((r for r in l["endpoints"] if r["endpoint"] == "GET /api/feed/timeline"), None)
    add("load 500 users 60 s: thresholds", "passed" if all(t["passed"] for t in l["thresholds"]) else "FAILED", "", "passed", "socialctl load --users 500 --duration 60s")
    add("load: requests in the day", l["total"]["requests"], "", "", "")
    if tl:
        add("load: timeline p99", round(tl["p99_ms"], 1), "ms", "< 500", "")
    if l.get("sign_in"):
        add("load: sign-in phase p99", round(l["sign_in"]["p99_ms"], 1), "ms", "", "")
if v:
    add("load: trace completeness", round(100 * v.get("completeness", 0), 3), "%", "100.000", "socialctl verify-traces --sent")
o = load("one-get.json")
try:
    ours_n = next(r["requests"] for r in o["endpoints"] if r["endpoint"] == "GET /api/profiles/{username}")
    ours = ours_n / cpu("one-get")
    add("generator: socialctl load", round(ours), "req per CPU-s", "", "one GET, 50 users, 30 s")
    loc = next(r for r in csv.DictReader(open(f"{out}/locust_stats.csv")) if r["Name"] == "GET /api/profiles/{username}")
    add("generator: Locust FastHttpUser", round(int(loc["Request Count"]) / cpu("locust")), "req per CPU-s", "", "")
    wrk_n = int(re.search(r"([0-9]+) requests in", open(f"{out}/wrk.txt").read()).group(1))
    wrk = wrk_n / cpu("wrk")
    add("generator: wrk", round(wrk), "req per CPU-s", "", "wrk -t1 -c50 -d30s")
    add("generator: socialctl / wrk", round(ours / wrk, 2), "×", "≥ 0.5", "")
except Exception as e:
    add("generator comparison", f"not measured ({e})", "", "", "")
m = load("messaging.json")
if m:
    add("messaging delivery p50, 2 replicas, 1,000 sockets", round(m["delivery_p50_ms"], 2), "ms",
        "", f"socialctl bench-messaging --sockets 1000 --rate 2000 ({round(m['achieved_rate'])}/s sent)")
    add("messaging delivery p99", round(m["delivery_p99_ms"], 2), "ms", "≤ 25", "")
    add("messaging memory per idle socket", round(m["memory_per_idle_socket_bytes"] / 1024, 1), "KiB", "≤ 20", "")
w = load("web.json")
if w:
    add("web home page p50 at 100 req/s", round(w["p50_ms"], 1), "ms", "", "socialctl bench-web --rate 100 --duration 20s")
    add("web home page p99 at 100 req/s", round(w["p99_ms"], 1), "ms", "≤ 50", "")
    add("web page weight: HTML / script / style", f'{w["html_bytes"]} / {w["js_bytes"]} / {w["css_bytes"]}', "B", "script ≤ 40 KB, style ≤ 30 KB", "")
    add("web home page load in Chromium (median)", round(w["browser_load_median_ms"], 1) if w["browser_load_median_ms"] is not None else w["browser_note"], "ms", "", "")
sk = load("sink.json")
if sk:
    add("sink ingest, OTLP/HTTP", round(sk["http_spans_per_s"]), "spans/s", "≥ 200000", "socialctl bench-sink")
    add("sink ingest, OTLP/gRPC", round(sk["grpc_spans_per_s"]), "spans/s", "≥ 200000", "socialctl bench-sink")
    add("sink: one 100k-span trace", round(sk["one_trace_100k_seconds"], 2), "s", "linear", "")
    add("sink: slowest /api/stats during it", round(sk["stats_worst_ms_during_ingest"], 1), "ms", "< 50", "")
    add("sink: bytes per stored span", round(sk["bytes_per_span"]), "B", "", "")
try:
    add("warm up", float(open(f"{out}/up-warm.seconds").read()), "s", "", "socialctl up (stack stopped, images and data kept)")
    idle = json.load(open(f"{out}/idle.status.json"))
    add("social network memory, idle (without the sink)", round(mem(idle)), "MiB", "", "socialctl status --json")
    samples = [json.loads(line) for line in open(f"{out}/loaded.status.jsonl") if line.strip()]
    if samples:
        add("social network memory under load (peak of 5 s samples, without the sink)", round(max(mem(x) for x in samples)), "MiB", "≤ 512", "")
        add("sink memory under load (peak; holds every span of the run)", round(max(mem(x, True) for x in samples)), "MiB", "", "")
except Exception as e:
    add("memory", f"not measured ({e})", "", "", "")
json.dump({"machine": machine, "figures": rows}, open(f"{out}/figures.json", "w"), indent=2)
md = [f"Figures of {machine['commit']} on {machine['date']}: {machine['cpus']} × {machine['cpu']}, "
      f"{machine['memory_gib']} GiB, {machine['os']}, kernel {machine['kernel']}, {rt} runtime.", "",
      "| figure | value | unit | goal | command |", "|---|---:|---|---|---|"]
md += [f"| {r['figure']} | {r['value']} | {r['unit']} | {r['goal']} | {r['command']} |" for r in rows]
open(f"{out}/figures.md", "w").write("\n".join(md) + "\n")
print("\n".join(md))
print(f"\nwritten: {out}/figures.md and {out}/figures.json")
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
    bench-all) shift; bench_all "$@" ;;
    *) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
