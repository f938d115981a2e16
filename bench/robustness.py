#!/usr/bin/python3
"""The figures of docs/ROBUSTNESS.md, one attack at a time, on one build of mimo_tgt.

Run it on this build and on an older one (MIMO_BUILD=/path/to/other/build) to compare in the
same session. Each attack starts a fresh daemon. Prints one JSON object:

- idle_connection_bytes: the daemon's RSS growth per idle NVMe/TCP connection (1,000 that never
  send ICReq), and rss_back_pct: its RSS once they closed, in % of before.
- icreq_storm: the same for 500 connections that send an ICReq and then nothing.
- emfile: the daemon's file descriptors limited to 1024 (hard), 1,100 idle connections: its CPU
  seconds and log bytes over 3 s, whether a new RPC client and a connected host are served.
  emfile_limit_lowered: the same with the limit lowered to 512 under the running target, so
  that accept() itself fails (EMFILE).
- rpc_idle: 70 idle RPC connections: is a new client answered?
- rpc_nonreader: a client pipelining requests without reading, for 3.5 s: CPU seconds, RSS
  growth.
- rpc_large: one 4 MiB request at a time: the median time to its answer and the daemon's CPU
  per request.
"""
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "test", "integration"))

from common import BIN, bench_env, free_port, machine  # noqa: E402
from nvme_tcp_host import admin_session, io_session  # noqa: E402

NQN = "nqn.2016-06.io.mimo:robust"


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


class Tgt:
    def __init__(self, tmp, nofile=None):
        self.sock = os.path.join(tmp, f"t{time.monotonic_ns()}.sock")
        self.log = os.path.join(tmp, "tgt.log")
        self.logf = open(self.log, "w")

        def limit():
            if nofile:
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
        self.p = subprocess.Popen([os.path.join(BIN, "mimo_tgt"), "-r", self.sock, "-m", "0x1"],
                                  env=bench_env(MIMO_NOTIFY_DISABLE=1, MIMO_LOG="warn"),
                                  stdout=self.logf, stderr=self.logf, preexec_fn=limit)
        deadline = time.monotonic() + 10
        while True:
            try:
                self.call("spdk_get_version")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    def call(self, method, params=None, timeout=10):
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(timeout)
        s.connect(self.sock)
        req = {"jsonrpc": "2.0", "method": method, "id": 1}
        if params is not None:
            req["params"] = params
        s.sendall(json.dumps(req).encode())
        buf = b""
        while b"\n" not in buf:
            chunk = s.recv(1 << 20)
            if not chunk:
                raise OSError("closed")
            buf += chunk
        s.close()
        r = json.loads(buf)
        if "error" in r:
            raise RuntimeError(r["error"])
        return r["result"]

    def serve(self, port, **transport):
        self.call("bdev_malloc_create", {"name": "Malloc0", "num_blocks": 8192, "block_size": 512})
        try:
            self.call("nvmf_create_transport", {"trtype": "TCP", **transport})
        except RuntimeError:  # an older build without mimo's own options
            self.call("nvmf_create_transport", {"trtype": "TCP"})
        self.call("nvmf_create_subsystem", {"nqn": NQN, "allow_any_host": True})
        self.call("nvmf_subsystem_add_ns", {"nqn": NQN, "namespace": {"bdev_name": "Malloc0"}})
        self.call("nvmf_subsystem_add_listener", {"nqn": NQN, "listen_address": {
            "trtype": "TCP", "adrfam": "IPv4", "traddr": "127.0.0.1", "trsvcid": str(port)}})

    def qpairs(self):
        return self.call("nvmf_get_transports")[0]["num_qpairs"]

    def stop(self):
        self.p.terminate()
        try:
            self.p.wait(30)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
        self.logf.close()


def until(pred, timeout=30):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def storm(port, n, icreq=False):
    """n connections, without waiting for any: past a full listen backlog a blocking connect
    would wait for minutes of SYN retries."""
    conns = []
    for _ in range(n):
        s = socket.socket()
        s.setblocking(False)
        try:
            s.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        except OSError:
            s.close()
            continue
        conns.append(s)
    if icreq:
        for s in conns:
            try:
                s.settimeout(5)
                s.sendall(bytes([0, 0, 128, 0, 128, 0, 0, 0]) + bytes(120))
            except OSError:
                pass
    return conns


def idle_connections(tmp, n=1000, icreq=False):
    t = Tgt(tmp)
    port = free_port()
    t.serve(port, connect_timeout_ms=600000)
    until(lambda: t.qpairs() == 0)
    before = rss_kib(t.p.pid)
    conns = storm(port, n, icreq)
    until(lambda: t.qpairs() >= n)
    time.sleep(0.5)  # the last ones' memory touched
    during = rss_kib(t.p.pid)
    for s in conns:
        s.close()
    until(lambda: t.qpairs() == 0)
    time.sleep(1)
    after = rss_kib(t.p.pid)
    t.stop()
    return {"connections": n, "rss_before_kib": before, "rss_with_kib": during,
            "rss_after_kib": after, "bytes_per_connection": round((during - before) * 1024 / n),
            "rss_back_pct": round(100 * after / before, 1)}


