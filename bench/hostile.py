#!/usr/bin/python3
"""Soak: mimo_tgt under the hostile clients of docs/ROBUSTNESS.md, repeated for a while, with a
good RPC client and a good NVMe/TCP host measured before, during and after.

The daemon runs with the usual 1024 file descriptors (hard limit, so it cannot raise them).
A phase of large requests alone comes first (8 requests of 4 MiB, again and again, for
--phase-seconds). Then the storm, for --seconds (default 60), in rounds: 1,100 idle TCP
connections to the NVMe/TCP port (more than the descriptor limit), 100 idle connections to the
RPC socket (more than its 64), a client that pipelines requests and never reads, and 8 requests
of 4 MiB. Connections are re-opened every round (the connect timeout and the eviction close
them).

The good clients: one RPC connection calling spdk_get_version, and one NVMe/TCP I/O queue
reading 4 KiB at queue depth 1 (the Python host of the tests; its latency includes Python's own
time, the same in every phase). Prints one JSON object: per phase, each good client's p50 /
p99 / max latency in ms and its failures, the daemon's CPU seconds and peak RSS.

    bench/hostile.py [--seconds 60] [--phase-seconds 10]
"""
import argparse
import json
import multiprocessing
import os
import resource
import socket
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "test", "integration"))

from common import free_port, machine, start_tgt  # noqa: E402
from nvme_tcp_host import admin_session, io_session  # noqa: E402

NQN = "nqn.2016-06.io.mimo:soak"


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def pct(xs, p):
    if not xs:
        return None
    xs = sorted(xs)
    return round(xs[min(len(xs) - 1, int(len(xs) * p / 100))] * 1000, 3)


class Good:
    """A good client in a thread: records (phase, latency) of each call, counts failures."""

    def __init__(self, name, call):
        self.name, self.call = name, call
        self.phase = "before"
        self.samples = {}
        self.failures = {}
        self.stop = threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)

    def run(self):
        while not self.stop.is_set():
            phase = self.phase
            t0 = time.perf_counter()
            try:
                self.call()
                self.samples.setdefault(phase, []).append(time.perf_counter() - t0)
            except Exception:  # noqa: BLE001 - a failure is a figure here
                self.failures[phase] = self.failures.get(phase, 0) + 1
            time.sleep(0.01)  # pacing: ~100 calls a second, a user's rate, not a load

    def summary(self, phase):
        xs = self.samples.get(phase, [])
        return {"n": len(xs), "p50_ms": pct(xs, 50), "p99_ms": pct(xs, 99),
                "max_ms": round(max(xs) * 1000, 3) if xs else None,
                "failures": self.failures.get(phase, 0)}


def rpc_request(method, params=None, id_=1):
    r = {"jsonrpc": "2.0", "method": method, "id": id_}
    if params is not None:
        r["params"] = params
    return json.dumps(r).encode()


def large_requests(sock_path, stop, n=8):
    """n requests of almost 4 MiB (the limit) on one connection, each answered before the
    next is sent; returns the connection."""
    big = socket.socket(socket.AF_UNIX)
    big.connect(sock_path)
    big.settimeout(30)
    for i in range(n):
        if stop.is_set():
            break
        big.sendall(rpc_request("rpc_get_methods", {"x": "a" * (4 * 1024 * 1024 - 100)}, i))
        got = b""
        while b"\n" not in got:
            chunk = big.recv(65536)
            if not chunk:
                break
            got += chunk
    return big


