#!/usr/bin/env bash
# Cloudlet benchmark: throughput and latency against a bare hyper and a bare Node server,
# cold start, and memory per warm instance; HTTP functions against a bare hyper proxy and the
# app itself. See bench/README.md.
#
# Usage: bench/run.sh                 (knobs as environment variables, listed below)
#        PHASES=http bench/run.sh     (only some phases; the names are listed at PHASES)
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
NODE_COLD_FUNCTIONS="${NODE_COLD_FUNCTIONS:-100}" # fresh functions for the node engine's cold start
NODE_COLD_GAP="${NODE_COLD_GAP:-0.2}"  # seconds between those, for the pre-warmed pool to refill
NODE_FUNCTIONS="${NODE_FUNCTIONS:-10}" # node functions for the memory-per-worker measurement
NODE_RUNTIME=Nodejs18.15               # the config.json runtime that picks the node engine
FUNCTIONS="${FUNCTIONS:-1000}"         # functions for the RSS-per-instance measurement
DEPLOY_CLIENTS="${DEPLOY_CLIENTS:-4}"  # parallel clients deploying/invoking those
LOOPS="${LOOPS:-8}"                    # infinite loops running beside add in the isolation phase
IDLE_CONNECTIONS="${IDLE_CONNECTIONS:-2000}" # idle connections for the RSS-per-connection measurement
CALLS="${CALLS:-2000}"                 # sequential invocations per function for the call latency
HTTP_COLD_FUNCTIONS="${HTTP_COLD_FUNCTIONS:-20}" # fresh HTTP functions for their cold start
SSE_EVENTS="${SSE_EVENTS:-1000}"       # SSE events read each way (through cloudlet, direct)
SSE_ROUNDS="${SSE_ROUNDS:-20}"         # streams they are split into, alternating the two ways
SSE_INTERVAL="${SSE_INTERVAL:-10}"     # ms between two events of a stream
SDK_CALLS="${SDK_CALLS:-1000}"         # sequential calls per round each way (client SDK, bare fetch)
SDK_ROUNDS="${SDK_ROUNDS:-10}"         # rounds of those, alternating which goes first
CDN_ROUNDS="${CDN_ROUNDS:-20}"         # 1 MiB fields sent each way (inline, through CDN())
ASYNC_CALLS="${ASYNC_CALLS:-200}"      # asynchronous invocations one at a time, for the idle latency
TIMER_SECONDS="${TIMER_SECONDS:-30}"   # seconds a timer fires every second, for its delay
OUT_MD="${OUT_MD:-$BENCH_DIR/results/latest.md}"
# The phases to run, in this order whatever the order given: all, or a list (spaces or commas) of
# engine throughput isolation calls cold node rss idle http access sdk async messages.
PHASES="${PHASES:-all}"

# The servers run with their defaults: ignore any CLOUDLET_* settings of the caller's shell.
while read -r var; do unset "$var"; done < <(compgen -e | grep '^CLOUDLET_' || true)

WRK_DESC="wrk -t${WRK_THREADS} -c${CONNECTIONS} -d${DURATION}s --latency, ${RUNS} run(s) after a ${WARMUP} s warm-up"
EVENT='{"x":1,"y":2}'

log() { printf '\n== %s\n' "$*"; }
note() { printf '   %s\n' "$*"; }
die() { printf 'bench/run.sh: %s\n' "$*" >&2; exit 1; }
harness() { python3 "$BENCH_DIR/harness.py" "$@"; }

ALL_PHASES=(engine throughput isolation calls cold node rss idle http access sdk async messages)
SELECTED=" ${PHASES//,/ } "
[[ "$SELECTED" == *" all "* ]] && SELECTED=" ${ALL_PHASES[*]} "
for p in $SELECTED; do
    [[ " ${ALL_PHASES[*]} " == *" $p "* ]] || die "unknown phase '$p' in PHASES (known: all ${ALL_PHASES[*]})"
