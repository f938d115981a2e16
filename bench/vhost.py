#!/usr/bin/python3
"""vhost-user-blk and vhost-user-scsi: mimo_tgt against qemu-storage-daemon, the same guest,
the same jobs.

A guest (test/guest: Debian 12's kernel under TCG, memory in a shared memfd) gets one disk from
the back-end under test - a vhost-user-blk-pci disk (/dev/vda) from mimo_tgt ("mimo") or from
qemu-storage-daemon ("qsd"), or a vhost-user-scsi-pci adapter with one target (/dev/sda) from
mimo_tgt ("mimo_scsi"; qemu-storage-daemon has no vhost-user-scsi export, only vhost-user-blk,
so that column has no qsd counterpart and is compared with qsd's vhost-user-blk) - and runs
bench/vblk_load (Linux AIO, O_DIRECT) on it: 4 KiB random reads at queue depth 1 and 32,
128 KiB sequential reads at depth 8. All back-ends serve the same file on tmpfs through
io_uring (mimo: an aio bdev; qsd: the file driver with aio=io_uring), one queue each, on one
host core each. The host samples the back-end's CPU time (/proc/PID/stat utime+stime) at the
start and end of each job: CPU time per I/O is what carries to a KVM host, where the guest is
not the bottleneck. Per job also, figures the load moves less: the back-end's system calls
and context switches per I/O (perf stat -e raw_syscalls:sys_enter and /proc over all its
threads), the guest's interrupts from the disk per I/O (/proc/interrupts), and for mimo_tgt
its queue's kicks and calls per I/O. Rounds alternate the back-ends; medians and min-max over
the rounds (with --rounds 1, the one value three times). One JSON object on stdout.

The null backing: mimo's null bdev leaves a vhost guest's read buffers as they were (as SPDK's
null bdev does), and qsd's null-co runs with read-zeroes=off (QEMU 7.2's default), so neither
fills them; qsd_zero is qsd with read-zeroes=on, for comparison with builds whose null bdev
zeroed. mimo_b is another build's mimo_tgt (MIMO_TGT_B=path), to A/B two builds in one run.

    /usr/bin/python3 bench/vhost.py [--rounds 3] [--seconds 5] [--backends mimo qsd mimo_scsi]
    /usr/bin/python3 bench/vhost.py --backing null --backends mimo mimo_packed qsd
"""
import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "test", "guest"))
import common  # noqa: E402
import image  # noqa: E402
import vm  # noqa: E402

JOBS = [("randread_4k_qd1", ["-q", "1", "-b", "4096"]),
        ("randread_4k_qd32", ["-q", "32", "-b", "4096"]),
        ("read_128k_qd8", ["-q", "8", "-b", "131072", "-s"])]
DISK_MIB = 256
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def wait_socket(path, proc, timeout=20):
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{path} did not appear")
        time.sleep(0.02)


def mimo_tgt(work, img, backing, spin, exe=None, env=None):
    sock = os.path.join(work, "mimo.sock")
    # Its log is kept beside the guests' (work/runN-*/console.log): when a guest hangs, the
    # two together say which side stopped.
    p, c = common.start_tgt(sock, "-m", "0x1", "-S", work, "--idle-spin-us", str(spin),
                            exe=exe,
                            log=os.path.join(work, f"mimo_tgt.{time.time_ns()}.log"),
                            env=dict({"MIMO_LOG": "info"}, **(env or {})))
    if backing == "null":
        c.call("bdev_null_create", {"name": "A0", "block_size": 512,
                                    "num_blocks": DISK_MIB * 2048})
    else:
        c.call("bdev_aio_create", {"name": "A0", "filename": img, "block_size": 512})
    return p, c


def start_mimo(work, img, backing, spin, exe=None, env=None):
    p, c = mimo_tgt(work, img, backing, spin, exe, env)
    c.call("vhost_create_blk_controller", {"ctrlr": "vb.mimo", "dev_name": "A0"})
    return p, os.path.join(work, "vb.mimo"), c


def start_mimo_b(work, img, backing, spin):
    """Another build's mimo_tgt (MIMO_TGT_B), for an A/B of two builds in one run."""
    return start_mimo(work, img, backing, spin, exe=os.environ["MIMO_TGT_B"])


def start_mimo_packed(work, img, backing, spin):
    p, c = mimo_tgt(work, img, backing, spin)
    c.call("vhost_create_blk_controller", {"ctrlr": "vb.mimo", "dev_name": "A0",
                                           "packed_ring": True})
    return p, os.path.join(work, "vb.mimo"), c


