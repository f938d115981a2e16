#!/usr/bin/python3
"""Many hosts on one NVMe/TCP target: total IOPS, how fairly the hosts share it, and where the
target puts their queue pairs. Prints one JSON object.

Each host is a controller of its own (a distinct host NQN) with one I/O queue pair, 4 KiB
random read at queue depth BENCH_QD (default 8) per host, BENCH_SECONDS (default 5) per run,
against a 64 MiB malloc bdev (512-byte blocks). The driver is SPDK's spdk_nvme_perf
(SPDK_NVME_PERF), one process with one -r per host ('hostnqn:' in the transport ID); it
connects every host's admin queue first, then every I/O queue. Host counts: BENCH_HOSTS
(default "16,64"); placements: BENCH_PLACEMENTS (default "shared,split").

Two placements, each with mimo_tgt and SPDK's nvmf_tgt (SPDK_NVMF_TGT, posix sockets, started
as bench/nvmf_cost.py starts it: --no-huge -s 1024 -u --disable-cpumask-locks):
- "shared": the target on both CPUs (-m 0x3) and spdk_nvme_perf on both too (-c 0x3, one worker
  per CPU, the hosts split between them): the initiator and the target share the two cores of
  this machine. SPDK's reactors busy-poll both cores whatever the load, so SPDK's target takes
  CPU from the initiator there; mimo's reactors sleep when idle, and spin only while busy.
- "split": the target on CPU 0 (-m 0x1), spdk_nvme_perf on CPU 1 (-c 0x2): one core each, a
  per-core comparison without that contention.

Per run: total IOPS (spdk_nvme_perf's Total line), per-host IOPS (its per-namespace lines: min,
median, max) and Jain's fairness index over them, (sum x)^2 / (n sum x^2), 1.0 when every host
gets the same; per initiator core (spdk_nvme_perf's worker), its hosts' IOPS and their index;
the hosts whose I/O queue's poll group runs on their initiator worker's CPU ("same_cpu") and
the others (nvmf_subsystem_get_qpairs' "thread"), their mean IOPS and index;
the queue pairs per poll group during the run (nvmf_get_stats: current_admin_qpairs,
current_io_qpairs) and each poll group's share of the I/O it answered (completed_nvme_io over
the run). From the moment every host's I/O queue is connected, over 80 % of the run time: each
reactor's busy share (framework_get_reactors' busy and idle ticks), the target's CPU time
(/proc/PID/stat) in cores, and that CPU time over the I/O answered meanwhile
(completed_nvme_io; for SPDK it includes its idle polls).
BENCH_ROUNDS (default 3) rounds, the two targets alternating within each; medians with their
min-max and the load average around each round.

"sequential_hosts" (MIMO_TGT_BEFORE adds another mimo_tgt there, e.g. the commit before a
change): where each target (-m 0x3) puts the queue pairs of 16 hosts that connect one after
another, an admin queue and then one I/O queue each (the order of Linux hosts with one I/O
queue; spdk_nvme_perf cannot connect in that order), connected by the test suite's host written
from the specification (test/integration/nvme_tcp_host.py): queue pairs per poll group.
"""
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from common import BIN, REPO, free_port, machine, start_tgt, wait_port  # noqa: E402
from nvmf_cost import lib_env  # noqa: E402

