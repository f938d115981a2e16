#!/usr/bin/python3
"""Benchmark of libmimo_notify (issue: the event bridge). Prints one JSON object.

- caller cost of NotifyEvent (p50/p99/p99.9/max, ns) with 1, 2 and 4 producer threads, each
  making 20,000 calls paced (busy-wait) to 10,000 calls/s in total, with the receiver healthy
  and with the receiver hung (accepts, reads, never answers);
- delivered events/s over one keep-alive connection to a C receiver (bench/http_sink.c), beside
  the bridge with its response spin off and a bare libcurl loop, and to the seed's Python
  http.server receiver;
- resident memory: before the first call, running with an empty queue, with the default queue
  full;
- beside the original Go bridge, in the same run (issue 10), when MIMO_GO_BRIDGE_LIB names a
  directory holding the Go bridge built as libspdk_go_notify.so (go build -buildmode=c-shared;
  it is not part of this repository and is never downloaded by it): one program built against
  the Go bridge's interface (bench/notify_peer.c) runs on either library, chosen with
  LD_LIBRARY_PATH - caller cost paced with nanosleep every 1 ms (also with the CPU's caches
  flushed before each call) and every 150 ms (the bridge idle before each call), the seed's burst (4 threads x 2,500 events, then main returns), 1 s and 30 s
  backend outages (500s) with 100 events a second, resident memory idle and with a receiver
  that never answers. MIMO_BENCH_ONLY=peers runs only this part, =latency only its caller
  cost. MIMO_BENCH_BASELINE_LIB may name the lib/ of an older mimo build
  (b3c7aab's) to measure a third library the same way. Each measure RUNS (3) times, the
  libraries taking turns; the summary gives median and range.
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from common import BIN, PY, REPO, bench_env, free_port, machine, run_json, wait_port  # noqa

sys.path.insert(0, os.path.join(REPO, "test", "integration"))
from receivers import Receiver  # noqa: E402

RUNS = int(os.environ.get("MIMO_BENCH_RUNS", "3"))
LIB = os.path.join(os.path.dirname(BIN), "lib")

BENCH = os.path.join(BIN, "notify_bench")


def start_sink(*extra):
    port = free_port()
    p = subprocess.Popen([os.path.join(BIN, "http_sink"), "--port", str(port), *extra],
                         stdout=subprocess.PIPE)
    assert p.stdout.readline().strip() == b"ready"
    return p, f"http://127.0.0.1:{port}/spdk/events"


def stop(p):
    p.terminate()
    p.wait(timeout=10)


def latency(url):
    out = {}
    for threads in (1, 2, 4):
        r = run_json([BENCH, "latency", "--threads", str(threads), "--calls", "20000",
                      "--pace-us", str(100 * threads)],
                     bench_env(MIMO_NOTIFY_URL=url, MIMO_NOTIFY_GRACE_MS=0))
        out[f"{threads}_producers"] = r
    return out


def load():
    with open("/proc/loadavg") as f:
        return f.read().split()[:3]


def build_peer_driver(tmp, go_lib):
    """notify_peer linked the way a Go-bridge program is (-lspdk_go_notify): against the Go
    library when there is one (its DT_NEEDED is then libspdk_go_notify.so, which either
    library satisfies), else against mimo's."""
    exe = os.path.join(tmp, "notify_peer")
    subprocess.run(["cc", "-O2", "-pthread", os.path.join(REPO, "bench", "notify_peer.c"),
                    "-o", exe, "-I" + os.path.join(REPO, "include"), "-L" + (go_lib or LIB),
                    "-lspdk_go_notify"], check=True)
    return exe


def peer_env(libdir, url, tmp):
    """Both bridges read the Go bridge's config file (mimo understands its keys)."""
    cfg = os.path.join(tmp, f"notify_config_{os.path.basename(libdir.rstrip('/'))}.json")
    with open(cfg, "w") as f:
        json.dump({"endpoint": url, "method": "POST", "timeout": "2s", "retry": 2,
                   "retry_backoff_ms": 100}, f)
    return bench_env(MIMO_NOTIFY_CONFIG=cfg, LD_LIBRARY_PATH=libdir)


def sink_log(tmp, name):
    port = free_port()
    log = os.path.join(tmp, name)
    p = subprocess.Popen([os.path.join(BIN, "http_sink"), "--port", str(port), "--log", log],
                         stdout=subprocess.PIPE)
    assert p.stdout.readline().strip() == b"ready"
    return p, f"http://127.0.0.1:{port}/spdk/events", log


