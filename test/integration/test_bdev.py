"""The bdev layer's SPDK methods against real mimo_tgt processes, with SPDK's rpc.py as the
client where it has the command: bdev_get_iostat (names, per_channel, reset_mode, SPDK's
fields, queue-depth sampling), bdev_reset_iostat, latency histograms in SPDK's encoding
(decoded here and by SPDK's scripts/histogram.py), bdev_examine with bdev_auto_examine,
bdev_null_resize and bdev_aio_rescan (the NVMe-oF host is told), bdev_error_resume_pending.
I/O comes from a raw NVMe/TCP host (nvme_tcp_host.py) on a namespace over the bdev."""
import base64
import json
import os
import struct
import subprocess

import pytest

from bdev_helpers import HISTOGRAM_PY, NQN, SPDK_RPC, RpcPyError, export, rpc_py
from conftest import RpcFailure, free_port, wait_until
from nvme_tcp_host import CMD, admin_session, io_session, status_of

needs_rpc_py = pytest.mark.skipif(not SPDK_RPC, reason="SPDK's rpc.py not found (SPDK_RPC_PY)")

STAT_FIELDS = ["bytes_read", "num_read_ops", "bytes_written", "num_write_ops", "bytes_unmapped",
               "num_unmap_ops", "bytes_copied", "num_copy_ops", "read_latency_ticks",
               "max_read_latency_ticks", "min_read_latency_ticks", "write_latency_ticks",
               "max_write_latency_ticks", "min_write_latency_ticks", "unmap_latency_ticks",
               "max_unmap_latency_ticks", "min_unmap_latency_ticks", "copy_latency_ticks",
               "max_copy_latency_ticks", "min_copy_latency_ticks", "io_error"]


def ok(cqe):
    return status_of(cqe["status"])[:2] == (0, 0)


@pytest.fixture
def served(daemons):
    """mimo_tgt on two reactors with M0 (malloc, 16 MiB) exported; yields (daemon, io queue)."""
    d = daemons("-m", "0x3")
    port = free_port()
    d.result("bdev_malloc_create", {"name": "M0", "num_blocks": 32768, "block_size": 512})
    export(d, port, "M0")
    a = admin_session(port, NQN)
    q = io_session(port, a, NQN)
    yield d, q
    q.close()
    a.close()


def one(d, *args):
    return rpc_py(d, "bdev_get_iostat", "--names", "M0", *args)["bdevs"][0]


