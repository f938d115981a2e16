#!/usr/bin/python3
"""Accuracy of the bdev layer's QoS rate limits (bdev_set_qos_limit). Prints one JSON object.

mimo_tgt (-m 0x3: two reactors) serves a null bdev over NVMe/TCP; mimo_perf drives it from the
last CPU with two queue pairs (so the I/O arrives on both reactors and the limit is shared),
well beyond the limit. The rate is what the bdev itself saw: bdev_get_iostat's counts between
two samples taken while the load runs (one second after it starts, BENCH_SECONDS later), over
the target's own ticks. Three runs per limit (BENCH_ROUNDS); the median, its error against the
limit in percent, and the spread. Limits: 10,000 IOPS (4 KiB random read/write, depth 32) and
20 MiB/s of reads (64 KiB random read, depth 16); the unlimited rate of the first for scale.
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from common import BIN, bench_env, free_port, machine, start_tgt, wait_port  # noqa: E402

PERF = os.path.join(BIN, "mimo_perf")
SECONDS = int(os.environ.get("BENCH_SECONDS", "5"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
NQN = "nqn.2016-06.io.mimo:qos"
CORES = "0x2" if (os.cpu_count() or 1) >= 2 else "0x1"


def sample(c):
    s = c.call("bdev_get_iostat", {"name": "N0"})
    b = s["bdevs"][0]
    return s["ticks"], s["tick_rate"], b["num_read_ops"] + b["num_write_ops"], b["bytes_read"]


def measure(c, port, args):
    """(I/Os per second, read bytes per second) the bdev saw while perf ran."""
    trid = f"trtype:tcp adrfam:IPv4 traddr:127.0.0.1 trsvcid:{port} subnqn:{NQN}"
    p = subprocess.Popen([PERF, "-r", trid, "-c", CORES, "-P", "2", "-t", str(SECONDS + 2),
                          *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         env=bench_env())
    time.sleep(1)  # connected and at full load
    t0, hz, ops0, rb0 = sample(c)
    time.sleep(SECONDS)
    t1, _, ops1, rb1 = sample(c)
    if p.wait(timeout=SECONDS + 60) != 0:
        raise RuntimeError(f"mimo_perf failed: {p.stderr.read()[-2000:]}")
    secs = (t1 - t0) / hz
    return (ops1 - ops0) / secs, (rb1 - rb0) / secs


def summary(values, limit):
    med = statistics.median(values)
    return {"runs": [round(v, 1) for v in values], "median": round(med, 1),
            "error_pct": round((med - limit) * 100.0 / limit, 2) if limit else None,
            "spread_pct": round((max(values) - min(values)) * 100.0 / med, 2)}


def main():
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        proc, c = start_tgt(os.path.join(tmp, "tgt.sock"), "-m", "0x3")
        try:
            c.call("bdev_null_create", {"name": "N0", "num_blocks": 1 << 21, "block_size": 512})
            c.call("nvmf_create_transport", {"trtype": "TCP"})
            c.call("nvmf_create_subsystem", {"nqn": NQN, "allow_any_host": True})
            c.call("nvmf_subsystem_add_ns", {"nqn": NQN, "namespace": {"bdev_name": "N0"}})
            c.call("nvmf_subsystem_add_listener", {"nqn": NQN, "listen_address": {
                "trtype": "TCP", "adrfam": "IPv4", "traddr": "127.0.0.1",
                "trsvcid": str(port)}})
            wait_port(port)
            iops_load = ["-q", "32", "-o", "4096", "-w", "randrw", "-M", "50"]
            bw_load = ["-q", "16", "-o", "65536", "-w", "randread"]
            unlimited = measure(c, port, iops_load)[0]
            c.call("bdev_set_qos_limit", {"name": "N0", "rw_ios_per_sec": 10000})
            iops = [measure(c, port, iops_load)[0] for _ in range(ROUNDS)]
            c.call("bdev_set_qos_limit", {"name": "N0", "rw_ios_per_sec": 0,
                                          "r_mbytes_per_sec": 20})
            bw = [measure(c, port, bw_load)[1] / 2**20 for _ in range(ROUNDS)]
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    print(json.dumps({
        "bench": "qos", "machine": machine(), "loadavg": os.getloadavg(),
        "seconds": SECONDS, "rounds": ROUNDS,
        "unlimited_iops": round(unlimited, 1),
        "rw_ios_per_sec": dict(limit=10000, **summary(iops, 10000)),
        "r_mbytes_per_sec": dict(limit=20, **summary(bw, 20)),
    }))


if __name__ == "__main__":
    main()
