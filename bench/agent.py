#!/usr/bin/python3
"""Benchmark of the messaging fabric, beside NATS measured in the same run. Prints one JSON
object.

- NATS 2.9 (Debian's nats-server) with the cnats client (bench/nats_bench.c), 1 KiB messages:
  core pub/sub, request-reply with default options and with SendAsap, JetStream publish
  (sync, async) and pull + ack, on file storage;
- plugin -> agent acknowledged messages/s (1 KiB; each ACK is sent after write + fdatasync of
  the record's segment, group commit);
- plugin -> callback delivered messages/s to a C keep-alive receiver (bench/http_sink.c);
- HTTP dispatch -> plugin callback latency, one host (the agent's own API) and through
  mimo_gateway + NATS + an agent;
- the agent's resident memory with 100 connected plugins.

Issue 5's anchors (same machine kind): pub/sub 307-334k/s, request-reply ~1,000/s default and
p50 38-160 us with SendAsap, JetStream 15-23k/s sync, 75-97k/s async, 80-87k/s pull+ack.
"""
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from common import BIN, REPO, bench_env, free_port, machine, run_json, wait_port  # noqa: E402

sys.path.insert(0, os.path.join(REPO, "python"))
from mimo.agent import AgentClient  # noqa: E402

AGENT = os.path.join(BIN, "mimo_agent")
GATEWAY = os.path.join(BIN, "mimo_gateway")
AGENT_BENCH = os.path.join(BIN, "agent_bench")
NATS_BENCH = os.path.join(BIN, "nats_bench")
SINK = os.path.join(BIN, "http_sink")
NATS_SERVER = "/usr/sbin/nats-server"

