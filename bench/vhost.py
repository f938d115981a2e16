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
not the bottleneck. Rounds alternate the back-ends; medians and min-max over the rounds (with
--rounds 1, the one value three times). One JSON object on stdout.

    /usr/bin/python3 bench/vhost.py [--rounds 3] [--seconds 5] [--backends mimo qsd mimo_scsi]
"""
import argparse
import json
import os
import shutil
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


def mimo_tgt(work, img, backing, spin):
    sock = os.path.join(work, "mimo.sock")
    # Its log is kept beside the guests' (work/runN-*/console.log): when a guest hangs, the
    # two together say which side stopped.
    p, c = common.start_tgt(sock, "-m", "0x1", "-S", work, "--idle-spin-us", str(spin),
                            log=os.path.join(work, f"mimo_tgt.{time.time_ns()}.log"),
                            env={"MIMO_LOG": "info"})
    if backing == "null":
        c.call("bdev_null_create", {"name": "A0", "block_size": 512,
                                    "num_blocks": DISK_MIB * 2048})
    else:
        c.call("bdev_aio_create", {"name": "A0", "filename": img, "block_size": 512})
    return p, c


def start_mimo(work, img, backing, spin):
    p, c = mimo_tgt(work, img, backing, spin)
    c.call("vhost_create_blk_controller", {"ctrlr": "vb.mimo", "dev_name": "A0"})
    return p, os.path.join(work, "vb.mimo"), c


def start_mimo_scsi(work, img, backing, spin):
    p, c = mimo_tgt(work, img, backing, spin)
    c.call("vhost_create_scsi_controller", {"ctrlr": "vs.mimo"})
    c.call("vhost_scsi_controller_add_target",
           {"ctrlr": "vs.mimo", "scsi_target_num": 0, "bdev_name": "A0"})
    return p, os.path.join(work, "vs.mimo"), c


def start_qsd(work, img, backing, spin):
    path = os.path.join(work, "vb.qsd")
    node = (f"driver=null-co,node-name=f0,size={DISK_MIB << 20},read-zeroes=on"
            if backing == "null" else f"driver=file,node-name=f0,filename={img},aio=io_uring")
    p = subprocess.Popen(
        ["taskset", "-c", "0", "qemu-storage-daemon",
         "--blockdev", node,
         "--export", f"type=vhost-user-blk,id=e0,node-name=f0,addr.type=unix,"
                     f"addr.path={path},writable=on,num-queues=1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_socket(path, p)
    return p, path, None


# The guest's side of each back-end: its module, its disk, QEMU's device.
FRONT = {"blk": ("modprobe virtio_blk", "/dev/vda", "vhost-user-blk-pci,chardev=vu0,num-queues=1"),
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
            "mimo_scsi": (start_mimo_scsi, "scsi")}


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
    for name, args in JOBS:
        script += (f"mark {name}-start\nwait_host\n"
                   f"/test/vblk_load -d {disk} -t {seconds} {' '.join(args)} > /tmp/{name}\n"
                   f"mark {name}-end\nwait_host\ncat /tmp/{name}\n")
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
    cpu = {}
    for name, _ in JOBS:
        run.wait_for(f"{name}-start")
        c0 = cpu_seconds(pid)
        run.send("go")
        run.wait_for(f"{name}-end")
        cpu[name] = cpu_seconds(pid) - c0
        run.send("go")
    out = run.wait().output
    results = {}
    lines = [ln for ln in out.splitlines() if ln.startswith("{")]
    for (name, _), ln in zip(JOBS, lines):
        r = json.loads(ln)
        r["cpu_us_per_io"] = cpu[name] * 1e6 / r["ios"]
        results[name] = r
    return results


def summary(values):
    return {"median": round(statistics.median(values), 2), "min": round(min(values), 2),
            "max": round(max(values), 2)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--backing", nargs="+", default=["null", "tmpfs"],
                    help="null: mimo's null bdev and qsd's null-co (read-zeroes), the vhost "
                         "path alone; tmpfs: one file on /dev/shm through io_uring in both")
    ap.add_argument("--idle-spin-us", type=int, default=0,
                    help="mimo_tgt's --idle-spin-us (0: its reactor sleeps as soon as it is idle)")
    ap.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=list(BACKENDS),
                    help="mimo: mimo_tgt's vhost-user-blk; qsd: qemu-storage-daemon's "
                         "vhost-user-blk; mimo_scsi: mimo_tgt's vhost-user-scsi (qsd has none)")
    a = ap.parse_args()
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
              "note": "qemu-storage-daemon has no vhost-user-scsi export: mimo_scsi's ratios are "
                      "to qsd's vhost-user-blk and to mimo's vhost-user-blk",
              "backing": {}}
    for backing in a.backing:
        jobs = {}
        for job, _ in JOBS:
            j = {}
            for name, runs in raw[backing].items():
                j[name] = {k: summary([r[job][k] for r in runs])
                           for k in ("iops", "mbps", "cpu_us_per_io")}
            # Ratios of medians: "<a>_vs_<b>" is a's over b's.
            for x, y in (("mimo", "qsd"), ("mimo_scsi", "qsd"), ("mimo_scsi", "mimo")):
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
