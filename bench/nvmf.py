#!/usr/bin/python3
"""Benchmark of the NVMe-oF/TCP target and initiator over loopback. Prints one JSON object.

mimo_tgt serves a 64 MiB malloc bdev (512-byte blocks) from one reactor on CPU 0 (-m 0x1),
then from two (-m 0x3); mimo_perf drives it from the last CPU: 4 KiB random read at queue
depth 1 (latency) and 32 (IOPS), 4 KiB random write at depth 32, 128 KiB sequential read at
depth 8, each for BENCH_SECONDS (default 10); then, on one reactor, a wider set (depth 128,
a 70/30 mix, 128 KiB writes, digests, two queue pairs, SQ flow control off). Resident memory of the target is sampled under
load with 1 host and with 16 hosts (16 mimo_perf processes, each its own controller).

The peer, measured on this machine kind (2-vCPU VM, loopback, same bdev, target on one core,
spdk_nvme_perf on the other, from the issue): SPDK 25.09's nvmf_tgt does 737-766k IOPS 4 KiB
random read at depth 32, 532-592k random write at depth 32, 5.0-5.8 GB/s 128 KiB sequential
read at depth 8, 9.6 us average / 9.1-9.3 us p50 / 11-22 us p99 at depth 1, in 307 MiB.
SPDK is not a Debian package. Where it has been built (no hugepages needed: both run with
--no-huge -s 1024), set SPDK_NVME_PERF to spdk_nvme_perf's path to also run SPDK's initiator
against mimo_tgt (ratio mimo_perf / spdk_nvme_perf), and SPDK_NVMF_TGT to nvmf_tgt's path to
run the same workloads, in the same run, against SPDK's target on the same core (ratio
mimo_tgt / nvmf_tgt with the same initiator, and its resident memory).

With both set, the headline ("headline_spdk_nvme_perf", run first) is SPDK's initiator on
both targets: each target pinned to CPU 0 with one reactor, spdk_nvme_perf on the last CPU, the
64 MiB bdev written through first, then 4 KiB random read QD32, 4 KiB random write QD32, 128
KiB sequential read QD8, 4 KiB random read QD1 (average latency) and 128 KiB sequential write
QD8 (BENCH_HEADLINE_WORKLOADS picks some), target RSS sampled under load; BENCH_ROUNDS
(default 3) rounds alternating the targets; medians with min-max and the load average around
each round. SPDK_NVMF_TGT_URING adds SPDK's io_uring build as a third target
(sock_set_default_impl -i uring before framework_start_init); mimo_tgt on io_uring
("mimo-uring", the same call) is a target too unless BENCH_MIMO_URING=0. BENCH_HEADLINE_ONLY=1
stops after it. MIMO_TGT_BEFORE (another mimo_tgt binary) adds it as "mimo-before", for a
change's before and after in the same run. "floor" (bench/tcp_floor.c, unless BENCH_FLOOR=0)
runs each workload's bytes through loopback with no target work, placed as the targets are:
"ceiling_over_floor" is each target's CPU per I/O over the floor's - the most a target on the
kernel's sockets could lead it by per core. The mimo_perf figures below it are another table: a different initiator.
What each I/O costs the target (instructions, syscalls) is bench/nvmf_cost.py.
"""
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from common import BIN, bench_env, free_port, machine, rss_kib, start_tgt, wait_port  # noqa: E402

SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))
PERF = os.path.join(BIN, "mimo_perf")
SPDK_PERF = os.environ.get("SPDK_NVME_PERF")
SPDK_TGT = os.environ.get("SPDK_NVMF_TGT")
SPDK_MEM = ["--no-huge", "-s", "1024"]  # SPDK without hugepages, as this machine kind has
NQN = "nqn.2016-06.io.spdk:cnode1"
LAST_CPU = (os.cpu_count() or 1) - 1
PERF_MASK = hex(1 << LAST_CPU)

PEER = {
    "randread_qd32_iops": [737000, 766000],
    "randwrite_qd32_iops": [532000, 592000],
    "seqread_128k_qd8_gbps": [5.0, 5.8],
    "randread_qd1_p50_us": [9.1, 9.3],
    "randread_qd1_avg_us": 9.6,
    "randread_qd1_p99_us": [11, 22],
    "rss_mib_under_load": 307,
}