def emfile(tmp, lower_to=None):
    """The daemon started with 1024 descriptors (hard), 1,100 idle connections. With
    lower_to, the limit is lowered to that under the running target instead, after its
    transport sized its cap: what an operator's prlimit, or other descriptors, can cause."""
    t = Tgt(tmp, nofile=None if lower_to else 1024)
    port = free_port()
    t.serve(port, connect_timeout_ms=600000)
    if lower_to:
        resource.prlimit(t.p.pid, resource.RLIMIT_NOFILE, (lower_to, lower_to))
    admin = admin_session(port, NQN)
    io = io_session(port, admin, NQN)
    conns = storm(port, 1100)
    time.sleep(0.5)
    cpu0, log0 = cpu_seconds(t.p.pid), os.path.getsize(t.log)
    time.sleep(3)
    cpu, logb = cpu_seconds(t.p.pid) - cpu0, os.path.getsize(t.log) - log0
    try:
        rpc_ok = bool(t.call("spdk_get_version", timeout=2))
    except (OSError, RuntimeError):
        rpc_ok = False
    try:
        io.sock.settimeout(2)
        host_ok = io.read(1, 0, 8)[0]["status"] == 0
    except OSError:
        host_ok = False
    for s in conns:
        s.close()
    t.stop()
    return {"fd_limit": lower_to or 1024, "limit_lowered_after_start": bool(lower_to),
            "connections": 1100, "cpu_s_in_3s": round(cpu, 2),
            "log_bytes_per_s": round(logb / 3), "new_rpc_client_served": rpc_ok,
            "connected_host_served": host_ok}


def rpc_idle(tmp):
    t = Tgt(tmp)
    idle = []
    for _ in range(70):
        s = socket.socket(socket.AF_UNIX)
        s.connect(t.sock)
        idle.append(s)
    try:
        ok = bool(t.call("spdk_get_version", timeout=2))
    except (OSError, RuntimeError):
        ok = False
    for s in idle:
        s.close()
    t.stop()
    return {"idle_connections": 70, "new_client_served": ok}


def rpc_nonreader(tmp):
    t = Tgt(tmp)
    for i in range(20):
        t.call("bdev_null_create", {"name": f"N{i}", "num_blocks": 1024, "block_size": 512})
    before = rss_kib(t.p.pid)
    s = socket.socket(socket.AF_UNIX)
    s.connect(t.sock)
    s.setblocking(False)
    req = json.dumps({"jsonrpc": "2.0", "method": "bdev_get_bdevs", "id": 1}).encode()
    cpu0, t0 = cpu_seconds(t.p.pid), time.monotonic()
    while time.monotonic() - t0 < 3.5:
        try:
            s.send(req)
        except BlockingIOError:
            time.sleep(0.01)
    cpu = cpu_seconds(t.p.pid) - cpu0
    peak = rss_kib(t.p.pid)
    s.close()
    t.stop()
    return {"seconds": 3.5, "cpu_s": round(cpu, 2), "rss_growth_kib": peak - before}


def rpc_large(tmp):
    t = Tgt(tmp)
    s = socket.socket(socket.AF_UNIX)
    s.connect(t.sock)
    s.settimeout(120)
    req = json.dumps({"jsonrpc": "2.0", "method": "rpc_get_methods", "id": 1,
                      "params": {"x": "a" * (4 * 1024 * 1024 - 100)}}).encode()
    times, cpus = [], []
    for _ in range(8):
        cpu0, t0 = cpu_seconds(t.p.pid), time.perf_counter()
        s.sendall(req)
        buf = b""
        while b"\n" not in buf:
            buf += s.recv(65536)
        times.append(time.perf_counter() - t0)
        cpus.append(cpu_seconds(t.p.pid) - cpu0)
    s.close()
    t.stop()
    return {"request_bytes": len(req), "median_ms": round(statistics.median(times) * 1000, 1),
            "max_ms": round(max(times) * 1000, 1),
            "daemon_cpu_ms_per_request": round(statistics.median(cpus) * 1000, 1)}


def main():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))
    tmp = tempfile.mkdtemp(prefix="mimo-robust-")
    out = {"bench": "robustness", "machine": machine(), "build": BIN,
           "commit": subprocess.run(["git", "-C", os.path.dirname(os.path.dirname(BIN)),
                                     "rev-parse", "--short", "HEAD"],
                                    capture_output=True, text=True).stdout.strip()}
    for name, fn in (("idle_connection", lambda: idle_connections(tmp)),
                     ("icreq_storm", lambda: idle_connections(tmp, 500, icreq=True)),
                     ("emfile", lambda: emfile(tmp)),
                     ("emfile_limit_lowered", lambda: emfile(tmp, lower_to=512)),
                     ("rpc_idle", lambda: rpc_idle(tmp)),
                     ("rpc_nonreader", lambda: rpc_nonreader(tmp)),
                     ("rpc_large", lambda: rpc_large(tmp))):
        try:
            out[name] = fn()
        except Exception as e:  # noqa: BLE001 - an attack that breaks the old build is a result
            out[name] = {"error": f"{type(e).__name__}: {e}"}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
