#!/usr/bin/python3
"""What read-after-write coherence of the FUSE export costs an NVMe/TCP writer, and what it buys.

mimo_perf (4 KiB random writes, queue depth 1, -L) over NVMe/TCP to a 16 MiB malloc bdev, the
target's reactor on CPU 0 (its other threads on FUSE_COHERENCE_TGT_CPUS, default "0": all of
it on CPU 0) and every client on CPU 1, in four set-ups:
  no_export         the bdev is not exported (the baseline: the write hook is not even there)
  export_unopened   exported, its file never opened (nothing can be cached: nothing held)
  store_cached      exported with coherence "store"; a reader holds the file open and reads
                    all of it every 20 ms, so the written pages are cached
  inval_cached      the same with coherence "inval"
and, with the Python NVMe/TCP host, write-then-read pairs: a read through the page cache
right after each write has completed, counting reads that return the older bytes.

Run against this build and, when FUSE_COHERENCE_BASE names another build directory (the code
before the change), against that one too, interleaved in one run: each figure is the median
of FUSE_COHERENCE_RUNS runs (default 3) with their range. FUSE_COHERENCE_SECONDS: each
mimo_perf run (default 5). Prints one JSON object. As root (FUSE mounts)."""
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "test", "integration"))
from common import BIN, REPO, bench_env, free_port, machine  # noqa: E402
from fuse import mounted, rpc  # noqa: E402  (bench/fuse.py)
from nvme_tcp_host import admin_session, io_session  # noqa: E402

RUNS = int(os.environ.get("FUSE_COHERENCE_RUNS", "3"))
SECONDS = int(os.environ.get("FUSE_COHERENCE_SECONDS", "5"))
PAIRS = int(os.environ.get("FUSE_COHERENCE_PAIRS", "2000"))
TGT_CPUS = os.environ.get("FUSE_COHERENCE_TGT_CPUS", "0")
SIZE = 16 << 20
NQN = "nqn.2016-06.io.spdk:coherence"
SCENARIOS = ("no_export", "export_unopened", "store_cached", "inval_cached")

READER = r"""
import os, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY)
n = int(sys.argv[2])
os.pread(fd, n, 0)
print("ready", flush=True)
while True:
    os.pread(fd, n, 0)
    time.sleep(0.02)
"""


