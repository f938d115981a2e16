#!/usr/bin/python3
"""What TLS costs per core: mimo_tgt on one reactor (CPU 0, -m 0x1) serving a 64 MiB malloc bdev
on a plain listener and a secure one (TLS 1.3, a 32-byte PSK: TLS_AES_128_GCM_SHA256, and a
48-byte one: TLS_AES_256_GCM_SHA384), mimo_perf on the last CPU: 4 KiB random read at queue
depth 32 and 128 KiB sequential read at depth 8, BENCH_SECONDS each (default 3), BENCH_RUNS
times (default 3) interleaved, median and range. OLD_BUILD=<dir> also measures that build's
plain path in the same session (the plain path's cost before and after TLS came in). Prints
one JSON object."""
import json
import os
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "test", "integration"))
from common import BIN, bench_env, free_port, machine, start_tgt, wait_port  # noqa: E402
from nvme_tcp_host import make_tls_psk  # noqa: E402

SECONDS = int(os.environ.get("BENCH_SECONDS", "3"))
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
OLD = os.environ.get("OLD_BUILD")
NQN = "nqn.2016-06.io.mimo:bench"
HOST = "nqn.2014-08.io.mimo:benchhost"
MASK = hex(1 << ((os.cpu_count() or 1) - 1))
WORKLOADS = {"randread_4k_qd32": ["-q", "32", "-o", "4096", "-w", "randread"],
             "read_128k_qd8": ["-q", "8", "-o", "131072", "-w", "read"]}


def perf(bindir, port, args, extra=()):
    p = subprocess.run([os.path.join(bindir, "mimo_perf"), "-r",
                        f"trtype:tcp adrfam:IPv4 traddr:127.0.0.1 trsvcid:{port} subnqn:{NQN} "
                        f"hostnqn:{HOST}", *args, "-t", str(SECONDS), "-c", MASK, "--json",
                        *extra], env=bench_env(), capture_output=True, text=True,
                       timeout=SECONDS + 60)
    if p.returncode != 0:
        raise RuntimeError(f"mimo_perf {args} failed: {p.stderr[-2000:]}")
    return json.loads(p.stdout)["total"]["iops"]


def target(d, exe, secure_keys=None):
    """A target with a plain listener and, given keys, a secure one; (process, plain, secure)."""
    p, c = start_tgt(os.path.join(d, f"t{free_port()}.sock"), "-m", "0x1", exe=exe)
    plain, secure = free_port(), free_port()
    c.call("bdev_malloc_create", {"name": "M0", "num_blocks": 131072, "block_size": 512})
    c.call("nvmf_create_transport", {"trtype": "TCP"})
    c.call("nvmf_create_subsystem", {"nqn": NQN, "allow_any_host": True})
    c.call("nvmf_subsystem_add_ns", {"nqn": NQN, "namespace": {"bdev_name": "M0"}})
    c.call("nvmf_subsystem_add_listener", {"nqn": NQN, "listen_address": {
        "trtype": "TCP", "adrfam": "IPv4", "traddr": "127.0.0.1", "trsvcid": str(plain)}})
    if secure_keys:
        c.call("keyring_file_add_key", {"name": "psk", "path": secure_keys})
        c.call("nvmf_subsystem_add_host", {"nqn": NQN, "host": HOST, "psk": "psk"})
        c.call("nvmf_subsystem_add_listener", {"nqn": NQN, "secure_channel": True,
                                               "listen_address": {
                                                   "trtype": "TCP", "adrfam": "IPv4",
                                                   "traddr": "127.0.0.1",
                                                   "trsvcid": str(secure)}})
        wait_port(secure)
    wait_port(plain)
    return p, plain, secure


def main():
    res = {name: {} for name in WORKLOADS}
    with tempfile.TemporaryDirectory() as d:
        keys = {}
        for hh in (1, 2):
            path = os.path.join(d, f"psk{hh}")
            with open(path, "w") as f:
                f.write(make_tls_psk(hh=hh) + "\n")
            os.chmod(path, 0o600)
            keys[hh] = path
        samples = {}
        for _ in range(RUNS):
            cases = [("plain", BIN, None, ()),
                     ("tls_aes128", BIN, 1, ("--psk", keys[1])),
                     ("tls_aes256", BIN, 2, ("--psk", keys[2]))]
            if OLD:
                cases.insert(0, ("plain_old_build", os.path.join(OLD, "bin"), None, ()))
            for case, bindir, hh, extra in cases:
                p, plain, secure = target(d, os.path.join(bindir, "mimo_tgt"),
                                          keys[hh] if hh else None)
                try:
                    for name, args in WORKLOADS.items():
                        samples.setdefault((name, case), []).append(
                            perf(bindir, secure if hh else plain, args, extra))
                finally:
                    p.terminate()
                    p.wait()
        for (name, case), v in samples.items():
            res[name][case] = {"median_iops": round(statistics.median(v)),
                               "range": [round(min(v)), round(max(v))], "runs": len(v)}
        for name in WORKLOADS:
            base = res[name]["plain"]["median_iops"]
            for case in ("tls_aes128", "tls_aes256"):
                res[name][case]["vs_plain"] = round(res[name][case]["median_iops"] / base, 3)
    print(json.dumps({"machine": machine(), "seconds": SECONDS, "runs": RUNS, "results": res},
                     indent=1))


if __name__ == "__main__":
    main()
