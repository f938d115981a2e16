#!/usr/bin/python3
"""The FUSE export against its peer, qemu-storage-daemon's FUSE export (when installed): the
same fio jobs (psync) on a 256 MiB malloc bdev file and on a raw file on tmpfs, both servers
pinned to CPU 0 and fio to CPU 1. Also: NVMe/TCP write -> visible through the file latency,
NOTIFY_STORE throughput, resident memory. Prints one JSON object. As root (FUSE mounts).

FUSE_BENCH_SECONDS sets each fio job's length (default 5; the issue's figures used 20)."""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "test", "integration"))
from common import BIN, bench_env, free_port, machine  # noqa: E402
from nvme_tcp_host import admin_session, io_session  # noqa: E402

SECONDS = int(os.environ.get("FUSE_BENCH_SECONDS", "5"))
SIZE = 256 << 20
NQN = "nqn.2016-06.io.spdk:fusebench"
CPUS = os.cpu_count() or 1
FIO_CPU = "1" if CPUS > 1 else "0"


def rpc(sock, method, params=None):
    import socket
    s = socket.socket(socket.AF_UNIX)
    s.connect(sock)
    s.sendall(json.dumps({"jsonrpc": "2.0", "id": 1, "method": method,
                          "params": params or {}}).encode())
    buf = b""
    while not buf.endswith(b"\n"):
        buf += s.recv(65536)
    s.close()
    r = json.loads(buf)
    if "error" in r:
        raise RuntimeError(f"{method}: {r['error']}")
    return r["result"]


def fio(path, rw, bs, direct, jobs=1, extra=()):
    p = subprocess.run(["taskset", "-c", FIO_CPU, "fio", "--name=b", f"--filename={path}",
                        f"--rw={rw}", f"--bs={bs}", f"--direct={direct}", "--ioengine=psync",
                        f"--numjobs={jobs}", "--group_reporting", "--time_based",
                        f"--runtime={SECONDS}", f"--size={SIZE}", "--invalidate=0",
                        "--output-format=json", *extra], capture_output=True, text=True)
    if p.returncode != 0:
        return {"error": p.stderr.strip()[-200:]}
    j = json.loads(p.stdout)["jobs"][0]
    side = j["read"] if rw in ("read", "randread") else j["write"]
    return {"MiB/s": round(side["bw"] / 1024, 1), "IOPS": round(side["iops"])}


def fio_suite(path):
    r = {}
    # Several request sizes: at 1 MiB qemu-storage-daemon's export collapses on this machine
    # kind, so one size alone would overstate the ratio (issue 15).
    r["seq_read_64k_direct"] = fio(path, "read", "64k", 1)
    r["seq_read_256k_direct"] = fio(path, "read", "256k", 1)
    r["seq_read_1M_direct"] = fio(path, "read", "1M", 1)
    r["seq_write_1M_direct"] = fio(path, "write", "1M", 1)
    r["rand_read_4k_direct_1job"] = fio(path, "randread", "4k", 1)
    r["rand_read_4k_direct_4jobs"] = fio(path, "randread", "4k", 1, jobs=4)
    subprocess.run(["dd", f"if={path}", "of=/dev/null", "bs=1M"], capture_output=True)
    r["buffered_reread_1M"] = fio(path, "read", "1M", 0)
    return r


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return None


def mounted(path):
    with open("/proc/mounts") as f:
        return any(line.split()[1] == path for line in f)


def mimo(work):
    sock, mnt = os.path.join(work, "t.sock"), os.path.join(work, "mimo")
    os.mkdir(mnt)
    p = subprocess.Popen(["taskset", "-c", "0", os.path.join(BIN, "mimo_tgt"), "-r", sock],
                         env=bench_env(MIMO_NOTIFY_DISABLE="1"), stderr=subprocess.DEVNULL)
    try:
        for _ in range(500):
            if os.path.exists(sock):
                break
            time.sleep(0.01)
        time.sleep(0.1)
        rpc(sock, "bdev_malloc_create", {"name": "M0", "num_blocks": SIZE // 4096,
                                         "block_size": 4096})
        rpc(sock, "fuse_export_create", {"mountpoint": mnt})
        f = os.path.join(mnt, "bdevs", "M0")
        out = fio_suite(f)
        out.update(notify_figures(sock, f))
        out["rss_KiB"] = rss_kib(p.pid)
        return out
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=30)
        if mounted(mnt):
            subprocess.run(["fusermount3", "-u", "-z", mnt])


