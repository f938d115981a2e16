#!/usr/bin/python3
"""What one NVMe/TCP I/O costs the target, in figures a shared, noisy VM cannot move much.
Prints one JSON object.

For each target (mimo_tgt on epoll; mimo_tgt on io_uring, "mimo-uring": sock_set_default_impl
-i uring before framework_start_init, unless COST_MIMO_URING=0; SPDK's nvmf_tgt when
SPDK_NVMF_TGT is set; its io_uring build when SPDK_NVMF_TGT_URING is set) and each workload
(4 KiB random read QD32, 4 KiB random write QD32, 128 KiB sequential read QD8, 128 KiB
sequential write QD8, 4 KiB random write QD32 with a data digest; COST_WORKLOADS picks some):

- instructions per I/O: the target runs under `valgrind --tool=callgrind --instr-atstart=no`;
  instrumentation is switched on (callgrind_control -i on) only while the initiator runs, then the
  counts are dumped; the I/Os are the bdev's own count (bdev_get_iostat before and after), so
  the figure is the target's user-space instructions over exactly the I/Os it served, plus the
  connection set-up and teardown of one initiator run (a few hundred thousand instructions,
  under 1 % here). A busy-polling target (SPDK) also counts its empty polls; under valgrind it
  is the bottleneck, so they are few, and `idle_instr_per_s` says what one second of them costs.
  Kernel work (the copies in sendmsg/readv) is not in it: that is what the syscall count is for.
- syscalls per I/O: `strace -c -f -p` on the target (not under valgrind) over a run, divided by
  the bdev's I/O count of the same run. strace slows every syscall, so the batching it sees is
  that of a slowed target: compare targets with each other, not with a run without strace.
- CPU time per I/O: the target's user + system time (/proc/PID/stat) over a run without strace
  or valgrind, divided by its I/Os - the one figure that holds the kernel's side too (io_uring
  moves the socket copies into task work that neither callgrind nor strace count). A
  busy-polling target (SPDK) spends its whole core whatever it serves: its figure is the core
  over the I/Os it managed.

The initiator is spdk_nvme_perf (SPDK_NVME_PERF) when set, else mimo_perf, on the last CPU; the
target on CPU 0 with one reactor. The 64 MiB malloc bdev is written end to end first.
MIMO_TGT_BEFORE (another mimo_tgt, e.g. of the commit before a change) adds it as
"mimo-before". Environment: COST_SECONDS (initiator run per workload, default 4), COST_KEEP (a folder: keep
the callgrind dumps there, for callgrind_annotate).
"""
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from common import BIN, REPO, bench_env, free_port, machine, wait_port  # noqa: E402

sys.path.insert(0, os.path.join(REPO, "python"))
from mimo import Client  # noqa: E402

SECONDS = int(os.environ.get("COST_SECONDS", "4"))
KEEP = os.environ.get("COST_KEEP")
SPDK_PERF = os.environ.get("SPDK_NVME_PERF")
SPDK_TGT = os.environ.get("SPDK_NVMF_TGT")
SPDK_TGT_URING = os.environ.get("SPDK_NVMF_TGT_URING")
NQN = "nqn.2016-06.io.spdk:cnode1"
LAST_CPU = (os.cpu_count() or 1) - 1
SPDK_MEM = ["--no-huge", "-s", "1024"]

WORKLOADS = {
    "randread_4k_qd32": (["-q", "32", "-o", "4096", "-w", "randread"], "num_read_ops"),
    "randwrite_4k_qd32": (["-q", "32", "-o", "4096", "-w", "randwrite"], "num_write_ops"),
    "read_128k_qd8": (["-q", "8", "-o", "131072", "-w", "read"], "num_read_ops"),
    "write_128k_qd8": (["-q", "8", "-o", "131072", "-w", "write"], "num_write_ops"),
    # With a data digest (-I), where writes stay staged in a buffer (docs/nvmf.md).
    "randwrite_4k_qd32_ddgst": (["-q", "32", "-o", "4096", "-w", "randwrite", "-I"],
                                "num_write_ops"),
}
# COST_WORKLOADS: a comma-separated subset of the names above (default: all of them).
if os.environ.get("COST_WORKLOADS"):
    WORKLOADS = {k: WORKLOADS[k] for k in os.environ["COST_WORKLOADS"].split(",")}


def lib_env(exe):
    """SPDK's programs need their tree's build/lib (Debian's DPDK is shared-only)."""
    env = bench_env(MIMO_NOTIFY_DISABLE=1)
    if exe is not None and "mimo" not in os.path.basename(exe):
        env["LD_LIBRARY_PATH"] = os.path.join(os.path.dirname(os.path.dirname(exe)), "lib")
    return env