def storm_round(sock_path, port, stop):
    """One round of every hostile client at once; returns what it held for closing."""
    held = []
    for _ in range(1100):
        s = socket.socket()
        s.setblocking(False)
        try:
            s.connect(("127.0.0.1", port))
        except (BlockingIOError, OSError):
            pass
        held.append(s)
    for _ in range(100):
        s = socket.socket(socket.AF_UNIX)
        try:
            s.connect(sock_path)
        except OSError:
            pass
        held.append(s)
    hog = socket.socket(socket.AF_UNIX)
    hog.connect(sock_path)
    hog.setblocking(False)
    try:
        for _ in range(100000):
            hog.send(rpc_request("bdev_get_bdevs"))
    except (BlockingIOError, OSError):
        pass
    held.append(hog)
    held.append(large_requests(sock_path, stop))
    return held


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--phase-seconds", type=float, default=10)
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))

    tmp = tempfile.mkdtemp(prefix="mimo-soak-")
    sock = os.path.join(tmp, "tgt.sock")
    port = free_port()
    proc, c = start_tgt(sock, "-m", "0x1")
    pid = proc.pid
    resource.prlimit(pid, resource.RLIMIT_NOFILE, (1024, 1024))
    c.call("bdev_malloc_create", {"name": "Malloc0", "num_blocks": 16384, "block_size": 512})
    for i in range(20):
        c.call("bdev_null_create", {"name": f"Null{i}", "num_blocks": 1024, "block_size": 512})
    c.call("nvmf_create_transport", {"trtype": "TCP"})
    c.call("nvmf_create_subsystem", {"nqn": NQN, "allow_any_host": True})
    c.call("nvmf_subsystem_add_ns", {"nqn": NQN, "namespace": {"bdev_name": "Malloc0"}})
    c.call("nvmf_subsystem_add_listener", {"nqn": NQN, "listen_address": {
        "trtype": "TCP", "adrfam": "IPv4", "traddr": "127.0.0.1", "trsvcid": str(port)}})
    cap = c.call("nvmf_get_transports")[0]["max_connections_per_listener"]

    admin = admin_session(port, NQN)
    io = io_session(port, admin, NQN)
    rpc = Good("rpc", lambda: c.call("spdk_get_version"))
    nvme = Good("nvme", lambda: io.read(1, 0, 8))
    goods = [rpc, nvme]
    for g in goods:
        g.t.start()

    phases = {}

    def measure(name, seconds, work=None):
        for g in goods:
            g.phase = name
        cpu0, t0, peak = cpu_seconds(pid), time.monotonic(), rss_kib(pid)

        def storm(stop, rounds):
            while not stop.is_set():
                held = work(stop)
                with rounds.get_lock():
                    rounds.value += 1
                stop.wait(2)
                for s in held:
                    s.close()

        # In a process of its own: the hostile clients must not take the good clients'
        # interpreter lock, or their latency would be this script's, not the daemon's.
        ctx = multiprocessing.get_context("fork")
        stop, rounds = ctx.Event(), ctx.Value("i", 0)
        pr = ctx.Process(target=storm, args=(stop, rounds), daemon=True) if work else None
        if pr:
            pr.start()
        while time.monotonic() - t0 < seconds:
            time.sleep(0.2)
            peak = max(peak, rss_kib(pid))
        stop.set()
        if pr:
            pr.join(120)
        phases[name] = {"seconds": round(time.monotonic() - t0, 1),
                        "daemon_cpu_s": round(cpu_seconds(pid) - cpu0, 2),
                        "daemon_rss_peak_kib": peak, "daemon_rss_end_kib": rss_kib(pid),
                        **({"rounds": rounds.value} if work else {}),
                        **{g.name: g.summary(name) for g in goods}}

    measure("before", args.phase_seconds)
    # Only the large requests: what the other clients' latency is while one client sends
    # 8 x 4 MiB, again and again.
    measure("large_requests", args.phase_seconds,
            work=lambda stop: [large_requests(sock, stop)])
    measure("storm", args.seconds, work=lambda stop: storm_round(sock, port, stop))
    measure("after", args.phase_seconds)
    for g in goods:
        g.stop.set()
        g.t.join()
    io.close()
    admin.close()
    proc.terminate()
    proc.wait(30)
    print(json.dumps({"bench": "hostile", "machine": machine(), "fd_limit": 1024,
                      "listener_cap": cap, "phases": phases}))


if __name__ == "__main__":
    main()