class Target:
    """mimo_tgt of one build on CPU 0 with a 16 MiB malloc bdev served over NVMe/TCP, and
    maybe a FUSE export of it."""

    def __init__(self, bindir, work, coherence=None):
        self.bindir = bindir
        self.sock = os.path.join(work, "t.sock")
        self.mnt = os.path.join(work, "mnt")
        os.makedirs(self.mnt, exist_ok=True)
        self.p = subprocess.Popen(["taskset", "-c", TGT_CPUS, os.path.join(bindir, "mimo_tgt"),
                                   "-m", "0x1", "-r", self.sock],
                                  env=bench_env(MIMO_NOTIFY_DISABLE="1"),
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                rpc(self.sock, "rpc_get_methods")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
        rpc(self.sock, "bdev_malloc_create", {"name": "M0", "num_blocks": SIZE // 4096,
                                              "block_size": 4096})
        self.port = free_port()
        rpc(self.sock, "nvmf_create_transport", {"trtype": "tcp"})
        rpc(self.sock, "nvmf_create_subsystem", {"nqn": NQN, "allow_any_host": True})
        rpc(self.sock, "nvmf_subsystem_add_ns", {"nqn": NQN, "namespace": {"bdev_name": "M0"}})
        rpc(self.sock, "nvmf_subsystem_add_listener", {"nqn": NQN, "listen_address": {
            "trtype": "tcp", "adrfam": "IPv4", "traddr": "127.0.0.1",
            "trsvcid": str(self.port)}})
        self.file = None
        if coherence is not None:
            rpc(self.sock, "fuse_export_create", {"mountpoint": self.mnt,
                                                  "coherence": coherence})
            self.file = os.path.join(self.mnt, "bdevs", "M0")

    def notifications(self):
        return rpc(self.sock, "fuse_get_exports")[0]["notifications"]

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        self.p.wait(timeout=60)
        if mounted(self.mnt):
            subprocess.run(["umount", "-l", self.mnt])


def perf(t):
    trid = (f"trtype:tcp adrfam:IPv4 traddr:127.0.0.1 trsvcid:{t.port} subnqn:{NQN}")
    p = subprocess.run([os.path.join(t.bindir, "mimo_perf"), "-r", trid, "-q", "1", "-o",
                        "4096", "-w", "randwrite", "-t", str(SECONDS), "-c", "0x2", "-L",
                        "--json"], capture_output=True, text=True, timeout=SECONDS + 60)
    if p.returncode != 0:
        raise RuntimeError(f"mimo_perf: {p.stderr[-500:]}")
    tot = json.loads(p.stdout)["total"]
    return {"p50_us": tot["p50_lat_us"], "p99_us": tot["p99_lat_us"], "iops": tot["iops"],
            "errors": tot["io_errors"]}


def one_perf_run(bindir, scenario):
    with tempfile.TemporaryDirectory(prefix="mimo-coh-") as work:
        coherence = {"no_export": None, "export_unopened": "store", "store_cached": "store",
                     "inval_cached": "inval"}[scenario]
        t = Target(bindir, work, coherence)
        reader = None
        try:
            if scenario.endswith("_cached"):
                reader = subprocess.Popen(["taskset", "-c", "1", "/usr/bin/python3", "-c",
                                           READER, t.file, str(SIZE)], stdout=subprocess.PIPE,
                                          text=True)
                assert reader.stdout.readline().strip() == "ready"
            r = perf(t)
            if coherence is not None:
                n = t.notifications()
                r["held_writes"] = n.get("held_writes")
            return r
        finally:
            if reader is not None:
                reader.kill()
                reader.wait()
            t.stop()


def one_stale_run(bindir, coherence):
    """Write-then-read pairs: how many reads right after a completed write return older data,
    and the write latency the Python host sees (it includes Python's own time)."""
    with tempfile.TemporaryDirectory(prefix="mimo-coh-") as work:
        t = Target(bindir, work, coherence)
        try:
            a = admin_session(t.port, NQN)
            q = io_session(t.port, a, NQN)
            fd = os.open(t.file, os.O_RDONLY)
            stale, lat = 0, []
            for i in range(PAIRS):
                off = (i % 64) * 4096
                os.pread(fd, 4096, off)
                data = i.to_bytes(8, "little") * 512
                t0 = time.perf_counter()
                q.write(1, off // 4096, data, block_size=4096)
                lat.append(time.perf_counter() - t0)
                if os.pread(fd, 4096, off) != data:
                    stale += 1
            os.close(fd)
            q.close()
            a.close()
            lat.sort()
            return {"stale": stale, "pairs": PAIRS,
                    "py_host_write_p50_us": lat[len(lat) // 2] * 1e6}
        finally:
            t.stop()


def summary(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"median": round(statistics.median(values), 1),
            "range": [round(min(values), 1), round(max(values), 1)]}


def main():
    builds = [("after", BIN)]
    base = os.environ.get("FUSE_COHERENCE_BASE")
    if base:
        base = base if os.path.isabs(base) else os.path.join(REPO, base)
        builds.insert(0, ("before", os.path.join(base, "bin")))
    raw = {name: {s: [] for s in SCENARIOS + ("stale_store", "stale_inval")}
           for name, _ in builds}
    for _ in range(RUNS):
        for s in SCENARIOS:
            for name, bindir in builds:
                raw[name][s].append(one_perf_run(bindir, s))
        for coherence in ("store", "inval"):
            for name, bindir in builds:
                raw[name]["stale_" + coherence].append(one_stale_run(bindir, coherence))
    out = {"bench": "fuse_coherence", "machine": machine(), "runs": RUNS,
           "perf_seconds": SECONDS, "target_cpus": TGT_CPUS, "builds": {n: d for n, d in builds}, "results": {}}
    for name, _ in builds:
        res = {}
        for s in SCENARIOS:
            runs = raw[name][s]
            res[s] = {k: summary([r[k] for r in runs]) for k in ("p50_us", "p99_us", "iops")}
            res[s]["io_errors"] = sum(r["errors"] for r in runs)
            if "held_writes" in runs[0]:
                res[s]["held_writes"] = [r.get("held_writes") for r in runs]
        for coherence in ("store", "inval"):
            runs = raw[name]["stale_" + coherence]
            res["stale_" + coherence] = {
                "stale_reads": [r["stale"] for r in runs], "pairs_per_run": PAIRS,
                "py_host_write_p50_us": summary([r["py_host_write_p50_us"] for r in runs])}
        out["results"][name] = res
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