class Target:
    def __init__(self, name, exe, d, callgrind, pre_init=()):
        """pre_init: (method, params) calls made before framework_start_init (the socket
        layer's options, which SPDK and mimo take only then); "-uring" names add one."""
        self.name, self.d = name, d
        self.sock = os.path.join(d, f"{name}.sock")
        self.cg_out = os.path.join(d, f"cg-{name}.out")
        pre_init = list(pre_init)
        if name.endswith("-uring"):
            pre_init.append(("sock_set_default_impl", {"impl_name": "uring"}))
        argv = [exe or os.path.join(BIN, "mimo_tgt"), "-r", self.sock, "-m", "0x1"]
        if exe is not None and "mimo" not in os.path.basename(exe):
            argv += SPDK_MEM + ["-u", "--disable-cpumask-locks"]
        if pre_init:
            argv.append("--wait-for-rpc")
        if callgrind:
            argv = ["valgrind", "--tool=callgrind", "--instr-atstart=no",
                    f"--callgrind-out-file={self.cg_out}", "--dump-instr=no"] + argv
        self.p = subprocess.Popen(["taskset", "-c", "0"] + argv, env=lib_env(exe),
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  start_new_session=True)
        deadline = time.monotonic() + (120 if callgrind else 30)
        while True:
            try:
                self.c = Client(self.sock, timeout=60)
                self.c.call("rpc_get_methods")
                break
            except (OSError, ConnectionError):
                if time.monotonic() > deadline or self.p.poll() is not None:
                    self.stop()
                    raise RuntimeError(f"{name} did not start")
                time.sleep(0.1)
        if pre_init:
            for method, params in pre_init:
                self.c.call(method, params)
            self.c.call("framework_start_init")
        self.port = free_port()
        self.c.call("nvmf_create_transport", {"trtype": "TCP"})
        self.c.call("bdev_malloc_create", {"name": "Malloc0", "num_blocks": 131072,
                                           "block_size": 512})
        self.c.call("nvmf_create_subsystem", {"nqn": NQN, "allow_any_host": True,
                                              "serial_number": "SPDK00000000000001"})
        self.c.call("nvmf_subsystem_add_ns", {"nqn": NQN,
                                              "namespace": {"bdev_name": "Malloc0"}})
        self.c.call("nvmf_subsystem_add_listener", {"nqn": NQN, "listen_address": {
            "trtype": "TCP", "adrfam": "IPv4", "traddr": "127.0.0.1",
            "trsvcid": str(self.port)}})
        if not wait_port(self.port, 60):
            raise RuntimeError(f"{name} does not listen")

    @property
    def pid(self):
        # Under taskset, the target is the same process (taskset execs it); valgrind too.
        return self.p.pid

    def iostat(self, key):
        # Every bdev, then ours: SPDK's decoder refuses some clients' {"name"} object.
        r = self.c.call("bdev_get_iostat")
        b = next(x for x in r["bdevs"] if x["name"] == "Malloc0")
        return b[key], b["bytes_written"]

    def stop(self):
        if self.p.poll() is None:
            os.killpg(self.p.pid, signal.SIGINT)
            try:
                self.p.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.p.pid, signal.SIGKILL)
                self.p.wait()


def initiator(port, args, seconds):
    trid = f"trtype:tcp adrfam:IPv4 traddr:127.0.0.1 trsvcid:{port} subnqn:{NQN}"
    mask = hex(1 << LAST_CPU)
    if SPDK_PERF:
        argv = ["taskset", "-c", str(LAST_CPU), SPDK_PERF, "--no-huge", "-s", "512",
                "-c", mask]
        env = lib_env(SPDK_PERF)
    else:
        argv = [os.path.join(BIN, "mimo_perf"), "-c", mask]
        env = bench_env()
    p = subprocess.run(argv + ["-r", trid, *args, "-t", str(seconds)], env=env,
                       capture_output=True, text=True, timeout=seconds + 120)
    if p.returncode != 0 and "Total" not in p.stdout and "IOPS" not in p.stdout:
        raise RuntimeError(f"initiator {args}: {p.stdout[-1500:]} {p.stderr[-1500:]}")


def fill(t):
    """Write the whole bdev (sequential 128 KiB writes wrap around) so reads read data."""
    start = t.iostat("num_write_ops")[1]
    for _ in range(20):
        initiator(t.port, ["-q", "8", "-o", "131072", "-w", "write"], 2)
        if t.iostat("num_write_ops")[1] - start >= 64 << 20:
            return
    raise RuntimeError(f"{t.name}: could not write the bdev through")


def callgrind_total(path):
    """The Ir total of one callgrind dump ("totals:"; "summary:" reads 0 after a zero)."""
    with open(path) as f:
        for line in f:
            if line.startswith("totals:"):
                return int(line.split()[1])
    raise RuntimeError(f"no total in {path}")


def ctl(pid, *args):
    subprocess.run(["callgrind_control", *args, str(pid)], check=True, capture_output=True,
                   timeout=120)