@needs_rpc_py
def test_iostat_fields_per_channel_and_reset_modes(served):
    d, q = served
    for lba in range(0, 64, 8):
        assert ok(q.write(1, lba, b"\x5a" * 4096)[0])
    for lba in range(0, 32, 8):
        assert ok(q.read(1, lba, 8)[0])
    res = rpc_py(d, "bdev_get_iostat", "--names", "M0")
    assert res["tick_rate"] > 0 and res["ticks"] > 0
    s = res["bdevs"][0]
    assert [k for k in s if k in STAT_FIELDS] == STAT_FIELDS  # SPDK's order
    assert s["num_write_ops"] == 8 and s["bytes_written"] == 8 * 4096
    assert s["num_read_ops"] == 4 and s["bytes_read"] == 4 * 4096
    assert 0 < s["min_read_latency_ticks"] <= s["max_read_latency_ticks"] <= \
        s["read_latency_ticks"]
    assert 0 < s["min_write_latency_ticks"] <= s["max_write_latency_ticks"]
    assert s["io_error"] == {} and s["num_copy_ops"] == 0
    assert "queue_depth" not in s  # only while sampling
    # Per channel: one bdev only, each channel with its thread, summing to the whole.
    pc = rpc_py(d, "bdev_get_iostat", "--names", "M0", "-c")
    assert pc["name"] == "M0" and pc["tick_rate"] == res["tick_rate"]
    assert all(c["thread_id"] >= 1 for c in pc["channels"])
    assert sum(c["num_read_ops"] for c in pc["channels"]) == 4
    with pytest.raises(RpcPyError):
        rpc_py(d, "bdev_get_iostat", "-c")
    with pytest.raises(RpcPyError):
        rpc_py(d, "bdev_get_iostat", "--names", "nope")
    # reset_mode maxmin: the answer still has them, the next one not; the counts stay.
    assert one(d, "--reset-mode", "maxmin")["max_read_latency_ticks"] > 0
    s = one(d)
    assert s["max_read_latency_ticks"] == 0 and s["min_write_latency_ticks"] == 0
    assert s["num_read_ops"] == 4 and s["read_latency_ticks"] > 0
    assert ok(q.read(1, 0, 8)[0])
    assert one(d)["max_read_latency_ticks"] > 0  # counting again after the reset
    # bdev_reset_iostat: none changes nothing; all clears the rest.
    rpc_py(d, "bdev_reset_iostat", "-b", "M0", "-m", "none")
    assert one(d)["num_read_ops"] == 5
    rpc_py(d, "bdev_reset_iostat", "-b", "M0", "-m", "all")
    s = one(d)
    assert all(s[k] == 0 for k in STAT_FIELDS if k != "io_error")
    assert ok(q.write(1, 0, b"\1" * 512)[0])
    assert one(d)["num_write_ops"] == 1
    rpc_py(d, "bdev_reset_iostat")  # every bdev, mode all
    assert one(d)["num_write_ops"] == 0
    with pytest.raises(RpcPyError):
        rpc_py(d, "bdev_reset_iostat", "-b", "nope")
    # mimo's and older SPDK's "name" still answers.
    assert d.result("bdev_get_iostat", {"name": "M0"})["bdevs"][0]["name"] == "M0"
    with pytest.raises(RpcFailure) as e:
        d.result("bdev_get_iostat", {"reset_mode": "some"})
    assert e.value.code == -32602


@needs_rpc_py
def test_io_errors_counted_by_status_and_reset(daemons):
    d = daemons()
    port = free_port()
    d.result("bdev_malloc_create", {"name": "B", "num_blocks": 8192, "block_size": 512})
    d.result("bdev_error_create", {"base_name": "B"})
    export(d, port, "EE_B")
    a = admin_session(port, NQN)
    q = io_session(port, a, NQN)
    rpc_py(d, "bdev_error_inject_error", "EE_B", "read", "failure", "-n", 2)
    rpc_py(d, "bdev_error_inject_error", "EE_B", "write", "nomem", "-n", 1)
    assert not ok(q.read(1, 0, 1)[0]) and not ok(q.read(1, 0, 1)[0])
    assert ok(q.read(1, 0, 1)[0])
    s = rpc_py(d, "bdev_get_iostat", "--names", "EE_B")["bdevs"][0]
    assert s["io_error"] == {"failed": 2} and s["num_read_ops"] == 1
    rpc_py(d, "bdev_reset_iostat", "-b", "EE_B", "-m", "error")
    s = rpc_py(d, "bdev_get_iostat", "--names", "EE_B")["bdevs"][0]
    assert s["io_error"] == {} and s["num_read_ops"] == 1
    # queue_depth: only an I/O that finds that many of its channel's at the base is hit; one
    # read at a time never does.
    rpc_py(d, "bdev_error_inject_error", "EE_B", "read", "failure", "-n", 1, "-q", 2)
    for _ in range(3):
        assert ok(q.read(1, 0, 1)[0])
    rpc_py(d, "bdev_error_inject_error", "EE_B", "read", "failure", "-n", 1)
    assert not ok(q.read(1, 0, 1)[0])
    q.close()
    a.close()