# Beside the peer's four: what else a user of the initiator asks about (0x1 target only).
EXTRA = {
    "randread_qd128": ["-q", "128", "-o", "4096", "-w", "randread"],
    "randrw_qd32_m70": ["-q", "32", "-o", "4096", "-w", "randrw", "-M", "70"],
    "write_128k_qd8": ["-q", "8", "-o", "131072", "-w", "write"],
    "randread_qd32_digests": ["-q", "32", "-o", "4096", "-w", "randread", "-H", "-I"],
    "randread_qd32_2qpairs": ["-q", "32", "-o", "4096", "-w", "randread", "-P", "2"],
    "randread_qd32_no_sqfc": ["-q", "32", "-o", "4096", "-w", "randread",
                              "--disable-sq-flow-control"],
}

WORKLOADS = {
    "randread_qd1": ["-q", "1", "-o", "4096", "-w", "randread", "-L"],
    "randread_qd32": ["-q", "32", "-o", "4096", "-w", "randread"],
    "randwrite_qd32": ["-q", "32", "-o", "4096", "-w", "randwrite"],
    "seqread_128k_qd8": ["-q", "8", "-o", "131072", "-w", "read"],
}


def configure(client, port):
    client.call("bdev_malloc_create", {"name": "Malloc0", "num_blocks": 131072,
                                       "block_size": 512})
    client.call("nvmf_create_transport", {"trtype": "TCP"})
    client.call("nvmf_create_subsystem", {"nqn": NQN, "allow_any_host": True,
                                          "serial_number": "SPDK00000000000001"})
    client.call("nvmf_subsystem_add_ns", {"nqn": NQN, "namespace": {"bdev_name": "Malloc0"}})
    client.call("nvmf_subsystem_add_listener", {"nqn": NQN, "listen_address": {
        "trtype": "TCP", "adrfam": "IPv4", "traddr": "127.0.0.1", "trsvcid": str(port)}})
    if not wait_port(port):
        raise RuntimeError("the target does not listen")


def trid(port):
    return f"trtype:tcp adrfam:IPv4 traddr:127.0.0.1 trsvcid:{port} subnqn:{NQN}"


def mimo_perf(port, args, seconds, mask=PERF_MASK):
    p = subprocess.run([PERF, "-r", trid(port), *args, "-t", str(seconds), "-c", mask,
                        "--json"], env=bench_env(), capture_output=True, text=True,
                       timeout=seconds + 60)
    if p.returncode != 0:
        raise RuntimeError(f"mimo_perf {' '.join(args)} failed: {p.stderr[-2000:]}")
    return json.loads(p.stdout)["total"]


def spdk_perf(port, args, seconds):
    """spdk_nvme_perf's text report: the Total line's IOPS."""
    p = subprocess.run([SPDK_PERF, *SPDK_MEM, "-r", trid(port), *args, "-t", str(seconds), "-c",
                        PERF_MASK], capture_output=True, text=True, timeout=seconds + 60,
                       env=__import__("nvmf_cost").lib_env(SPDK_PERF))
    for line in p.stdout.splitlines():
        if line.startswith("Total"):
            return float(line.split(":")[1].split()[0])
    raise RuntimeError(f"spdk_nvme_perf gave no total: {p.stdout[-2000:]} {p.stderr[-2000:]}")


class RssSampler:
    """Peak resident memory of a process while a block runs."""

    def __init__(self, pid):
        self.pid, self.peak, self.stop = pid, 0, threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)

    def run(self):
        while not self.stop.is_set():
            self.peak = max(self.peak, rss_kib(self.pid))
            time.sleep(0.05)

    def __enter__(self):
        self.t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.t.join()


def summarize(name, t):
    if name == "randread_qd1":
        return {"iops": round(t["iops"]), "avg_us": round(t["avg_lat_us"], 2),
                "p50_us": round(t["p50_lat_us"], 2), "p99_us": round(t["p99_lat_us"], 2),
                "p999_us": round(t["p999_lat_us"], 2)}
    if name in ("seqread_128k_qd8", "write_128k_qd8"):
        return {"gbps": round(t["mibps"] * 1048576 / 1e9, 2), "iops": round(t["iops"]),
                "p99_us": round(t["p99_lat_us"], 1)}
    return {"iops": round(t["iops"]), "avg_us": round(t["avg_lat_us"], 2),
            "p99_us": round(t["p99_lat_us"], 1)}


