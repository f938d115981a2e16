#!/usr/bin/python3
"""Soak of the agent's HTTP front under a slow-header storm (issue 9). Prints one JSON object.

A storm process holds --conns connections (default 2,000) that send half a request and then
nothing, spread over loopback source addresses 127.0.0.2... (100 each, below the per-address
limit), for --seconds (default 20); connections the agent closes at its header deadline are
opened again at once, as a slowloris does. Meanwhile a good client on 127.0.0.1 asks
GET /v1/health on a new connection --rate times a second, before, during and after the storm.
Reported: the good client's p50/p99/max latency in each phase (and failures), the agent's
resident memory and CPU seconds per phase, and what the storm achieved.

    bench/http_storm.py [--conns N] [--seconds S] [--rate R] [--header-timeout S]
"""
import argparse
import http.client
import json
import os
import resource
import selectors
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from common import BIN, bench_env, free_port, machine, wait_port  # noqa: E402

AGENT = os.path.join(BIN, "mimo_agent")
PARTIAL = b"GET /v1/health HTTP/1.1\r\nHost: agent\r\nX-Slow: "
PER_SOURCE = 100


def raise_nofile(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(n, hard), hard))


def storm(port, conns, seconds):
    """The attacker (run as its own process): hold conns half-requests for seconds."""
    raise_nofile(conns + 256)
    sel = selectors.DefaultSelector()
    opened = reopened = refused = 0

    def open_one(i):
        nonlocal opened, refused
        src = f"127.0.0.{2 + i // PER_SOURCE}"
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=5,
                                         source_address=(src, 0))
            s.setblocking(False)
            s.send(PARTIAL)
        except OSError:
            refused += 1
            return
        opened += 1
        sel.register(s, selectors.EVENT_READ, i)

    for i in range(conns):
        open_one(i)
    print(json.dumps({"ready": opened}), flush=True)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for key, _ in sel.select(timeout=0.2):
            s, i = key.fileobj, key.data
            try:
                data = s.recv(4096)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                data = b""
            if not data:  # closed by the agent: come back
                sel.unregister(s)
                s.close()
                reopened += 1
                open_one(i)
    held = len(sel.get_map())
    for key in list(sel.get_map().values()):
        key.fileobj.close()
    print(json.dumps({"opened": opened, "reopened": reopened, "refused": refused,
                      "held_at_end": held}), flush=True)


def proc_stats(pid):
    with open(f"/proc/{pid}/status") as f:
        rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return rss, (int(fields[11]) + int(fields[12])) / tick


def probe(port, seconds, rate, until=None):
    """GET /v1/health on a new connection, rate times a second, for seconds (or until
    until() is true): latencies in ms, and failures."""
    lat, failures = [], 0
    end = time.monotonic() + seconds
    while time.monotonic() < end and not (until and until()):
        t0 = time.monotonic()
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            c.request("GET", "/v1/health")
            r = c.getresponse()
            r.read()
            c.close()
            if r.status != 200:
                raise RuntimeError(r.status)
            lat.append((time.monotonic() - t0) * 1000)
        except (OSError, RuntimeError, http.client.HTTPException):
            failures += 1
        time.sleep(max(0.0, 1 / rate - (time.monotonic() - t0)))
    return lat, failures


def summary(lat, failures):
    s = sorted(lat)

    def pct(p):
        return round(s[min(len(s) - 1, int(p / 100 * len(s)))], 2) if s else None
    return {"requests": len(s), "failures": failures, "p50_ms": pct(50), "p99_ms": pct(99),
            "max_ms": round(s[-1], 2) if s else None}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--conns", type=int, default=2000)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--rate", type=float, default=20, help="good requests per second")
    ap.add_argument("--header-timeout", type=int, default=None,
                    help="the agent's --http-header-timeout (default: its own, 10 s)")
    ap.add_argument("--storm-port", type=int, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.storm_port:
        storm(a.storm_port, a.conns, a.seconds)
        return
    with tempfile.TemporaryDirectory(prefix="mimo-storm-") as d:
        port = free_port()
        args = [AGENT, "--agent-id", "storm", "--socket", os.path.join(d, "a.sock"),
                "--http", f"127.0.0.1:{port}", "--state-dir", os.path.join(d, "state")]
        if a.header_timeout:
            args += ["--http-header-timeout", str(a.header_timeout)]
        agent = subprocess.Popen(args, env=bench_env(), stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
        try:
            if not wait_port(port):
                raise RuntimeError("mimo_agent did not start")
            out = {"bench": "http_storm", "machine": machine(), "conns": a.conns,
                   "storm_seconds": a.seconds, "rate_per_s": a.rate}
            rss0, cpu0 = proc_stats(agent.pid)
            before = summary(*probe(port, 5, a.rate))
            rss1, cpu1 = proc_stats(agent.pid)
            st = subprocess.Popen([sys.executable, __file__, "--storm-port", str(port),
                                   "--conns", str(a.conns), "--seconds", str(a.seconds)],
                                  stdout=subprocess.PIPE, text=True)
            # Measured from the storm's first connection to its end.
            during = summary(*probe(port, a.seconds + 120, a.rate,
                                    until=lambda: st.poll() is not None))
            rss2, cpu2 = proc_stats(agent.pid)
            ready = json.loads(st.stdout.readline() or "{}")
            result = json.loads(st.stdout.readline() or "{}")
            st.wait()
            after = summary(*probe(port, 5, a.rate))
            rss3, cpu3 = proc_stats(agent.pid)
            out["storm"] = dict(result, ready=ready.get("ready"))
            out["health"] = {"before": before, "during": during, "after": after}
            out["agent_rss_kib"] = {"idle": rss0, "before": rss1, "during_end": rss2,
                                    "after": rss3}
            out["agent_cpu_s"] = {"before": round(cpu1 - cpu0, 2),
                                  "during": round(cpu2 - cpu1, 2),
                                  "after": round(cpu3 - cpu2, 2)}
            print(json.dumps(out))
        finally:
            agent.terminate()
            agent.wait(timeout=30)


if __name__ == "__main__":
    main()