@needs_rpc_py
def test_nvme_failure_reaches_the_host(daemons):
    """nvme_failure: the host gets the injected NVMe status itself, not a generic error."""
    d = daemons()
    port = free_port()
    d.result("bdev_malloc_create", {"name": "B", "num_blocks": 8192, "block_size": 512})
    d.result("bdev_error_create", {"base_name": "B"})
    export(d, port, "EE_B")
    a = admin_session(port, NQN)
    q = io_session(port, a, NQN)
    # Media error / Unrecovered Read Error (2h/81h), then Generic / Data Transfer Error.
    rpc_py(d, "bdev_error_inject_error", "EE_B", "read", "nvme_failure", "-n", 1,
           "--nvme-sct", 2, "--nvme-sc", 0x81)
    rpc_py(d, "bdev_error_inject_error", "EE_B", "write", "nvme_failure", "-n", 1,
           "--nvme-sct", 0, "--nvme-sc", 0x04)
    assert status_of(q.read(1, 0, 1)[0]["status"])[:2] == (2, 0x81)
    assert status_of(q.write(1, 0, bytes(512))[0]["status"])[:2] == (0, 0x04)
    assert ok(q.read(1, 0, 1)[0]) and ok(q.write(1, 0, bytes(512))[0])
    # SPDK's rule: a status with nvme_failure, and only with it.
    for args in (["read", "nvme_failure"], ["read", "failure", "--nvme-sc", 1]):
        with pytest.raises(RpcPyError):
            rpc_py(d, "bdev_error_inject_error", "EE_B", *args)
    q.close()
    a.close()


@needs_rpc_py
def test_queue_depth_sampling(daemons):
    d = daemons()
    port = free_port()
    d.result("bdev_malloc_create", {"name": "B", "num_blocks": 8192, "block_size": 512})
    d.result("bdev_error_create", {"base_name": "B"})
    export(d, port, "EE_B")
    a = admin_session(port, NQN)
    q = io_session(port, a, NQN)
    rpc_py(d, "bdev_set_qd_sampling_period", "EE_B", 1000)

    def stat():
        return rpc_py(d, "bdev_get_iostat", "--names", "EE_B")["bdevs"][0]
    assert stat()["queue_depth_polling_period"] == 1000
    # An I/O held by a pending injection is the queue: depth 1, and io_time grows.
    rpc_py(d, "bdev_error_inject_error", "EE_B", "read", "pending", "-n", 1)
    cid = q.next_cid()
    q.send_raw(q.pdu_bytes(CMD, q.sqe(0x02, cid, 1, sgl=(0, 512, 0x5a))))
    wait_until(lambda: stat()["queue_depth"] == 1, 10, "the held read to be sampled")
    wait_until(lambda: stat()["io_time"] >= 3000, 10, "io_time to grow")
    s = stat()
    assert s["weighted_io_time"] >= s["io_time"]
    rpc_py(d, "bdev_error_resume_pending", "EE_B")
    assert ok(q.finish(cid)[0])
    wait_until(lambda: stat()["queue_depth"] == 0, 10, "the depth to fall back")
    rpc_py(d, "bdev_set_qd_sampling_period", "EE_B", 0)
    assert "queue_depth" not in stat()
    q.close()
    a.close()


def decode(h):
    raw = base64.b64decode(h["histogram"])
    n = (h["max_range"] - h["min_range"] + 1) << h["granularity"]
    assert len(raw) == 8 * n
    return [int.from_bytes(raw[i * 8:i * 8 + 8], "little") for i in range(n)]


