#!/usr/bin/env python3
"""Helpers for bench/run.sh (Python 3 standard library only).

Subcommands:
  freeport                         print a free TCP port on 127.0.0.1
  wrk-summary FILE                 one line: req/s, p50, p99 (ms) and errors of a wrk --latency output
  proc-cpu PID...                  utime+stime of the PIDs and their descendants (node workers) in seconds,
                                   then that of the first PID's own threads alone
  rss PID...                       VmRSS of the PIDs and their descendants in KiB
  machine-busy                     busy CPU seconds of the whole machine since boot
  cold URL N OUT.json [RUNTIME GAP_S]
                                   deploy N distinct copies of examples/add (config.json runtime
                                   RUNTIME if given), invoke each once GAP_S apart, fetch records
  node-memory URL PID N OUT.json RUNTIME
                                   RSS and PSS of the node engine's pre-warmed pool, then per warm
                                   worker after deploying N node copies of add and invoking each once
  rss-per-instance URL PID N OUT.json [CLIENTS]
                                   deploy N distinct functions, invoke each once, read VmRSS at each step
  idle-connections URL PID N OUT.json
                                   open N idle connections, read VmRSS before and after, check GET /healthz
  call-latency URL N OUT.json NAME...
                                   client latency of N sequential invocations of each function
                                   NAME (each must answer 3), interleaved on one connection
  sse CLOUDLET_URL DIRECT_URL EVENTS ROUNDS INTERVAL_MS OUT.json [CLOUDLET_PATH DIRECT_PATH]
  lua-body SCRIPT.lua                 the body a wrk script sends
                                   per event of bench/functions/http-sse, arrival - write time through
                                   Cloudlet and from the app directly, in alternating rounds
  http-cold URL N OUT.json FUNCTION_DIR
                                   deploy N distinct copies of an HTTP function (bench/functions/http-hello)
                                   and invoke each once, each after starting the app directly
  facts OUT.json WRK_DESC          machine facts (CPU, kernel, tool versions, load)
  report DIR OUT.md                print the results table and write it as Markdown
"""

import concurrent.futures
import http.client
import io
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tarfile
import threading
import time
import urllib.parse
import urllib.request
import uuid

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ADD_DIR = os.path.join(REPO, "examples", "add")
EVENT = b'{"x":1,"y":2}'

# Targets the report checks against.
TARGET_VS_HYPER = 0.6  # cloudlet req/s >= 0.6x bare hyper (mt, the same runtime configuration)
TARGET_VS_NODE = 1.8  # cloudlet req/s >= 1.8x bare Node
TARGET_COLD_MS = 2.0  # server-side init (initUs), median
TARGET_RSS_KIB = 256  # RSS per warm instance
TARGET_LOOPS_P99_MS = 20.0  # add's p99 beside the infinite loops of the isolation phase
TARGET_LOOPS_P999_MS = 50.0  # and its p99.9
TARGET_NODE_VS_NODE = 0.5  # cloudlet on the node engine >= 0.5x bare Node calling the same handler
TARGET_NODE_COLD_P50_MS = 50.0  # node engine cold start, client end-to-end, median
TARGET_NODE_COLD_P99_MS = 120.0  # and its p99
TARGET_CHAIN_VS_ADD = 0.45  # call-add -> add (js engine) req/s >= 0.45x add alone
TARGET_JS_CALL_US = 50.0  # what one function-to-function call adds in the js engine, p50
TARGET_NODE_CALL_MS = 2.0  # and through the real wx-server-sdk in the node engine, p50
TARGET_HTTP_VS_PROXY = 0.8  # HTTP function req/s through cloudlet >= 0.8x a bare hyper proxy to the same app
TARGET_SSE_ADDED_P99_MS = 1.0  # what cloudlet adds to an SSE event's latency, p99
TARGET_ROUTE_VS_INVOKE = 0.9  # an event function behind a route >= 0.9x the same on the invoke API
TARGET_SDK_ADDED_P50_MS = 0.1  # what the client SDK adds to a callFunction over a bare fetch, p50
TARGET_ASYNC_ENQUEUE_RPS = 20_000  # durable enqueues per second from 32 clients
TARGET_ASYNC_IDLE_P50_MS = 5.0  # one asynchronous invocation on an idle server, sent to done, p50
TARGET_ASYNC_SUSTAINED_RPS = 10_000  # asynchronous add, enqueue to succeeded record, per second
TARGET_TIMER_DELAY_P99_MS = 50.0  # a timer's due time to its invocation's start, p99
SSE_QUIET_BUSY_PERCENT = 20.0  # the machine's CPU use during the SSE streams above which other load shows
TARGET_HTTP_COLD_ADDED_MS = 20.0  # HTTP function cold start, client, minus the app's own start, medians


# ---------------------------------------------------------------------------- wrk output


def to_ms(value):
    """wrk prints times as 12.34us, 1.02ms, 2.00s, 1.50m or 1.00h."""
    m = re.fullmatch(r"([0-9.]+)(us|ms|s|m|h)", value.strip())
    if not m:
        raise ValueError(f"unrecognised wrk time {value!r}")
    n = float(m.group(1))
    return n * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}[m.group(2)]


def parse_wrk(text):
    out = {"rps": None, "p50_ms": None, "p99_ms": None, "p999_ms": None, "requests": None, "non2xx": 0, "socket_errors": 0}
    for line in text.splitlines():
        s = line.strip()
        m = re.match(r"^(50|99)(?:\.0+)?%\s+(\S+)$", s)
        if m:
            out["p50_ms" if m.group(1) == "50" else "p99_ms"] = to_ms(m.group(2))
        elif s.startswith("p99.9 latency:"):
            # printed by bench/latency.lua, in µs
            out["p999_ms"] = int(s.split(":")[1].strip().rstrip("us")) / 1000.0
        elif s.startswith("Requests/sec:"):
            out["rps"] = float(s.split()[1])
        elif s.startswith("Non-2xx or 3xx responses:"):
            out["non2xx"] = int(s.split()[-1])
        elif s.startswith("Socket errors:"):
            out["socket_errors"] = sum(int(n) for n in re.findall(r"\d+", s))
        else:
            m = re.match(r"^(\d+) requests in", s)
            if m:
                out["requests"] = int(m.group(1))
    missing = [k for k in ("rps", "p50_ms", "p99_ms") if out[k] is None]
    if missing:
        raise ValueError(f"wrk output lacks {', '.join(missing)} (was --latency given?)")
    return out


def fmt_ms(ms):
    if ms is None:
        return "n/a"
    if abs(ms) < 1:
        return f"{ms * 1000:.0f} µs"
    if abs(ms) < 10:
        return f"{ms:.2f} ms"
    return f"{ms:.1f} ms"


def cmd_wrk_summary(path):
    with open(path) as f:
        r = parse_wrk(f.read())
    extra = ""
    if r["non2xx"] or r["socket_errors"]:
        extra = f"  !! non-2xx {r['non2xx']}, socket errors {r['socket_errors']}"
    print(f"{r['rps']:>10,.0f} req/s  p50 {fmt_ms(r['p50_ms']):>9}  p99 {fmt_ms(r['p99_ms']):>9}{extra}")


# ---------------------------------------------------------------------------- /proc


def stat_fields(pid):
    """Fields 3 onwards of /proc/PID/stat (after the command name, which may hold spaces)."""
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()


def descendants(pid):
    """The live processes below PID (the node engine's workers below the server)."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                children.setdefault(int(stat_fields(entry)[1]), []).append(int(entry))
            except (OSError, IndexError):
                pass  # ended meanwhile
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def own_cpu_ticks(p, with_ended_children=False):
    """utime+stime of process P's threads (and of its waited-for children that ended)."""
    # fields[0] is field 3 (state); utime, stime, cutime, cstime are fields 14 to 17.
    f = stat_fields(p)
    ticks = int(f[11]) + int(f[12])
    if with_ended_children:
        ticks += int(f[13]) + int(f[14])
    return ticks


def proc_cpu_seconds(pid):
    """utime+stime of PID, of its waited-for children that ended, and of its live descendants."""
    total = own_cpu_ticks(pid, True)
    for child in descendants(pid):
        try:
            total += own_cpu_ticks(child)
        except OSError:
            pass  # ended meanwhile: counted in its parent's cutime once waited for
    return total / os.sysconf("SC_CLK_TCK")


def status_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} for pid {pid}")


def pss_kib(pid):
    """Proportional set size: shared pages (node's binary and libraries) divided among the
    processes sharing them, so the PSS of many workers adds up to what they take together."""
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1])
    raise RuntimeError(f"no Pss for pid {pid}")


def tree_kib(pid, measure):
    """measure(p) summed over PID and its live descendants (ones that end meanwhile are left out)."""
    total = measure(pid)
    for child in descendants(pid):
        try:
            total += measure(child)
        except (OSError, RuntimeError):
            pass
    return total


def rss_kib(pid):
    return status_kib(pid, "VmRSS")


# ---------------------------------------------------------------------------- HTTP client


class Client:
    """One keep-alive HTTP/1.1 connection (reconnects if the server closes it)."""

    def __init__(self, base_url):
        u = urllib.parse.urlsplit(base_url)
        self.host, self.port = u.hostname, u.port or 80
        self.conn = None

    def request(self, method, path, body=None, headers=None):
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
                self.conn.connect()
                self.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                self.conn.request(method, path, body=body, headers=headers or {})
                resp = self.conn.getresponse()
                data = resp.read()
                if resp.will_close:
                    self.close()
                return resp.status, resp.headers, data
            except (ConnectionError, http.client.BadStatusLine, http.client.RemoteDisconnected):
                self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def add_package(tag, runtime=None):
    """examples/add as a tar.gz, with a distinct comment so that every tag is a distinct version,
    and a config.json naming `runtime` if given."""
    files = {}
    for name in sorted(os.listdir(ADD_DIR)):
        path = os.path.join(ADD_DIR, name)
        if os.path.isfile(path):
            with open(path, "rb") as f:
                files[name] = f.read()
    files["index.js"] = f"// bench copy {tag}\n".encode() + files["index.js"]
    if runtime:
        files["config.json"] = json.dumps({"runtime": runtime}).encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def deploy(client, name, package):
    status, _, body = client.request(
        "PUT", f"/v1/envs/default/functions/{name}", package, {"Content-Type": "application/gzip"}
    )
    if status != 200:
        raise RuntimeError(f"deploy {name}: HTTP {status}: {body[:300]!r}")
    return json.loads(body)["current"]["version"]


def invoke(client, name):
    """POSTs the event; returns (client seconds, request id). The body must be 3."""
    t0 = time.perf_counter()
    status, headers, body = client.request(
        "POST", f"/v1/functions/{name}", EVENT, {"Content-Type": "application/json"}
    )
    elapsed = time.perf_counter() - t0
    if status != 200 or body.strip() != b"3":
        raise RuntimeError(f"invoke {name}: HTTP {status}: {body[:300]!r}")
    return elapsed, headers.get("X-Request-Id")


