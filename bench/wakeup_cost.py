#!/usr/bin/python3
"""What a request costs a reactor that sleeps between requests (queue depth 1). Prints one JSON
object.

At queue depth 1 every request wakes the reactor: the figure that decides its cost is how many
system calls and context switches one request takes, which a loaded VM does not move. For
mimo_tgt (and MIMO_TGT_BEFORE, another build's mimo_tgt, as "before") with one reactor on CPU 0
and `--idle-spin-us 0`:

- vhost-user-blk: a 64 MiB null bdev behind a vhost-user-blk controller, driven by the test
  suite's vhost-user front-end (test/integration/vhost_user.py, guest memory in a memfd) with
  one 4 KiB read at a time, waiting on the call eventfd as a guest's interrupt handler would.
- NVMe/TCP: a 64 MiB malloc bdev, mimo_perf 4 KiB random read at queue depth 1 on the last CPU.

Per request: system calls of the reactor thread (`perf stat -e raw_syscalls:sys_enter -t TID`;
needs perf with tracepoints), its voluntary context switches and CPU time (/proc/PID/task/TID).
Medians of WAKEUP_ROUNDS (default 3) rounds with min-max. WAKEUP_REQUESTS (vhost, default
50000) and WAKEUP_SECONDS (NVMe/TCP, default 3) size a round.
"""
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
import common  # noqa: E402
import vhost_user as vu  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
NQN = "nqn.2016-06.io.mimo:wakeup"


def reactor_tid(pid):
    for t in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{t}/comm") as f:
            if f.read().strip() == "reactor_0":
                return int(t)
    raise RuntimeError("no reactor_0 thread")