def start_mimo_scsi(work, img, backing, spin):
    p, c = mimo_tgt(work, img, backing, spin)
    c.call("vhost_create_scsi_controller", {"ctrlr": "vs.mimo"})
    c.call("vhost_scsi_controller_add_target",
           {"ctrlr": "vs.mimo", "scsi_target_num": 0, "bdev_name": "A0"})
    return p, os.path.join(work, "vs.mimo"), c


def start_qsd(work, img, backing, spin, read_zeroes="off"):
    path = os.path.join(work, "vb.qsd")
    node = (f"driver=null-co,node-name=f0,size={DISK_MIB << 20},read-zeroes={read_zeroes}"
            if backing == "null" else f"driver=file,node-name=f0,filename={img},aio=io_uring")
    p = subprocess.Popen(
        ["taskset", "-c", "0", "qemu-storage-daemon",
         "--blockdev", node,
         "--export", f"type=vhost-user-blk,id=e0,node-name=f0,addr.type=unix,"
                     f"addr.path={path},writable=on,num-queues=1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_socket(path, p)
    return p, path, None


def start_qsd_zero(work, img, backing, spin):
    """qsd's null-co filling every read with zeroes (as mimo's null bdev did for vhost
    guests before it left their buffers alone)."""
    return start_qsd(work, img, backing, spin, read_zeroes="on")


# The guest's side of each back-end: its module, its disk, QEMU's device.
FRONT = {"blk": ("modprobe virtio_blk", "/dev/vda", "vhost-user-blk-pci,chardev=vu0,num-queues=1"),
         "blk_packed": ("modprobe virtio_blk", "/dev/vda",
                        "vhost-user-blk-pci,chardev=vu0,num-queues=1,packed=on"),
         "scsi": ("modprobe -a virtio_scsi sd_mod", "/dev/sda",
                  "vhost-user-scsi-pci,chardev=vu0,num_queues=1")}
# A driver's probe that does not finish within this many seconds: the guest prints what the
# kernel knows (its log, the probe's stack) and gives up, instead of waiting for the timeout.
PROBE_SECONDS = 90


def probe(modprobe):
    # A hung probe waits for the host before it ends: the back-end's view of the rings is
    # taken while QEMU still runs (once it exits, the session and its counters are gone).
    return (f"({modprobe}; echo > /tmp/probed) &\n"
            f"if ! wait_for {PROBE_SECONDS} test -e /tmp/probed; then\n"
            "  echo '--- probe hung: dmesg'; dmesg | tail -80\n"
            "  for p in $(pidof modprobe); do echo \"--- stack of $p\"; cat /proc/$p/stack; done\n"
            "  mark probe-hung\n"
            "  wait_host\n"
            "  exit 1\n"
            "fi\n"
            "mark probed\n")
BACKENDS = {"mimo": (start_mimo, "blk"), "qsd": (start_qsd, "blk"),
            "mimo_scsi": (start_mimo_scsi, "scsi"), "mimo_b": (start_mimo_b, "blk"),
            "qsd_zero": (start_qsd_zero, "blk"),
            "mimo_packed": (start_mimo_packed, "blk_packed")}
# Interrupts the guest took from the disk's request queues (virtio-blk "virtioN-req.M",
# virtio-scsi "virtioN-request"), summed over its CPUs: what each back-end's calls cost it.
IRQS = ("awk '/virtio[0-9]+-req/ { for (i = 2; i <= NF; i++) if ($i ~ /^[0-9]+$/) s += $i }"
        " END { print s + 0 }' /proc/interrupts")


class Counters:
    """The back-end's system calls (perf stat -e raw_syscalls:sys_enter over all its
    threads) and context switches (/proc/PID/task/*/status) between start and stop, and for
    mimo_tgt the queue's kicks and calls (vhost_get_controllers)."""

    def __init__(self, pid, rpc):
        self.pid, self.rpc = pid, rpc

    def _switches(self):
        n = 0
        for t in os.listdir(f"/proc/{self.pid}/task"):
            try:
                with open(f"/proc/{self.pid}/task/{t}/status") as f:
                    n += sum(int(ln.split()[1]) for ln in f if "ctxt_switches" in ln)
            except OSError:
                pass
        return n

    def _queues(self):
        if self.rpc is None:
            return {}
        out = {"kicks": 0, "calls": 0}
        for c in self.rpc.call("vhost_get_controllers"):
            for s in c["sessions"]:
                for q in s["queues"]:
                    for k in out:
                        out[k] += q[k]
        return out

    def start(self):
        self.out = tempfile.NamedTemporaryFile(suffix=".perf", delete=False).name
        self.perf = subprocess.Popen(["perf", "stat", "-x,", "-e", "raw_syscalls:sys_enter",
                                      "-p", str(self.pid), "-o", self.out],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.3)  # perf needs a moment to attach; nothing can signal it
        self.sw0, self.q0 = self._switches(), self._queues()

    def stop(self):
        """At the job's end, while the guest (and its session) is still there."""
        sw1, q1 = self._switches(), self._queues()
        self.perf.send_signal(signal.SIGINT)
        self.perf.wait(timeout=30)
        with open(self.out) as f:
            line = next((ln for ln in f if "sys_enter" in ln), "")
        os.unlink(self.out)
        calls = line.split(",")[0]
        self.counts = {"syscalls": int(calls) if calls.isdigit() else None,
                       "ctxsw": sw1 - self.sw0}
        self.counts.update({k: q1[k] - self.q0[k] for k in q1})

    def per_io(self, ios):
        return {f"{k}_per_io": v / ios if v is not None else None
                for k, v in self.counts.items()}


def dump_controllers(rpc, work):
    """The back-end's view of its rings (requests taken, kicks, calls, in flight), beside the
    guest's, for whoever reads a failure; the first dump (taken while QEMU ran) is kept."""
    path = os.path.join(work, "vhost_get_controllers.json")
    if rpc is not None and not os.path.exists(path):
        with open(path, "w") as f:
            json.dump(rpc.call("vhost_get_controllers"), f, indent=1)


def run_guest(guest, sock, pid, seconds, kind, rpc=None, work=None):
    modprobe, disk, device = FRONT[kind]
    script = f"{probe(modprobe)}wait_for 30 test -b {disk}\n"
    if kind.startswith("blk"):  # what the driver took: bit 34 is VIRTIO_F_RING_PACKED
        script += "echo \"virtio_features $(cat /sys/block/vda/device/features)\"\n"
    for name, args in JOBS:
        script += (f"mark {name}-start\nwait_host\ni0=$({IRQS})\n"
                   f"/test/vblk_load -d {disk} -t {seconds} {' '.join(args)} > /tmp/{name}\n"
                   f"i1=$({IRQS})\n"
                   f"mark {name}-end\nwait_host\ncat /tmp/{name}\n"
                   f"echo \"irq {name} $((i1 - i0))\"\n")
    with open(os.path.join(common.BIN, "vblk_load"), "rb") as f:
        tool = f.read()
    run = guest.start(script, files={"test/vblk_load": tool}, shared_mem=True,
                      qemu_args=["-chardev", f"socket,id=vu0,path={sock}",
                                 "-device", device])
    marks = (b"probed", b"probe-hung")
    seen = run._wait(lambda: next((m for m in marks if b"@@mimo:mark=" + m + b"@@" in run.buf),
                                  None), "the probe", None)
    if seen == b"probe-hung":
        dump_controllers(rpc, work)
        run.send("go")
        run.wait()  # raises, with the guest's output (its dmesg, the probe's stack)
    cpu, counters = {}, {}
    for name, _ in JOBS:
        run.wait_for(f"{name}-start")
        counters[name] = Counters(pid, rpc)
        counters[name].start()
        c0 = cpu_seconds(pid)
        run.send("go")
        run.wait_for(f"{name}-end")
        cpu[name] = cpu_seconds(pid) - c0
        counters[name].stop()
        run.send("go")
    out = run.wait().output
    results = {}
    lines = [ln for ln in out.splitlines() if ln.startswith("{")]
    irqs = dict(ln.split()[1:3] for ln in out.splitlines() if ln.startswith("irq "))
    feats = [ln.split()[1] for ln in out.splitlines() if ln.startswith("virtio_features ")]
    for (name, _), ln in zip(JOBS, lines):
        r = json.loads(ln)
        r["cpu_us_per_io"] = cpu[name] * 1e6 / r["ios"]
        # The counters ran a little longer than the job (perf attached before "go"): an
        # idle back-end makes no system calls, so what they count is the job's.
        r.update(counters[name].per_io(r["ios"]))
        r["guest_irqs_per_io"] = int(irqs[name]) / r["ios"]
        if feats:
            r["ring_packed"] = feats[0][34] == "1"
        results[name] = r
    return results


def summary(values):
    return {"median": round(statistics.median(values), 3), "min": round(min(values), 3),
            "max": round(max(values), 3)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--backing", nargs="+", default=["null", "tmpfs"],
                    help="null: mimo's null bdev and qsd's null-co (neither fills a guest's "
                         "read buffers; qsd_zero: read-zeroes=on), the vhost "
                         "path alone; tmpfs: one file on /dev/shm through io_uring in both")
    ap.add_argument("--jobs", nargs="+", default=[n for n, _ in JOBS],
                    choices=[n for n, _ in JOBS], help="the jobs to run (default: all)")
    ap.add_argument("--idle-spin-us", type=int, default=0,
                    help="mimo_tgt's --idle-spin-us (0: its reactor sleeps as soon as it is idle)")
    ap.add_argument("--backends", nargs="+", default=[b for b in BACKENDS if b != "mimo_packed"
                             and (b != "mimo_b" or "MIMO_TGT_B" in os.environ)],
                    choices=list(BACKENDS),
                    help="mimo: mimo_tgt's vhost-user-blk; qsd: qemu-storage-daemon's "
                         "vhost-user-blk; mimo_scsi: mimo_tgt's vhost-user-scsi (qsd has none); "
                         "mimo_packed: mimo_tgt's vhost-user-blk with packed rings (QEMU's "
                         "packed=on; qsd's export does not offer them)")
    a = ap.parse_args()
    JOBS[:] = [j for j in JOBS if j[0] in a.jobs]
    work = tempfile.mkdtemp(prefix="mimo-vb-")
    img = f"/dev/shm/mimo-vhost-bench-{os.getpid()}.img"
    with open(img, "wb") as f:
        f.truncate(DISK_MIB << 20)
    # Data to read: tmpfs holes would read as zero pages without touching the file's pages.
    subprocess.run(["dd", "if=/dev/urandom", f"of={img}", "bs=1M", f"count={DISK_MIB}",
                    "conv=notrunc"], check=True, capture_output=True)
    net = vm.UserNet()
    guest = vm.Guest(image.ensure(), work, net)
    raw = {b: {n: [] for n in a.backends} for b in a.backing}
    failed = True
    try:
        for _ in range(a.rounds):
            for backing in a.backing:
                for name in a.backends:
                    start, kind = BACKENDS[name]
                    proc, sock, rpc = start(work, img, backing, a.idle_spin_us)
                    try:
                        raw[backing][name].append(run_guest(guest, sock, proc.pid, a.seconds,
                                                            kind, rpc, work))
                    except Exception:
                        dump_controllers(rpc, work)
                        raise
                    finally:
                        proc.terminate()
                        proc.wait(timeout=30)
                        if os.path.exists(sock):
                            os.unlink(sock)
        failed = False
    finally:
        guest.close()
        net.delete()
        os.unlink(img)
        if failed:  # the guests' consoles and the daemons' logs, for whoever reads the error
            print(f"bench/vhost.py: failed; logs kept in {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    result = {"machine": common.machine(), "load": os.getloadavg(),
              "uptime": subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(),
              "rounds": a.rounds, "seconds_per_job": a.seconds,
              "mimo_idle_spin_us": a.idle_spin_us, "backends": a.backends,
              "mimo_b": os.environ.get("MIMO_TGT_B"),
              "note": "qemu-storage-daemon has no vhost-user-scsi export: mimo_scsi's ratios are "
                      "to qsd's vhost-user-blk and to mimo's vhost-user-blk",
              "backing": {}}
    for backing in a.backing:
        jobs = {}
        for job, _ in JOBS:
            j = {}
            for name, runs in raw[backing].items():
                j[name] = {k: summary([r[job][k] for r in runs])
                           for k in runs[0][job]
                           if k not in ("ios", "seconds", "ring_packed") and runs[0][job][k] is not None}
            # Ratios of medians: "<a>_vs_<b>" is a's over b's.
            for x, y in (("mimo", "qsd"), ("mimo_scsi", "qsd"), ("mimo_scsi", "mimo"),
                         ("mimo_b", "qsd"), ("mimo", "mimo_b"), ("mimo_b", "qsd_zero"),
                         ("mimo", "qsd_zero"), ("mimo_packed", "mimo"), ("mimo_packed", "qsd")):
                if x in j and y in j:
                    j[f"{x}_vs_{y}"] = {
                        k: round(j[x][k]["median"] / j[y][k]["median"], 2)
                        for k in ("iops", "cpu_us_per_io")}
            jobs[job] = j
        result["backing"][backing] = jobs
    result["raw"] = raw
    print(json.dumps(result))


if __name__ == "__main__":
    main()