def run_target(mask, d, out):
    port = free_port()
    p, c = start_tgt(os.path.join(d, f"tgt{mask}.sock"), "-m", mask)
    try:
        configure(c, port)
        res = {"idle_rss_kib": rss_kib(p.pid)}
        for name, args in WORKLOADS.items():
            with RssSampler(p.pid) as s:
                res[name] = summarize(name, mimo_perf(port, args, SECONDS))
            res[name]["target_rss_kib"] = s.peak
        if mask == "0x1":
            for name, args in EXTRA.items():
                res[name] = summarize(name, mimo_perf(port, args, max(3, SECONDS // 2)))
            # 16 hosts at once, each its own process and controller.
            procs = [subprocess.Popen([PERF, "-r", trid(port), "-q", "8", "-o", "4096", "-w",
                                       "randrw", "-t", str(max(3, SECONDS // 2)), "-c",
                                       PERF_MASK, "--json"], env=bench_env(),
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                     for _ in range(16)]
            with RssSampler(p.pid) as s:
                totals = [json.loads(q.communicate(timeout=SECONDS + 60)[0])["total"]
                          for q in procs]
            res["16_hosts"] = {"iops": round(sum(t["iops"] for t in totals)),
                               "target_rss_kib": s.peak}
            if SPDK_PERF:
                res["spdk_nvme_perf_randread_qd32_iops"] = round(
                    spdk_perf(port, WORKLOADS["randread_qd32"], SECONDS))
        out[f"target_{mask}"] = res
    finally:
        p.terminate()
        p.wait()


def run_spdk_target(d, out):
    """The four peer workloads against SPDK's target, with mimo_perf (and spdk_nvme_perf)."""
    port = free_port()
    p, c = start_tgt(os.path.join(d, "spdk.sock"), *SPDK_MEM, "-m", "0x1", exe=SPDK_TGT,
                     timeout=30)
    try:
        configure(c, port)
        res = {"idle_rss_kib": rss_kib(p.pid)}
        for name, args in WORKLOADS.items():
            with RssSampler(p.pid) as s:
                res[name] = summarize(name, mimo_perf(port, args, SECONDS))
            res[name]["target_rss_kib"] = s.peak
            if SPDK_PERF and name != "randread_qd1":
                res[name]["spdk_nvme_perf_iops"] = round(spdk_perf(port, args, SECONDS))
        out["target_spdk_0x1"] = res
    finally:
        p.terminate()
        p.wait()


# --- the headline: spdk_nvme_perf on both targets, same run ---------------------------------

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
SPDK_TGT_URING = os.environ.get("SPDK_NVMF_TGT_URING")
HEADLINE = {  # spdk_nvme_perf arguments
    "randread_4k_qd32": ["-q", "32", "-o", "4096", "-w", "randread"],
    "randwrite_4k_qd32": ["-q", "32", "-o", "4096", "-w", "randwrite"],
    "read_128k_qd8": ["-q", "8", "-o", "131072", "-w", "read"],
    "randread_4k_qd1": ["-q", "1", "-o", "4096", "-w", "randread"],
    "write_128k_qd8": ["-q", "8", "-o", "131072", "-w", "write"],
}
# BENCH_HEADLINE_WORKLOADS: a comma-separated subset of the names above (default: all).
if os.environ.get("BENCH_HEADLINE_WORKLOADS"):
    HEADLINE = {k: HEADLINE[k] for k in os.environ["BENCH_HEADLINE_WORKLOADS"].split(",")}


def spdk_perf_total(port, args, seconds):
    """spdk_nvme_perf on the last CPU: its Total line (IOPS, MiB/s, average, min, max µs)."""
    from nvmf_cost import lib_env
    p = subprocess.run(["taskset", "-c", str(LAST_CPU), SPDK_PERF, *SPDK_MEM[:1], "-s", "512",
                        "-c", PERF_MASK, "-r", trid(port), *args, "-t", str(seconds)],
                       env=lib_env(SPDK_PERF), capture_output=True, text=True,
                       timeout=seconds + 60)
    for line in p.stdout.splitlines():
        if line.startswith("Total"):
            f = [float(x) for x in line.split(":", 1)[1].split()[:5]]
            return {"iops": round(f[0]), "mibps": round(f[1], 1), "avg_us": round(f[2], 2),
                    "min_us": round(f[3], 2)}
    raise RuntimeError(f"spdk_nvme_perf gave no total: {p.stdout[-2000:]} {p.stderr[-2000:]}")


def cpu_seconds(pid):
    """User + system CPU time of a whole process (all threads), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def headline_round(name, exe, d):
    """One target (pinned to CPU 0, one reactor): the bdev written through, then each
    workload with the target's peak RSS sampled."""
    from nvmf_cost import Target
    t = Target(name, exe, d, callgrind=False)
    try:
        spdk_perf_total(t.port, ["-q", "8", "-o", "131072", "-w", "write"], 2)
        res = {}
        for w, args in HEADLINE.items():
            cpu0 = cpu_seconds(t.pid)
            with RssSampler(t.pid) as s:
                res[w] = spdk_perf_total(t.port, args, SECONDS)
            res[w]["rss_kib"] = s.peak
            # The target's share of its core over the run (perf's start-up included): a
            # polling target shows 1.0 whatever it does; a sleeping one, what it needed.
            res[w]["target_cpu"] = round((cpu_seconds(t.pid) - cpu0) / SECONDS, 3)
        return res
    finally:
        t.stop()


# tcp_floor's arguments for each headline workload: the same bytes each way, no target work
# (bench/tcp_floor.c). Its 128 KiB writes travel in the capsule - no R2T - so it stays a floor.
FLOOR = {w: ["-w", "write" if "write" in w else "read", "-b", args[args.index("-o") + 1],
             "-q", args[args.index("-q") + 1],
             *(["-s"] if args[args.index("-w") + 1] in ("read", "write") else [])]
         for w, args in HEADLINE.items()}


def floor_round():
    """The kernel's loopback cost of each headline workload alone: tcp_floor with its target on
    CPU 0 and its initiator on the last CPU, as the targets and spdk_nvme_perf are placed."""
    res = {}
    for w, args in FLOOR.items():
        p = subprocess.run([os.path.join(BIN, "tcp_floor"), *args, "-t", str(SECONDS),
                            "-c", "0", "-C", str(LAST_CPU)], capture_output=True, text=True,
                           timeout=SECONDS + 60, check=True)
        f = json.loads(p.stdout)
        res[w] = {"iops": round(f["iops"]), "mibps": f["mibps"],
                  "avg_us": round(1e6 / f["iops"], 2) if f["iops"] else None,
                  "target_cpu": f["target_cpu_share"], "rss_kib": 0,
                  "target_cpu_us_per_io": f["target_cpu_us_per_io"],
                  "target_syscalls_per_io": f["target_syscalls_per_io"]}
    return res


def cpu_us_per_io(t, w):
    """A target's CPU time per I/O from its medians: its core share over its IOPS."""
    key = "avg_us" if w == "randread_4k_qd1" else "iops"
    iops = 1e6 / t[w][key]["median"] if key == "avg_us" else t[w][key]["median"]
    return t[w]["target_cpu"]["median"] / iops * 1e6


def spread(vals):
    v = sorted(vals)
    return {"median": v[len(v) // 2], "min": v[0], "max": v[-1], "all": vals}


def headline(d):
    """spdk_nvme_perf driving mimo_tgt and SPDK's nvmf_tgt (and its io_uring build), rounds
    alternating the targets, medians with their ranges; ratios are of the medians."""
    targets = [("mimo", None), ("spdk-posix", SPDK_TGT)]
    if os.environ.get("BENCH_MIMO_URING", "1") != "0":
        targets.insert(1, ("mimo-uring", None))
    if os.environ.get("MIMO_TGT_BEFORE"):  # another mimo_tgt: a before/after pair
        targets.insert(1, ("mimo-before", os.environ["MIMO_TGT_BEFORE"]))
    if SPDK_TGT_URING:
        targets.append(("spdk-uring", SPDK_TGT_URING))
    if os.environ.get("BENCH_FLOOR", "1") != "0":
        targets.append(("floor", "tcp_floor"))
    runs = {n: [] for n, _ in targets}
    loads = []
    for _ in range(ROUNDS):
        for name, exe in targets:
            before = os.getloadavg()
            runs[name].append(floor_round() if name == "floor" else headline_round(name, exe, d))
            loads.append([round(x, 2) for x in before] + [round(x, 2) for x in os.getloadavg()])
    out = {"method": f"spdk_nvme_perf on CPU {LAST_CPU}, targets on CPU 0 (-m 0x1), "
                     f"{SECONDS} s per workload, {ROUNDS} alternating rounds",
           "loadavg_before_after": loads, "targets": {}}
    for name, rs in runs.items():
        t = {}
        for w in HEADLINE:
            key = "avg_us" if w == "randread_4k_qd1" else "iops"
            t[w] = {key: spread([r[w][key] for r in rs])}
            if w in ("read_128k_qd8", "write_128k_qd8"):
                t[w]["mibps"] = spread([r[w]["mibps"] for r in rs])
            t[w]["target_cpu"] = spread([r[w]["target_cpu"] for r in rs])
        t["rss_mib_under_load"] = spread([round(max(r[w]["rss_kib"] for w in HEADLINE) / 1024)
                                          for r in rs])
        out["targets"][name] = t
    if "floor" in out["targets"]:
        # The most any target using the kernel's sockets could lead each peer by per core: the
        # peer's CPU per I/O over the floor's (the floor does no work of its own).
        fl = out["targets"]["floor"]
        out["ceiling_over_floor"] = {
            peer: {w: round(cpu_us_per_io(t, w) / cpu_us_per_io(fl, w), 2) for w in HEADLINE}
            for peer, t in out["targets"].items() if peer != "floor"}
    for me, peer in [(m, p) for m in ("mimo", "mimo-uring") if m in out["targets"]
                     for p, _ in targets if p.startswith("spdk")] + \
            ([("mimo-uring", "mimo")] if "mimo-uring" in out["targets"] else []):
        m, p = out["targets"][me], out["targets"][peer]
        out[f"{me.replace('-', '_')}_over_{peer.replace('-', '_')}"] = {
            **{w: round(m[w]["iops"]["median"] / p[w]["iops"]["median"], 2)
               for w in HEADLINE if w != "randread_4k_qd1"},
            **({"randread_4k_qd1_avg_latency": round(
                m["randread_4k_qd1"]["avg_us"]["median"]
                / p["randread_4k_qd1"]["avg_us"]["median"], 2)}
               if "randread_4k_qd1" in HEADLINE else {}),
            "rss_under_load": round(m["rss_mib_under_load"]["median"]
                                    / p["rss_mib_under_load"]["median"], 3),
        }
    return out


def main():
    out = {"benchmark": "nvmf", "machine": machine(), "seconds": SECONDS,
           "placement": f"target reactors per -m, mimo_perf on CPU {LAST_CPU}", "peer": PEER}
    with tempfile.TemporaryDirectory(prefix="mimo-bench-") as d:
        if SPDK_PERF and SPDK_TGT:
            # The headline first, while the machine is as quiet as it will be.
            out["headline_spdk_nvme_perf"] = headline(d)
            if os.environ.get("BENCH_HEADLINE_ONLY"):
                print(json.dumps(out))
                return
        for mask in ("0x1", "0x3"):
            run_target(mask, d, out)
        if SPDK_TGT:
            run_spdk_target(d, out)
    one = out["target_0x1"]
    rss_mib = max(one[w]["target_rss_kib"] for w in WORKLOADS) / 1024
    out["ratios_to_peer_midpoint"] = {
        "randread_qd32_iops": round(one["randread_qd32"]["iops"] / 751500, 2),
        "randwrite_qd32_iops": round(one["randwrite_qd32"]["iops"] / 562000, 2),
        "seqread_128k_qd8": round(one["seqread_128k_qd8"]["gbps"] / 5.4, 2),
        "randread_qd1_p50_latency": round(one["randread_qd1"]["p50_us"] / 9.2, 2),
        "rss_under_load": round(rss_mib / PEER["rss_mib_under_load"], 3),
    }
    if "spdk_nvme_perf_randread_qd32_iops" in one:
        out["mimo_perf_over_spdk_nvme_perf"] = round(
            one["randread_qd32"]["iops"] / one["spdk_nvme_perf_randread_qd32_iops"], 2)
    spdk = out.get("target_spdk_0x1")
    if spdk:
        # Same run, same core, same initiator (mimo_perf): mimo_tgt / SPDK's nvmf_tgt.
        out["mimo_tgt_over_spdk_tgt"] = {
            "randread_qd32_iops": round(one["randread_qd32"]["iops"]
                                        / spdk["randread_qd32"]["iops"], 2),
            "randwrite_qd32_iops": round(one["randwrite_qd32"]["iops"]
                                         / spdk["randwrite_qd32"]["iops"], 2),
            "seqread_128k_qd8": round(one["seqread_128k_qd8"]["gbps"]
                                      / spdk["seqread_128k_qd8"]["gbps"], 2),
            "randread_qd1_p50_latency": round(one["randread_qd1"]["p50_us"]
                                              / spdk["randread_qd1"]["p50_us"], 2),
            "rss_under_load": round(max(one[w]["target_rss_kib"] for w in WORKLOADS)
                                    / max(spdk[w]["target_rss_kib"] for w in WORKLOADS), 3),
        }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