class ThreadCost:
    """System calls, voluntary switches and CPU seconds of one thread between start and stop."""

    def __init__(self, pid, tid):
        self.base = f"/proc/{pid}/task/{tid}"
        self.tid = tid

    def _sample(self):
        with open(self.base + "/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK
        with open(self.base + "/status") as f:
            vcsw = next(int(line.split()[1]) for line in f
                        if line.startswith("voluntary_ctxt_switches"))
        return cpu, vcsw

    def start(self):
        self.out = tempfile.NamedTemporaryFile(suffix=".perf", delete=False).name
        self.perf = subprocess.Popen(["perf", "stat", "-x,", "-e", "raw_syscalls:sys_enter",
                                      "-t", str(self.tid), "-o", self.out],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # perf writes nothing until it stops; give it the moment it needs to attach.
        time.sleep(0.2)
        self.s0 = self._sample()

    def stop(self, requests):
        s1 = self._sample()
        self.perf.send_signal(signal.SIGINT)
        self.perf.wait(timeout=30)
        with open(self.out) as f:
            line = next(ln for ln in f if "sys_enter" in ln)
        os.unlink(self.out)
        calls = line.split(",")[0]
        if not calls.isdigit():
            raise RuntimeError(f"perf counted no system calls ({line.strip()}): "
                               "does this kernel have the raw_syscalls tracepoints?")
        return {"syscalls_per_req": int(calls) / requests,
                "vcsw_per_req": (s1[1] - self.s0[1]) / requests,
                "cpu_us_per_req": (s1[0] - self.s0[0]) * 1e6 / requests}


def vhost_round(exe, work, requests):
    sock = os.path.join(work, "rpc.sock")
    p, c = common.start_tgt(sock, "-m", "0x1", "--idle-spin-us", "0", "-S", work, exe=exe)
    try:
        c.call("bdev_null_create", {"name": "n0", "num_blocks": 131072, "block_size": 512})
        c.call("vhost_create_blk_controller", {"ctrlr": "vb0", "dev_name": "n0"})
        fe = vu.Client(os.path.join(work, "vb0"))
        fe.negotiate()
        q = fe.queue(0)
        m = fe.mem
        hdr, buf, st = fe.alloc(16, 16), fe.alloc(4096), fe.alloc(1, 1)

        def one(sector):
            m[hdr:hdr + 16] = vu.struct.pack("<IIQ", vu.T_IN, 0, sector)
            head = q.submit([(hdr, 16, False), (buf, 4096, True), (st, 1, True)])
            while ((q.used_idx() - q.last_used) & 0xffff) < 1:
                vu.select.select([q.callfd], [], [], 1)
                try:
                    os.eventfd_read(q.callfd)
                except BlockingIOError:
                    pass
            q.last_used = (q.last_used + 1) & 0xffff
            q.recycle(head, 3)

        for i in range(200):
            one(i)
        cost = ThreadCost(p.pid, reactor_tid(p.pid))
        cost.start()
        t0 = time.monotonic()
        for i in range(requests):
            one((i * 8) % 131072)
        elapsed = time.monotonic() - t0
        r = cost.stop(requests)
        r["round_trip_us"] = elapsed * 1e6 / requests
        fe.close()
        return r
    finally:
        p.terminate()
        p.wait(timeout=10)


def nvmf_round(exe, work, seconds):
    sock = os.path.join(work, "rpc.sock")
    port = common.free_port()
    p, c = common.start_tgt(sock, "-m", "0x1", "--idle-spin-us", "0", exe=exe)
    try:
        c.call("bdev_malloc_create", {"name": "m0", "num_blocks": 16384, "block_size": 4096})
        c.call("nvmf_create_transport", {"trtype": "TCP"})
        c.call("nvmf_create_subsystem", {"nqn": NQN, "allow_any_host": True})
        c.call("nvmf_subsystem_add_ns", {"nqn": NQN, "namespace": {"bdev_name": "m0"}})
        c.call("nvmf_subsystem_add_listener", {"nqn": NQN, "listen_address": {
            "trtype": "TCP", "adrfam": "IPv4", "traddr": "127.0.0.1", "trsvcid": str(port)}})
        cost = ThreadCost(p.pid, reactor_tid(p.pid))
        cost.start()
        last = str(os.cpu_count() - 1)
        perf = subprocess.run(["taskset", "-c", last, os.path.join(common.BIN, "mimo_perf"),
                               "-r", f"trtype:tcp adrfam:IPv4 traddr:127.0.0.1 "
                               f"trsvcid:{port} subnqn:{NQN}",
                               "-q", "1", "-o", "4096", "-w", "randread", "-t", str(seconds),
                               "--json"], env=common.bench_env(), capture_output=True,
                              text=True, timeout=seconds + 60, check=True)
        out = json.loads(perf.stdout)
        ios = sum(ns["io_completed"] for ns in out["namespaces"])
        r = cost.stop(ios)
        r["avg_lat_us"] = statistics.mean(ns["avg_lat_us"] for ns in out["namespaces"])
        return r
    finally:
        p.terminate()
        p.wait(timeout=10)


def summary(rounds):
    out = {}
    for k in rounds[0]:
        vals = sorted(r[k] for r in rounds)
        out[k] = {"median": round(statistics.median(vals), 3),
                  "min": round(vals[0], 3), "max": round(vals[-1], 3)}
    return out


def main():
    n_rounds = int(os.environ.get("WAKEUP_ROUNDS", "3"))
    requests = int(os.environ.get("WAKEUP_REQUESTS", "50000"))
    seconds = int(os.environ.get("WAKEUP_SECONDS", "3"))
    targets = [("mimo", os.path.join(common.BIN, "mimo_tgt"))]
    if os.environ.get("MIMO_TGT_BEFORE"):
        targets.append(("before", os.environ["MIMO_TGT_BEFORE"]))
    res = {name: {"vhost_blk_qd1": [], "nvmf_tcp_qd1": []} for name, _ in targets}
    for _ in range(n_rounds):  # targets alternate within a round: the same load for both
        for name, exe in targets:
            with tempfile.TemporaryDirectory(prefix="wakeup.") as work:
                res[name]["vhost_blk_qd1"].append(vhost_round(exe, work, requests))
            with tempfile.TemporaryDirectory(prefix="wakeup.") as work:
                res[name]["nvmf_tcp_qd1"].append(nvmf_round(exe, work, seconds))
    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    print(json.dumps({"bench": "wakeup_cost", "machine": common.machine(), "loadavg": load,
                      "rounds": n_rounds,
                      "targets": {name: {job: summary(rs) for job, rs in jobs.items()}
                                  for name, jobs in res.items()}}))


if __name__ == "__main__":
    main()