def instructions(name, exe, d):
    t = Target(name, exe, d, callgrind=True)
    res = {}
    try:
        fill(t)
        # An idle second first: what the target spends with nothing to do.
        ctl(t.pid, "-z")
        ctl(t.pid, "-i", "on")
        time.sleep(1)
        ctl(t.pid, "-i", "off")
        ctl(t.pid, "-d", "idle")
        for w, (args, key) in WORKLOADS.items():
            n0 = t.iostat(key)[0]
            ctl(t.pid, "-z")
            ctl(t.pid, "-i", "on")
            initiator(t.port, args, SECONDS)
            ctl(t.pid, "-i", "off")
            ctl(t.pid, "-d", w)
            ios = t.iostat(key)[0] - n0
            res[w] = {"ios": ios}
        time.sleep(0.5)
        dumps = sorted(glob.glob(t.cg_out + ".*"), key=os.path.getmtime)
        for f in dumps:
            with open(f) as fh:
                head = fh.read(4096)
            label = None
            for w in ["idle", *WORKLOADS]:
                if re.search(rf"^desc: Trigger:.*\b{w}\b", head, re.M):
                    label = w
            if label is None:
                continue
            ir = callgrind_total(f)
            if label == "idle":
                res["idle_instr_per_s"] = ir
            else:
                res[label]["instr"] = ir
                res[label]["instr_per_io"] = round(ir / res[label]["ios"]) \
                    if res[label]["ios"] else None
            if KEEP:
                os.makedirs(KEEP, exist_ok=True)
                shutil.copy(f, os.path.join(KEEP, f"callgrind.{name}.{label}"))
    finally:
        t.stop()
    return res


def cpu_ticks(pid):
    """utime + stime of the process (all threads), in clock ticks."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def syscalls(name, exe, d):
    t = Target(name, exe, d, callgrind=False)
    res = {}
    hz = os.sysconf("SC_CLK_TCK")
    try:
        fill(t)
        for w, (args, key) in WORKLOADS.items():
            # CPU per I/O first, with nothing attached to the target.
            n0, c0 = t.iostat(key)[0], cpu_ticks(t.pid)
            initiator(t.port, args, SECONDS)
            ios, cpu = t.iostat(key)[0] - n0, cpu_ticks(t.pid) - c0
            cpu_ns = round(cpu / hz * 1e9 / ios) if ios else None
            out = os.path.join(d, f"strace-{name}-{w}.txt")
            n0 = t.iostat(key)[0]
            st = subprocess.Popen(["strace", "-c", "-f", "-p", str(t.pid), "-o", out],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(1.0)
            try:
                initiator(t.port, args, SECONDS)
            finally:
                st.send_signal(signal.SIGINT)
                st.wait(60)
            ios = t.iostat(key)[0] - n0
            calls, per = 0, {}
            for line in open(out):
                f = line.split()
                if len(f) >= 5 and re.match(r"^[\d.]+$", f[0]) and f[-1] != "total":
                    per[f[-1]] = int(f[3])
                elif f and f[-1] == "total":
                    calls = int(f[3])
            top = sorted(per.items(), key=lambda kv: -kv[1])[:4]
            res[w] = {"cpu_ns_per_io": cpu_ns, "ios": ios, "syscalls": calls,
                      "syscalls_per_io": round(calls / ios, 3) if ios else None,
                      "top_per_io": {k: round(v / ios, 3) for k, v in top} if ios else {}}
    finally:
        t.stop()
    return res


def main():
    missing = [t for t in ("valgrind", "callgrind_control", "strace", "taskset")
               if shutil.which(t) is None]
    if missing:
        # make bench runs every benchmark: say why this one measured nothing.
        print(json.dumps({"benchmark": "nvmf_cost", "skipped": f"not installed: {missing}"}))
        return
    targets = [("mimo", None)]
    if os.environ.get("COST_MIMO_URING", "1") != "0":
        targets.append(("mimo-uring", None))
    if os.environ.get("MIMO_TGT_BEFORE"):  # another mimo_tgt: a before/after pair
        targets.insert(0, ("mimo-before", os.environ["MIMO_TGT_BEFORE"]))
    if SPDK_TGT:
        targets.append(("spdk-posix", SPDK_TGT))
    if SPDK_TGT_URING:
        targets.append(("spdk-uring", SPDK_TGT_URING))
    out = {"benchmark": "nvmf_cost", "machine": machine(), "seconds": SECONDS,
           "initiator": "spdk_nvme_perf" if SPDK_PERF else "mimo_perf",
           "uptime_start": subprocess.run(["uptime"], capture_output=True,
                                          text=True).stdout.strip(),
           "targets": {}}
    only = os.environ.get("COST_ONLY")  # "instr" or "syscalls": one half
    with tempfile.TemporaryDirectory(prefix="mimo-cost-") as d:
        for name, exe in targets:
            r = {}
            if only != "syscalls":
                r["instructions"] = instructions(name, exe, d)
            if only != "instr":
                r["syscalls"] = syscalls(name, exe, d)
            out["targets"][name] = r
    out["uptime_end"] = subprocess.run(["uptime"], capture_output=True,
                                       text=True).stdout.strip()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
