#!/usr/bin/python3
"""Benchmark of libmimo_notify (issue: the event bridge). Prints one JSON object.

- caller cost of NotifyEvent (p50/p99/p99.9/max, ns) with 1, 2 and 4 producer threads, each
  making 20,000 calls paced (busy-wait) to 10,000 calls/s in total, with the receiver healthy
  and with the receiver hung (accepts, reads, never answers);
- delivered events/s over one keep-alive connection to a C receiver (bench/http_sink.c), beside
  the bridge with its response spin off and a bare libcurl loop, and to the seed's Python
  http.server receiver;
- resident memory: before the first call, running with an empty queue, with the default queue
  full.
"""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from common import BIN, PY, REPO, bench_env, free_port, machine, run_json, wait_port  # noqa

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


def main():
    result = {"benchmark": "notify", "machine": machine()}

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
    print(json.dumps(result))


if __name__ == "__main__":
    main()