def notify_figures(sock, f):
    """NVMe/TCP write -> new bytes readable through the (cached) file, and STORE MiB/s."""
    port = free_port()
    rpc(sock, "nvmf_create_transport", {"trtype": "tcp"})
    rpc(sock, "nvmf_create_subsystem", {"nqn": NQN, "allow_any_host": True})
    rpc(sock, "nvmf_subsystem_add_ns", {"nqn": NQN, "namespace": {"bdev_name": "M0"}})
    rpc(sock, "nvmf_subsystem_add_listener", {"nqn": NQN, "listen_address": {
        "trtype": "tcp", "adrfam": "IPv4", "traddr": "127.0.0.1", "trsvcid": str(port)}})
    a = admin_session(port, NQN)
    q = io_session(port, a, NQN)
    fd = os.open(f, os.O_RDONLY)
    lat = []
    for i in range(300):
        off = (i % 64) * 4096
        os.pread(fd, 4096, off)                       # cached
        data = os.urandom(4096)
        q.write(1, off // 4096, data, block_size=4096)
        t0 = time.perf_counter()                      # the write has completed
        while os.pread(fd, 4096, off) != data:
            if time.perf_counter() - t0 > 1:
                break
        lat.append(time.perf_counter() - t0)
    lat.sort()
    # STORE throughput: 64 MiB cached, then rewritten over NVMe/TCP in 128 KiB writes.
    subprocess.run(["dd", f"if={f}", "of=/dev/null", "bs=1M", "count=64"], capture_output=True)
    before = rpc(sock, "fuse_get_exports")[0]["notifications"]["store_bytes"]
    chunk = os.urandom(128 << 10)
    t0 = time.perf_counter()
    for i in range(512):
        q.write(1, i * 32, chunk, block_size=4096, icd=False)
    while rpc(sock, "fuse_get_exports")[0]["notifications"]["store_bytes"] - before < 64 << 20:
        if time.perf_counter() - t0 > 30:
            break
        time.sleep(0.001)
    el = time.perf_counter() - t0
    stored = rpc(sock, "fuse_get_exports")[0]["notifications"]["store_bytes"] - before
    os.close(fd)
    q.close()
    a.close()
    return {"nvmf_write_to_visible_us": {"p50": round(lat[len(lat) // 2] * 1e6),
                                         "p99": round(lat[int(len(lat) * 0.99)] * 1e6)},
            "store_MiB/s_incl_nvmf_writes": round(stored / el / (1 << 20), 1)}


def qsd(work):
    exe = shutil.which("qemu-storage-daemon")
    if exe is None:
        return {"skipped": "qemu-storage-daemon not installed (Debian: qemu-system-common)"}
    img, mnt = "/dev/shm/mimo-bench-qsd.raw", os.path.join(work, "qsd")
    with open(img, "wb") as fh:
        fh.truncate(SIZE)
    open(mnt, "w").close()
    p = subprocess.Popen(["taskset", "-c", "0", exe, "--blockdev",
                          f"driver=file,node-name=f,filename={img}", "--export",
                          f"type=fuse,id=e,node-name=f,mountpoint={mnt},writable=on"],
                         stderr=subprocess.DEVNULL)
    try:
        for _ in range(500):
            if mounted(mnt):
                break
            time.sleep(0.01)
        out = fio_suite(mnt)
        out["rss_KiB"] = rss_kib(p.pid)
        return out
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=30)
        if mounted(mnt):
            subprocess.run(["fusermount3", "-u", "-z", mnt])
        os.unlink(img)


def main():
    if shutil.which("fio") is None:
        print(json.dumps({"bench": "fuse", "skipped": "fio not installed"}))
        return
    work = tempfile.mkdtemp(prefix="mimo-fuse-bench-")
    try:
        res = {"bench": "fuse", "machine": machine(), "fio_seconds": SECONDS,
               "mimo": mimo(work), "qemu_storage_daemon": qsd(work)}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
