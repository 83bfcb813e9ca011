#!/usr/bin/env bash
# Cloudlet benchmark: throughput and latency against a bare hyper and a bare Node server,
# cold start, and memory per warm instance. See bench/README.md.
#
# Usage: bench/run.sh        (knobs as environment variables, listed below)
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$BENCH_DIR/.." && pwd)"
cd "$REPO"

DURATION="${DURATION:-8}"              # seconds per measured wrk run
RUNS="${RUNS:-3}"                      # measured wrk runs per server (the median is reported)
WARMUP="${WARMUP:-2}"                  # seconds of discarded warm-up per server
CONNECTIONS="${CONNECTIONS:-32}"       # wrk -c
WRK_THREADS="${WRK_THREADS:-1}"        # wrk -t
COLD_FUNCTIONS="${COLD_FUNCTIONS:-20}" # fresh functions for the cold-start measurement
FUNCTIONS="${FUNCTIONS:-1000}"         # functions for the RSS-per-instance measurement
DEPLOY_CLIENTS="${DEPLOY_CLIENTS:-4}"  # parallel clients deploying/invoking those
OUT_MD="${OUT_MD:-$BENCH_DIR/results/latest.md}"

# The servers run with their defaults: ignore any CLOUDLET_* settings of the caller's shell.
while read -r var; do unset "$var"; done < <(compgen -e | grep '^CLOUDLET_' || true)

WRK_DESC="wrk -t${WRK_THREADS} -c${CONNECTIONS} -d${DURATION}s --latency, ${RUNS} run(s) after a ${WARMUP} s warm-up"
EVENT='{"x":1,"y":2}'

WORK="$(mktemp -d "${TMPDIR:-/tmp}/cloudlet-bench.XXXXXX")"
PIDS=()

log() { printf '\n== %s\n' "$*"; }
note() { printf '   %s\n' "$*"; }
die() { printf 'bench/run.sh: %s\n' "$*" >&2; exit 1; }
harness() { python3 "$BENCH_DIR/harness.py" "$@"; }

stop_server() {
    local pid="$1" i
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for i in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
    local kept=() p
    for p in ${PIDS[@]+"${PIDS[@]}"}; do
        [[ "$p" == "$pid" ]] || kept+=("$p")
    done
    PIDS=(${kept[@]+"${kept[@]}"})
}