done
phase() { [[ "$SELECTED" == *" $1 "* ]]; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/cloudlet-bench.XXXXXX")"
PIDS=()
for p in "${ALL_PHASES[@]}"; do
    if phase "$p"; then printf '%s\n' "$p"; fi
done >"$WORK/phases.txt"

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

# serve_cloudlet NAME [serve options...]: starts `cloudlet serve` on a free loopback port with
# the data dir $WORK/data-NAME and waits for it; sets SERVER_PID and SERVER_URL.
serve_cloudlet() {
    local name="$1" port
    shift
    port="$(free_port)"
    start_server "$name" "$CLOUDLET" serve --listen "127.0.0.1:$port" --data-dir "$WORK/data-$name" "$@"
    SERVER_URL="http://127.0.0.1:$port"
    wait_ready "$SERVER_PID" "$SERVER_URL/healthz"
}

check_add() {
    local url="$1" event="${2:-$EVENT}" body
    body="$(curl -sS --max-time 10 -X POST -H 'content-type: application/json' -d "$event" "$url")" ||
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
HYPER_PROXY="$(cargo_exe bench-hyper-proxy --manifest-path "$BENCH_DIR/baselines/hyper/Cargo.toml")"
note "cloudlet: ${CLOUDLET}"
note "hyper baseline: ${HYPER}"
note "hyper proxy: ${HYPER_PROXY}"

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
        for key in cloudlet cloudlet-healthz cloudlet-1w cloudlet-1w-healthz cloudlet-node cloudlet-chain hyper-mt hyper-st node isolation-alone isolation-loops \
            http-throughput http-cloudlet http-cloudlet-1w http-proxy-st http-proxy-mt http-direct; do SKIPPED[$key]="$reason"; done
        note "$reason: the throughput and latency runs are skipped"
    fi
fi

harness facts "$WORK/facts.json" "$WRK_DESC"
STARTED=$SECONDS

# ----------------------------------------------------------------------------- js engine alone

# The engine's own cost per warm call, without HTTP or records, while no server runs: with the
# HTTP floor below it bounds what an invocation can reach on one core.
if phase engine; then
    log "js engine alone: cargo bench -p cloudlet-runtime"
    if ! cargo bench -p cloudlet-runtime --bench warm_invoke >"$WORK/engine.txt" 2>"$WORK/engine.log"; then
        tail -n 20 "$WORK/engine.log" >&2
        SKIPPED[engine]="cargo bench -p cloudlet-runtime failed (see its output)"
    fi
    grep 'µs/call' "$WORK/engine.txt" | sed 's/^/   /' || true

    # The node engine's floor: the engine itself (a Rust client, no HTTP, no records) sending
    # add's event to Node.js workers over the channel the server uses.
    if [[ "$HAVE_NODE" == 1 ]]; then
        log "node engine alone: cargo bench -p cloudlet-runtime --bench node_worker"
        if ! cargo bench -p cloudlet-runtime --bench node_worker >"$WORK/node-floor.txt" 2>"$WORK/node-floor.log"; then
            tail -n 20 "$WORK/node-floor.log" >&2
            SKIPPED[node-floor]="cargo bench --bench node_worker failed (see its output)"
        fi
        grep 'node engine' "$WORK/node-floor.txt" | sed 's/^/   /' || true
    else
        SKIPPED[node-floor]="node not found on PATH"
    fi
fi

# The exact commands, for the report: those of the phases that run.
{
    cat <<EOF
# builds
cargo build --release -p cloudlet-cli
cargo build --release --manifest-path bench/baselines/hyper/Cargo.toml   # bench-hyper-baseline and bench-hyper-proxy
EOF
    phase engine && cat <<EOF

# the js engine alone (median µs per warm call, no HTTP, no records), then the node engine alone
cargo bench -p cloudlet-runtime --bench warm_invoke
cargo bench -p cloudlet-runtime --bench node_worker      # one warm worker, then 32 calls in flight
EOF
    phase throughput && cat <<EOF

# servers, all started first, each on a free loopback port, then measured in rounds
cloudlet serve --listen 127.0.0.1:PORT --data-dir DATA_DIR   # a fresh DATA_DIR for each phase
cloudlet serve --listen 127.0.0.1:PORT --data-dir DATA_DIR --worker-threads 1   # the "1 worker thread" rows
cloudlet deploy examples/add --server http://127.0.0.1:PORT   # URL: http://127.0.0.1:PORT/v1/functions/add
cloudlet deploy ADD_NODE --server http://127.0.0.1:PORT        # the "node engine" row: examples/add with config.json {"runtime": "$NODE_RUNTIME"}
bench-hyper-baseline PORT mt                                   # tokio multi_thread, one worker per CPU; URL: http://127.0.0.1:PORT/
bench-hyper-baseline PORT st                                   # tokio current_thread
node bench/baselines/node-server.js PORT

# per server
curl -s -X POST -H 'content-type: application/json' -d '$EVENT' URL   # must print 3
wrk -t$WRK_THREADS -c$CONNECTIONS -d${WARMUP}s -s bench/post.lua URL                   # warm-up, discarded
wrk -t$WRK_THREADS -c$CONNECTIONS -d${DURATION}s --latency -s bench/post.lua URL         # $RUNS rounds, one run per server each; median per metric
wrk -t$WRK_THREADS -c$CONNECTIONS -d${DURATION}s --latency http://127.0.0.1:PORT/healthz   # cloudlet's HTTP floor, same server, same rounds

cloudlet deploy examples/call-add --server http://127.0.0.1:PORT   # on the first server: the "call-add → add" row
EOF
    phase isolation && cat <<EOF

# isolation: add alone, then add beside $LOOPS infinite loops, in $RUNS rounds on one server
cloudlet deploy bench/functions/spin --server http://127.0.0.1:PORT   # config.json timeout: the run's length + 2 s
curl -s -X POST http://127.0.0.1:PORT/v1/functions/spin &             # $LOOPS of them, started 0.5 s before the loaded run
wrk -t$WRK_THREADS -c$CONNECTIONS -d${DURATION}s --latency -s bench/latency.lua URL   # alone, and beside the loops
EOF
    phase calls && cat <<EOF

# function calls: add, call-add and call-add-node (examples/call-add with config.json {"runtime": "$NODE_RUNTIME"}) on a fresh server
python3 bench/harness.py call-latency http://127.0.0.1:PORT $CALLS OUT.json add call-add call-add-node
EOF
    if phase cold || phase node || phase rss || phase idle; then
        printf '\n# cold start, the node engine, RSS per warm instance, RSS per idle connection (a fresh server each)\n'
    fi
    phase cold && echo "python3 bench/harness.py cold http://127.0.0.1:PORT $COLD_FUNCTIONS OUT.json"
    phase node && echo "python3 bench/harness.py cold http://127.0.0.1:PORT $NODE_COLD_FUNCTIONS OUT.json $NODE_RUNTIME $NODE_COLD_GAP"
    phase node && echo "python3 bench/harness.py node-memory http://127.0.0.1:PORT SERVER_PID $NODE_FUNCTIONS OUT.json $NODE_RUNTIME"
    phase rss && echo "python3 bench/harness.py rss-per-instance http://127.0.0.1:PORT SERVER_PID $FUNCTIONS OUT.json $DEPLOY_CLIENTS"
    phase idle && echo "python3 bench/harness.py idle-connections http://127.0.0.1:PORT SERVER_PID $IDLE_CONNECTIONS OUT.json"
    phase http && cat <<EOF

# HTTP functions: throughput of http-hello through cloudlet, through a bare hyper proxy (st, mt)
# and directly, in $RUNS rounds; then SSE latency; then cold start (a fresh cloudlet server each)
cloudlet serve --listen 127.0.0.1:PORT --data-dir DATA_DIR                      # and again with --worker-threads 1
cloudlet deploy bench/functions/http-hello --server http://127.0.0.1:PORT       # URL: http://127.0.0.1:PORT/v1/functions/http-hello/web/
env -i PATH=... HOME=... PORT=APP_PORT node app.js                              # in bench/functions/http-hello: the app directly (Cloudlet's instance environment), URL http://127.0.0.1:APP_PORT/
bench-hyper-proxy PORT APP_PORT st                                              # and mt; URL: http://127.0.0.1:PORT/
wrk -t$WRK_THREADS -c$CONNECTIONS -d${WARMUP}s URL                              # warm-up, discarded
wrk -t$WRK_THREADS -c$CONNECTIONS -d${DURATION}s --latency URL                  # $RUNS rounds, one run per server each; median per metric
cloudlet deploy bench/functions/http-sse --server http://127.0.0.1:PORT
env -i PATH=... HOME=... PORT=APP_PORT node app.js                              # in bench/functions/http-sse
python3 bench/harness.py sse http://127.0.0.1:PORT http://127.0.0.1:APP_PORT $SSE_EVENTS $SSE_ROUNDS $SSE_INTERVAL OUT.json
python3 bench/harness.py http-cold http://127.0.0.1:PORT $HTTP_COLD_FUNCTIONS OUT.json bench/functions/http-hello
EOF
    phase access && cat <<EOF

# The HTTP access service: sum on the invoke API and behind a route, with hyper (st), in $RUNS rounds;
# then context.sse() latency against bare node (http-sse)
cloudlet serve --listen 127.0.0.1:PORT --data-dir DATA_DIR
cloudlet deploy bench/functions/sum --server http://127.0.0.1:PORT
cloudlet deploy bench/functions/sse-js --server http://127.0.0.1:PORT
cloudlet routes add /sum sum --server http://127.0.0.1:PORT
cloudlet routes add /sse sse-js --server http://127.0.0.1:PORT
wrk -t$WRK_THREADS -c$CONNECTIONS -d${DURATION}s --latency -s bench/post.lua URL   # URL: .../v1/functions/sum, .../sum, hyper (st)
wrk -t$WRK_THREADS -c$CONNECTIONS -d${DURATION}s --latency -s bench/post-event.lua http://127.0.0.1:PORT/v1/functions/sum
env -i PATH=... HOME=... PORT=APP_PORT node app.js                              # in bench/functions/http-sse
python3 bench/harness.py sse http://127.0.0.1:PORT http://127.0.0.1:APP_PORT $SSE_EVENTS $SSE_ROUNDS $SSE_INTERVAL OUT.json /sse /
EOF
    phase sdk && cat <<EOF

# The client SDK: its added latency per callFunction against a bare fetch, and a 1 MiB field inline and through CDN()
cloudlet serve --listen 127.0.0.1:PORT --data-dir DATA_DIR
cloudlet deploy bench/functions/sum --server http://127.0.0.1:PORT
cloudlet deploy bench/functions/size --server http://127.0.0.1:PORT
node sdk/js/build.mjs SDK_DIR
node bench/sdk.mjs http://127.0.0.1:PORT SDK_DIR/cloudlet.mjs $SDK_CALLS $SDK_ROUNDS $CDN_ROUNDS OUT.json
EOF
    phase async && cat <<EOF

# Asynchronous invocation: durable enqueues (held runs one at a time, so the queue is barely
# drained), sustained add from enqueue to succeeded record, one invocation at a time when idle
cloudlet serve --listen 127.0.0.1:PORT --data-dir DATA_DIR --max-queued-per-env 1000000000
cloudlet deploy bench/functions/held --server http://127.0.0.1:PORT
wrk -t1 -c$CONNECTIONS -d${DURATION}s --latency -s bench/async.lua http://127.0.0.1:PORT/v1/functions/held   # $RUNS runs; median
cloudlet serve --listen 127.0.0.1:PORT --data-dir DATA_DIR --max-queued-per-env 1000000000   # a fresh one
cloudlet deploy bench/functions/sum --server http://127.0.0.1:PORT
python3 bench/harness.py async-sustained http://127.0.0.1:PORT $DURATION $CONNECTIONS OUT.json   # wrk -s bench/async.lua, then waits for the queue to drain
python3 bench/harness.py async-latency http://127.0.0.1:PORT $ASYNC_CALLS OUT.json
EOF
    phase messages && cat <<EOF

# Published messages and timers: publish with one subscriber and with ten (each a copy of
# bench/functions/subscriber subscribed to bench/#), each on a fresh server; a timer every second
cloudlet serve --listen 127.0.0.1:PORT --data-dir DATA_DIR --max-queued-per-env 1000000000
cloudlet deploy SUBSCRIBER_DIR --name sub-N --server http://127.0.0.1:PORT   # N = 1, or 1..10
wrk -t1 -c$CONNECTIONS -d${DURATION}s --latency -s bench/publish.lua http://127.0.0.1:PORT/v1/envs/default/topics/bench/x/messages   # $RUNS runs; median
cloudlet deploy bench/functions/tick --server http://127.0.0.1:PORT
python3 bench/harness.py timer-delay http://127.0.0.1:PORT $TIMER_SECONDS OUT.json
EOF
    true
} >"$WORK/commands.txt"

# ----------------------------------------------------------------------------- throughput

# The servers under load, in the order they take turns. All of them are started before the
# first measurement and measured in rounds, one wrk run each per round, so that a change in
# the machine's speed during the script (this shared 2-core VM drifts by ±10 % over minutes)
# affects every server alike instead of whichever was measured at that moment. An idle server
# waits in epoll and takes no CPU while another one is measured.
KEYS=()
declare -A URL_OF=() PID_OF=() METHOD_OF=()

# add_server KEY PIDS URL [get|post-event]: a server to measure; PIDS (one, or several in one word,
# such as a proxy and the app behind it) are the processes whose CPU and RSS it is charged. The
# load is POST {"x":1,"y":2} (which must answer 3), with `get` a plain GET (which must answer
# 2xx), or with `post-event` the body of bench/post-event.lua (which must answer 3).
add_server() {
    KEYS+=("$1")
    PID_OF[$1]="$2"
    URL_OF[$1]="$3"
    METHOD_OF[$1]="${4:-post}"
}

check_server() {
    local key="$1"
    case "${METHOD_OF[$key]}" in
        get) curl -sf -o /dev/null --max-time 10 "${URL_OF[$key]}" || die "GET ${URL_OF[$key]} failed" ;;
        post-event) check_add "${URL_OF[$key]}" "$(harness lua-body "$BENCH_DIR/post-event.lua")" ;;
        *) check_add "${URL_OF[$key]}" ;;
    esac
}

