#!/usr/bin/python3
"""What one vhost-user-blk request costs mimo_tgt in instructions, split rings against packed
rings: a figure the shared machine's load cannot move.

mimo_tgt (one reactor, a null bdev, one controller with packed_ring so that either layout can
be negotiated) runs under `valgrind --tool=callgrind --instr-atstart=no`; the front-end is
test/integration/vhost_user.py's (split Queue or PackedQueue, one queue of 128 entries).
Instrumentation is switched on (callgrind_control -i on) only around N 4 KiB reads at queue
depth 1 - each a kick, the ring walked, the bdev I/O, the used element, the call - then the
counts are dumped: instructions per request, the target's user space only, including the
reactor's wake-up and the eventfd handling that both layouts share. Rounds alternate the
layouts, each in a fresh mimo_tgt; direct chains (3 descriptors) and indirect tables (1).
A layout named with "_tracked" (split_tracked, packed_tracked) first gets an inflight region
(GET/SET_INFLIGHT_FD, as QEMU's vhost-user-blk does): what inflight tracking adds a request.
One JSON object on stdout.

    /usr/bin/python3 bench/vhost_ring_cost.py [--requests 2000] [--rounds 3]
        [--layouts split,packed,packed_tracked]
"""
import argparse
import glob
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "test", "integration"))
import common  # noqa: E402
import vhost_user as vu  # noqa: E402


def total_ir(path):
    with open(path) as f:
        for line in f:
            if line.startswith("totals:"):
                return int(line.split()[1])
    raise RuntimeError(f"no totals in {path}")


def one(work, layout, indirect, n):
    sock = os.path.join(work, f"tgt-{time.time_ns()}.sock")
    out = os.path.join(work, f"cg-{layout}-{time.time_ns()}.out")
    argv = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}",
            "--dump-instr=no", os.path.join(common.BIN, "mimo_tgt"), "-r", sock, "-m", "0x1",
            "-S", work, "--idle-spin-us", "0"]
    p = subprocess.Popen(["taskset", "-c", "0"] + argv, env=common.bench_env(MIMO_NOTIFY_DISABLE=1),
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        sys.path.insert(0, os.path.join(common.REPO, "python"))
        from mimo import Client
        deadline = time.monotonic() + 120
        while True:
            try:
                c = Client(sock, timeout=60)
                c.call("rpc_get_methods")
                break
            except (OSError, ConnectionError):
                if time.monotonic() > deadline or p.poll() is not None:
                    raise RuntimeError("mimo_tgt under valgrind did not start")
                time.sleep(0.2)
        c.call("bdev_null_create", {"name": "N0", "block_size": 512, "num_blocks": 65536})
        c.call("vhost_create_blk_controller", {"ctrlr": "vb", "dev_name": "N0",
                                               "packed_ring": True})
        f = vu.Client(os.path.join(work, "vb"), timeout=60)
        offered = f.u64(vu.GET_FEATURES) & ~(1 << vu.F_EVENT_IDX)
        f.negotiate(features=offered if layout.startswith("packed")
                    else offered & ~(1 << vu.F_RING_PACKED))
        if layout.endswith("_tracked"):
            size, off, fd = f.get_inflight(1, 128)
            f.set_inflight(fd, size, off, 1, 128, ack=True)
            os.close(fd)
        q = f.queue(0, size=128)
        for _ in range(50):                     # warm: slots, channel, code paths
            f.next_buf = vu.RING_AREA           # depth 1: the last request's buffers are free
            assert q.blk_read(0, 4096, indirect=indirect)[0] == vu.S_OK
        subprocess.run(["callgrind_control", "-i", "on", str(p.pid)], check=True,
                       capture_output=True)
        for i in range(n):
            f.next_buf = vu.RING_AREA
            assert q.blk_read(8 * (i % 1000), 4096, indirect=indirect)[0] == vu.S_OK
        subprocess.run(["callgrind_control", "-i", "off", str(p.pid)], check=True,
                       capture_output=True)
        f.close()
    finally:
        p.terminate()
        p.wait(timeout=60)
    ir = sum(total_ir(x) for x in glob.glob(out + "*"))
    return ir / n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--layouts", default="split,packed",
                    help="comma-separated: split, packed, split_tracked, packed_tracked")
    a = ap.parse_args()
    layouts = a.layouts.split(",")
    work = tempfile.mkdtemp(prefix="mimo-vrc-")
    before = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    raw = {f"{lay}_{kind}": [] for kind in ("direct", "indirect") for lay in layouts}
    for _ in range(a.rounds):
        for kind in ("direct", "indirect"):
            for lay in layouts:
                raw[f"{lay}_{kind}"].append(one(work, lay, kind == "indirect", a.requests))
    res = {k: {"median": round(statistics.median(v)), "min": round(min(v)),
               "max": round(max(v))} for k, v in raw.items()}
    for kind in ("direct", "indirect"):
        for lay in layouts[1:]:
            res[f"{lay}_vs_{layouts[0]}_{kind}"] = round(res[f"{lay}_{kind}"]["median"] /
                                                        res[f"{layouts[0]}_{kind}"]["median"], 3)
    for x in glob.glob(os.path.join(work, "*")):
        os.unlink(x)
    os.rmdir(work)
    print(json.dumps({"machine": common.machine(), "date": time.strftime("%Y-%m-%d %H:%M UTC",
                                                                         time.gmtime()),
                      "uptime_before": before,
                      "uptime_after": subprocess.run(["uptime"], capture_output=True,
                                                     text=True).stdout.strip(),
                      "requests_per_run": a.requests, "rounds": a.rounds,
                      "instructions_per_request": res, "raw": raw}))


if __name__ == "__main__":
    main()