cleanup() {
    local pid
    for pid in ${PIDS[@]+"${PIDS[@]}"}; do
        stop_server "$pid"
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_server NAME CMD...: starts CMD in the background (its output goes to $WORK/NAME.log)
# and sets SERVER_PID.
start_server() {
    local name="$1"
    shift
    "$@" >"$WORK/$name.log" 2>&1 &
    SERVER_PID=$!
    PIDS+=("$SERVER_PID")
}

# wait_ready PID URL: waits until GET URL answers (any HTTP status) or the process dies.
wait_ready() {
    local pid="$1" url="$2" i
    for i in $(seq 1 300); do
        if ! kill -0 "$pid" 2>/dev/null; then
            cat "$WORK"/*.log >&2 || true
            die "the server (pid $pid) exited before answering $url"
        fi
        if curl -s -o /dev/null --max-time 1 "$url"; then
            return 0
        fi
        sleep 0.1
    done
    die "no answer from $url after 30 s"
}

free_port() { harness freeport; }

check_add() {
    local url="$1" body
    body="$(curl -sS --max-time 10 -X POST -H 'content-type: application/json' -d "$EVENT" "$url")" ||
        die "POST $url failed"
    [[ "$body" == "3" ]] || die "POST $url answered '$body', expected 3"
}

# cargo_exe NAME CARGO-ARGS...: builds in release mode and prints the path of executable NAME.
cargo_exe() {
    local name="$1"
    shift
    cargo build --release "$@" --message-format=json-render-diagnostics |
        python3 -c '
import json, sys
name, path = sys.argv[1], None
for line in sys.stdin:
    try:
        msg = json.loads(line)
    except ValueError:
        continue
    if msg.get("reason") == "compiler-artifact" and msg.get("executable") and msg["target"]["name"] == name:
        path = msg["executable"]
if not path:
    sys.exit("cargo built no executable named " + name)
print(path)' "$name"
}

# ----------------------------------------------------------------------------- prerequisites

log "building (release)"
command -v cargo >/dev/null || die "cargo not found (install the Rust toolchain)"
command -v curl >/dev/null || die "curl not found"
command -v python3 >/dev/null || die "python3 not found"
CLOUDLET="$(cargo_exe cloudlet -p cloudlet-cli)"
HYPER="$(cargo_exe bench-hyper-baseline --manifest-path "$BENCH_DIR/baselines/hyper/Cargo.toml")"
note "cloudlet: ${CLOUDLET}"
note "hyper baseline: ${HYPER}"

declare -A SKIPPED=()
HAVE_NODE=1
if ! command -v node >/dev/null; then
    HAVE_NODE=0
    SKIPPED[node]="node not found on PATH"
    note "node not found: the Node baseline is skipped"
fi

HAVE_WRK=1
if ! command -v wrk >/dev/null; then
    SUDO=()
    if [[ "$(id -u)" != 0 ]] && command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
        SUDO=(sudo -n)
    fi
    if command -v apt-get >/dev/null && { [[ "$(id -u)" == 0 ]] || [[ ${#SUDO[@]} -gt 0 ]]; }; then
        log "installing wrk with apt-get"
        "${SUDO[@]}" apt-get install -y wrk >/dev/null 2>&1 ||
            { "${SUDO[@]}" apt-get update >/dev/null && "${SUDO[@]}" apt-get install -y wrk >/dev/null; } ||
            true
    fi
    if ! command -v wrk >/dev/null; then
        HAVE_WRK=0
        reason="wrk is not installed and could not be installed with apt-get"
        for key in cloudlet cloudlet-healthz hyper-mt hyper-st node; do SKIPPED[$key]="$reason"; done
        note "$reason: the throughput and latency runs are skipped"
    fi
fi

harness facts "$WORK/facts.json" "$WRK_DESC"
STARTED=$SECONDS

cat >"$WORK/commands.txt" <<EOF
# builds
cargo build --release -p cloudlet-cli
cargo build --release --manifest-path bench/baselines/hyper/Cargo.toml

# servers, one at a time, each on a free loopback port
cloudlet serve --listen 127.0.0.1:PORT --data-dir DATA_DIR   # a fresh DATA_DIR for each phase
cloudlet deploy examples/add --server http://127.0.0.1:PORT   # URL: http://127.0.0.1:PORT/v1/functions/add
bench-hyper-baseline PORT mt                                   # tokio multi_thread, one worker per CPU; URL: http://127.0.0.1:PORT/
bench-hyper-baseline PORT st                                   # tokio current_thread
node bench/baselines/node-server.js PORT

# per server
curl -s -X POST -H 'content-type: application/json' -d '$EVENT' URL   # must print 3
wrk -t$WRK_THREADS -c$CONNECTIONS -d${WARMUP}s -s bench/post.lua URL                   # warm-up, discarded
wrk -t$WRK_THREADS -c$CONNECTIONS -d${DURATION}s --latency -s bench/post.lua URL         # $RUNS times; median per metric
wrk -t$WRK_THREADS -c$CONNECTIONS -d${DURATION}s --latency http://127.0.0.1:PORT/healthz   # cloudlet's HTTP floor, same server, same way

# cold start, then RSS per warm instance (a fresh server each)
python3 bench/harness.py cold http://127.0.0.1:PORT $COLD_FUNCTIONS OUT.json
python3 bench/harness.py rss-per-instance http://127.0.0.1:PORT SERVER_PID $FUNCTIONS OUT.json $DEPLOY_CLIENTS
EOF

# ----------------------------------------------------------------------------- throughput

# measure KEY PID URL [get]: warm-up, measured runs, CPU and RSS of the server. The load is
# POST {"x":1,"y":2} (which must answer 3), or with `get` a plain GET (which must answer 2xx).
measure() {
    local key="$1" pid="$2" url="$3" method="${4:-post}" i cpu0 cpu1 busy0 busy1 kids0 kids1 t0 t1
    local script=(-s "$BENCH_DIR/post.lua")
    if [[ "$method" == get ]]; then
        script=()
        curl -sf -o /dev/null --max-time 10 "$url" || die "GET $url failed"
    else
        check_add "$url"
    fi
    wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"${WARMUP}s" "${script[@]}" "$url" >"$WORK/warmup-$key.txt"
    # CPU seconds: of the server, of this script's children (wrk and the helpers), of the whole
    # machine; the rest is other load that competed with the measurement.
    times >"$WORK/times0.txt"
    busy0="$(harness machine-busy)"
    cpu0="$(harness proc-cpu "$pid")"
    t0="$(date +%s.%N)"
    for i in $(seq 1 "$RUNS"); do
        wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency "${script[@]}" "$url" \
            >"$WORK/wrk-$key-$i.txt"
        printf '   run %d: %s\n' "$i" "$(harness wrk-summary "$WORK/wrk-$key-$i.txt")"
    done
    t1="$(date +%s.%N)"
    cpu1="$(harness proc-cpu "$pid")"
    busy1="$(harness machine-busy)"
    times >"$WORK/times1.txt"
    kids0="$(children_cpu "$WORK/times0.txt")"
    kids1="$(children_cpu "$WORK/times1.txt")"
    if [[ "$method" != get ]]; then check_add "$url"; fi
    printf '{"cpu_percent": %s, "other_percent": %s, "rss_kib": %s}\n' \
        "$(awk -v a="$cpu0" -v b="$cpu1" -v s="$t0" -v e="$t1" 'BEGIN { printf "%.1f", (b - a) / (e - s) * 100 }')" \
        "$(awk -v a="$cpu0" -v b="$cpu1" -v m0="$busy0" -v m1="$busy1" -v k0="$kids0" -v k1="$kids1" \
            -v s="$t0" -v e="$t1" 'BEGIN { o = ((m1 - m0) - (b - a) - (k1 - k0)) / (e - s) * 100; if (o < 0) o = 0; printf "%.1f", o }')" \
        "$(harness rss "$pid")" >"$WORK/meta-$key.json"
}

# children_cpu FILE: user+system seconds of waited-for children, from the output of `times`.
children_cpu() {
    awk 'NR == 2 {
        t = 0
        for (i = 1; i <= 2; i++) { split($i, p, "m"); sub("s", "", p[2]); t += p[1] * 60 + p[2] }
        printf "%.3f", t
    }' "$1"
}

if [[ "$HAVE_WRK" == 1 ]]; then
    log "throughput: cloudlet ($WRK_DESC)"
    port="$(free_port)"
    start_server cloudlet "$CLOUDLET" serve --listen "127.0.0.1:$port" --data-dir "$WORK/data-throughput"
    pid="$SERVER_PID"
    wait_ready "$pid" "http://127.0.0.1:$port/healthz"
    "$CLOUDLET" deploy examples/add --server "http://127.0.0.1:$port" >"$WORK/deploy-add.log" 2>&1 ||
        { cat "$WORK/deploy-add.log" >&2; die "cloudlet deploy examples/add failed"; }
    measure cloudlet "$pid" "http://127.0.0.1:$port/v1/functions/add"
    # The same server answering GET /healthz: no function, no record, only the HTTP stack
    # (axum, hyper, tokio, the kernel). No invocation can be faster than this.
    log "throughput: cloudlet GET /healthz (its HTTP floor)"
    measure cloudlet-healthz "$pid" "http://127.0.0.1:$port/healthz" get
    stop_server "$pid"

    for flavour in mt st; do
        log "throughput: bare hyper ($flavour)"
        port="$(free_port)"
        start_server "hyper-$flavour" "$HYPER" "$port" "$flavour"
        pid="$SERVER_PID"
        wait_ready "$pid" "http://127.0.0.1:$port/"
        measure "hyper-$flavour" "$pid" "http://127.0.0.1:$port/"
        stop_server "$pid"
    done

    if [[ "$HAVE_NODE" == 1 ]]; then
        log "throughput: bare Node"
        port="$(free_port)"
        start_server node node "$BENCH_DIR/baselines/node-server.js" "$port"
        pid="$SERVER_PID"
        wait_ready "$pid" "http://127.0.0.1:$port/"
        measure node "$pid" "http://127.0.0.1:$port/"
        stop_server "$pid"
    fi
fi

# ----------------------------------------------------------------------------- cold start

log "cold start: $COLD_FUNCTIONS fresh copies of examples/add, one invocation each"
port="$(free_port)"
start_server cloudlet-cold "$CLOUDLET" serve --listen "127.0.0.1:$port" --data-dir "$WORK/data-cold"
pid="$SERVER_PID"
wait_ready "$pid" "http://127.0.0.1:$port/healthz"
harness cold "http://127.0.0.1:$port" "$COLD_FUNCTIONS" "$WORK/cold.json" ||
    SKIPPED[cold]="the cold-start run failed (see its output)"
stop_server "$pid"

# ----------------------------------------------------------------------------- RSS per instance

log "RSS: $FUNCTIONS functions deployed, then each invoked once"
port="$(free_port)"
start_server cloudlet-rss "$CLOUDLET" serve --listen "127.0.0.1:$port" --data-dir "$WORK/data-rss"
pid="$SERVER_PID"
wait_ready "$pid" "http://127.0.0.1:$port/healthz"
harness rss-per-instance "http://127.0.0.1:$port" "$pid" "$FUNCTIONS" "$WORK/rss.json" "$DEPLOY_CLIENTS" ||
    SKIPPED[rss]="the RSS run failed (see its output)"
stop_server "$pid"

# ----------------------------------------------------------------------------- report

{
    printf '{'
    sep=''
    for key in "${!SKIPPED[@]}"; do
        printf '%s"%s": "%s"' "$sep" "$key" "${SKIPPED[$key]}"
        sep=', '
    done
    printf '}\n'
} >"$WORK/skipped.json"

mkdir -p "$(dirname "$OUT_MD")"
harness report "$WORK" "$OUT_MD"
note "measurements took $((SECONDS - STARTED)) s"