# wrk_load KEY SECONDS [wrk options...]: runs wrk against the server with its load.
wrk_load() {
    local key="$1" seconds="$2"
    shift 2
    local script=()
    case "${METHOD_OF[$key]}" in
        get) ;;
        post-event) script=(-s "$BENCH_DIR/post-event.lua") ;;
        *) script=(-s "$BENCH_DIR/post.lua") ;;
    esac
    wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"${seconds}s" "$@" "${script[@]}" "${URL_OF[$key]}"
}

# children_cpu FILE: user+system seconds of this script's waited-for children (wrk and the
# helpers), from the output of `times` saved in FILE. (`times` must run in this shell, not in a
# command substitution: a subshell has no children of its own yet.)
children_cpu() {
    awk 'NR == 2 {
        t = 0
        for (i = 1; i <= 2; i++) { split($i, p, "m"); sub("s", "", p[2]); t += p[1] * 60 + p[2] }
        printf "%.3f", t
    }' "$1"
}

# measure_run KEY I: one measured wrk run; appends its CPU accounting to $WORK/acct-KEY.txt:
# the server's CPU seconds, wall seconds, the whole machine's busy CPU seconds, this script's
# children's CPU seconds, and the CPU seconds of the server's first process alone (without its
# children, or the app behind a proxy), each as the difference over the run.
measure_run() {
    local key="$1" i="$2" cpu0 cpu1 own0 own1 busy0 busy1 kids0 kids1 t0 t1
    local -a pids
    read -r -a pids <<<"${PID_OF[$key]}"
    times >"$WORK/times0.txt"
    busy0="$(harness machine-busy)"
    read -r cpu0 own0 <<<"$(harness proc-cpu "${pids[@]}")"
    t0="$(date +%s.%N)"
    wrk_load "$key" "$DURATION" --latency >"$WORK/wrk-$key-$i.txt"
    t1="$(date +%s.%N)"
    read -r cpu1 own1 <<<"$(harness proc-cpu "${pids[@]}")"
    busy1="$(harness machine-busy)"
    times >"$WORK/times1.txt"
    kids0="$(children_cpu "$WORK/times0.txt")"
    kids1="$(children_cpu "$WORK/times1.txt")"
    printf '   %-17s run %d: %s\n' "$key" "$i" "$(harness wrk-summary "$WORK/wrk-$key-$i.txt")"
    awk -v a="$cpu0" -v b="$cpu1" -v s="$t0" -v e="$t1" -v m0="$busy0" -v m1="$busy1" \
        -v k0="$kids0" -v k1="$kids1" -v o0="$own0" -v o1="$own1" \
        'BEGIN { printf "%.3f %.3f %.3f %.3f %.3f\n", b - a, e - s, m1 - m0, k1 - k0, o1 - o0 }' >>"$WORK/acct-$key.txt"
}