def order_stats(events, threads, per_thread):
    """Delivered, duplicates, lost and out-of-order (per thread) of {"thread","seq"} events."""
    seen, dups, disorder = {}, 0, 0
    last = {}
    for e in events:
        p = e.get("payload") or {}
        if "seq" not in p:
            continue
        key = (p["thread"], p["seq"])
        if key in seen:
            dups += 1
            continue
        seen[key] = True
        if p["seq"] < last.get(p["thread"], -1):
            disorder += 1
        last[p["thread"]] = p["seq"]
    return {"delivered": len(seen), "lost": threads * per_thread - len(seen),
            "duplicates": dups, "out_of_order": disorder}


def peer_round(exe, libdir, tmp, capped=True):
    out = {}
    sink, url, _ = sink_log(tmp, "latency.log")
    try:
        env = peer_env(libdir, url, tmp)
        out["latency_nanosleep_1ms"] = run_json(
            [exe, "latency", "--calls", "5000", "--pace-us", "1000", "--sleep"], env)
        # Events a while apart, as a daemon sends them: the bridge's sender has gone idle
        # before every call.
        out["latency_nanosleep_150ms"] = run_json(
            [exe, "latency", "--calls", "100", "--pace-us", "150000", "--sleep"], env)
        # The floor, in the same minute: a call into libc after the same pauses.
        out["floor_strchr_nanosleep_1ms"] = run_json(
            [exe, "latency", "--calls", "5000", "--pace-us", "1000", "--sleep", "--floor"], env)
        out["floor_strchr_nanosleep_150ms"] = run_json(
            [exe, "latency", "--calls", "100", "--pace-us", "150000", "--sleep", "--floor"],
            env)
        out["latency_busy_100us"] = run_json(
            [exe, "latency", "--calls", "20000", "--pace-us", "100"], env)
        out["latency_nanosleep_1ms_l2_flushed"] = run_json(
            [exe, "latency", "--calls", "3000", "--pace-us", "1000", "--sleep",
             "--evict-kib", "2048"], env)
        out["latency_nanosleep_1ms_all_flushed"] = run_json(
            [exe, "latency", "--calls", "1000", "--pace-us", "1000", "--sleep",
             "--evict-kib", "65536"], env)
    finally:
        stop(sink)
    if os.environ.get("MIMO_BENCH_ONLY") == "latency":
        return out

    sink, url, log = sink_log(tmp, "burst.log")
    try:
        t0 = time.monotonic()
        r = run_json([exe, "burst", "--threads", "4", "--events", "2500"],
                     peer_env(libdir, url, tmp))
        r["exit_s"] = round(time.monotonic() - t0, 2)
    finally:
        stop(sink)
    with open(log) as f:
        r.update(order_stats([json.loads(line) for line in f if line.strip()], 4, 2500))
    out["burst_4x2500_then_return"] = r

    for outage_s, seconds_after in ((1, 1), (30, 10)):
        n = 100 * (outage_s + seconds_after)
        rec = Receiver(outage=(20, outage_s, 500))
        rec.start()
        try:
            r = run_json([exe, "paced", "--events", str(n), "--pace-us", "10000"],
                         peer_env(libdir, rec.url, tmp), timeout=outage_s + 120)
        finally:
            rec.stop()
        r.update(order_stats(rec.delivered(), 1, n))
        r["answered_500"] = sum(1 for q in rec.requests if q.status == 500)
        out[f"outage_{outage_s}s_{n}_events"] = r

    hung = subprocess.Popen([os.path.join(BIN, "http_sink"), "--port", str(port := free_port()),
                             "--hang"], stdout=subprocess.PIPE)
    assert hung.stdout.readline().strip() == b"ready"
    try:
        env = peer_env(libdir, f"http://127.0.0.1:{port}/spdk/events", tmp)
        env["MIMO_NOTIFY_GRACE_MS"] = "0"
        # mimo refuses at its cap (ring + queue_max_mb); the Go bridge has none: 20,000
        # events, as the reference measured it.
        limit = "2000000" if capped else "20000"
        out["hung_receiver_fill"] = run_json([exe, "fill", "--events", limit], env,
                                             timeout=300)
    finally:
        stop(hung)
    return out


