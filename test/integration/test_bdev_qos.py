"""QoS rate limits (bdev_set_qos_limit, through SPDK's rpc.py): mimo_perf drives a null bdev
over NVMe/TCP harder than the limit, and the rate the bdev saw (bdev_get_iostat's counts over
its own ticks) stays under a generous bound of the limit. The precise accuracy is measured by
bench/qos.py (docs/PERFORMANCE.md), not asserted here: timings vary with the machine's load.
Also: SPDK's rules (IOPS rounded up to a multiple of 1000, 0 lifts a limit, none given is an
error), assigned_rate_limits, and save_config / -c."""
import json
import os
import subprocess

import pytest

from bdev_helpers import NQN, SPDK_RPC, RpcPyError, export, rpc_py
from conftest import BIN, clean_env, free_port

PERF = os.path.join(BIN, "mimo_perf")
pytestmark = [pytest.mark.skipif(not SPDK_RPC, reason="SPDK's rpc.py not found (SPDK_RPC_PY)"),
              pytest.mark.skipif(not os.path.exists(PERF), reason="mimo_perf is not built")]
PERF_CORES = "0x2" if (os.cpu_count() or 1) >= 2 else "0x1"


def rate(d, name, run):
    """Run run(), and return (I/Os per second, bytes read per second) the bdev saw meanwhile."""
    before = rpc_py(d, "bdev_get_iostat", "--names", name)
    run()
    after = rpc_py(d, "bdev_get_iostat", "--names", name)
    secs = (after["ticks"] - before["ticks"]) / after["tick_rate"]
    b0, b1 = before["bdevs"][0], after["bdevs"][0]
    ops = (b1["num_read_ops"] + b1["num_write_ops"]) - (b0["num_read_ops"] + b0["num_write_ops"])
    return ops / secs, (b1["bytes_read"] - b0["bytes_read"]) / secs


def perf(port, *args):
    trid = f"trtype:tcp adrfam:IPv4 traddr:127.0.0.1 trsvcid:{port} subnqn:{NQN}"
    p = subprocess.run([PERF, "-r", trid, "-c", PERF_CORES, *map(str, args)],
                       capture_output=True, text=True, timeout=120, env=clean_env())
    assert p.returncode == 0, p.stdout + p.stderr
    return p


@pytest.fixture
def served(daemons):
    d = daemons("-m", "0x3")
    port = free_port()
    d.result("bdev_null_create", {"name": "N0", "num_blocks": 262144, "block_size": 512})
    export(d, port, "N0")
    return d, port


def test_iops_limit_holds_across_queue_pairs(served):
    d, port = served
    unlimited, _ = rate(d, "N0", lambda: perf(port, "-q", 32, "-o", 4096, "-w", "randread",
                                              "-t", 1))
    rpc_py(d, "bdev_set_qos_limit", "N0", "--rw-ios-per-sec", 10000)
    assert rpc_py(d, "bdev_get_bdevs", "-b", "N0")[0]["assigned_rate_limits"] == {
        "rw_ios_per_sec": 10000, "rw_mbytes_per_sec": 0, "r_mbytes_per_sec": 0,
        "w_mbytes_per_sec": 0}
    # Two queue pairs: the I/O arrives on both reactors, the limit is the bdev's.
    limited, _ = rate(d, "N0", lambda: perf(port, "-q", 32, "-o", 4096, "-w", "randrw",
                                            "-M", 50, "-t", 2, "-P", 2))
    assert 0 < limited <= 1.2 * 10000, (limited, unlimited)
    # 0 lifts it.
    rpc_py(d, "bdev_set_qos_limit", "N0", "--rw-ios-per-sec", 0)
    assert rpc_py(d, "bdev_get_bdevs", "-b", "N0")[0]["assigned_rate_limits"][
        "rw_ios_per_sec"] == 0


def test_bandwidth_limits(served):
    d, port = served
    rpc_py(d, "bdev_set_qos_limit", "N0", "--r-mbytes-per-sec", 20)
    _, rbps = rate(d, "N0", lambda: perf(port, "-q", 16, "-o", 65536, "-w", "randread",
                                         "-t", 2))
    assert 0 < rbps <= 1.2 * 20 * 2**20, rbps
    # Writes are not read bandwidth: they pass (while a limit on both would hold them).
    rpc_py(d, "bdev_set_qos_limit", "N0", "--w-mbytes-per-sec", 10, "--r-mbytes-per-sec", 0)
    ops, _ = rate(d, "N0", lambda: perf(port, "-q", 16, "-o", 65536, "-w", "randwrite",
                                        "-t", 2))
    assert 0 < ops * 65536 <= 1.2 * 10 * 2**20


def test_spdk_rules_config_and_replay(served, daemons, tmp_path):
    d, _ = served
    with pytest.raises(RpcPyError) as e:  # no limit named
        rpc_py(d, "bdev_set_qos_limit", "N0")
    assert "No rate limits specified" in str(e.value)
    with pytest.raises(RpcPyError):
        rpc_py(d, "bdev_set_qos_limit", "nope", "--rw-ios-per-sec", 1000)
    rpc_py(d, "bdev_set_qos_limit", "N0", "--rw-ios-per-sec", 1500)  # rounded up, as SPDK
    rpc_py(d, "bdev_set_qos_limit", "N0", "--rw-mbytes-per-sec", 100)  # the other kept
    assert rpc_py(d, "bdev_get_bdevs", "-b", "N0")[0]["assigned_rate_limits"] == {
        "rw_ios_per_sec": 2000, "rw_mbytes_per_sec": 100, "r_mbytes_per_sec": 0,
        "w_mbytes_per_sec": 0}
    cfg = rpc_py(d, "save_config")
    bdev = [s for s in cfg["subsystems"] if s["subsystem"] == "bdev"][0]["config"]
    assert {"method": "bdev_set_qos_limit", "params": {
        "name": "N0", "rw_ios_per_sec": 2000, "rw_mbytes_per_sec": 100}} in bdev
    saved = tmp_path / "saved.json"
    saved.write_text(json.dumps({"subsystems": [{"subsystem": "bdev", "config": bdev}]}))
    d2 = daemons("-c", saved)
    assert d2.result("bdev_get_bdevs", {"name": "N0"})[0]["assigned_rate_limits"][
        "rw_ios_per_sec"] == 2000