# finish_server KEY: the server's CPU use over its measured runs (utime+stime ÷ wall time, and
# in seconds, of all its processes and of the first alone), the CPU that other processes used
# meanwhile (all busy CPU time minus the server's and this script's children's), and its RSS
# after the load.
finish_server() {
    local key="$1" pids
    check_server "$key"
    read -r -a pids <<<"${PID_OF[$key]}"
    awk -v rss="$(harness rss "${pids[@]}")" '
        { cpu += $1; wall += $2; busy += $3; kids += $4; own += $5 }
        END {
            other = (busy - cpu - kids) / wall * 100; if (other < 0) other = 0
            printf "{\"cpu_percent\": %.1f, \"other_percent\": %.1f, \"rss_kib\": %s, \"cpu_seconds\": %.3f, \"first_process_cpu_seconds\": %.3f}\n",
                cpu / wall * 100, other, rss, cpu, own
        }' "$WORK/acct-$key.txt" >"$WORK/meta-$key.json"
}

# measure_rounds WHAT: checks and warms up every server added, measures them in $RUNS rounds,
# then stops them and forgets them.
measure_rounds() {
    local key i pid
    log "$1: ${KEYS[*]}, in $RUNS rounds ($WRK_DESC)"
    for key in "${KEYS[@]}"; do
        check_server "$key"
        wrk_load "$key" "$WARMUP" >"$WORK/warmup-$key.txt"
    done
    for i in $(seq 1 "$RUNS"); do
        for key in "${KEYS[@]}"; do
            measure_run "$key" "$i"
        done
    done
    for key in "${KEYS[@]}"; do
        finish_server "$key"
    done
    for pid in $(printf '%s\n' "${PID_OF[@]}" | tr ' ' '\n' | sort -u); do
        stop_server "$pid"
    done
    KEYS=()
    URL_OF=() PID_OF=() METHOD_OF=()
}