@needs_rpc_py
def test_histogram_in_spdk_encoding(served, tmp_path):
    d, q = served
    with pytest.raises(RpcPyError):  # not enabled
        rpc_py(d, "bdev_get_histogram", "M0")
    rpc_py(d, "bdev_enable_histogram", "M0", "--histogram")
    for lba in range(0, 80, 8):
        assert ok(q.write(1, lba, b"\7" * 4096)[0])
    for _ in range(5):
        assert ok(q.read(1, 0, 8)[0])
    h = rpc_py(d, "bdev_get_histogram", "M0")
    assert set(h) == {"histogram", "granularity", "min_range", "max_range", "tsc_rate"}
    assert h["granularity"] == 7 and h["tsc_rate"] > 0 and h["min_range"] < h["max_range"]
    assert sum(decode(h)) == 15
    # bdev_get_histogram_borders: counts under each border (µs), then everything.
    b = rpc_py(d, "bdev_get_histogram_borders", "M0", "--borders", "1,10000000")
    assert b["borders_count"][-1] == 15 and len(b["borders_count"]) == 3
    # SPDK's own decoder reads it.
    if HISTOGRAM_PY and os.path.exists(HISTOGRAM_PY):
        p = subprocess.run(["/usr/bin/python3", HISTOGRAM_PY], input=json.dumps(h),
                           capture_output=True, text=True, timeout=30)
        assert p.returncode == 0, p.stderr
        assert "Latency histogram" in p.stdout and "%" in p.stdout
    # Enabling again starts over; opc counts only that type; saved and replayed.
    rpc_py(d, "bdev_enable_histogram", "M0", "--histogram", "-o", "read", "--granularity", 5)
    assert ok(q.write(1, 0, b"\7" * 512)[0])
    assert ok(q.read(1, 0, 1)[0])
    h = rpc_py(d, "bdev_get_histogram", "M0")
    assert h["granularity"] == 5 and sum(decode(h)) == 1
    saved = [c for s in rpc_py(d, "save_config")["subsystems"] if s["subsystem"] == "bdev"
             for c in s["config"]]
    assert {"method": "bdev_enable_histogram",
            "params": {"name": "M0", "enable": True, "opc": "read"}} in saved
    with pytest.raises(RpcFailure) as e:
        d.result("bdev_enable_histogram", {"name": "M0", "enable": True, "opc": "copy"})
    assert e.value.code == -32602
    rpc_py(d, "bdev_enable_histogram", "M0", "--no-histogram")
    with pytest.raises(RpcPyError):
        rpc_py(d, "bdev_get_histogram", "M0")


def test_examine_needs_auto_examine_off(daemons, tmp_path):
    d = daemons()
    d.result("bdev_malloc_create", {"name": "M0", "num_blocks": 2048, "block_size": 512})
    with pytest.raises(RpcFailure) as e:
        d.result("bdev_examine", {"name": "M0"})
    assert e.value.code == -22
    d2 = daemons("--wait-for-rpc")
    d2.result("bdev_set_options", {"bdev_auto_examine": False})
    d2.result("framework_start_init")
    assert d2.result("bdev_examine", {"name": "Later"}) is True  # need not exist yet
    with pytest.raises(RpcFailure) as e:
        d2.result("bdev_examine", {"name": "Later"})
    assert e.value.code == -17
    cfg = [s for s in d2.result("framework_get_config", {"name": "bdev"})]
    assert cfg[:2] == [{"method": "bdev_set_options", "params": {"bdev_auto_examine": False}},
                       {"method": "bdev_examine", "params": {"name": "Later"}}]
    saved = tmp_path / "saved.json"
    saved.write_text(json.dumps({"subsystems": [{"subsystem": "bdev", "config": cfg}]}))
    d3 = daemons("-c", saved)
    assert d3.result("framework_get_config", {"name": "bdev"})[:2] == cfg[:2]


def test_null_resize_tells_the_nvmf_host(daemons):
    d = daemons()
    port = free_port()
    d.result("bdev_null_create", {"name": "N0", "num_blocks": 16384, "block_size": 4096})
    export(d, port, "N0")
    a = admin_session(port, NQN)
    cid = a.next_cid()
    a.send_raw(a.pdu_bytes(CMD, a.sqe(0x0C, cid)))  # an Asynchronous Event Request
    nsze = struct.unpack_from("<Q", a.identify(0, nsid=1)[1], 0)[0]
    assert nsze == 16384
    with pytest.raises(RpcFailure) as e:  # never smaller (SPDK's rule)
        d.result("bdev_null_resize", {"name": "N0", "new_size": 32})
    assert e.value.code == -22
    with pytest.raises(RpcFailure):
        d.result("bdev_null_resize", {"name": "nope", "new_size": 128})
    assert d.result("bdev_null_resize", {"name": "N0", "new_size": 128}) is True
    cqe = a.recv_pdu().cqe()
    assert cqe["cid"] == cid and cqe["cdw0"] == 0x040002  # Namespace Attribute Changed
    log = a.get_log_page(0x04, 4096)[1]
    assert struct.unpack_from("<II", log, 0) == (1, 0)
    assert struct.unpack_from("<Q", a.identify(0, nsid=1)[1], 0)[0] == 32768
    assert d.result("bdev_get_bdevs", {"name": "N0"})[0]["num_blocks"] == 32768
    a.close()