SECONDS = int(os.environ.get("BENCH_SECONDS", "5"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
QD = int(os.environ.get("BENCH_QD", "8"))
HOSTS = [int(x) for x in os.environ.get("BENCH_HOSTS", "16,64").split(",")]
SPDK_PERF = os.environ.get("SPDK_NVME_PERF")
SPDK_TGT = os.environ.get("SPDK_NVMF_TGT")
MIMO_BEFORE = os.environ.get("MIMO_TGT_BEFORE")
SPDK_MEM = ["--no-huge", "-s", "1024"]
NQN = "nqn.2016-06.io.spdk:cnode1"
PLACEMENTS = {  # name: (target mask, spdk_nvme_perf mask)
    "shared": ("0x3", "0x3"),
    "split": ("0x1", "0x2"),
}
PLACEMENTS = {k: PLACEMENTS[k]
              for k in os.environ.get("BENCH_PLACEMENTS", "shared,split").split(",")}


def hostnqn(i):
    return f"nqn.2014-08.org.nvmexpress:uuid:00000000-0000-4000-8000-{i:012x}"


class Target:
    def __init__(self, name, exe, mask, d):
        self.name = name
        spdk = exe is not None and "mimo" not in os.path.basename(exe)
        args = ["-m", mask] + (SPDK_MEM + ["-u", "--disable-cpumask-locks"] if spdk else [])
        libs = {"LD_LIBRARY_PATH": lib_env(exe)["LD_LIBRARY_PATH"]} if spdk else None
        self.p, self.c = start_tgt(os.path.join(d, f"{name}{mask}.sock"), *args, exe=exe,
                                   timeout=30, env=libs)
        self.port = free_port()
        self.c.call("nvmf_create_transport", {"trtype": "TCP"})
        self.c.call("bdev_malloc_create", {"name": "Malloc0", "num_blocks": 131072,
                                           "block_size": 512})
        self.c.call("nvmf_create_subsystem", {"nqn": NQN, "allow_any_host": True,
                                              "serial_number": "SPDK00000000000001"})
        self.c.call("nvmf_subsystem_add_ns", {"nqn": NQN, "namespace": {"bdev_name": "Malloc0"}})
        self.c.call("nvmf_subsystem_add_listener", {"nqn": NQN, "listen_address": {
            "trtype": "TCP", "adrfam": "IPv4", "traddr": "127.0.0.1",
            "trsvcid": str(self.port)}})
        if not wait_port(self.port, 30):
            raise RuntimeError(f"{name} does not listen")

    def cpu_s(self):
        with open(f"/proc/{self.p.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def groups(self):
        return self.c.call("nvmf_get_stats")["poll_groups"]

    def reactors(self):
        return {r["lcore"]: (r["busy"], r["idle"])
                for r in self.c.call("framework_get_reactors")["reactors"]}

    def stop(self):
        self.p.terminate()
        try:
            self.p.wait(30)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()


def perf_argv(port, hosts, mask):
    # -k 60000: spdk_nvme_perf attaches the hosts one by one and keeps none alive meanwhile;
    # on a loaded machine 64 attaches took over 20 s, past the default 10 s keep-alive
    # timeout, and the target dropped the first hosts' controllers before their I/O queues
    # connected (SPDK logged "Unknown controller ID").
    argv = [SPDK_PERF, "--no-huge", "-s", "1024", "-c", mask, "-q", str(QD), "-o", "4096",
            "-w", "randread", "-t", str(SECONDS), "-k", "60000"]
    for i in range(hosts):
        argv += ["-r", f"trtype:tcp adrfam:IPv4 traddr:127.0.0.1 trsvcid:{port} subnqn:{NQN} "
                       f"hostnqn:{hostnqn(i)}"]
    return argv


NS_LINE = re.compile(r" from core\s+(\d+):\s+([\d.]+)\s+")


def parse_perf(out, hosts):
    """(total IOPS, [(initiator core, IOPS) per host]) from spdk_nvme_perf's report."""
    per_host = [(int(m.group(1)), float(m.group(2)))
                for m in map(NS_LINE.search, out.splitlines())
                if m and not m.string.startswith(("Summary", "Latency"))]
    total = None
    for line in out.splitlines():
        if line.startswith("Total"):
            total = float(line.split(":", 1)[1].split()[0])
    if total is None or len(per_host) != hosts:
        raise RuntimeError(f"spdk_nvme_perf: {len(per_host)} hosts of {hosts}, total {total}:"
                           f" {out[-3000:]}")
    return total, per_host


def jain(xs):
    s = sum(xs)
    return round(s * s / (len(xs) * sum(x * x for x in xs)), 4) if s else 0.0


def one_run(t, hosts, perf_mask):
    g0 = t.groups()
    p = subprocess.Popen(perf_argv(t.port, hosts, perf_mask), env=lib_env(SPDK_PERF),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # The window measured on the target: from every host's I/O queue connected to shortly
    # before spdk_nvme_perf's run time is over.
    deadline = time.monotonic() + 60
    while sum(g["current_io_qpairs"] for g in t.groups()) < hosts and p.poll() is None \
            and time.monotonic() < deadline:
        time.sleep(0.02)
    r0, c0, w0 = t.reactors(), t.cpu_s(), time.monotonic()
    mid = t.groups()
    # Which poll group serves each host's I/O queue ("thread", named by index as SPDK does;
    # poll group i runs on CPU i of the mask's CPUs here).
    io_group = {q["hostnqn"]: int(q["thread"].rsplit("_", 1)[1])
                for q in t.c.call("nvmf_subsystem_get_qpairs", {"nqn": NQN})
                if q["qid"] != 0 and "thread" in q}
    time.sleep(SECONDS * 0.8)
    r1, c1, w1 = t.reactors(), t.cpu_s(), time.monotonic()
    ios = sum(g["completed_nvme_io"] for g in t.groups()) - \
        sum(g["completed_nvme_io"] for g in mid)
    out, err = p.communicate(timeout=SECONDS + 120)
    g1 = t.groups()
    if p.returncode != 0:
        # Its own error lines, not the flood of teardown messages from every queue pair.
        why = [x for x in (out + err).splitlines() if "ERROR" in x and "sock_flush" not in x
               and "transport error -6" not in x and "QUIESCING" not in x]
        raise RuntimeError(f"spdk_nvme_perf failed on {t.name} (exit {p.returncode}): "
                           + " | ".join(why[:5] or [err[-300:]]))
    total, per_host = parse_perf(out, hosts)
    iops = [x for _, x in per_host]
    by_core = {}
    for core, x in per_host:
        by_core.setdefault(core, []).append(x)
    # spdk_nvme_perf hands the hosts to its workers round robin (host i to the i-th worker
    # modulo their number) and prints each worker's hosts in that order: a host whose I/O
    # queue's poll group runs on the CPU of its initiator worker shares that CPU with it.
    cores = sorted(by_core)
    colocated = {"same_cpu": [], "other_cpu": []}
    for ci, core in enumerate(cores):
        for k, x in enumerate(by_core[core]):
            g = io_group.get(hostnqn(k * len(cores) + ci))
            if g is not None:
                colocated["same_cpu" if g == core else "other_cpu"].append(x)
    done = [b["completed_nvme_io"] - a["completed_nvme_io"] for a, b in zip(g0, g1)]
    busy = {}
    for lcore, (b1, i1) in r1.items():
        b0, i0 = r0.get(lcore, (0, 0))
        busy[str(lcore)] = round((b1 - b0) / max(1, (b1 - b0) + (i1 - i0)), 3)
    return {
        "iops": round(total),
        "host_iops_min": round(min(iops)),
        "host_iops_median": round(statistics.median(iops)),
        "host_iops_max": round(max(iops)),
        "jain": jain(iops),
        # spdk_nvme_perf's workers (one per CPU of its mask) each serve a share of the hosts
        # and get what CPU the scheduler gives them: fairness among the hosts of one worker
        # is the target's, between workers mostly the initiator's.
        "per_initiator_core": {str(c): {"hosts": len(v), "iops": round(sum(v)),
                                        "jain": jain(v)} for c, v in sorted(by_core.items())},
        "initiator_and_poll_group": {k: {"hosts": len(v), "iops_mean": round(sum(v) / len(v)),
                                         "jain": jain(v)} for k, v in colocated.items() if v},
        "io_qpairs_per_group": [g["current_io_qpairs"] for g in mid],
        "admin_qpairs_per_group": [g["current_admin_qpairs"] for g in mid],
        "io_share_per_group": [round(x / max(1, sum(done)), 3) for x in done],
        "reactor_busy": busy,
        "target_cpu_cores": round((c1 - c0) / (w1 - w0), 2),
        # A busy-polling target (SPDK) spends its idle polls here too.
        "target_cpu_us_per_io": round((c1 - c0) * 1e6 / max(1, ios), 2),
    }


def spread(vals):
    v = sorted(vals)
    return {"median": v[len(v) // 2], "min": v[0], "max": v[-1]}


def sequential_hosts(name, exe, d, n=16):
    """Queue pairs per poll group when n hosts connect one after another, admin then I/O."""
    sys.path.insert(0, os.path.join(REPO, "test", "integration"))
    from nvme_tcp_host import admin_session, io_session
    t = Target(name, exe, "0x3", d)
    try:
        sessions = []
        for i in range(n):
            a = admin_session(t.port, NQN, hostnqn=hostnqn(i))
            sessions.append((a, io_session(t.port, a, NQN)))
        deadline = time.monotonic() + 10
        while sum(g["current_io_qpairs"] for g in t.groups()) < n and \
                time.monotonic() < deadline:
            time.sleep(0.05)
        g = t.groups()
        for a, q in sessions:
            q.close()
            a.close()
        return {"io_qpairs_per_group": [x["current_io_qpairs"] for x in g],
                "admin_qpairs_per_group": [x["current_admin_qpairs"] for x in g]}
    finally:
        t.stop()


def attempt(name, exe, tmask, d, hosts, pmask, failures):
    """One run on a fresh target; a run that fails (on a loaded machine some hosts' I/O
    queues time out connecting) is counted in "failed_runs" with its reason and tried again,
    up to twice."""
    for i in range(3):
        t = Target(name, exe, tmask, d)
        try:
            return one_run(t, hosts, pmask)
        except RuntimeError as e:
            failures.append({"target": name, "target_mask": tmask, "hosts": hosts,
                             "utc": time.strftime("%H:%M:%SZ", time.gmtime()),
                             "reason": " ".join(str(e).split())[:600]})
            if i == 2:
                raise
        finally:
            t.stop()


def main():
    if not (SPDK_PERF and SPDK_TGT):
        sys.exit("set SPDK_NVME_PERF and SPDK_NVMF_TGT (the driver and the peer)")
    targets = [("mimo", os.path.join(BIN, "mimo_tgt")), ("spdk", SPDK_TGT)]
    seq_targets = targets[:1] + ([("mimo-before", MIMO_BEFORE)] if MIMO_BEFORE else []) + \
        targets[1:]
    out = {"benchmark": "nvmf_hosts", "machine": machine(),
           "utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "method": f"spdk_nvme_perf, one -r (host NQN) per host, 1 I/O qpair each, 4 KiB "
                     f"randread QD {QD} per host, {SECONDS} s; {ROUNDS} rounds, targets "
                     f"alternating; medians (min-max)",
           "placements": {k: {"target_mask": v[0], "perf_mask": v[1]}
                          for k, v in PLACEMENTS.items()},
           "loadavg_before_after": []}
    runs = {}
    failures = out["failed_runs"] = []
    with tempfile.TemporaryDirectory(prefix="mimo-hosts-") as d:
        for _ in range(ROUNDS):
            before = os.getloadavg()
            for pl, (tmask, pmask) in PLACEMENTS.items():
                for hosts in HOSTS:
                    for name, exe in targets:
                        r = attempt(name, exe, tmask, d, hosts, pmask, failures)
                        runs.setdefault((pl, hosts, name), []).append(r)
            out["loadavg_before_after"].append(
                [round(x, 2) for x in before] + [round(x, 2) for x in os.getloadavg()])
        res = {}
        for (pl, hosts, name), rs in runs.items():
            e = {k: spread([r[k] for r in rs])
                 for k in ("iops", "host_iops_min", "host_iops_median", "host_iops_max",
                           "jain", "target_cpu_cores", "target_cpu_us_per_io")}
            e["runs"] = [{k: r[k] for k in ("per_initiator_core", "initiator_and_poll_group",
                                            "io_qpairs_per_group",
                                            "admin_qpairs_per_group", "io_share_per_group",
                                            "reactor_busy")} for r in rs]
            res.setdefault(pl, {}).setdefault(f"{hosts}_hosts", {})[name] = e
        for pl, by_hosts in res.items():
            for e in by_hosts.values():
                if "spdk" in e:
                    e["mimo_over_spdk_iops"] = round(e["mimo"]["iops"]["median"]
                                                     / e["spdk"]["iops"]["median"], 2)
        out["results"] = res
        out["sequential_hosts"] = {name: sequential_hosts(name, exe, d)
                                   for name, exe in seq_targets}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