# start_cloudlet KEY FUNCTION_DIR [serve options...]: starts `cloudlet serve` on a fresh data
# dir and deploys FUNCTION_DIR as `add`; sets SERVER_PID and SERVER_URL.
start_cloudlet() {
    local key="$1" dir="$2"
    shift 2
    serve_cloudlet "$key" "$@"
    "$CLOUDLET" deploy "$dir" --name add --server "$SERVER_URL" >"$WORK/deploy-$key.log" 2>&1 ||
        { cat "$WORK/deploy-$key.log" >&2; die "cloudlet deploy $dir failed"; }
}

# add_cloudlet KEY [serve options...]: a server with examples/add and two loads on it: KEY, the
# invocation, and KEY-healthz, a GET /healthz (no function, no record, only the HTTP stack:
# axum, hyper, tokio and the kernel), which no invocation on that server can outrun.
add_cloudlet() {
    local key="$1"
    shift
    start_cloudlet "$key" examples/add "$@"
    add_server "$key" "$SERVER_PID" "$SERVER_URL/v1/functions/add"
    add_server "$key-healthz" "$SERVER_PID" "$SERVER_URL/healthz" get
}

# The node engine's copy of examples/add: the same handler, run by Node.js workers.
ADD_NODE="$WORK/add-node"
mkdir -p "$ADD_NODE"
cp examples/add/* "$ADD_NODE/"
printf '{"runtime": "%s"}\n' "$NODE_RUNTIME" >"$ADD_NODE/config.json"

if phase throughput && [[ "$HAVE_WRK" == 1 ]]; then
    log "starting the servers"
    add_cloudlet cloudlet
    # A chain on the same server: call-add, which calls add through the built-in wx-server-sdk.
    "$CLOUDLET" deploy examples/call-add --server "$SERVER_URL" >>"$WORK/deploy-cloudlet.log" 2>&1 ||
        { cat "$WORK/deploy-cloudlet.log" >&2; die "cloudlet deploy examples/call-add failed"; }
    add_server cloudlet-chain "$SERVER_PID" "$SERVER_URL/v1/functions/call-add"
    # The same two loads on a server with one tokio worker thread. On a 2-core machine wrk takes
    # one core; a second worker then mostly adds scheduling between the workers and wrk.
    add_cloudlet cloudlet-1w --worker-threads 1
    # add on the node engine: the server, its Node.js workers and wrk share the two cores.
    if [[ "$HAVE_NODE" == 1 ]]; then
        start_cloudlet cloudlet-node "$ADD_NODE"
        add_server cloudlet-node "$SERVER_PID" "$SERVER_URL/v1/functions/add"
    fi
    for flavour in mt st; do
        port="$(free_port)"
        start_server "hyper-$flavour" "$HYPER" "$port" "$flavour"
        wait_ready "$SERVER_PID" "http://127.0.0.1:$port/"
        add_server "hyper-$flavour" "$SERVER_PID" "http://127.0.0.1:$port/"
    done
    if [[ "$HAVE_NODE" == 1 ]]; then
        port="$(free_port)"
        start_server node node "$BENCH_DIR/baselines/node-server.js" "$port"
        wait_ready "$SERVER_PID" "http://127.0.0.1:$port/"
        add_server node "$SERVER_PID" "http://127.0.0.1:$port/"
    fi

    measure_rounds throughput
fi

# ----------------------------------------------------------------------------- isolation

# add's throughput and latency alone, and while $LOOPS invocations of a function that never
# returns run beside it: they leave the request-serving workers after a 10 ms slice and go on
# under SCHED_IDLE in the long-running lane (crates/runtime/src/js/lane.rs). The rounds
# alternate on one server; each loaded run starts fresh loops whose timeout ends them 2 s
# after the run, and the next round waits for them to end.
if phase isolation && [[ "$HAVE_WRK" == 1 ]]; then
    log "isolation: add alone and beside $LOOPS infinite loops, in $RUNS rounds"
    serve_cloudlet isolation
    pid="$SERVER_PID"
    url="$SERVER_URL"
    mkdir -p "$WORK/spin"
    cp "$BENCH_DIR/functions/spin/index.js" "$WORK/spin/"
    printf '{"timeout": %d}\n' "$((DURATION + 2))" >"$WORK/spin/config.json"
    for dir in examples/add "$WORK/spin"; do
        "$CLOUDLET" deploy "$dir" --server "$url" >>"$WORK/deploy-isolation.log" 2>&1 ||
            { cat "$WORK/deploy-isolation.log" >&2; die "cloudlet deploy $dir failed"; }
    done
    check_add "$url/v1/functions/add"
    wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"${WARMUP}s" -s "$BENCH_DIR/post.lua" "$url/v1/functions/add" >/dev/null
    for i in $(seq 1 "$RUNS"); do
        wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency -s "$BENCH_DIR/latency.lua" \
            "$url/v1/functions/add" >"$WORK/wrk-isolation-alone-$i.txt"
        printf '   %-17s run %d: %s\n' isolation-alone "$i" "$(harness wrk-summary "$WORK/wrk-isolation-alone-$i.txt")"
        loops=()
        for _ in $(seq 1 "$LOOPS"); do
            curl -s -o /dev/null --max-time $((DURATION + 30)) -X POST "$url/v1/functions/spin" &
            loops+=("$!")
        done
        sleep 0.5
        wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency -s "$BENCH_DIR/latency.lua" \
            "$url/v1/functions/add" >"$WORK/wrk-isolation-loops-$i.txt"
        printf '   %-17s run %d: %s\n' isolation-loops "$i" "$(harness wrk-summary "$WORK/wrk-isolation-loops-$i.txt")"
        wait "${loops[@]}" || true
    done
    stop_server "$pid"
fi

# ----------------------------------------------------------------------------- function calls

# What one call from a function to a function adds: add invoked directly, call-add (which calls
# add through the js engine's built-in wx-server-sdk), and call-add-node (the same file on the
# node engine, with the real wx-server-sdk from npm, installed at deploy), in turn.
if phase calls; then
    log "function calls: $CALLS sequential invocations each of add, call-add and call-add-node"
    serve_cloudlet calls
    pid="$SERVER_PID"
    url="$SERVER_URL"
    CALLERS=(add call-add)
    for dir in examples/add examples/call-add; do
        "$CLOUDLET" deploy "$dir" --server "$url" >>"$WORK/deploy-calls.log" 2>&1 ||
            { cat "$WORK/deploy-calls.log" >&2; die "cloudlet deploy $dir failed"; }
    done
    if [[ "$HAVE_NODE" == 1 ]]; then
        CALL_ADD_NODE="$WORK/call-add-node"
        mkdir -p "$CALL_ADD_NODE"
        cp examples/call-add/* "$CALL_ADD_NODE/"
        printf '{"runtime": "%s"}\n' "$NODE_RUNTIME" >"$CALL_ADD_NODE/config.json"
        if "$CLOUDLET" deploy "$CALL_ADD_NODE" --name call-add-node --server "$url" >>"$WORK/deploy-calls.log" 2>&1; then
            CALLERS+=(call-add-node)
        else
            SKIPPED[calls-node]="deploying call-add-node (npm install of wx-server-sdk) failed: $(tail -n 1 "$WORK/deploy-calls.log")"
        fi
    else
        SKIPPED[calls-node]="node not found on PATH"
    fi
    harness call-latency "$url" "$CALLS" "$WORK/calls.json" "${CALLERS[@]}" ||
        SKIPPED[calls]="the function-call latency run failed (see its output)"
    stop_server "$pid"
fi

# ----------------------------------------------------------------------------- cold start

if phase cold; then
    log "cold start: $COLD_FUNCTIONS fresh copies of examples/add, one invocation each"
    serve_cloudlet cold
    pid="$SERVER_PID"
    url="$SERVER_URL"
    harness cold "$url" "$COLD_FUNCTIONS" "$WORK/cold.json" ||
        SKIPPED[cold]="the cold-start run failed (see its output)"
    stop_server "$pid"
fi

# ----------------------------------------------------------------------------- node engine

if phase node; then
    if [[ "$HAVE_NODE" == 1 ]]; then
        log "node engine cold start: $NODE_COLD_FUNCTIONS fresh copies of add, one invocation each, ${NODE_COLD_GAP} s apart"
        serve_cloudlet node-cold
        pid="$SERVER_PID"
        url="$SERVER_URL"
        harness cold "$url" "$NODE_COLD_FUNCTIONS" "$WORK/cold-node.json" "$NODE_RUNTIME" "$NODE_COLD_GAP" ||
            SKIPPED[cold-node]="the node cold-start run failed (see its output)"
        stop_server "$pid"

        log "node engine memory: the pre-warmed pool, then $NODE_FUNCTIONS node functions invoked once"
        serve_cloudlet node-memory
        pid="$SERVER_PID"
        url="$SERVER_URL"
        harness node-memory "$url" "$pid" "$NODE_FUNCTIONS" "$WORK/node-memory.json" "$NODE_RUNTIME" ||
            SKIPPED[node-memory]="the node memory run failed (see its output)"
        stop_server "$pid"
    else
        SKIPPED[cold-node]="node not found on PATH"
        SKIPPED[node-memory]="node not found on PATH"
    fi
fi

# ----------------------------------------------------------------------------- RSS per instance

if phase rss; then
    log "RSS: $FUNCTIONS functions deployed, then each invoked once"
    serve_cloudlet rss
    pid="$SERVER_PID"
    url="$SERVER_URL"
    harness rss-per-instance "$url" "$pid" "$FUNCTIONS" "$WORK/rss.json" "$DEPLOY_CLIENTS" ||
        SKIPPED[rss]="the RSS run failed (see its output)"
    stop_server "$pid"
fi

# ----------------------------------------------------------------------------- RSS per idle connection

if phase idle; then
    log "RSS: $IDLE_CONNECTIONS idle connections"
    serve_cloudlet idle
    pid="$SERVER_PID"
    url="$SERVER_URL"
    harness idle-connections "$url" "$pid" "$IDLE_CONNECTIONS" "$WORK/idle.json" ||
        SKIPPED[idle]="the idle-connection run failed (see its output)"
    stop_server "$pid"
fi

# ----------------------------------------------------------------------------- HTTP functions

# HTTP functions: a package with an scf_bootstrap that starts a web server, which Cloudlet starts
# on the first request and proxies to. What the platform costs is measured against the same app
# behind a bare hyper reverse proxy (hyper-util's pooled client, as Cloudlet's HTTP engine uses)
# and against the app itself, in three ways: throughput, the latency added to each event of a
# stream, and the cold start.
# An app started directly gets the environment Cloudlet gives an instance (the variables it passes
# on, and PORT), so that nothing else in this shell's environment changes its costs.
APP_ENV=(env -i)
for var in PATH HOME LANG LC_ALL TZ TMPDIR USER; do
    [[ -z "${!var+x}" ]] || APP_ENV+=("$var=${!var}")
done

if phase http; then
    HELLO="$BENCH_DIR/functions/http-hello"
    SSE_APP="$BENCH_DIR/functions/http-sse"
    if [[ "$HAVE_NODE" != 1 ]]; then
        for key in http-throughput http-sse http-cold; do SKIPPED[$key]="node not found on PATH"; done
    else
        if [[ "$HAVE_WRK" == 1 ]]; then
            log "HTTP functions: starting the servers"
            # As in the throughput phase, Cloudlet with its default worker threads and with one.
            for variant in "" -1w; do
                opts=()
                [[ -z "$variant" ]] || opts=(--worker-threads 1)
                port="$(free_port)"
                start_server "http-cloudlet$variant" "$CLOUDLET" serve --listen "127.0.0.1:$port" \
                    --data-dir "$WORK/data-http$variant" ${opts[@]+"${opts[@]}"}
                url="http://127.0.0.1:$port"
                wait_ready "$SERVER_PID" "$url/healthz"
                "$CLOUDLET" deploy "$HELLO" --server "$url" >>"$WORK/deploy-http.log" 2>&1 ||
                    { cat "$WORK/deploy-http.log" >&2; die "cloudlet deploy $HELLO failed"; }
                # The instance is its child: its CPU and RSS count with the server's.
                add_server "http-cloudlet$variant" "$SERVER_PID" "$url/v1/functions/http-hello/web/" get
            done
            # One node process behind both proxies and loaded directly; the proxies' rows are
            # charged its CPU and RSS too, as Cloudlet's are its instance's.
            app_port="$(free_port)"
            start_server http-app "${APP_ENV[@]}" PORT="$app_port" node "$HELLO/app.js"
            app_pid="$SERVER_PID"
            wait_ready "$app_pid" "http://127.0.0.1:$app_port/"
            for flavour in st mt; do
                port="$(free_port)"
                start_server "http-proxy-$flavour" "$HYPER_PROXY" "$port" "$app_port" "$flavour"
                wait_ready "$SERVER_PID" "http://127.0.0.1:$port/"
                add_server "http-proxy-$flavour" "$SERVER_PID $app_pid" "http://127.0.0.1:$port/" get
            done
            add_server http-direct "$app_pid" "http://127.0.0.1:$app_port/" get
            measure_rounds "HTTP functions, throughput of http-hello"
        fi

        log "HTTP functions, SSE: $SSE_EVENTS events each way, an event every $SSE_INTERVAL ms, in $SSE_ROUNDS rounds"
        serve_cloudlet http-sse
        pid="$SERVER_PID"
        url="$SERVER_URL"
        "$CLOUDLET" deploy "$SSE_APP" --server "$url" >>"$WORK/deploy-http.log" 2>&1 ||
            { cat "$WORK/deploy-http.log" >&2; die "cloudlet deploy $SSE_APP failed"; }
        # Started right before the harness's first stream starts Cloudlet's instance: each node
        # process stamps events from its own timeOrigin, so the two start close together.
        app_port="$(free_port)"
        start_server http-sse-app "${APP_ENV[@]}" PORT="$app_port" node "$SSE_APP/app.js"
        app_pid="$SERVER_PID"
        wait_ready "$app_pid" "http://127.0.0.1:$app_port/?n=1&interval=1"
        harness sse "$url" "http://127.0.0.1:$app_port" "$SSE_EVENTS" "$SSE_ROUNDS" "$SSE_INTERVAL" "$WORK/http-sse.json" ||
            SKIPPED[http-sse]="the SSE run failed (see its output)"
        stop_server "$app_pid"
        stop_server "$pid"

        log "HTTP functions, cold start: $HTTP_COLD_FUNCTIONS fresh copies of http-hello, each after starting the app directly"
        serve_cloudlet http-cold
        pid="$SERVER_PID"
        url="$SERVER_URL"
        harness http-cold "$url" "$HTTP_COLD_FUNCTIONS" "$WORK/http-cold.json" "$HELLO" ||
            SKIPPED[http-cold]="the HTTP cold-start run failed (see its output)"
        stop_server "$pid"
    fi
fi

# ----------------------------------------------------------------------------- access

# The HTTP access service: an event function behind a route against the same function on the
# invoke API, on one server, with the bare current-thread hyper server in the same rounds; then
# the latency context.sse() adds to an event against a bare Node.js server writing the same events.
if phase access; then
    log "the HTTP access service: starting the servers"
    access_server() {
        serve_cloudlet access
        access_pid="$SERVER_PID"
        access_url="$SERVER_URL"
    }
    access_server
    for fn in sum sse-js; do
        "$CLOUDLET" deploy "$BENCH_DIR/functions/$fn" --server "$access_url" >>"$WORK/deploy-access.log" 2>&1 ||
            { cat "$WORK/deploy-access.log" >&2; die "cloudlet deploy $fn failed"; }
    done
    { "$CLOUDLET" routes add /sum sum --server "$access_url" && "$CLOUDLET" routes add /sse sse-js --server "$access_url"; } \
        >>"$WORK/deploy-access.log" 2>&1 || { cat "$WORK/deploy-access.log" >&2; die "cloudlet routes add failed"; }
    if [[ "$HAVE_WRK" == 1 ]]; then
        add_server access-invoke "$access_pid" "$access_url/v1/functions/sum"
        add_server access-route "$access_pid" "$access_url/sum"
        # The route's event sent to the invoke API: what the event's size costs, apart from the route.
        add_server access-invoke-event "$access_pid" "$access_url/v1/functions/sum" post-event
        port="$(free_port)"
        start_server access-hyper-st "$HYPER" "$port" st
        wait_ready "$SERVER_PID" "http://127.0.0.1:$port/"
        add_server access-hyper-st "$SERVER_PID" "http://127.0.0.1:$port/"
        # measure_rounds stops the servers it measured: the SSE run restarts Cloudlet on the
        # same data dir, whose functions and routes it keeps.
        measure_rounds "the HTTP access service"
        access_server
    fi
    if [[ "$HAVE_NODE" == 1 ]]; then
        log "context.sse(): $SSE_EVENTS events each way, an event every $SSE_INTERVAL ms, in $SSE_ROUNDS rounds"
        app_port="$(free_port)"
        start_server access-sse-app "${APP_ENV[@]}" PORT="$app_port" node "$BENCH_DIR/functions/http-sse/app.js"
        app_pid="$SERVER_PID"
        wait_ready "$app_pid" "http://127.0.0.1:$app_port/?n=1&interval=1"
        harness sse "$access_url" "http://127.0.0.1:$app_port" "$SSE_EVENTS" "$SSE_ROUNDS" "$SSE_INTERVAL" \
            "$WORK/access-sse.json" /sse / || SKIPPED[access-sse]="the context.sse() run failed (see its output)"
        stop_server "$app_pid"
    else
        SKIPPED[access-sse]="node not found on PATH (the baseline is a Node.js server)"
    fi
    stop_server "$access_pid"
fi

# ----------------------------------------------------------------------------- client SDK

if phase sdk; then
    if [[ "$HAVE_NODE" == 1 ]]; then
        log "the client SDK: $SDK_ROUNDS rounds of $SDK_CALLS calls each way, then $CDN_ROUNDS 1 MiB fields each way"
        serve_cloudlet sdk
        sdk_pid="$SERVER_PID"
        sdk_url="$SERVER_URL"
        for fn in sum size; do
            "$CLOUDLET" deploy "$BENCH_DIR/functions/$fn" --server "$sdk_url" >>"$WORK/deploy-sdk.log" 2>&1 ||
                { cat "$WORK/deploy-sdk.log" >&2; die "cloudlet deploy $fn failed"; }
        done
        node "$REPO/sdk/js/build.mjs" "$WORK/sdk" >/dev/null
        node "$BENCH_DIR/sdk.mjs" "$sdk_url" "$WORK/sdk/cloudlet.mjs" "$SDK_CALLS" "$SDK_ROUNDS" "$CDN_ROUNDS" \
            "$WORK/sdk.json" >/dev/null || SKIPPED[sdk]="bench/sdk.mjs failed (see its output)"
        stop_server "$sdk_pid"
    else
        SKIPPED[sdk]="node not found on PATH (the SDK runs in Node.js)"
    fi
fi

# ----------------------------------------------------------------------------- asynchronous invocation

if phase async; then
    log "asynchronous invocation: durable enqueues, sustained add, $ASYNC_CALLS one at a time"
    serve_cloudlet async-enqueue --max-queued-per-env 1000000000
    "$CLOUDLET" deploy "$BENCH_DIR/functions/held" --server "$SERVER_URL" >>"$WORK/deploy-async.log" 2>&1 ||
        { cat "$WORK/deploy-async.log" >&2; die "cloudlet deploy held failed"; }
    for i in $(seq 1 "$RUNS"); do
        wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency -s "$BENCH_DIR/async.lua" \
            "$SERVER_URL/v1/functions/held" >"$WORK/wrk-async-enqueue-$i.txt"
        printf '   %-17s run %d: %s\n' async-enqueue "$i" "$(harness wrk-summary "$WORK/wrk-async-enqueue-$i.txt")"
    done
    stop_server "$SERVER_PID"
    serve_cloudlet async-sustained --max-queued-per-env 1000000000
    "$CLOUDLET" deploy "$BENCH_DIR/functions/sum" --server "$SERVER_URL" >>"$WORK/deploy-async.log" 2>&1 ||
        { cat "$WORK/deploy-async.log" >&2; die "cloudlet deploy sum failed"; }
    harness async-sustained "$SERVER_URL" "$DURATION" "$CONNECTIONS" "$WORK/async-sustained.json"
    harness async-latency "$SERVER_URL" "$ASYNC_CALLS" "$WORK/async-latency.json"
    stop_server "$SERVER_PID"
fi

# ----------------------------------------------------------------------------- published messages and timers

if phase messages; then
    log "published messages (1 and 10 subscribers) and a timer every second for $TIMER_SECONDS s"
    mkdir -p "$WORK/subscriber"
    cp "$BENCH_DIR/functions/subscriber/index.js" "$WORK/subscriber/"
    printf '{"triggers": [{"name": "in", "type": "topic", "config": "bench/#"}]}\n' >"$WORK/subscriber/config.json"
    for subscribers in 1 10; do
        serve_cloudlet "publish-$subscribers" --max-queued-per-env 1000000000
        for n in $(seq 1 "$subscribers"); do
            "$CLOUDLET" deploy "$WORK/subscriber" --name "sub-$n" --server "$SERVER_URL" >>"$WORK/deploy-messages.log" 2>&1 ||
                { cat "$WORK/deploy-messages.log" >&2; die "cloudlet deploy sub-$n failed"; }
        done
        for i in $(seq 1 "$RUNS"); do
            wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency -s "$BENCH_DIR/publish.lua" \
                "$SERVER_URL/v1/envs/default/topics/bench/x/messages" >"$WORK/wrk-publish-$subscribers-$i.txt"
            printf '   %-17s run %d: %s\n' "publish-$subscribers" "$i" "$(harness wrk-summary "$WORK/wrk-publish-$subscribers-$i.txt")"
        done
        stop_server "$SERVER_PID"
    done
    serve_cloudlet timers
    "$CLOUDLET" deploy "$BENCH_DIR/functions/tick" --server "$SERVER_URL" >>"$WORK/deploy-messages.log" 2>&1 ||
        { cat "$WORK/deploy-messages.log" >&2; die "cloudlet deploy tick failed"; }
    harness timer-delay "$SERVER_URL" "$TIMER_SECONDS" "$WORK/timer-delay.json"
    stop_server "$SERVER_PID"
fi

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