N_UP = 200000
N_DELIVER = 100000
N_LAT = 5000
SIZE = 1024


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Agent:
    def __init__(self, d, name, nats=None, args=()):
        self.sock = os.path.join(d, f"{name}.sock")
        self.state = os.path.join(d, f"{name}-state")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [AGENT, "--agent-id", name, "--socket", self.sock, "--http",
               f"127.0.0.1:{self.port}", "--state-dir", self.state, "--up-max-mb", "8192", *args]
        if nats:
            cmd += ["--nats", nats]
        self.p = subprocess.Popen(cmd, env=bench_env(), stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        if not wait_port(self.port):
            raise RuntimeError("mimo_agent did not start")
        self.name = name

    def admin(self):
        with open(os.path.join(self.state, "admin.token")) as f:
            return AgentClient(self.url, admin_token=f.read().strip())

    def health(self):
        with urllib.request.urlopen(self.url + "/v1/health") as r:
            return json.load(r)

    def stop(self):
        self.p.terminate()
        self.p.wait(timeout=60)


def wait_connected(agent, plugin, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(p["name"] == plugin and p["connected"] for p in agent.health()["plugins"]):
            return
        time.sleep(0.02)
    raise RuntimeError(f"{plugin} did not connect")


def start_nats(d):
    port = free_port()
    p = subprocess.Popen([NATS_SERVER, "-js", "-a", "127.0.0.1", "-p", str(port), "-sd",
                          os.path.join(d, "js")], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    if not wait_port(port):
        raise RuntimeError("nats-server did not start")
    return p, f"nats://127.0.0.1:{port}"


def bench_up(d):
    a = Agent(d, "up")
    try:
        a.admin().register_slot("bench", "http://127.0.0.1:9/unused")
        out = run_json([AGENT_BENCH, "up", a.sock, "bench", str(N_UP), str(SIZE)], bench_env())
        out["fsyncs"] = a.health()["upq"]["fsyncs"]
        return out
    finally:
        a.stop()


def bench_deliver(d):
    port = free_port()
    sink = subprocess.Popen([SINK, "--port", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    wait_port(port)
    a = Agent(d, "deliver")
    try:
        a.admin().register_slot("bench", f"http://127.0.0.1:{port}/cb")
        t0 = time.monotonic()
        run_json([AGENT_BENCH, "up", a.sock, "bench", str(N_DELIVER), str(SIZE)], bench_env())
        # Once the plugin is done (every message acknowledged), the rest is delivery alone.
        t1, d1 = time.monotonic(), a.health()["upq"]["delivered"]
        while a.health()["upq"]["delivered"] < N_DELIVER:
            if time.monotonic() - t0 > 300:
                raise RuntimeError("callbacks did not finish")
            time.sleep(0.01)
        t2 = time.monotonic()
        return {"messages": N_DELIVER, "seconds": round(t2 - t0, 3),
                "overall_per_s": round(N_DELIVER / (t2 - t0)),
                "delivered_per_s": round((N_DELIVER - d1) / (t2 - t1))}
    finally:
        a.stop()
        sink.terminate()
        sink.wait()


def bench_latency(d, nats):
    out = {}
    a = Agent(d, "lat")
    try:
        slot = a.admin().register_slot("lat", "http://127.0.0.1:9/unused")
        out["embedded"] = run_json([AGENT_BENCH, "latency", a.url, str(slot["slot_id"]),
                                    slot["token"], "lat", a.sock, "lat", str(N_LAT)], bench_env())
    finally:
        a.stop()
    tok = os.path.join(d, "gw.token")
    gport = free_port()
    gw = subprocess.Popen([GATEWAY, "--nats", nats, "--http", f"127.0.0.1:{gport}",
                           "--admin-token-file", tok], env=bench_env(),
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(gport)
    a = Agent(d, "natslat", nats=nats)
    try:
        with open(tok) as f:
            admin = AgentClient(f"http://127.0.0.1:{gport}", admin_token=f.read().strip())
        slot = admin.register_slot("natslat", "http://127.0.0.1:9/unused")
        time.sleep(0.3)  # the agent learns the slot from the KV bucket
        out["through_gateway"] = run_json(
            [AGENT_BENCH, "latency", f"http://127.0.0.1:{gport}", str(slot["slot_id"]),
             slot["token"], "natslat", a.sock, "natslat", str(N_LAT)], bench_env())
    finally:
        a.stop()
        gw.terminate()
        gw.wait()
    return out


def bench_rss(d):
    a = Agent(d, "rss")
    try:
        admin = a.admin()
        for i in range(100):
            admin.register_slot(f"p{i}", "http://127.0.0.1:9/unused")
        idle = rss_kib(a.p.pid)
        p = subprocess.Popen([AGENT_BENCH, "plugins", a.sock, "p", "100", "30"],
                             stdout=subprocess.PIPE, env=bench_env(), text=True)
        json.loads(p.stdout.readline())
        deadline = time.monotonic() + 10
        while sum(x["connected"] for x in a.health()["plugins"]) < 100:
            if time.monotonic() > deadline:
                raise RuntimeError("plugins did not connect")
            time.sleep(0.05)
        time.sleep(1.0)
        busy = rss_kib(a.p.pid)
        p.terminate()
        p.wait()
        return {"idle_rss_kib": idle, "rss_100_plugins_kib": busy}
    finally:
        a.stop()


def main():
    out = {"benchmark": "agent", "machine": machine()}
    with tempfile.TemporaryDirectory(prefix="mimo-bench-agent-", dir="/var/tmp") as d:
        ns, nats = start_nats(d)
        try:
            # Each phase starts with the page cache written back: the disk's own backlog
            # (the previous phase's, JetStream's) must not be charged to the next one.
            os.sync()
            out["up_acked"] = bench_up(d)
            os.sync()
            out["nats_peer"] = run_json([NATS_BENCH, nats, str(N_UP), str(SIZE)], bench_env())
            os.sync()
            out["up_delivered"] = bench_deliver(d)
            out["dispatch_latency"] = bench_latency(d, nats)
            out["memory"] = bench_rss(d)
        finally:
            ns.terminate()
            ns.wait()
    lat = out["dispatch_latency"]
    out["goals"] = {
        "up_acked_ge_200000_per_s": out["up_acked"]["acked_per_s"] >= 200000,
        "up_acked_ge_2x_js_async": out["up_acked"]["acked_per_s"] >=
        2 * out["nats_peer"]["js_async_per_s"],
        "delivered_ge_20000_per_s": out["up_delivered"]["delivered_per_s"] >= 20000,
        "latency_p50_le_300us": lat["embedded"]["p50_us"] <= 300,
        "latency_p99_le_2ms": lat["embedded"]["p99_us"] <= 2000,
        "nats_latency_p99_le_10ms": lat["through_gateway"]["p99_us"] <= 10000,
        "rss_100_plugins_le_32mib": out["memory"]["rss_100_plugins_kib"] <= 32 * 1024,
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