def summarize(rounds):
    """Median and range of every number, over the rounds."""
    def walk(items):
        first = items[0]
        if isinstance(first, dict):
            return {k: walk([i[k] for i in items if k in i]) for k in first}
        if isinstance(first, (int, float)) and not isinstance(first, bool):
            return {"median": statistics.median(items), "min": min(items), "max": max(items)}
        return first
    return walk(rounds)


def peers():
    go_lib = os.environ.get("MIMO_GO_BRIDGE_LIB")
    if go_lib and not os.path.exists(os.path.join(go_lib, "libspdk_go_notify.so")):
        raise SystemExit(f"MIMO_GO_BRIDGE_LIB={go_lib}: no libspdk_go_notify.so there")
    libs = {"mimo": LIB}
    if go_lib:
        libs["go_bridge"] = go_lib
    if os.environ.get("MIMO_BENCH_BASELINE_LIB"):
        libs["baseline"] = os.environ["MIMO_BENCH_BASELINE_LIB"]
    rounds = {k: [] for k in libs}
    with tempfile.TemporaryDirectory() as tmp:
        exe = build_peer_driver(tmp, go_lib)
        for i in range(RUNS):
            order = list(libs.items())
            for name, libdir in order[i % len(order):] + order[:i % len(order)]:
                rounds[name].append(peer_round(exe, libdir, tmp, name != "go_bridge"))
    out = {name: {"runs": RUNS, "summary": summarize(r), "each": r} for name, r in rounds.items()}
    if not go_lib:
        out["go_bridge"] = "not measured: set MIMO_GO_BRIDGE_LIB to the Go bridge's build"
    return out


def main():
    result = {"benchmark": "notify", "machine": machine(), "load_before": load()}
    if os.environ.get("MIMO_BENCH_ONLY") in ("peers", "latency"):
        result["peers"] = peers()
        result["load_after"] = load()
        print(json.dumps(result))
        return

    sink, url = start_sink()
    try:
        result["caller_healthy"] = latency(url)
        result["delivery_c_receiver"] = run_json(
            [BENCH, "throughput", "--events", "100000"],
            bench_env(MIMO_NOTIFY_URL=url, MIMO_NOTIFY_QUEUE=131072))
        # Peers in the same run: the bridge without its spin, and a bare libcurl loop.
        result["delivery_c_receiver_no_spin"] = run_json(
            [BENCH, "throughput", "--events", "50000"],
            bench_env(MIMO_NOTIFY_URL=url, MIMO_NOTIFY_QUEUE=131072, MIMO_NOTIFY_SPIN_US=0))
        result["delivery_c_receiver_bare_libcurl"] = run_json(
            [BENCH, "curl-loop", "--events", "50000"], bench_env(MIMO_NOTIFY_URL=url))
    finally:
        stop(sink)

    hung, hung_url = start_sink("--hang")
    try:
        result["caller_hung"] = latency(hung_url)
        result["memory"] = run_json([BENCH, "memory"],
                                    bench_env(MIMO_NOTIFY_URL=hung_url, MIMO_NOTIFY_GRACE_MS=0))
    finally:
        stop(hung)

    port = free_port()
    seed = subprocess.Popen([PY, os.path.join(REPO, "test", "integration", "seed",
                                              "http_receiver.py"), str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_port(port)
        result["delivery_seed_python_receiver"] = run_json(
            [BENCH, "throughput", "--events", "5000"],
            bench_env(MIMO_NOTIFY_URL=f"http://127.0.0.1:{port}/spdk/events",
                      MIMO_NOTIFY_QUEUE=8192))
    finally:
        stop(seed)

    one = result["caller_healthy"]["1_producers"]
    result["goals"] = {
        "p50_le_100ns_1_producer": one["p50_ns"] <= 100,
        "p99_le_1us_1_producer": one["p99_ns"] <= 1000,
        "hung_p50_le_100ns": result["caller_hung"]["1_producers"]["p50_ns"] <= 100,
        "hung_p99_le_1us": result["caller_hung"]["1_producers"]["p99_ns"] <= 1000,
        "ge_14000_events_per_s": result["delivery_c_receiver"]["events_per_s"] >= 14000,
        "p50_40x_faster_than_go_4200ns": one["p50_ns"] * 40 <= 4200,
    }
    result["peers"] = peers()
    result["load_after"] = load()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