def fetch_record(client, request_id, wait_s=10.0):
    """Records are written in batches: retry until the record exists."""
    deadline = time.monotonic() + wait_s
    while True:
        status, _, body = client.request("GET", f"/v1/invocations/{request_id}")
        if status == 200:
            return json.loads(body)
        if status != 404 or time.monotonic() > deadline:
            raise RuntimeError(f"record {request_id}: HTTP {status}: {body[:300]!r}")
        time.sleep(0.05)


def parallel(base_url, items, fn, workers):
    """Runs fn(client, item) over items on `workers` threads, one keep-alive connection each."""
    local = threading.local()
    clients = []
    lock = threading.Lock()

    def run(item):
        if not hasattr(local, "client"):
            local.client = Client(base_url)
            with lock:
                clients.append(local.client)
        return fn(local.client, item)

    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(run, items))
    for c in clients:
        c.close()
    return results


def quantile(values, q):
    """Nearest-rank quantile (q in 0..1)."""
    s = sorted(values)
    if not s:
        return None
    k = max(0, min(len(s) - 1, int(-(-q * len(s) // 1)) - 1))
    return s[k]


def summary(values):
    return {
        "n": len(values),
        "median": statistics.median(values) if values else None,
        "p90": quantile(values, 0.9),
        "p99": quantile(values, 0.99),
        "min": min(values) if values else None,
        "max": max(values) if values else None,
    }


# ---------------------------------------------------------------------------- function calls


def cmd_call_latency(url, n, out_path, *names):
    """Sequential invocations of each function in turn on one keep-alive connection, so that
    the machine's drift touches them alike; per function the client latency in ms."""
    n = int(n)
    client = Client(url)
    for name in names:
        for _ in range(max(20, n // 20)):
            invoke(client, name)
    samples = {name: [] for name in names}
    for _ in range(n):
        for name in names:
            elapsed, _ = invoke(client, name)
            samples[name].append(elapsed * 1000)
    client.close()
    out = {name: summary(values) for name, values in samples.items()}
    for name, s in out.items():
        print(f"   {name:<16} p50 {fmt_ms(s['median'])}  p90 {fmt_ms(s['p90'])}  p99 {fmt_ms(s['p99'])}")
    write_json(out_path, out)


# ---------------------------------------------------------------------------- cold start


def cmd_cold(url, n, out_path, runtime="", gap_s="0"):
    n, gap_s = int(n), float(gap_s)
    run_tag = uuid.uuid4().hex[:8]
    names = [f"bench-cold-{i:03d}" for i in range(n)]
    client = Client(url)
    for i, name in enumerate(names):
        deploy(client, name, add_package(f"cold {run_tag} {i}", runtime or None))
    # Warm the connection, then invoke each fresh function once on it (keep-alive: no connect
    # time in the measurement). The gap lets the node engine start the pre-warmed worker that
    # replaces the one the last cold start took, as between a deploy and its first call.
    client.request("GET", "/healthz")
    cold = []
    for name in names:
        time.sleep(gap_s)
        cold.append(invoke(client, name))
    warm = [invoke(client, name) for name in names]  # second call: the same path on a warm instance
    records = [fetch_record(client, rid) for _, rid in cold]
    client.close()
    init_ms = [r["initUs"] / 1000 for r in records if r.get("initUs") is not None]
    result = {
        "n": n,
        "runtime": runtime or "js",
        "gap_s": gap_s,
        "client": "Python http.client, one keep-alive connection opened before the first invoke",
        "client_cold_ms": summary([t * 1000 for t, _ in cold]),
        "client_warm_ms": summary([t * 1000 for t, _ in warm]),
        "init_ms": summary(init_ms),
        "duration_ms": summary([r["durationUs"] / 1000 for r in records if r.get("durationUs") is not None]),
        "cold_flags": sum(1 for r in records if r.get("cold")),
        "records": len(records),
    }
    write_json(out_path, result)
    c, i = result["client_cold_ms"], result["init_ms"]
    print(
        f"  cold invoke, client: median {fmt_ms(c['median'])}, p90 {fmt_ms(c['p90'])}, p99 {fmt_ms(c['p99'])}; "
        f"server initUs: median {fmt_ms(i['median'])}, p90 {fmt_ms(i['p90'])} "
        f"({result['cold_flags']}/{n} records marked cold); "
        f"warm invoke, client: median {fmt_ms(result['client_warm_ms']['median'])}"
    )


# ---------------------------------------------------------------------------- RSS per instance


def settle_rss(pid, seconds=1.0):
    time.sleep(seconds)
    return rss_kib(pid)


def cmd_rss(url, pid, n, out_path, workers=4):
    n, pid, workers = int(n), int(pid), int(workers)
    run_tag = uuid.uuid4().hex[:8]
    names = [f"bench-rss-{i:05d}" for i in range(n)]
    packages = {name: add_package(f"rss {run_tag} {i}") for i, name in enumerate(names)}
    rss_start = settle_rss(pid)

    t0 = time.monotonic()
    parallel(url, names, lambda c, name: deploy(c, name, packages[name]), workers)
    deploy_s = time.monotonic() - t0
    rss_deployed = settle_rss(pid)

    t0 = time.monotonic()
    parallel(url, names, lambda c, name: invoke(c, name), workers)
    invoke_s = time.monotonic() - t0
    rss_invoked = settle_rss(pid)

    result = {
        "n": n,
        "workers": workers,
        "rss_start_kib": rss_start,
        "rss_deployed_kib": rss_deployed,
        "rss_invoked_kib": rss_invoked,
        "deploy_seconds": deploy_s,
        "invoke_seconds": invoke_s,
        "deploy_kib_per_function": (rss_deployed - rss_start) / n,
        "warm_instance_kib": (rss_invoked - rss_deployed) / n,
    }
    write_json(out_path, result)
    print(
        f"  VmRSS {rss_start / 1024:.1f} MiB at start -> {rss_deployed / 1024:.1f} MiB after {n} deploys "
        f"({deploy_s:.1f} s) -> {rss_invoked / 1024:.1f} MiB after invoking each once ({invoke_s:.1f} s): "
        f"{result['warm_instance_kib']:.0f} KiB per warm instance, "
        f"{result['deploy_kib_per_function']:.1f} KiB per deployed function"
    )


def cmd_node_memory(url, pid, n, out_path, runtime):
    """The node engine's memory: its pre-warmed pool on an idle server, then per warm worker."""
    n, pid = int(n), int(pid)
    time.sleep(2.0)  # the pre-warmed pool starts in the background
    pool = descendants(pid)
    if not pool:
        raise RuntimeError("the server has no child processes: no pre-warmed node workers")
    pool_rss = sum(rss_kib(p) for p in pool)
    pool_pss = sum(pss_kib(p) for p in pool)
    rss_before, pss_before = tree_kib(pid, rss_kib), tree_kib(pid, pss_kib)
    run_tag = uuid.uuid4().hex[:8]
    names = [f"bench-node-{i:03d}" for i in range(n)]
    client = Client(url)
    for i, name in enumerate(names):
        deploy(client, name, add_package(f"node {run_tag} {i}", runtime))
    for name in names:
        invoke(client, name)
        time.sleep(0.3)  # the pre-warmed pool refills before the next cold start
    client.close()
    time.sleep(2.0)
    workers = len(descendants(pid)) - len(pool)
    rss_after, pss_after = tree_kib(pid, rss_kib), tree_kib(pid, pss_kib)
    result = {
        "n": n,
        "pool_workers": len(pool),
        "pool_rss_kib": pool_rss,
        "pool_pss_kib": pool_pss,
        "server_rss_kib": rss_kib(pid),
        "warm_workers": workers,
        "rss_per_worker_kib": (rss_after - rss_before) / n,
        "pss_per_worker_kib": (pss_after - pss_before) / n,
    }
    write_json(out_path, result)
    print(
        f"  pre-warmed pool: {len(pool)} workers, RSS {pool_rss / 1024:.1f} MiB, PSS {pool_pss / 1024:.1f} MiB; "
        f"{n} node functions invoked once ({workers} workers more): "
        f"{result['rss_per_worker_kib'] / 1024:.1f} MiB RSS, {result['pss_per_worker_kib'] / 1024:.1f} MiB PSS per warm worker"
    )


# ---------------------------------------------------------------------------- HTTP functions


SSE_EVENT = re.compile(rb"data: ([0-9.]+)\n\n")


def read_sse(url, path, timeout=60.0):
    """GETs an event stream over a fresh connection and returns, per event, the time it arrived
    (time.time(), ms) minus the time the function wrote it (the event's data, in ms of the same
    wall clock). A raw socket, timestamped at each recv, so that no buffering of the client
    holds an event back; the events are matched in the raw bytes, chunked framing and all
    (each event is one small write, so one chunk)."""
    u = urllib.parse.urlsplit(url)
    sock = socket.create_connection((u.hostname, u.port or 80), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    request = f"GET {path} HTTP/1.1\r\nHost: {u.netloc}\r\nAccept: text/event-stream\r\nConnection: close\r\n\r\n"
    sock.sendall(request.encode())
    buf, body_at, pos, latencies = b"", None, 0, []
    try:
        while True:
            data = sock.recv(65536)
            now_ms = time.time() * 1000
            if not data:
                break
            buf += data
            if body_at is None:
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    continue
                status = buf.split(b" ", 2)[1]
                if status != b"200":
                    raise RuntimeError(f"GET {url}{path}: HTTP {status.decode()}: {buf[:300]!r}")
                body_at = pos = end + 4
            for m in SSE_EVENT.finditer(buf, pos):
                latencies.append(now_ms - float(m.group(1)))
                pos = m.end()
    finally:
        sock.close()
    return latencies


def cmd_sse(
    cloudlet_url,
    direct_url,
    events,
    rounds,
    interval_ms,
    out_path,
    cloudlet_path="/v1/functions/http-sse/web/",
    direct_path="/",
):
    """The latency Cloudlet adds to each event of a stream: http-sse read through Cloudlet (or,
    with CLOUDLET_PATH, a function's context.sse() stream with the same events) and from the
    same app started directly, in alternating rounds so that the machine's drift touches both
    alike."""
    events, rounds, interval_ms = int(events), int(rounds), float(interval_ms)
    per_round = max(1, -(-events // rounds))
    query = f"?n={per_round}&interval={interval_ms:g}"
    paths = {"cloudlet": cloudlet_path + query, "direct": direct_path + query}
    urls = {"cloudlet": cloudlet_url, "direct": direct_url}
    warm = f"?n=20&interval={interval_ms:g}"
    read_sse(cloudlet_url, cloudlet_path + warm)  # starts the instance
    read_sse(direct_url, direct_path + warm)
    samples = {"cloudlet": [], "direct": []}
    # A stall of the machine (this VM has them, of 1 to 10 ms) delays whichever stream runs at
    # that moment; what other processes did meanwhile tells whether the tail is the machine's.
    busy0, t0 = machine_busy_seconds(), time.monotonic()
    for _ in range(rounds):
        for key in ("cloudlet", "direct"):
            got = read_sse(urls[key], paths[key])
            if len(got) != per_round:
                raise RuntimeError(f"{key}: {len(got)} events of {per_round}")
            samples[key].extend(got)
    busy = (machine_busy_seconds() - busy0) / (time.monotonic() - t0) * 100
    out = {
        "events": len(samples["cloudlet"]),
        "rounds": rounds,
        "per_stream": per_round,
        "interval_ms": interval_ms,
        "cloudlet_ms": summary(samples["cloudlet"]),
        "direct_ms": summary(samples["direct"]),
        "samples_ms": samples,
        "machine_busy_percent": busy,
    }
    c, d = out["cloudlet_ms"], out["direct_ms"]
    out["added_p50_ms"] = c["median"] - d["median"]
    out["added_p99_ms"] = c["p99"] - d["p99"]
    write_json(out_path, out)
    print(
        f"   {out['events']} events each way: through cloudlet p50 {fmt_ms(c['median'])} p99 {fmt_ms(c['p99'])}; "
        f"direct p50 {fmt_ms(d['median'])} p99 {fmt_ms(d['p99'])}; "
        f"added p50 {fmt_ms(out['added_p50_ms'])}, p99 {fmt_ms(out['added_p99_ms'])}; "
        f"the machine was {busy:.0f} % busy meanwhile (100 % = one core)"
    )


def cmd_lua_body(path):
    """Prints the body a wrk script (`wrk.body = '…'`) sends, for checking it with curl."""
    with open(path) as f:
        for line in f:
            m = re.match(r"wrk\.body\s*=\s*'(.*)'\s*$", line)
            if m:
                print(m.group(1).replace("\\\\", "\\"))
                return
    raise SystemExit(f"{path} sets no wrk.body")


def http_package(function_dir, tag):
    """An HTTP function's folder as a tar.gz (executable bits kept), with a distinct comment in
    app.js so that every tag is a distinct version."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name in sorted(os.listdir(function_dir)):
            path = os.path.join(function_dir, name)
            if not os.path.isfile(path):
                continue
            with open(path, "rb") as f:
                data = f.read()
            if name == "app.js":
                data = f"// bench copy {tag}\n".encode() + data
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755 if os.access(path, os.X_OK) else 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


# The variables Cloudlet passes on to an instance (crates/runtime/src/http/launch.rs): the app
# started directly gets these and PORT, so that it starts as it would under Cloudlet. (A variable
# such as NODE_EXTRA_CA_CERTS alone makes node read a certificate bundle at startup, about 90 ms.)
APP_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "USER")


def start_directly(cmd, cwd, expect):
    """Starts the app as its own process with PORT set and connects every 1 ms (as Cloudlet
    probes a new instance) until it accepts; then sends one GET / on that connection. Returns
    (seconds to accept, seconds to the whole first response), both from just before the spawn."""
    import subprocess

    port = free_port()
    env = {k: os.environ[k] for k in APP_ENV if k in os.environ}
    env["PORT"] = str(port)
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            sock = socket.socket()
            try:
                sock.connect(("127.0.0.1", port))
                break
            except ConnectionRefusedError:
                sock.close()
            if proc.poll() is not None:
                raise RuntimeError(f"{' '.join(cmd)} exited ({proc.returncode}) before accepting connections")
            if time.perf_counter() - t0 > 10:
                raise RuntimeError(f"{' '.join(cmd)} did not accept connections within 10 s")
            time.sleep(0.001)
        accepted = time.perf_counter() - t0
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(10)
        sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        got = b""
        while not got.endswith(expect):
            data = sock.recv(65536)
            if not data:
                raise RuntimeError(f"{' '.join(cmd)}: the connection closed before {expect!r}: {got[:300]!r}")
            got += data
        answered = time.perf_counter() - t0
        sock.close()
    finally:
        proc.kill()
        proc.wait()
    return accepted, answered


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cmd_http_cold(url, n, out_path, function_dir):
    """HTTP-function cold start against the app's own start. N copies of the function, each a
    distinct version, are deployed; then, for each in turn, the app is started directly (`node
    app.js`, and its scf_bootstrap) and the copy is invoked for the first time through Cloudlet,
    so that drift in the machine's speed touches both alike."""
    n = int(n)
    expect = b"hello"
    run_tag = uuid.uuid4().hex[:8]
    names = [f"bench-http-cold-{i:03d}" for i in range(n)]
    client = Client(url)
    for i, name in enumerate(names):
        deploy(client, name, http_package(function_dir, f"http cold {run_tag} {i}"))
    # node's files into the page cache, so that the first direct start is not slower than the
    # rest; Cloudlet's first cold start is measured as it comes, any one-time cost included.
    start_directly(["node", "app.js"], function_dir, expect)
    client.request("GET", "/healthz")
    own, boot, cold = [], [], []
    for name in names:
        own.append(start_directly(["node", "app.js"], function_dir, expect))
        boot.append(start_directly(["./scf_bootstrap"], function_dir, expect))
        time.sleep(0.05)
        t0 = time.perf_counter()
        status, headers, body = client.request("GET", f"/v1/functions/{name}/web/")
        elapsed = time.perf_counter() - t0
        if status != 200 or body != expect:
            raise RuntimeError(f"GET /v1/functions/{name}/web/: HTTP {status}: {body[:300]!r}")
        cold.append((elapsed, headers.get("X-Request-Id")))
    warm = []
    for name in names:
        t0 = time.perf_counter()
        status, _, body = client.request("GET", f"/v1/functions/{name}/web/")
        warm.append(time.perf_counter() - t0)
        if status != 200 or body != expect:
            raise RuntimeError(f"GET /v1/functions/{name}/web/ (warm): HTTP {status}: {body[:300]!r}")
    records = [fetch_record(client, rid) for _, rid in cold]
    client.close()
    result = {
        "n": n,
        "own_accept_ms": summary([a * 1000 for a, _ in own]),
        "own_first_response_ms": summary([r * 1000 for _, r in own]),
        "bootstrap_accept_ms": summary([a * 1000 for a, _ in boot]),
        "bootstrap_first_response_ms": summary([r * 1000 for _, r in boot]),
        "client_cold_ms": summary([t * 1000 for t, _ in cold]),
        "client_warm_ms": summary([t * 1000 for t in warm]),
        "init_ms": summary([r["initUs"] / 1000 for r in records if r.get("initUs") is not None]),
        "duration_ms": summary([r["durationUs"] / 1000 for r in records if r.get("durationUs") is not None]),
        "cold_flags": sum(1 for r in records if r.get("cold")),
        "records": len(records),
    }
    write_json(out_path, result)
    r = result
    print(
        f"   the app's own start (node app.js, to accept): median {fmt_ms(r['own_accept_ms']['median'])}, "
        f"to its first response {fmt_ms(r['own_first_response_ms']['median'])}; "
        f"via ./scf_bootstrap: {fmt_ms(r['bootstrap_accept_ms']['median'])}"
    )
    print(
        f"   cloudlet cold, client end-to-end: median {fmt_ms(r['client_cold_ms']['median'])} "
        f"(p90 {fmt_ms(r['client_cold_ms']['p90'])}); initUs median {fmt_ms(r['init_ms']['median'])} "
        f"({r['cold_flags']}/{r['records']} records marked cold); warm: {fmt_ms(r['client_warm_ms']['median'])}"
    )


# ---------------------------------------------------------------------------- machine facts


def cmd_idle_connections(url, pid, n, out_path):
    """Opens N connections that send nothing, and reads the server's VmRSS before and after."""
    import resource

    pid, n = int(pid), int(n)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n + 64:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, n + 256), hard))
    host, port = urllib.parse.urlsplit(url).netloc.rsplit(":", 1)
    before = settle_rss(pid)
    sockets = []
    started = time.monotonic()
    for _ in range(n):
        sockets.append(socket.create_connection((host, int(port))))
    opened_s = time.monotonic() - started
    # Read within the keep-alive timeout (5 s), while the server still holds them all.
    time.sleep(0.5)
    after = rss_kib(pid)
    client = Client(url)
    status, _, _ = client.request("GET", "/healthz")
    for sock in sockets:
        sock.close()
    result = {
        "n": n,
        "rss_before_kib": before,
        "rss_after_kib": after,
        "kib_per_connection": (after - before) / n,
        "open_seconds": opened_s,
        "healthz_status": status,
    }
    print(f"   {n} idle connections: VmRSS {before / 1024:.1f} -> {after / 1024:.1f} MiB "
          f"({result['kib_per_connection']:.1f} KiB each); GET /healthz meanwhile: {status}")
    write_json(out_path, result)


def first_line(cmd):
    import subprocess

    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=10, cwd=REPO)
    except (OSError, subprocess.SubprocessError):
        return None
    out = (p.stdout or p.stderr).strip().splitlines()
    return out[0].strip() if out else None


def machine_busy_seconds():
    """CPU seconds spent busy (neither idle nor iowait) on all CPUs since boot; steal counts as busy."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return (sum(v) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")


def cpu_busy_percent(seconds=2.0):
    """Share of all CPUs busy (not idle/iowait) over `seconds`: other load on the machine."""

    def sample():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        idle = v[3] + (v[4] if len(v) > 4 else 0)
        return sum(v[:8]), idle

    t0, i0 = sample()
    time.sleep(seconds)
    t1, i1 = sample()
    return 100.0 * (1 - (i1 - i0) / max(1, t1 - t0))


def cmd_facts(out_path, wrk_desc):
    facts = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "wrk_desc": wrk_desc}
    facts["nproc"] = str(os.cpu_count())
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    facts["cpu_model"] = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    facts["mem_total"] = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                    break
        with open("/proc/loadavg") as f:
            facts["loadavg"] = " ".join(f.read().split()[:3])
    except OSError:
        pass
    try:
        facts["busy_before"] = f"{cpu_busy_percent():.0f} % of all CPUs over 2 s"
    except OSError:
        pass
    facts["kernel"] = first_line(["uname", "-sr"])
    facts["rustc"] = first_line(["rustc", "--version"])
    facts["node"] = first_line(["node", "--version"])
    wrk = first_line(["wrk", "-v"])
    facts["wrk"] = wrk.split(" Copyright")[0] if wrk else None
    commit = first_line(["git", "rev-parse", "--short", "HEAD"])
    if commit:
        dirty = first_line(["git", "status", "--porcelain", "--untracked-files=no"])
        facts["commit"] = commit + (" (with uncommitted changes)" if dirty else "")
    write_json(out_path, facts)


# ---------------------------------------------------------------------------- report


SERVERS = [
    ("cloudlet", "cloudlet"),
    ("cloudlet-healthz", "cloudlet GET /healthz"),
    ("cloudlet-1w", "cloudlet, 1 worker thread"),
    ("cloudlet-1w-healthz", "cloudlet GET /healthz, 1 worker thread"),
    ("cloudlet-node", "cloudlet, node engine"),
    ("cloudlet-chain", "cloudlet, call-add → add (js engine)"),
    ("hyper-mt", "hyper (mt)"),
    ("hyper-st", "hyper (st)"),
    ("node", "node"),
]


def write_json(path, value):
    with open(path, "w") as f:
        json.dump(value, f, indent=1)


def load_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return None


def server_results(d, key):
    """Median of the measured wrk runs of one server, or None if it was not run."""
    runs = []
    i = 1
    while os.path.exists(os.path.join(d, f"wrk-{key}-{i}.txt")):
        with open(os.path.join(d, f"wrk-{key}-{i}.txt")) as f:
            runs.append(parse_wrk(f.read()))
        i += 1
    if not runs:
        return None
    meta = load_json(os.path.join(d, f"meta-{key}.json")) or {}
    return {
        "runs": runs,
        "rps": statistics.median(r["rps"] for r in runs),
        "p50_ms": statistics.median(r["p50_ms"] for r in runs),
        "p99_ms": statistics.median(r["p99_ms"] for r in runs),
        "p999_ms": statistics.median(r["p999_ms"] for r in runs) if all(r["p999_ms"] is not None for r in runs) else None,
        "errors": sum(r["non2xx"] + r["socket_errors"] for r in runs),
        **meta,
    }


def engine_us_per_call(d):
    """The js engine's median µs per warm call of examples/add (cargo bench), or None."""
    try:
        with open(os.path.join(d, "engine.txt")) as f:
            for line in f:
                if line.startswith("add (examples/add"):
                    return float(line.split("µs/call")[0].split()[-1])
    except (FileNotFoundError, ValueError, IndexError):
        pass
    return None


def node_floor(d):
    """The node engine alone (cargo bench --bench node_worker): (µs per sequential call on one
    warm worker, calls/s with 32 in flight, the in-flight count), or None."""
    try:
        with open(os.path.join(d, "node-floor.txt")) as f:
            text = f.read()
        seq = float(re.search(r"sequential:\s*([\d.]+) µs/call", text).group(1))
        m = re.search(r"(\d+) calls in flight:\s*([\d.]+) calls/s", text)
        return seq, float(m.group(2)), int(m.group(1))
    except (FileNotFoundError, AttributeError, ValueError):
        return None


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def fmt_ratio(r, target=None):
    if r is None:
        return "n/a"
    s = f"{r:.2f}×"
    if target is not None:
        s += " ✓" if r >= target else " ✗"
    return s


def verdict(ok):
    return "n/a" if ok is None else ("PASS" if ok else "FAIL")


def render_table(rows, md):
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        if md:
            lines.append("| " + " | ".join(str(c) for c in row) + " |")
            if n == 0:
                lines.append("|" + "|".join("---" for _ in row) + "|")
        else:
            cells = [str(c).ljust(widths[i]) if i == 0 else str(c).rjust(widths[i]) for i, c in enumerate(row)]
            lines.append("  ".join(cells).rstrip())
            if n == 0:
                lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def node_targets(targets, res, floor, cold_node, node_mem, skipped, ran):
    """The node engine's rows of the targets table, for the phases that ran."""
    node_rps = res["cloudlet-node"]["rps"] if res.get("cloudlet-node") else None
    bare_rps = res["node"]["rps"] if res.get("node") else None
    r = ratio(node_rps, bare_rps)
    ok = None if r is None else r >= TARGET_NODE_VS_NODE
    if "throughput" in ran:
        targets.append(
            ["throughput cloudlet, node engine / node (the same handler)", fmt_ratio(r), f"≥ {TARGET_NODE_VS_NODE}×", verdict(ok)]
        )
    if floor is None:
        if "engine" in ran:
            targets.append(["node engine alone", "skipped: " + skipped.get("node-floor", "not run"), "", ""])
    else:
        seq_us, floor_rps, in_flight = floor
        targets.append(["node engine alone, one warm worker, one call at a time", f"{seq_us:.1f} µs/call", "(reported)", ""])
        targets.append(
            [f"node engine alone, {in_flight} calls in flight (the floor)", f"{floor_rps:,.0f} calls/s", "(reported)", ""]
        )
        targets.append(["throughput cloudlet, node engine / the floor", fmt_ratio(ratio(node_rps, floor_rps)), "(reported)", ""])
    if cold_node:
        c = cold_node["client_cold_ms"]
        targets.append(
            [f"node cold start, client end-to-end, p50 ({c['n']} functions)", fmt_ms(c["median"]), f"≤ {TARGET_NODE_COLD_P50_MS:g} ms", verdict(c["median"] <= TARGET_NODE_COLD_P50_MS)]
        )
        targets.append(
            ["node cold start, client end-to-end, p99", fmt_ms(c["p99"]), f"≤ {TARGET_NODE_COLD_P99_MS:g} ms", verdict(c["p99"] <= TARGET_NODE_COLD_P99_MS)]
        )
        i = cold_node["init_ms"]
        targets.append(["node cold start, server-side initUs", f"{fmt_ms(i['median'])} (p99 {fmt_ms(i['p99'])})", "(reported)", ""])
    elif "node" in ran:
        targets.append(["node cold start", "skipped: " + skipped.get("cold-node", "not run"), "", ""])
    if node_mem:
        m = node_mem
        targets.append(
            [
                f"node pre-warmed pool, idle ({m['pool_workers']} workers)",
                f"RSS {m['pool_rss_kib'] / 1024:.1f} MiB, PSS {m['pool_pss_kib'] / 1024:.1f} MiB",
                "(reported)",
                "",
            ]
        )
        targets.append(
            [
                f"per warm node worker ({m['n']} functions)",
                f"RSS {m['rss_per_worker_kib'] / 1024:.1f} MiB, PSS {m['pss_per_worker_kib'] / 1024:.1f} MiB",
                "(reported)",
                "",
            ]
        )
    elif "node" in ran:
        targets.append(["node engine memory", "skipped: " + skipped.get("node-memory", "not run"), "", ""])


def call_targets(targets, res, calls, skipped, ran):
    """The rows of functions calling functions: the chain's throughput against add alone, and
    the p50 latency one call adds over invoking its callee directly."""
    chain = res["cloudlet-chain"]["rps"] if res.get("cloudlet-chain") else None
    add = res["cloudlet"]["rps"] if res.get("cloudlet") else None
    r = ratio(chain, add)
    if "throughput" in ran:
        targets.append(
            ["throughput call-add → add / add alone (js engine)", fmt_ratio(r), f"≥ {TARGET_CHAIN_VS_ADD}×", verdict(None if r is None else r >= TARGET_CHAIN_VS_ADD)]
        )
    if not calls or "add" not in calls:
        if "calls" in ran:
            targets.append(["function-to-function call latency", "skipped: " + skipped.get("calls", "not run"), "", ""])
        return
    direct = calls["add"]["median"]
    js = calls["call-add"]["median"] - direct
    targets.append(
        [
            f"a call adds, js engine, p50 (call-add {fmt_ms(calls['call-add']['median'])} − add {fmt_ms(direct)})",
            f"{js * 1000:.0f} µs",
            f"≤ {TARGET_JS_CALL_US:g} µs",
            verdict(js * 1000 <= TARGET_JS_CALL_US),
        ]
    )
    if "call-add-node" in calls:
        node = calls["call-add-node"]["median"] - direct
        targets.append(
            [
                f"a call adds, real wx-server-sdk in the node engine, p50 (call-add-node {fmt_ms(calls['call-add-node']['median'])} − add)",
                fmt_ms(node),
                f"≤ {TARGET_NODE_CALL_MS:g} ms",
                verdict(node <= TARGET_NODE_CALL_MS),
            ]
        )
    else:
        targets.append(["a call adds, real wx-server-sdk in the node engine", "skipped: " + skipped.get("calls-node", "not run"), "", ""])


HTTP_SERVERS = [
    ("http-cloudlet", "cloudlet → http-hello"),
    ("http-cloudlet-1w", "cloudlet, 1 worker thread → http-hello"),
    ("http-proxy-st", "bare hyper proxy (st) → the app"),
    ("http-proxy-mt", "bare hyper proxy (mt) → the app"),
    ("http-direct", "the app directly (node)"),
]

# Every phase of bench/run.sh, in the order it runs them (its PHASES knob picks some).
ALL_PHASES = ["engine", "throughput", "isolation", "calls", "cold", "node", "rss", "idle", "http", "access", "sdk", "async", "messages"]

ACCESS_SERVERS = [
    ("access-invoke", "cloudlet, invoke API → sum"),
    ("access-route", "cloudlet, route → sum"),
    ("access-invoke-event", "cloudlet, invoke API → sum, the route's event as the body"),
    ("access-hyper-st", "hyper (st)"),
]


def phases_run(d):
    try:
        with open(os.path.join(d, "phases.txt")) as f:
            return set(f.read().split())
    except FileNotFoundError:
        return set(ALL_PHASES)


def cpu_per_request(key, r):
    """CPU µs per request of the front (Cloudlet's process, or the proxy) and of the app behind
    it, over all measured runs."""
    requests = sum(x["requests"] or 0 for x in r["runs"])
    if not requests or r.get("cpu_seconds") is None:
        return "n/a"
    total = r["cpu_seconds"] / requests * 1e6
    if key == "http-direct":
        return f"— / {total:.1f}"
    front = r["first_process_cpu_seconds"] / requests * 1e6
    return f"{front:.1f} / {total - front:.1f}"


def http_report(d, skipped):
    """The HTTP functions phase: (rows for the targets table, the throughput table's rows or
    None, the Markdown section's lines)."""
    res = {key: server_results(d, key) for key, _ in HTTP_SERVERS}
    sse = load_json(os.path.join(d, "http-sse.json"))
    cold = load_json(os.path.join(d, "http-cold.json"))

    def rps(key):
        return res[key]["rps"] if res.get(key) else None

    targets, md = [], []
    table = None
    if any(res.values()):
        header = ["server", "req/s", "p50", "p99", "÷ proxy (st)", "÷ proxy (mt)", "÷ app direct", "CPU (with the app)", "CPU µs per request: front / app"]
        table = [header]
        for key, label in HTTP_SERVERS:
            r = res.get(key)
            if r is None:
                table.append([label, "skipped: " + skipped.get(key, "not run")] + [""] * (len(header) - 2))
                continue
            cpu = f"{r['cpu_percent']:.0f} %" if r.get("cpu_percent") is not None else "n/a"
            label_e = label + (f" ({r['errors']} errors!)" if r["errors"] else "")
            table.append(
                [label_e, f"{r['rps']:,.0f}", fmt_ms(r["p50_ms"]), fmt_ms(r["p99_ms"])]
                + [fmt_ratio(ratio(r["rps"], rps(b))) for b in ("http-proxy-st", "http-proxy-mt", "http-direct")]
                + [cpu, cpu_per_request(key, r)]
            )
        # The target is met only against the faster of the two proxy flavours.
        flavours = [k for k in ("http-proxy-st", "http-proxy-mt") if rps(k)]
        best = max(flavours, key=rps) if flavours else None
        r = ratio(rps("http-cloudlet"), rps(best)) if best else None
        ok = None if r is None else r >= TARGET_HTTP_VS_PROXY
        name = dict(HTTP_SERVERS).get(best, "bare hyper proxy").split(" →")[0]
        targets.append([f"HTTP function throughput, cloudlet / {name} (the faster flavour)", fmt_ratio(r), f"≥ {TARGET_HTTP_VS_PROXY}×", verdict(ok)])
        for other in flavours:
            if other != best:
                label = dict(HTTP_SERVERS)[other].split(" →")[0]
                targets.append([f"HTTP function throughput, cloudlet / {label}", fmt_ratio(ratio(rps("http-cloudlet"), rps(other))), "(reported)", ""])
        targets.append(["HTTP function throughput, cloudlet / the app directly", fmt_ratio(ratio(rps("http-cloudlet"), rps("http-direct"))), "(reported)", ""])
        if best:
            targets.append([f"HTTP function throughput, {name} / the app directly", fmt_ratio(ratio(rps(best), rps("http-direct"))), "(reported)", ""])
    else:
        targets.append(["HTTP function throughput", "skipped: " + skipped.get("http-throughput", "not run"), "", ""])
    if sse:
        targets.append(
            [f"SSE: latency cloudlet adds to an event, p50 ({sse['events']} events each way)", fmt_ms(sse["added_p50_ms"]), "(reported)", ""]
        )
        busy = sse.get("machine_busy_percent") or 0
        # The streams themselves keep the machine about 5 % busy (of one core); much more is
        # other processes, whose stalls land in the tails.
        noisy = f" (machine {busy:.0f} % busy: other load)" if busy > SSE_QUIET_BUSY_PERCENT else ""
        targets.append(
            ["SSE: latency cloudlet adds to an event, p99" + noisy, fmt_ms(sse["added_p99_ms"]), f"≤ {TARGET_SSE_ADDED_P99_MS:g} ms", verdict(sse["added_p99_ms"] <= TARGET_SSE_ADDED_P99_MS)]
        )
    else:
        targets.append(["SSE latency", "skipped: " + skipped.get("http-sse", "not run"), "", ""])
    if cold:
        own = cold["own_accept_ms"]["median"]
        added = cold["client_cold_ms"]["median"] - own
        targets.append(
            [
                f"HTTP cold start, client end-to-end − the app's own start, medians ({cold['client_cold_ms']['median']:.1f} − {own:.1f} ms, {cold['n']} functions)",
                fmt_ms(added),
                f"≤ {TARGET_HTTP_COLD_ADDED_MS:g} ms",
                verdict(added <= TARGET_HTTP_COLD_ADDED_MS),
            ]
        )
        targets.append(
            [
                "HTTP cold start, server-side initUs − the app's own start, medians",
                f"{fmt_ms(cold['init_ms']['median'] - own)} (initUs {fmt_ms(cold['init_ms']['median'])})",
                "(reported)",
                "",
            ]
        )
    else:
        targets.append(["HTTP cold start", "skipped: " + skipped.get("http-cold", "not run"), "", ""])

    md.append("## HTTP functions")
    md.append("")
    if table:
        md.append(
            "GET `/` of `bench/functions/http-hello` (Node's `http` module answering `hello`; `config.json` "
            "`instanceConcurrency` 100, so one instance takes all the connections) through `cloudlet serve` at "
            "`/v1/functions/http-hello/web/`, through a bare hyper reverse proxy (`bench-hyper-proxy`: hyper-util's "
            "legacy pooled client, as Cloudlet's HTTP engine uses, with no routing, request ID, lease or record) on "
            "a current-thread (st) and a multi-thread (mt) tokio runtime, and from the app directly. The proxies "
            "and the direct load share one `node app.js`; Cloudlet starts its own. The servers take turns, one wrk "
            "run each per round, with the settings of the throughput phase; medians. The CPU columns count the "
            "app's process with each proxy and with Cloudlet (its instance is its child, beside the node "
            "engine's idle pre-warmed workers); CPU µs per request are over all measured runs: the front "
            "(Cloudlet's server process, or the proxy) and the app behind it."
        )
        md.append("")
        md.append(render_table(table, md=True))
        md.append("")
    if sse:
        c, dd = sse["cloudlet_ms"], sse["direct_ms"]
        md.append(
            f"SSE: `bench/functions/http-sse` writes an event every {sse['interval_ms']:g} ms, each carrying the "
            f"time it was written (`performance.timeOrigin + performance.now()`); a Python client (a raw socket, "
            f"timestamped with `time.time()` at each read) reads {sse['rounds']} streams of {sse['per_stream']} "
            f"events through Cloudlet and as many from the same app started directly, alternating. Arrival − "
            f"write time per event (the whole machine was {sse.get('machine_busy_percent', 0):.0f} % busy meanwhile, "
            f"100 % = one core, the SSE load included; stalls of the machine show in both paths' tails):"
        )
        md.append("")
        sse_rows = [["path", "p50", "p90", "p99", "max"]]
        for label, s in [("through cloudlet", c), ("direct", dd)]:
            sse_rows.append([label, fmt_ms(s["median"]), fmt_ms(s["p90"]), fmt_ms(s["p99"]), fmt_ms(s["max"])])
        sse_rows.append(["added (through − direct)", fmt_ms(sse["added_p50_ms"]), fmt_ms(c["p90"] - dd["p90"]), fmt_ms(sse["added_p99_ms"]), ""])
        md.append(render_table(sse_rows, md=True))
        md.append("")
    if cold:
        rows = [["measure", "median", "p90", "max"]]
        for label, key in [
            ("the app's own start: spawn `node app.js` → it accepts a connection", "own_accept_ms"),
            ("the same, → its first response to GET /", "own_first_response_ms"),
            ("spawn `./scf_bootstrap` (bash, `exec node app.js`) → it accepts", "bootstrap_accept_ms"),
            ("cloudlet cold start, client end-to-end (first GET of a fresh copy)", "client_cold_ms"),
            ("cloudlet cold start, server-side `initUs`", "init_ms"),
            ("cloudlet cold start, server-side `durationUs`", "duration_ms"),
            ("the same GET again, warm instance, client", "client_warm_ms"),
        ]:
            s = cold[key]
            rows.append([label, fmt_ms(s["median"]), fmt_ms(s["p90"]), fmt_ms(s["max"])])
        md.append(
            f"Cold start: {cold['n']} copies of `http-hello`, each a distinct version, deployed to a fresh "
            f"server; then, for each, the app started directly (with `PORT` set, connecting every 1 ms until it "
            f"accepts, as Cloudlet probes a new instance) and the copy's first request through Cloudlet (Python "
            f"`http.client` on a keep-alive connection opened before), in turn. {cold['cold_flags']} of "
            f"{cold['records']} records were marked `cold`."
        )
        md.append("")
        md.append(render_table(rows, md=True))
        md.append("")
    return targets, table, md, res


def access_report(d, skipped):
    """The access phase: (rows for the targets table, the Markdown section's lines, results)."""
    res = {key: server_results(d, key) for key, _ in ACCESS_SERVERS}
    sse = load_json(os.path.join(d, "access-sse.json"))

    def rps(key):
        return res[key]["rps"] if res.get(key) else None

    targets, md = [], ["## The HTTP access service", ""]
    if any(res.values()):
        table = [["load", "req/s", "p50", "p99", "÷ invoke API", "÷ hyper (st)", "server CPU"]]
        for key, label in ACCESS_SERVERS:
            r = res.get(key)
            if r is None:
                table.append([label, "skipped: " + skipped.get(key, "not run"), "", "", "", "", ""])
                continue
            cpu = f"{r['cpu_percent']:.0f} %" if r.get("cpu_percent") is not None else "n/a"
            label_e = label + (f" ({r['errors']} errors!)" if r["errors"] else "")
            table.append(
                [label_e, f"{r['rps']:,.0f}", fmt_ms(r["p50_ms"]), fmt_ms(r["p99_ms"])]
                + [fmt_ratio(ratio(r["rps"], rps(b))) for b in ("access-invoke", "access-hyper-st")]
                + [cpu]
            )
        r = ratio(rps("access-route"), rps("access-invoke"))
        ok = None if r is None else r >= TARGET_ROUTE_VS_INVOKE
        targets.append(["event function behind a route / the same on the invoke API", fmt_ratio(r), f"≥ {TARGET_ROUTE_VS_INVOKE}×", verdict(ok)])
        targets.append(["event function behind a route / hyper (st)", fmt_ratio(ratio(rps("access-route"), rps("access-hyper-st"))), "(reported)", ""])
        targets.append(["event function behind a route / the invoke API given the route's event", fmt_ratio(ratio(rps("access-route"), rps("access-invoke-event"))), "(reported)", ""])
        md.append(
            "POST `{\"x\":1,\"y\":2}` → `3` to `bench/functions/sum` (which reads its input from the event, or "
            "from the integration request's body behind a route) on one `cloudlet serve`: on the invoke API "
            "(`/v1/functions/sum`) and behind a route (`cloudlet routes add /sum sum`, public: the integration "
            "event built from the request, the answer rendered as text), the invoke API again given the very "
            "event the route builds as its body (`bench/post-event.lua`: what the bigger event costs the engine, "
            "apart from the route's own work), with the bare current-thread hyper server in the same rounds; "
            "the settings of the throughput phase; medians."
        )
        md.append("")
        md.append(render_table(table, md=True))
        md.append("")
    else:
        targets.append(["event function behind a route", "skipped: " + skipped.get("access-route", "not run"), "", ""])
    if sse:
        c, dd = sse["cloudlet_ms"], sse["direct_ms"]
        targets.append([f"context.sse(): latency cloudlet adds to an event, p50 ({sse['events']} events each way)", fmt_ms(sse["added_p50_ms"]), "(reported)", ""])
        busy = sse.get("machine_busy_percent") or 0
        noisy = f" (machine {busy:.0f} % busy: other load)" if busy > SSE_QUIET_BUSY_PERCENT else ""
        targets.append(
            ["context.sse(): latency cloudlet adds to an event, p99" + noisy, fmt_ms(sse["added_p99_ms"]), f"≤ {TARGET_SSE_ADDED_P99_MS:g} ms", verdict(sse["added_p99_ms"] <= TARGET_SSE_ADDED_P99_MS)]
        )
        md.append(
            f"`context.sse()`: `bench/functions/sse-js` (js engine, behind a route, read with `Accept: "
            f"text/event-stream`) sends an event every {sse['interval_ms']:g} ms, each carrying the time it was "
            f"sent (`performance.timeOrigin + performance.now()`), as `bench/functions/http-sse` does from a bare "
            f"Node.js server (the baseline: an event written straight to a socket). {sse['rounds']} streams of "
            f"{sse['per_stream']} events each way, alternating; arrival − send time per event (the machine was "
            f"{busy:.0f} % busy meanwhile, 100 % = one core):"
        )
        md.append("")
        rows = [["path", "p50", "p90", "p99", "max"]]
        for label, s_ in [("context.sse() through cloudlet", c), ("bare node server", dd)]:
            rows.append([label, fmt_ms(s_["median"]), fmt_ms(s_["p90"]), fmt_ms(s_["p99"]), fmt_ms(s_["max"])])
        rows.append(["added", fmt_ms(sse["added_p50_ms"]), fmt_ms(c["p90"] - dd["p90"]), fmt_ms(sse["added_p99_ms"]), ""])
        md.append(render_table(rows, md=True))
        md.append("")
    else:
        targets.append(["context.sse() latency", "skipped: " + skipped.get("access-sse", "not run"), "", ""])
    return targets, md, res


def sdk_report(d, skipped):
    """The sdk phase: (rows for the targets table, the Markdown section's lines)."""
    sdk = load_json(os.path.join(d, "sdk.json"))
    if not sdk:
        return [["client SDK", "skipped: " + skipped.get("sdk", "not run"), "", ""]], []
    added = sdk["added_p50_us"] / 1000
    cdn = sdk["cdn"]
    targets = [
        ["client SDK: latency it adds to a callFunction over a bare fetch, p50", fmt_ms(added), f"≤ {TARGET_SDK_ADDED_P50_MS:g} ms", verdict(added <= TARGET_SDK_ADDED_P50_MS)],
        ["client SDK: a 1 MiB field through CDN() / inline, round trip", f"{fmt_ms(cdn['cdn_ms'])} / {fmt_ms(cdn['inline_ms'])}", "(reported)", ""],
    ]
    rows = [["path", "p50", "p90", "p99"]]
    for label, s_ in [("cloud.callFunction (sdk/js)", sdk["sdk"]), ("bare fetch", sdk["fetch"])]:
        rows.append([label, fmt_ms(s_["p50_us"] / 1000), fmt_ms(s_["p90_us"] / 1000), fmt_ms(s_["p99_us"] / 1000)])
    rows.append(["added", fmt_ms(added), fmt_ms((sdk["sdk"]["p90_us"] - sdk["fetch"]["p90_us"]) / 1000), fmt_ms(sdk["added_p99_us"] / 1000)])
    md = [
        "## The client SDK",
        "",
        f"`bench/sdk.mjs` in Node.js against one `cloudlet serve`: `cloud.callFunction({{name: 'sum', data: {{x: 1, y: 2}}}})` "
        f"against a bare `fetch` POST of the same body to the same endpoint (the answer read and parsed), "
        f"{sdk['rounds']} rounds of {sdk['calls']} sequential calls each way, alternating which goes first, after a "
        f"warm-up; the per-call times pooled:",
        "",
        render_table(rows, md=True),
        "",
        f"A 1 MiB string field to `bench/functions/size`, {cdn['rounds']} times each way, medians: inline in the "
        f"event {fmt_ms(cdn['inline_ms'])}; marked with `cloud.CDN()` (uploaded to temporary storage, its URL in "
        f"the event, the function's `fetch` of it in the js engine) {fmt_ms(cdn['cdn_ms'])}.",
        "",
    ]
    return targets, md


# ---------------------------------------------------------------------------- async


def queue_depth(url):
    with urllib.request.urlopen(f"{url}/v1/envs/default/queue", timeout=10) as r:
        return json.load(r)["depth"]


def cmd_async_sustained(url, seconds, connections, out_path):
    """Enqueues `sum` with wrk for `seconds`, then waits for the queue to drain: invocations
    per second from the first enqueue to the last record's success."""
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "async.lua")
    started = time.monotonic()
    wrk = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", script,
         f"{url}/v1/functions/sum"],
        capture_output=True, text=True, check=True,
    )
    enqueued = time.monotonic()
    load = parse_wrk(wrk.stdout)
    while queue_depth(url) > 0:
        if time.monotonic() - enqueued > 600:
            raise SystemExit("the queue did not drain within 10 minutes")
        time.sleep(0.05)
    drained = time.monotonic()
    write_json(out_path, {
        "accepted": load["requests"],
        "non2xx": load["non2xx"],
        "enqueue_rps": load["rps"],
        "seconds": drained - started,
        "drain_s": drained - enqueued,
        "rps": load["requests"] / (drained - started),
    })


def cmd_async_latency(url, n, out_path):
    """`n` asynchronous invocations of `sum`, one at a time on an idle server: from sending
    each to its attempt's end (its record's startedAt + durationUs)."""
    latencies = []
    for i in range(int(n)):
        request_id = f"latency-{i}-{os.getpid()}"
        body = b'{"x":1,"y":2}'
        req = urllib.request.Request(
            f"{url}/v1/functions/sum", data=body, method="POST",
            headers={"content-type": "application/json", "x-invocation-type": "async",
                     "x-request-id": request_id},
        )
        sent_ms = time.time() * 1000
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.status == 202, r.status
        deadline = time.monotonic() + 10
        while True:
            with urllib.request.urlopen(f"{url}/v1/invocations/{request_id}", timeout=10) as r:
                record = json.load(r)
            if record["status"] == "succeeded":
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"{request_id} did not succeed: {record}")
            time.sleep(0.005)
        attempt = record["attempts"][-1]
        ended_ms = attempt["startedAt"] + attempt["durationUs"] / 1000
        latencies.append(ended_ms - sent_ms)
        time.sleep(0.02)
    write_json(out_path, {"n": len(latencies), **summary(latencies)})


def cmd_timer_delay(url, seconds, out_path):
    """Waits `seconds` while bench/functions/tick fires every second, then reads its records:
    the delay from each firing's due time (the second its request ID names) to the start of
    its attempt."""
    time.sleep(float(seconds))
    query = urllib.parse.urlencode({"trigger": "timer:tick", "limit": 1000})
    with urllib.request.urlopen(f"{url}/v1/envs/default/invocations?{query}", timeout=10) as r:
        listed = json.load(r)["invocations"]
    delays = []
    for listed_one in listed:
        if listed_one["status"] != "succeeded":
            continue
        due_s = int(listed_one["requestId"].rsplit(":", 1)[1])
        with urllib.request.urlopen(f"{url}/v1/invocations/{listed_one['requestId']}", timeout=10) as r:
            record = json.load(r)
        delays.append(record["attempts"][-1]["startedAt"] - due_s * 1000)
    write_json(out_path, summary(delays))


def async_report(d, skipped):
    """The async phase: (rows for the targets table, the Markdown section's lines)."""
    enqueue = server_results(d, "async-enqueue")
    runs = enqueue["runs"] if enqueue else []
    sustained = load_json(os.path.join(d, "async-sustained.json"))
    latency = load_json(os.path.join(d, "async-latency.json"))
    if not enqueue or not sustained or not latency:
        return [["asynchronous invocation", "skipped: " + skipped.get("async", "not run"), "", ""]], []
    targets = [
        ["async: durable enqueue, 32 clients, embedded store with fsync", f"{enqueue['rps']:,.0f}/s", f"≥ {TARGET_ASYNC_ENQUEUE_RPS:,}/s", verdict(enqueue["rps"] >= TARGET_ASYNC_ENQUEUE_RPS)],
        ["async: one invocation on an idle server, sent to done, p50", fmt_ms(latency["median"]), f"≤ {TARGET_ASYNC_IDLE_P50_MS:g} ms", verdict(latency["median"] <= TARGET_ASYNC_IDLE_P50_MS)],
        ["async: sustained add, enqueue to succeeded record", f"{sustained['rps']:,.0f}/s", f"≥ {TARGET_ASYNC_SUSTAINED_RPS:,}/s", verdict(sustained["rps"] >= TARGET_ASYNC_SUSTAINED_RPS)],
    ]
    md = [
        "## Asynchronous invocation",
        "",
        f"Durable enqueue: wrk with `bench/async.lua` (`X-Invocation-Type: async`) against `bench/functions/held`, "
        f"which runs one at a time for 10 s so that the queue is barely drained; every `202` waits for the "
        f"queue's synced commit (`synchronous = FULL`, group commit): {enqueue['rps']:,.0f} invocations/s "
        f"(median of {len(runs) or 'the'} runs), p50 {fmt_ms(enqueue['p50_ms'])}, p99 {fmt_ms(enqueue['p99_ms'])}.",
        "",
        f"Sustained: `sum` enqueued by wrk for the run's length and then drained, each invocation leased, run, "
        f"recorded and finished: {sustained['accepted']:,} invocations in {sustained['seconds']:.1f} s "
        f"({sustained['rps']:,.0f}/s; enqueued at {sustained['enqueue_rps']:,.0f}/s, the queue drained "
        f"{sustained['drain_s']:.1f} s after the load stopped).",
        "",
        f"Idle: {latency['n']} invocations of `sum`, one at a time, from sending the request to the end of its "
        f"attempt (its record's `startedAt` + `durationUs`): p50 {fmt_ms(latency['median'])}, "
        f"p90 {fmt_ms(latency['p90'])}, p99 {fmt_ms(latency['p99'])}.",
        "",
    ]
    return targets, md


def messages_report(d, skipped):
    """The messages phase: (rows for the targets table, the Markdown section's lines)."""
    one = server_results(d, "publish-1")
    ten = server_results(d, "publish-10")
    timer = load_json(os.path.join(d, "timer-delay.json"))
    if not one or not ten or not timer:
        return [["published messages and timers", "skipped: " + skipped.get("messages", "not run"), "", ""]], []
    targets = [
        ["messages: publish, 1 subscriber / 10 subscribers, 32 clients", f"{one['rps']:,.0f}/s / {ten['rps']:,.0f}/s", "(reported)", ""],
        ["timers: due time to the attempt's start, p99", f"{timer['p99']:.0f} ms", f"≤ {TARGET_TIMER_DELAY_P99_MS:g} ms", verdict(timer["p99"] <= TARGET_TIMER_DELAY_P99_MS)],
    ]
    md = [
        "## Published messages and timers",
        "",
        f"Publish: wrk with `bench/publish.lua` to `POST /v1/envs/default/topics/bench/x/messages`, every "
        f"`202` after each subscriber's delivery was synced: with one subscriber {one['rps']:,.0f} messages/s "
        f"(p50 {fmt_ms(one['p50_ms'])}), with ten {ten['rps']:,.0f} messages/s, {ten['rps'] * 10:,.0f} "
        f"deliveries/s (p50 {fmt_ms(ten['p50_ms'])}); medians of the runs.",
        "",
        f"Timers: `bench/functions/tick` fired every second; from each firing's due time to the start of its "
        f"attempt, over {timer['n']} firings: p50 {timer['median']:.0f} ms, p90 {timer['p90']:.0f} ms, "
        f"p99 {timer['p99']:.0f} ms (the record's times are whole milliseconds).",
        "",
    ]
    return targets, md


def cmd_report(d, out_md):
    res = {key: server_results(d, key) for key, _ in SERVERS}
    skipped = load_json(os.path.join(d, "skipped.json")) or {}
    facts = load_json(os.path.join(d, "facts.json")) or {}
    cold = load_json(os.path.join(d, "cold.json"))
    rss = load_json(os.path.join(d, "rss.json"))
    idle = load_json(os.path.join(d, "idle.json"))
    cold_node = load_json(os.path.join(d, "cold-node.json"))
    node_mem = load_json(os.path.join(d, "node-memory.json"))
    floor = node_floor(d)
    alone = server_results(d, "isolation-alone")
    beside = server_results(d, "isolation-loops")
    ran = phases_run(d)

    def rps(key):
        return res[key]["rps"] if res.get(key) else None

    r_mt = ratio(rps("cloudlet"), rps("hyper-mt"))
    r_st = ratio(rps("cloudlet"), rps("hyper-st"))
    r_node = ratio(rps("cloudlet"), rps("node"))
    r_floor_node = ratio(rps("cloudlet-healthz"), rps("node"))
    r_share = ratio(rps("cloudlet"), rps("cloudlet-healthz"))
    engine_us = engine_us_per_call(d)
    # One worker thread serves both the HTTP exchange and the JS call, one after the other, so
    # it cannot do better than one /healthz exchange plus one engine call per request.
    bound_rps = None
    if engine_us is not None and rps("cloudlet-1w-healthz"):
        bound_rps = 1e6 / (1e6 / rps("cloudlet-1w-healthz") + engine_us)

    header = ["server", "req/s", "p50", "p99", "÷ hyper (mt)", "÷ hyper (st)", "÷ node", "server CPU"]
    rows = [header]
    for key, label in SERVERS:
        r = res.get(key)
        if r is None:
            rows.append([label, "skipped: " + skipped.get(key, "not run")] + [""] * (len(header) - 2))
            continue
        cpu = f"{r['cpu_percent']:.0f} %" if r.get("cpu_percent") is not None else "n/a"
        label_e = label + (f" ({r['errors']} errors!)" if r["errors"] else "")
        rows.append(
            [label_e, f"{r['rps']:,.0f}", fmt_ms(r["p50_ms"]), fmt_ms(r["p99_ms"])]
            + [fmt_ratio(ratio(r["rps"], rps(b))) for b in ("hyper-mt", "hyper-st", "node")]
            + [cpu]
        )

    ok_mt = None if r_mt is None else r_mt >= TARGET_VS_HYPER
    ok_node = None if r_node is None else r_node >= TARGET_VS_NODE
    cold_med = cold["init_ms"]["median"] if cold and cold["init_ms"]["n"] else None
    ok_cold = None if cold_med is None else cold_med <= TARGET_COLD_MS
    rss_inst = rss["warm_instance_kib"] if rss else None
    ok_rss = None if rss_inst is None else rss_inst <= TARGET_RSS_KIB

    targets = [["check", "measured", "target", "result"]]
    if "throughput" in ran:
        targets.append(
            ["throughput cloudlet / hyper (mt)", fmt_ratio(r_mt), f"≥ {TARGET_VS_HYPER}×", verdict(ok_mt)]
        )
        targets.append(["throughput cloudlet / hyper (st)", fmt_ratio(r_st), "(reported)", ""])
        targets.append(["throughput cloudlet / node", fmt_ratio(r_node), f"≥ {TARGET_VS_NODE}×", verdict(ok_node)])
        targets.append(["throughput cloudlet GET /healthz / node (the same server's HTTP floor)", fmt_ratio(r_floor_node), "(reported)", ""])
        targets.append(["throughput cloudlet / cloudlet GET /healthz", fmt_ratio(r_share), "(reported)", ""])
        targets.append(["throughput cloudlet, 1 worker thread / node", fmt_ratio(ratio(rps("cloudlet-1w"), rps("node"))), "(reported)", ""])
        targets.append(["throughput cloudlet GET /healthz, 1 worker thread / node", fmt_ratio(ratio(rps("cloudlet-1w-healthz"), rps("node"))), "(reported)", ""])
    if engine_us is None:
        if "engine" in ran:
            targets.append(["js engine alone", "skipped: " + skipped.get("engine", "not run"), "", ""])
    else:
        targets.append(["js engine alone, one warm call of add (cargo bench -p cloudlet-runtime)", f"{engine_us:.2f} µs", "(reported)", ""])
        if "throughput" in ran:
            targets.append(
                [
                    "bound on one worker: 1 ÷ (one GET /healthz exchange + one engine call), no record, / node",
                    fmt_ratio(ratio(bound_rps, rps("node"))),
                    "(reported)",
                    "",
                ]
            )
    node_targets(targets, res, floor, cold_node, node_mem, skipped, ran)
    call_targets(targets, res, load_json(os.path.join(d, "calls.json")), skipped, ran)
    if cold:
        c = cold
        targets.append(
            [
                f"cold start, server-side initUs (median of {c['init_ms']['n']})",
                f"{fmt_ms(c['init_ms']['median'])} (p90 {fmt_ms(c['init_ms']['p90'])})",
                f"≤ {TARGET_COLD_MS:g} ms",
                verdict(ok_cold),
            ]
        )
        targets.append(
            [
                "cold start, client end-to-end (keep-alive)",
                f"{fmt_ms(c['client_cold_ms']['median'])} (p90 {fmt_ms(c['client_cold_ms']['p90'])})",
                "(reported)",
                "",
            ]
        )
        targets.append(
            [
                "same call again, warm instance, client",
                f"{fmt_ms(c['client_warm_ms']['median'])} (p90 {fmt_ms(c['client_warm_ms']['p90'])})",
                "(reported)",
                "",
            ]
        )
    elif "cold" in ran:
        targets.append(["cold start", "skipped: " + skipped.get("cold", "not run"), "", ""])
    if rss:
        targets.append(
            [
                f"RSS per warm instance ({rss['n']} functions)",
                f"{rss['warm_instance_kib']:.0f} KiB",
                f"≤ {TARGET_RSS_KIB} KiB",
                verdict(ok_rss),
            ]
        )
        targets.append(
            ["RSS per deployed function (not invoked)", f"{rss['deploy_kib_per_function']:.1f} KiB", "(reported)", ""]
        )
    elif "rss" in ran:
        targets.append(["RSS per warm instance", "skipped: " + skipped.get("rss", "not run"), "", ""])
    if beside:
        ok_p99 = beside["p99_ms"] <= TARGET_LOOPS_P99_MS
        targets.append(["add beside the infinite loops: p99", fmt_ms(beside["p99_ms"]), f"≤ {TARGET_LOOPS_P99_MS:g} ms", verdict(ok_p99)])
        if beside["p999_ms"] is not None:
            ok_p999 = beside["p999_ms"] <= TARGET_LOOPS_P999_MS
            targets.append(["add beside the infinite loops: p99.9", fmt_ms(beside["p999_ms"]), f"≤ {TARGET_LOOPS_P999_MS:g} ms", verdict(ok_p999)])
        if alone:
            targets.append(["add beside the infinite loops: req/s ÷ add alone", fmt_ratio(ratio(beside["rps"], alone["rps"])), "(reported)", ""])
    elif "isolation" in ran:
        targets.append(["isolation", "skipped: " + skipped.get("isolation-loops", "not run"), "", ""])
    if idle:
        targets.append(
            [
                f"RSS with {idle['n']} idle connections",
                f"{idle['rss_after_kib'] / 1024:.1f} MiB ({idle['kib_per_connection']:.1f} KiB each)",
                "(reported)",
                "",
            ]
        )
    elif "idle" in ran:
        targets.append(["RSS with idle connections", "skipped: " + skipped.get("idle", "not run"), "", ""])
    http_md, http_table, http_res = [], None, {}
    if "http" in ran:
        http_rows, http_table, http_md, http_res = http_report(d, skipped)
        targets.extend(http_rows)
    access_md, access_res = [], {}
    if "access" in ran:
        access_rows, access_md, access_res = access_report(d, skipped)
        targets.extend(access_rows)
    sdk_md = []
    if "sdk" in ran:
        sdk_rows, sdk_md = sdk_report(d, skipped)
        targets.extend(sdk_rows)
    async_md = []
    if "async" in ran:
        async_rows, async_md = async_report(d, skipped)
        targets.extend(async_rows)
    messages_md = []
    if "messages" in ran:
        messages_rows, messages_md = messages_report(d, skipped)
        targets.extend(messages_rows)
    isolation = [["load", "req/s", "p50", "p99", "p99.9"]]
    for label, r in [("add alone", alone), ("add beside the infinite loops", beside)]:
        if r:
            isolation.append([label, f"{r['rps']:,.0f}", fmt_ms(r["p50_ms"]), fmt_ms(r["p99_ms"]), fmt_ms(r["p999_ms"])])

    wrk_desc = facts.get("wrk_desc", "wrk")
    warning = None
    if facts.get("busy_before"):
        busy = float(facts["busy_before"].split()[0])
        if busy > 10:
            warning = (
                f"WARNING: other processes kept the machine {busy:.0f} % busy just before the "
                f"measurements; the numbers are noisy and low."
            )
            print("\n" + warning)
    all_res = {**res, **http_res, **access_res}
    all_servers = SERVERS + HTTP_SERVERS + ACCESS_SERVERS
    noisy = [
        f"{label} {all_res[key]['other_percent']:.0f} %"
        for key, label in all_servers
        if all_res.get(key) and (all_res[key].get("other_percent") or 0) > 10
    ]
    if noisy:
        more = (
            "WARNING: other processes used CPU during the measured runs (100 % = one core): "
            + ", ".join(noisy)
            + "; those rows are low."
        )
        warning = more if warning is None else warning + " " + more
        print("\n" + more)
    if "throughput" in ran:
        print()
        print(f"Throughput and latency ({wrk_desc}; medians)")
        print()
        print(render_table(rows, md=False))
    if http_table:
        print()
        print(f"HTTP functions: GET / of http-hello ({wrk_desc}; medians)")
        print()
        print(render_table(http_table, md=False))
    print()
    print(render_table(targets, md=False))
    print()
    if len(isolation) > 1:
        print("Isolation (add alone and beside infinite loops, one server; medians)")
        print()
        print(render_table(isolation, md=False))
        print()

    md = []
    md.append("# Cloudlet benchmark results")
    md.append("")
    md.append(f"Generated by `bench/run.sh` on {facts.get('date', 'unknown date')}.")
    md.append("")
    if warning:
        md.append(f"**{warning}**")
        md.append("")
    if "throughput" in ran:
        md.append("## Throughput and latency")
        md.append("")
        md.append(
            f"POST `{{\"x\":1,\"y\":2}}` → `3` over loopback HTTP/1.1 keep-alive; the servers take turns, one wrk run each per round, so that drift in the machine's speed affects all alike; "
            f"{wrk_desc}; each column is the median of the measured runs, taken per metric. "
            f"\"server CPU\" is the server's utime+stime during the measured runs ÷ wall time "
            f"(100 % = one core; on a 2-core machine wrk takes one core, so a single-threaded server well below "
            f"100 % did not get a full core, a sign of other load). The \"÷\" columns divide the row's req/s by the baseline's: the cloudlet "
            f"row holds the ratios the targets below refer to. \"cloudlet GET /healthz\" is the same cloudlet "
            f"server answering a plain GET with no function and no record: the throughput of its HTTP stack "
            f"alone, which no invocation can exceed. The \"1 worker thread\" rows are a second cloudlet server "
            f"started with `--worker-threads 1`: wrk holds one of the machine's cores, and a second worker "
            f"thread mostly adds scheduling between the workers and wrk."
        )
        md.append("")
        md.append(render_table(rows, md=True))
        md.append("")
    if len(ran) < len(ALL_PHASES):
        md.append(f"Phases run: {' '.join(p for p in ALL_PHASES if p in ran)} (`PHASES`).")
        md.append("")
    md.append("## Targets")
    md.append("")
    md.append(render_table(targets, md=True))
    md.append("")
    if bound_rps is not None and "throughput" in ran:
        floor_us = 1e6 / rps("cloudlet-1w-healthz")
        md.append(
            f"The bound: a worker thread that serves one request spends at least one HTTP exchange on it "
            f"({floor_us:.2f} µs, from the `GET /healthz, 1 worker thread` row) and one call into the js "
            f"engine ({engine_us:.2f} µs, measured alone with hot caches), so one worker cannot exceed "
            f"{bound_rps:,.0f} req/s, whatever the invocation's other work (request ID, record, response "
            f"headers) costs. A second worker only helps when a core is free, and wrk holds one of the two."
        )
        md.append("")
    md.extend(http_md)
    md.extend(access_md)
    md.extend(sdk_md)
    md.extend(async_md)
    md.extend(messages_md)
    if len(isolation) > 1:
        md.append("## Isolation")
        md.append("")
        md.append(
            "A separate cloudlet server with `add` and a function that never returns (`bench/functions/spin`). "
            "Each round measures `add` alone, then starts the infinite loops (their timeout ends them 2 s after "
            "the run) and measures `add` beside them, with the same wrk settings and `bench/latency.lua`, which "
            "also prints the p99.9. The loops leave the request-serving workers after a 10 ms slice and go on in "
            "the long-running lane under SCHED_IDLE."
        )
        md.append("")
        md.append(render_table(isolation, md=True))
        md.append("")
    if idle:
        md.append(
            f"Idle connections: a fresh `cloudlet serve`; VmRSS {idle['rss_before_kib'] / 1024:.1f} MiB before, "
            f"{idle['rss_after_kib'] / 1024:.1f} MiB with {idle['n']} connections open that send nothing (read "
            f"0.5 s after the last opened, before the 5 s keep-alive timeout closes them); `GET /healthz` "
            f"meanwhile answered {idle['healthz_status']}."
        )
        md.append("")
    if cold:
        md.append(
            f"Cold start: {cold['n']} copies of `examples/add`, each with a distinct comment (so a distinct "
            f"version), deployed and then invoked once each. Client time: {cold['client']}, from sending the "
            f"request to reading the whole response. Server time: `initUs` of the invocation record "
            f"(`GET /v1/invocations/{{requestId}}`); {cold['cold_flags']} of {cold['records']} records were "
            f"marked `cold`. The server-side `durationUs` of those cold invocations: median "
            f"{fmt_ms(cold['duration_ms']['median'])}."
        )
        md.append("")
    if cold_node:
        md.append(
            f"Node engine cold start: a fresh `cloudlet serve` (its pre-warmed pool started); {cold_node['n']} copies "
            f"of `examples/add` with `config.json` `{{\"runtime\": \"{cold_node['runtime']}\"}}`, each a distinct "
            f"version, deployed and then invoked once each, {cold_node['gap_s']:g} s apart (the time a deploy "
            f"and its first call are apart at least, in which the pool starts the worker that replaces the one "
            f"taken). Client time as above; `initUs` is the worker's specialisation (loading the function's code "
            f"into a pre-warmed worker). {cold_node['cold_flags']} of {cold_node['records']} records were marked `cold`."
        )
        md.append("")
    if node_mem:
        md.append(
            f"Node engine memory: a fresh `cloudlet serve`; after 2 s, the RSS and PSS (`/proc/PID/smaps_rollup`; "
            f"shared pages divided among the processes sharing them) of its child processes, the pre-warmed pool. "
            f"Then {node_mem['n']} node copies of `add` deployed and invoked once each; per warm worker = the "
            f"growth of the server's and all its children's RSS (PSS) ÷ {node_mem['n']}. The \"server CPU\" "
            f"column of the node engine row includes its workers' CPU."
        )
        md.append("")
    if rss:
        md.append(
            f"RSS: a fresh `cloudlet serve`; VmRSS from `/proc/PID/status` at start "
            f"({rss['rss_start_kib'] / 1024:.1f} MiB), after deploying {rss['n']} distinct functions over the "
            f"HTTP API ({rss['rss_deployed_kib'] / 1024:.1f} MiB, {rss['deploy_seconds']:.1f} s with "
            f"{rss['workers']} parallel clients) and after invoking each once, so that each has one warm "
            f"instance ({rss['rss_invoked_kib'] / 1024:.1f} MiB, {rss['invoke_seconds']:.1f} s). "
            f"Per warm instance = (after invoke − after deploy) ÷ {rss['n']}; per deployed function = "
            f"(after deploy − start) ÷ {rss['n']}."
        )
        md.append("")
    raw = [["server", "req/s", "p50", "p99", "non-2xx / socket errors", "VmRSS after load", "other load"]]
    for key, label in all_servers:
        r = all_res.get(key)
        if r is None:
            continue
        rss_after = f"{r['rss_kib'] / 1024:.1f} MiB" if r.get("rss_kib") else "n/a"
        raw.append(
            [
                label,
                " / ".join(f"{x['rps']:,.0f}" for x in r["runs"]),
                " / ".join(fmt_ms(x["p50_ms"]) for x in r["runs"]),
                " / ".join(fmt_ms(x["p99_ms"]) for x in r["runs"]),
                " / ".join(f"{x['non2xx']}/{x['socket_errors']}" for x in r["runs"]),
                rss_after,
                f"{r['other_percent']:.0f} %" if r.get("other_percent") is not None else "n/a",
            ]
        )
    if len(raw) > 1:
        md.append("## Raw wrk runs")
        md.append("")
        md.append(render_table(raw, md=True))
        md.append("")
        md.append(
            "wrk's p99 includes its coordinated-omission correction, so rare long stalls weigh heavily in it. "
            "\"other load\" is the CPU time the rest of the machine used during the measured runs (all busy "
            "CPU time minus the server's and wrk's, ÷ wall time; 100 % = one core): other processes competing "
            "with the measurement."
        )
        md.append("")
    md.append("## Machine")
    md.append("")
    for k, label in [
        ("nproc", "CPUs (nproc)"),
        ("cpu_model", "CPU model"),
        ("mem_total", "Memory"),
        ("kernel", "Kernel"),
        ("loadavg", "Load average before the measurements"),
        ("busy_before", "CPU busy before the measurements (other processes)"),
        ("rustc", "rustc"),
        ("node", "Node.js"),
        ("wrk", "wrk"),
        ("commit", "Cloudlet commit"),
    ]:
        if facts.get(k):
            md.append(f"- {label}: {facts[k]}")
    md.append("")
    md.append("## Commands")
    md.append("")
    md.append("```sh")
    cmd_file = os.path.join(d, "commands.txt")
    if os.path.exists(cmd_file):
        with open(cmd_file) as f:
            md.append(f.read().rstrip())
    md.append("```")
    md.append("")
    with open(out_md, "w") as f:
        f.write("\n".join(md))
    shown = os.path.relpath(out_md, REPO)
    print(f"Markdown written to {out_md if shown.startswith('..') else shown}")


def main(argv):
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    cmd, args = argv[0], argv[1:]
    if cmd == "freeport":
        print(free_port())
    elif cmd == "wrk-summary":
        cmd_wrk_summary(*args)
    elif cmd == "wrk-json":
        with open(args[0]) as f:
            print(json.dumps(parse_wrk(f.read())))
    elif cmd == "proc-cpu":
        total = sum(proc_cpu_seconds(int(a)) for a in args)
        print(f"{total:.3f} {own_cpu_ticks(int(args[0])) / os.sysconf('SC_CLK_TCK'):.3f}")
    elif cmd == "machine-busy":
        print(f"{machine_busy_seconds():.3f}")
    elif cmd == "rss":
        print(sum(tree_kib(int(a), rss_kib) for a in args))
    elif cmd == "cold":
        cmd_cold(*args)
    elif cmd == "node-memory":
        cmd_node_memory(*args)
    elif cmd == "rss-per-instance":
        cmd_rss(*args)
    elif cmd == "idle-connections":
        cmd_idle_connections(*args)
    elif cmd == "call-latency":
        cmd_call_latency(*args)
    elif cmd == "sse":
        cmd_sse(*args)
    elif cmd == "lua-body":
        cmd_lua_body(*args)
    elif cmd == "http-cold":
        cmd_http_cold(*args)
    elif cmd == "async-sustained":
        cmd_async_sustained(*args)
    elif cmd == "async-latency":
        cmd_async_latency(*args)
    elif cmd == "timer-delay":
        cmd_timer_delay(*args)
    elif cmd == "facts":
        cmd_facts(*args)
    elif cmd == "report":
        cmd_report(*args)
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