def test_aio_rescan_reads_the_new_size(daemons, tmp_path):
    d = daemons()
    f = tmp_path / "disk.img"
    f.write_bytes(b"\0" * (1 << 20))
    d.result("bdev_aio_create", {"name": "A0", "filename": str(f), "block_size": 512})
    with open(f, "ab") as fh:
        fh.truncate(3 << 20)
    assert d.result("bdev_get_bdevs", {"name": "A0"})[0]["num_blocks"] == 2048
    assert d.result("bdev_aio_rescan", {"name": "A0"}) is True
    assert d.result("bdev_get_bdevs", {"name": "A0"})[0]["num_blocks"] == 6144
    with pytest.raises(RpcFailure) as e:
        d.result("bdev_aio_rescan", {"name": "nope"})
    assert e.value.code == -19


def test_error_resume_pending_completes_held_io(daemons):
    d = daemons()
    port = free_port()
    d.result("bdev_malloc_create", {"name": "B", "num_blocks": 8192, "block_size": 512})
    d.result("bdev_error_create", {"base_name": "B"})
    export(d, port, "EE_B")
    a = admin_session(port, NQN)
    q = io_session(port, a, NQN)
    assert ok(q.write(1, 3, b"\x33" * 512)[0])
    d.result("bdev_error_inject_error", {"name": "EE_B", "io_type": "read",
                                         "error_type": "pending", "num": 5})
    d.result("bdev_set_qd_sampling_period", {"name": "EE_B", "period": 1000})
    cid = q.next_cid()
    q.send_raw(q.pdu_bytes(CMD, q.sqe(0x02, cid, 1, cdw10=3, sgl=(0, 512, 0x5a))))
    wait_until(lambda: d.result("bdev_get_iostat", {"name": "EE_B"})["bdevs"][0]["queue_depth"]
               == 1, 10, "the read to be held")
    assert d.result("bdev_error_resume_pending", {"name": "EE_B"}) is True
    cqe, data = q.finish(cid, b"")
    assert ok(cqe) and data == b"\x33" * 512
    # The rest of that injection was cancelled: the next read goes through at once.
    assert ok(q.read(1, 3, 1)[0])
    with pytest.raises(RpcFailure) as e:
        d.result("bdev_error_resume_pending", {"name": "B"})
    assert e.value.code == -19
    q.close()
    a.close()


def test_mimo_rpc_has_rpc_py_forms(daemons):
    from conftest import BIN
    d = daemons()

    def cli(*args):
        p = subprocess.run([os.path.join(BIN, "mimo-rpc"), "-s", d.sock, *map(str, args)],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        return p.stdout.strip()
    cli("bdev_null_create", "Q", 1, 512)
    assert cli("bdev_null_resize", "Q", 4) == "true"
    cli("bdev_set_qos_limit", "Q", "--rw-ios-per-sec", 3000, "--w-mbytes-per-sec", 5)
    assert json.loads(cli("bdev_get_bdevs", "-b", "Q"))[0]["assigned_rate_limits"] == {
        "rw_ios_per_sec": 3000, "rw_mbytes_per_sec": 0, "r_mbytes_per_sec": 0,
        "w_mbytes_per_sec": 5}
    assert json.loads(cli("bdev_get_iostat", "--names", "Q", "-c"))["name"] == "Q"
    cli("bdev_reset_iostat", "-b", "Q", "-m", "maxmin")
    cli("bdev_set_qd_sampling_period", "Q", 500)
    assert json.loads(cli("bdev_get_iostat", "-b", "Q"))["bdevs"][0][
        "queue_depth_polling_period"] == 500
    cli("bdev_enable_histogram", "Q", "--histogram", "-o", "write")
    assert json.loads(cli("bdev_get_histogram_borders", "Q", "--borders", "10,20"))[
        "borders_count"] == [0, 0, 0]
    assert json.loads(cli("bdev_get_histogram", "Q"))["granularity"] == 7
