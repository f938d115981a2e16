"""The stackable bdev modules - split, passthru, delay, raid (raid0, raid1, concat) - in a real
mimo_tgt: created, listed and deleted with SPDK's own rpc.py (and raw JSON-RPC where a test
needs the exact error), data written and read back through an NVMe/TCP namespace over the
stack, raid0's strips found where striping puts them in the base files, a raid1 still serving
with a member gone or failing, base removal taking the bdevs above with it, and save_config
replayed with -c rebuilding the stacks in order."""
import json
import os
import subprocess
import time

import pytest

from conftest import BIN, PY, SLOW, RpcFailure, free_port, wait_until
from nvme_tcp_host import admin_session, io_session, status_of

SPDK_RPC = os.environ.get("SPDK_RPC_PY") or "/work/spdk-peer/scripts/rpc.py"
NQN = "nqn.2016-06.io.mimo:stacks"
BS = 512


def rpc_py(d, *args):
    """SPDK's rpc.py against d: its stdout (JSON where the method prints JSON)."""
    if not os.path.exists(SPDK_RPC):
        pytest.skip("SPDK's rpc.py is not here (set SPDK_RPC_PY)")
    env = dict(os.environ, PYTHONPATH=os.path.join(os.path.dirname(os.path.dirname(SPDK_RPC)),
                                                   "python"))
    p = subprocess.run([PY, SPDK_RPC, "-s", d.sock, *map(str, args)], capture_output=True,
                       text=True, timeout=60 * SLOW, env=env)
    assert p.returncode == 0, f"rpc.py {args}: {p.stdout}{p.stderr}"
    return p.stdout


def rpc_py_fails(d, *args):
    """rpc.py's error for a call that must fail: (code, message)."""
    if not os.path.exists(SPDK_RPC):
        pytest.skip("SPDK's rpc.py is not here (set SPDK_RPC_PY)")
    env = dict(os.environ, PYTHONPATH=os.path.join(os.path.dirname(os.path.dirname(SPDK_RPC)),
                                                   "python"))
    p = subprocess.run([PY, SPDK_RPC, "-s", d.sock, *map(str, args)], capture_output=True,
                       text=True, timeout=60 * SLOW, env=env)
    assert p.returncode != 0, f"rpc.py {args} succeeded: {p.stdout}"
    out = p.stdout + p.stderr
    resp = json.loads(out[out.index("response:") + len("response:"):])
    return resp["code"], resp["message"]


def err(d, method, params):
    with pytest.raises(RpcFailure) as e:
        d.result(method, params)
    return e.value.code, e.value.message


def names(d):
    return {b["name"] for b in d.result("bdev_get_bdevs")}


def bdev(d, name):
    return d.result("bdev_get_bdevs", {"name": name})[0]


def aio_file(tmp_path, name, mib):
    f = tmp_path / name
    f.write_bytes(b"\0" * (mib << 20))
    return f


class Namespaces:
    """An NVMe/TCP subsystem on d with the given bdevs as namespaces 1..n, and one I/O queue
    to it: the path every data check takes."""

    def __init__(self, d, bdevs, port=None):
        self.port = port or free_port()
        d.result("nvmf_create_transport", {"trtype": "TCP"})
        d.result("nvmf_create_subsystem", {"nqn": NQN, "allow_any_host": True})
        for b in bdevs:
            d.result("nvmf_subsystem_add_ns", {"nqn": NQN, "namespace": {"bdev_name": b}})
        d.result("nvmf_subsystem_add_listener", {
            "nqn": NQN, "listen_address": {"trtype": "TCP", "adrfam": "IPv4",
                                           "traddr": "127.0.0.1", "trsvcid": str(self.port)}})
        self.connect()

    def connect(self):
        self.admin = admin_session(self.port, NQN)
        self.q = io_session(self.port, self.admin, NQN)

    def write(self, nsid, lba, data):
        cqe, _ = self.q.write(nsid, lba, data)
        return status_of(cqe["status"])[:2]

    def read(self, nsid, lba, nblocks):
        cqe, data = self.q.read(nsid, lba, nblocks)
        assert status_of(cqe["status"])[:2] == (0, 0), cqe
        return data

    def close(self):
        self.q.close()
        self.admin.close()


OK = (0, 0)


def pattern(nblocks, seed):
    """Blocks that say which block of which write they are: a misplaced strip shows."""
    return b"".join(f"seed {seed} block {i} ".encode().ljust(BS, b"#") for i in range(nblocks))


# --- split ----------------------------------------------------------------------------------

def test_split_parts_map_onto_the_base(daemons, tmp_path):
    d = daemons("-m", "0x3")
    f = aio_file(tmp_path, "split.img", 4)
    assert rpc_py(d, "bdev_aio_create", f, "A0", BS).strip() == "A0"
    # rpc.py prints the parts' names; an uneven count leaves the remainder unused.
    assert rpc_py(d, "bdev_split_create", "A0", 3).split() == ["A0p0", "A0p1", "A0p2"]
    part = json.loads(rpc_py(d, "bdev_get_bdevs", "-b", "A0p1"))[0]
    per_part = 8192 // 3
    assert part["num_blocks"] == per_part and part["product_name"] == "Split Disk"
    assert part["driver_specific"]["split"] == {"base_bdev": "A0", "offset_blocks": per_part}
    assert bdev(d, "A0")["claimed"] is True
    # The same base twice, a missing base, a size the base cannot hold: refused.
    assert rpc_py_fails(d, "bdev_split_create", "A0", 2)[0] == -32602
    code, msg = err(d, "bdev_split_create", {"base_bdev": "nope", "split_count": 2})
    assert code == -32602 and "No such device" in msg
    # Data written to a part lands in the base at the part's offset.
    ns = Namespaces(d, ["A0p1", "A0p2"])
    data = pattern(16, 1)
    assert ns.write(1, 5, data) == OK and ns.read(1, 5, 16) == data
    assert f.read_bytes()[(per_part + 5) * BS:(per_part + 21) * BS] == data
    assert ns.write(2, 0, pattern(4, 2)) == OK
    assert f.read_bytes()[2 * per_part * BS:(2 * per_part + 4) * BS] == pattern(4, 2)
    ns.close()
    d.result("nvmf_delete_subsystem", {"nqn": NQN})
    # bdev_split_delete takes every part away and releases the base.
    rpc_py(d, "bdev_split_delete", "A0")
    wait_until(lambda: names(d) == {"A0"}, 10 * SLOW, "the parts to go")
    assert bdev(d, "A0")["claimed"] is False
    # With a size: parts of 1 MiB, as many as asked while they fit.
    assert rpc_py(d, "bdev_split_create", "-s", 1, "A0", 8).split() == \
        ["A0p0", "A0p1", "A0p2", "A0p3"]
    assert bdev(d, "A0p3")["num_blocks"] == 2048
    assert rpc_py_fails(d, "bdev_split_delete", "A1")[0] == -32602


def test_split_base_removal_removes_the_parts(daemons):
    d = daemons()
    d.result("bdev_malloc_create", {"name": "M0", "num_blocks": 4096, "block_size": BS})
    assert d.result("bdev_split_create", {"base_bdev": "M0", "split_count": 2}) == \
        ["M0p0", "M0p1"]
    # A claimed base can still be deleted: its parts go first (SPDK's hot removal).
    assert d.result("bdev_malloc_delete", {"name": "M0"}) is True
    wait_until(lambda: names(d) == set(), 10 * SLOW, "the parts to follow their base")


# --- passthru -------------------------------------------------------------------------------

def test_passthru_create_io_and_delete(daemons):
    d = daemons()
    rpc_py(d, "bdev_malloc_create", "-b", "M0", 8, BS)
    uuid = "b0a1c2d3-0000-4000-8000-0000000000aa"
    assert rpc_py(d, "bdev_passthru_create", "-b", "M0", "-p", "PT0", "-u", uuid).strip() == \
        "PT0"
    pt = json.loads(rpc_py(d, "bdev_get_bdevs", "-b", "PT0"))[0]
    assert pt["uuid"] == uuid and pt["num_blocks"] == 16384
    assert pt["driver_specific"]["passthru"] == {"name": "PT0", "base_bdev_name": "M0"}
    assert bdev(d, "M0")["claimed"] is True
    # Over a claimed base, or a missing one: refused with what is wrong.
    assert rpc_py_fails(d, "bdev_passthru_create", "-b", "M0", "-p", "PT1")[0] == -1
    code, msg = err(d, "bdev_passthru_create", {"base_bdev_name": "none", "name": "PT2"})
    assert code == -19 and "none" in msg
    ns = Namespaces(d, ["PT0"])
    data = pattern(8, 3)
    assert ns.write(1, 100, data) == OK and ns.read(1, 100, 8) == data
    ns.close()
    d.result("nvmf_delete_subsystem", {"nqn": NQN})
    # bdev_passthru_delete leaves the base, unclaimed, with the data written through.
    rpc_py(d, "bdev_passthru_delete", "PT0")
    assert names(d) == {"M0"} and bdev(d, "M0")["claimed"] is False
    rpc_py(d, "bdev_passthru_create", "-b", "M0", "-p", "PT0")
    rpc_py(d, "bdev_malloc_delete", "M0")
    wait_until(lambda: names(d) == set(), 10 * SLOW, "PT0 to follow its base")


# --- delay ----------------------------------------------------------------------------------

def test_delay_holds_completions_and_updates(daemons):
    d = daemons("-m", "0x3")
    rpc_py(d, "bdev_malloc_create", "-b", "M0", 8, BS)
    # 200 ms for every read and write (p99 the same): an I/O cannot complete sooner.
    assert rpc_py(d, "bdev_delay_create", "-b", "M0", "-d", "D0", "-r", 200000, "-t", 200000,
                  "-w", 200000, "-n", 200000).strip() == "D0"
    info = json.loads(rpc_py(d, "bdev_get_bdevs", "-b", "D0"))[0]["driver_specific"]["delay"]
    assert {k: info[k] for k in ("name", "base_bdev_name", "avg_read_latency",
                                 "p99_read_latency", "avg_write_latency",
                                 "p99_write_latency")} == {
        "name": "D0", "base_bdev_name": "M0", "avg_read_latency": 200000,
        "p99_read_latency": 200000, "avg_write_latency": 200000, "p99_write_latency": 200000}
    ns = Namespaces(d, ["D0"])
    data = pattern(8, 4)
    start = time.monotonic()
    assert ns.write(1, 0, data) == OK
    assert ns.read(1, 0, 8) == data
    # Held, not lost: both completed, and not at once (a generous lower bound only).
    assert time.monotonic() - start >= 0.2
    # Latencies change for the next I/O; zero passes I/O straight through.
    for kind in ("avg_read", "p99_read", "avg_write", "p99_write"):
        assert rpc_py(d, "bdev_delay_update_latency", "D0", kind, 0).strip() == "true"
    info = bdev(d, "D0")["driver_specific"]["delay"]
    assert info["avg_read_latency"] == info["p99_write_latency"] == 0
    for i in range(20):
        assert ns.write(1, i * 8, pattern(8, i)) == OK
    assert ns.read(1, 19 * 8, 8) == pattern(8, 19)
    ns.close()
    d.result("nvmf_delete_subsystem", {"nqn": NQN})
    # A p99 below its average is refused, as SPDK does; so is an unknown latency type.
    code, _ = rpc_py_fails(d, "bdev_delay_create", "-b", "D0", "-d", "D1", "-r", 10, "-t", 5,
                           "-w", 10, "-n", 10)
    assert code == -22
    code, msg = err(d, "bdev_delay_update_latency", {"delay_bdev_name": "M0",
                                                     "latency_type": "avg_read",
                                                     "latency_us": 1})
    assert code == -32602 and "does not exist" in msg
    code, msg = err(d, "bdev_delay_update_latency", {"delay_bdev_name": "D0",
                                                     "latency_type": "p50", "latency_us": 1})
    assert code == -32602 and "latency_type" in msg
    rpc_py(d, "bdev_delay_delete", "D0")
    assert names(d) == {"M0"} and bdev(d, "M0")["claimed"] is False


# --- raid -----------------------------------------------------------------------------------

def raid_info(d, name, category="all"):
    return [r for r in json.loads(rpc_py(d, "bdev_raid_get_bdevs", category))
            if r["name"] == name]


def test_raid0_stripes_over_the_bases(daemons, tmp_path):
    d = daemons("-m", "0x3")
    files = [aio_file(tmp_path, f"r0_{i}.img", 1) for i in range(3)]
    for i, f in enumerate(files):
        rpc_py(d, "bdev_aio_create", f, f"A{i}", BS)
    # 4 KiB strips: 8 blocks.
    rpc_py(d, "bdev_raid_create", "-n", "R0", "-z", 4, "-r", "raid0", "-b", "A0 A1 A2")
    [r] = raid_info(d, "R0", "online")
    assert (r["state"], r["raid_level"], r["strip_size_kb"], r["num_base_bdevs"],
            r["num_base_bdevs_discovered"], r["num_base_bdevs_operational"],
            r["superblock"]) == ("online", "raid0", 4, 3, 3, 3, False)
    assert [(b["name"], b["is_configured"], b["data_offset"], b["data_size"])
            for b in r["base_bdevs_list"]] == [(f"A{i}", True, 0, 2048) for i in range(3)]
    assert bdev(d, "R0")["num_blocks"] == 3 * 2048
    assert bdev(d, "R0")["driver_specific"]["raid"]["raid_level"] == "raid0"
    assert all(bdev(d, f"A{i}")["claimed"] for i in range(3))
    ns = Namespaces(d, ["R0"])
    # 40 blocks from block 5: strips 0..5 of the raid, each on base strip // 3.
    data = pattern(40, 5)
    assert ns.write(1, 5, data) == OK and ns.read(1, 5, 40) == data
    raw = [f.read_bytes() for f in files]
    for lba in range(5, 45):
        strip, within = divmod(lba, 8)
        base, base_strip = strip % 3, strip // 3
        off = (base_strip * 8 + within) * BS
        assert raw[base][off:off + BS] == data[(lba - 5) * BS:(lba - 4) * BS], f"LBA {lba}"
    ns.close()
    rpc_py(d, "nvmf_delete_subsystem", NQN)
    rpc_py(d, "bdev_raid_delete", "R0")
    assert raid_info(d, "R0") == [] and names(d) == {"A0", "A1", "A2"}
    assert not any(bdev(d, f"A{i}")["claimed"] for i in range(3))


def test_concat_follows_one_base_with_the_next(daemons, tmp_path):
    d = daemons()
    f0, f1 = aio_file(tmp_path, "c0.img", 1), aio_file(tmp_path, "c1.img", 2)
    rpc_py(d, "bdev_aio_create", f0, "A0", BS)
    rpc_py(d, "bdev_aio_create", f1, "A1", BS)
    rpc_py(d, "bdev_raid_create", "-n", "C0", "-z", 64, "-r", "concat", "-b", "A0 A1")
    assert bdev(d, "C0")["num_blocks"] == 2048 + 4096
    ns = Namespaces(d, ["C0"])
    data = pattern(16, 6)  # across the boundary: 8 blocks on each
    assert ns.write(1, 2040, data) == OK and ns.read(1, 2040, 16) == data
    assert f0.read_bytes()[2040 * BS:] == data[:8 * BS]
    assert f1.read_bytes()[:8 * BS] == data[8 * BS:]
    ns.close()


def test_raid1_mirrors_and_keeps_serving_degraded(daemons, tmp_path):
    d = daemons("-m", "0x3")
    files = [aio_file(tmp_path, f"m{i}.img", 1) for i in range(3)]
    for i, f in enumerate(files):
        rpc_py(d, "bdev_aio_create", f, f"A{i}", BS)
    # Member 0 under an error bdev, so that it can be made to fail.
    rpc_py(d, "bdev_error_create", "A0")
    rpc_py(d, "bdev_raid_create", "-n", "R1", "-r", "raid1", "-b", "EE_A0 A1 A2")
    assert bdev(d, "R1")["num_blocks"] == 2048
    ns = Namespaces(d, ["R1"])
    data = pattern(8, 7)
    assert ns.write(1, 10, data) == OK
    for f in files:  # written to every member
        assert f.read_bytes()[10 * BS:18 * BS] == data
    # Reads go round the members; each answers the same.
    for _ in range(6):
        assert ns.read(1, 10, 8) == data
    # Member 0 fails a write: the write still succeeds on the others, and member 0 is out.
    d.result("bdev_error_inject_error", {"name": "EE_A0", "io_type": "write",
                                         "error_type": "failure", "num": 1})
    data2 = pattern(8, 8)
    assert ns.write(1, 10, data2) == OK
    wait_until(lambda: raid_info(d, "R1")[0]["base_bdevs_list"][0]["name"] is None,
               10 * SLOW, "the failed member to be taken out")
    [r] = raid_info(d, "R1", "online")
    assert r["num_base_bdevs_discovered"] == 2
    assert r["base_bdevs_list"][0] == {"name": None, "uuid": "00000000-0000-0000-0000-000000000000",
                                       "is_configured": False, "data_offset": 0, "data_size": 0}
    assert bdev(d, "EE_A0")["claimed"] is False
    for _ in range(4):
        assert ns.read(1, 10, 8) == data2
    assert files[1].read_bytes()[10 * BS:18 * BS] == data2
    assert files[0].read_bytes()[10 * BS:18 * BS] == data  # the failed member kept the old
    # A member deleted under the raid: still serving, from the last one.
    rpc_py(d, "bdev_aio_delete", "A2")
    wait_until(lambda: "A2" not in names(d), 10 * SLOW, "A2 to be deleted")
    [r] = raid_info(d, "R1")
    assert r["num_base_bdevs_operational"] == 1 and r["state"] == "online"
    data3 = pattern(8, 9)
    assert ns.write(1, 10, data3) == OK and ns.read(1, 10, 8) == data3
    assert files[1].read_bytes()[10 * BS:18 * BS] == data3
    # save_config names the empty slots as SPDK does.
    [rc] = [c for c in d.result("framework_get_config", {"name": "bdev"})
            if c["method"] == "bdev_raid_create"]
    assert rc["params"]["base_bdevs"] == ["removed_base_bdev_0", "A1", "removed_base_bdev_2"]
    assert "strip_size_kb" not in rc["params"]
    ns.close()
    d.result("nvmf_delete_subsystem", {"nqn": NQN})
    # The last member leaving takes the raid with it: offline with no member left, it goes.
    rpc_py(d, "bdev_raid_remove_base_bdev", "A1")
    wait_until(lambda: "R1" not in names(d), 10 * SLOW, "R1 to go with its last member")
    wait_until(lambda: raid_info(d, "R1") == [], 10 * SLOW, "R1 to leave the raid list")
    assert bdev(d, "A1")["claimed"] is False


def test_raid_remove_base_and_losing_a_raid0_member(daemons):
    d = daemons()
    for i in range(4):
        d.result("bdev_malloc_create", {"name": f"M{i}", "num_blocks": 2048, "block_size": BS})
    rpc_py(d, "bdev_raid_create", "-n", "R1", "-r", "1", "-b", "M0 M1")
    rpc_py(d, "bdev_raid_create", "-n", "R0", "-z", 64, "-r", "0", "-b", "M2 M3")
    assert rpc_py(d, "bdev_raid_remove_base_bdev", "M1").strip() == ""
    [r] = raid_info(d, "R1")
    assert r["num_base_bdevs_operational"] == 1 and r["base_bdevs_list"][1]["name"] is None
    assert bdev(d, "M1")["claimed"] is False
    # raid0 cannot go on without a member: its bdev is deleted and the raid is offline, its
    # other member still claimed (SPDK's), until bdev_raid_delete lets it go.
    d.result("bdev_malloc_delete", {"name": "M3"})
    wait_until(lambda: "R0" not in names(d), 10 * SLOW, "R0's bdev to go")
    assert raid_info(d, "R0", "online") == []
    [r] = raid_info(d, "R0", "offline")
    assert r["state"] == "offline" and r["num_base_bdevs_discovered"] == 1
    assert [b["name"] for b in r["base_bdevs_list"]] == ["M2", None]
    assert bdev(d, "M2")["claimed"] is True
    code, msg = rpc_py_fails(d, "bdev_raid_add_base_bdev", "R0", "M3x")
    assert code == -19
    d.result("bdev_malloc_create", {"name": "M3x", "num_blocks": 2048, "block_size": BS})
    code, msg = rpc_py_fails(d, "bdev_raid_add_base_bdev", "R0", "M3x")
    assert code == -22 and "offline" in msg
    rpc_py(d, "bdev_raid_delete", "R0")
    assert raid_info(d, "R0") == [] and bdev(d, "M2")["claimed"] is False
    code, msg = rpc_py_fails(d, "bdev_raid_remove_base_bdev", "M2")
    assert code == -19
    # An offline raid also goes once its last member does.
    rpc_py(d, "bdev_raid_create", "-n", "C", "-z", 64, "-r", "concat", "-b", "M2 M3x")
    rpc_py(d, "bdev_raid_remove_base_bdev", "M2")
    wait_until(lambda: "C" not in names(d), 10 * SLOW, "C's bdev to go")
    assert raid_info(d, "C")[0]["state"] == "offline"
    d.result("bdev_malloc_delete", {"name": "M3x"})
    assert raid_info(d, "C") == []


def test_raid_refusals(daemons):
    d = daemons()
    for i in range(3):
        d.result("bdev_malloc_create", {"name": f"M{i}", "num_blocks": 2048, "block_size": BS})
    d.result("bdev_malloc_create", {"name": "B4k", "num_blocks": 256, "block_size": 4096})

    def create(**kw):
        p = dict({"name": "R", "raid_level": "raid0", "strip_size_kb": 64,
                  "base_bdevs": ["M0", "M1"]}, **kw)
        return err(d, "bdev_raid_create", p)

    # No superblock in mimo: refused, naming what mimo does instead.
    code, msg = rpc_py_fails(d, "bdev_raid_create", "-n", "R", "-z", 64, "-r", "raid0", "-s",
                             "-b", "M0 M1")
    assert code == -95 and "superblock" in msg
    assert create(raid_level="raid5f")[0] == -95
    assert create(raid_level="raid6")[0] == -32602
    assert create(strip_size_kb=3) == (-22, "Failed to create RAID bdev R: Invalid argument: "
                                            "strip_size_kb must be a power of 2")
    assert "raid1" in create(raid_level="raid1", strip_size_kb=0, base_bdevs=["M0"])[1]
    assert "strip size" in create(raid_level="raid1", strip_size_kb=64)[1]
    code, msg = create(base_bdevs=["M0", "missing"])
    assert code == -19 and "missing" in msg
    assert create(base_bdevs=["M0", "M0"])[0] == -22
    assert create(base_bdevs=["M0", "B4k"])[0] == -22
    assert create(base_bdevs=["M0", ""])[0] == -22
    # Nothing half-made stays behind: every base is free again.
    assert not any(b["claimed"] for b in d.result("bdev_get_bdevs"))
    assert d.result("bdev_raid_get_bdevs", {"category": "all"}) == []
    assert err(d, "bdev_raid_get_bdevs", {"category": "some"})[0] == -32602
    rpc_py(d, "bdev_raid_create", "-n", "R", "-z", 64, "-r", "raid0", "-b", "M0 M1")
    assert create(base_bdevs=["M2"])[0] == -17
    code, _ = create(name="R2", base_bdevs=["M1", "M2"])
    assert code == -1  # M1 is R's
    assert rpc_py_fails(d, "bdev_raid_delete", "nope")[0] == -19
    code, msg = rpc_py_fails(d, "bdev_raid_add_base_bdev", "R", "M2")
    assert code == -22 and "slot" in msg
    assert err(d, "bdev_raid_set_options", {"process_window_size_kb": 0})[0] == -32602
    for category in ("configuring", "offline"):
        assert json.loads(rpc_py(d, "bdev_raid_get_bdevs", category)) == []
    # A passthru over the raid: a member deleted takes the raid's bdev and the passthru.
    rpc_py(d, "bdev_passthru_create", "-b", "R", "-p", "P")
    rpc_py(d, "bdev_malloc_delete", "M0")
    wait_until(lambda: names(d) == {"M1", "M2", "B4k"}, 10 * SLOW, "R and P to go")
    rpc_py(d, "bdev_raid_delete", "R")
    assert not any(b["claimed"] for b in d.result("bdev_get_bdevs"))


# --- save_config and -c ----------------------------------------------------------------------

def test_save_config_replays_the_stacks(daemons, tmp_path):
    d = daemons("-m", "0x3")
    files = [aio_file(tmp_path, f"s{i}.img", 2) for i in range(2)]
    for i, f in enumerate(files):
        rpc_py(d, "bdev_aio_create", f, f"A{i}", BS)
    rpc_py(d, "bdev_malloc_create", "-b", "M0", 4, BS)
    rpc_py(d, "bdev_malloc_create", "-b", "M1", 4, BS)
    # aio -> split -> raid0 over two parts -> passthru -> delay; malloc -> raid1.
    rpc_py(d, "bdev_split_create", "A0", 2)
    rpc_py(d, "bdev_split_create", "A1", 2)
    rpc_py(d, "bdev_raid_create", "-n", "R0", "-z", 8, "-r", "raid0", "-b", "A0p1 A1p0")
    rpc_py(d, "bdev_passthru_create", "-b", "R0", "-p", "P0")
    rpc_py(d, "bdev_delay_create", "-b", "P0", "-d", "D0", "-r", 10, "-t", 20, "-w", 30, "-n", 40)
    rpc_py(d, "bdev_raid_create", "-n", "R1", "-r", "raid1", "-b", "M0 M1")
    port = free_port()
    ns = Namespaces(d, ["D0"], port)
    data = pattern(64, 10)
    assert ns.write(1, 3, data) == OK
    ns.close()
    before = {b["name"]: b for b in d.result("bdev_get_bdevs")}
    path = tmp_path / "saved.json"
    path.write_text(rpc_py(d, "save_config"))
    d.stop()
    again = daemons("-m", "0x3", "-c", path, name="again")
    after = {b["name"]: b for b in again.result("bdev_get_bdevs")}
    assert set(after) == set(before)
    for name, b in before.items():
        assert after[name]["num_blocks"] == b["num_blocks"], name
        if name not in ("A0p0", "A0p1", "A1p0", "A1p1"):  # SPDK saves no UUID for parts
            assert after[name]["uuid"] == b["uuid"], name
    for name in ("P0", "D0", "R1"):
        assert after[name]["driver_specific"] == before[name]["driver_specific"], name
    assert after["D0"]["driver_specific"]["delay"]["p99_write_latency"] == 40
    assert [b["name"] for b in raid_info(again, "R0")[0]["base_bdevs_list"]] == ["A0p1", "A1p0"]
    # The data is where the replayed stack looks for it (the subsystem came back too).
    ns = Namespaces.__new__(Namespaces)
    ns.port = port
    ns.connect()
    assert ns.read(1, 3, 64) == data
    ns.close()


def test_raid1_rebuilds_onto_an_added_member(daemons, tmp_path):
    d = daemons("-m", "0x3")
    mib = 2
    files = [aio_file(tmp_path, f"rb{i}.img", mib) for i in range(3)]
    for i, f in enumerate(files):
        rpc_py(d, "bdev_aio_create", f, f"A{i}", BS)
    rpc_py(d, "bdev_raid_create", "-n", "R1", "-r", "raid1", "-b", "A0 A1")
    blocks = mib * 2048
    ns = Namespaces(d, ["R1"])
    expect = bytearray()
    for lba in range(0, blocks, 256):
        chunk = pattern(256, lba)
        assert ns.write(1, lba, chunk) == OK
        expect += chunk
    # Degraded, then written to: the member that left misses these.
    rpc_py(d, "bdev_raid_remove_base_bdev", "A1")
    wait_until(lambda: raid_info(d, "R1")[0]["base_bdevs_list"][1]["name"] is None,
               10 * SLOW, "A1 to leave")
    for lba in (0, 1000, blocks - 8):
        chunk = pattern(8, 100 + lba)
        assert ns.write(1, lba, chunk) == OK
        expect[lba * BS:(lba + 8) * BS] = chunk
    # A slow rebuild (small windows, 1 MiB/s) so that I/O runs while it copies.
    rpc_py(d, "bdev_raid_set_options", "-w", 64, "-b", 1)
    assert {"method": "bdev_raid_set_options",
            "params": {"process_window_size_kb": 64, "process_max_bandwidth_mb_sec": 1}} in \
        d.result("framework_get_config", {"name": "bdev"})
    rpc_py(d, "bdev_raid_add_base_bdev", "R1", "A2")
    [r] = raid_info(d, "R1")
    assert r["process"]["type"] == "rebuild" and r["process"]["target"] == "A2"
    assert r["base_bdevs_list"][1]["name"] == "A2" and r["num_base_bdevs_operational"] == 1
    # Writes before, inside and after the copy's progress, and reads, while it runs.
    writes = 0
    while "process" in d.result("bdev_raid_get_bdevs", {"category": "online"})[0] and \
            writes < 200:
        lba = (writes * 509) % (blocks - 16)
        chunk = pattern(16, 1000 + writes)
        assert ns.write(1, lba, chunk) == OK
        expect[lba * BS:(lba + 16) * BS] = chunk
        assert ns.read(1, lba, 16) == chunk
        writes += 1
    # At 1 MiB/s the copy of 2 MiB cannot end within a second: writes ran while it did.
    assert writes > 0
    wait_until(lambda: "process" not in raid_info(d, "R1")[0], 60 * SLOW, "the rebuild to end")
    [r] = raid_info(d, "R1")
    assert (r["num_base_bdevs_discovered"], r["num_base_bdevs_operational"]) == (2, 2)
    assert ns.read(1, 0, 256) == bytes(expect[:256 * BS])
    ns.close()
    # Both members hold the raid's data, block for block.
    assert files[0].read_bytes() == bytes(expect)
    assert files[2].read_bytes() == bytes(expect)
    # The rebuilt member serves alone.
    rpc_py(d, "bdev_raid_remove_base_bdev", "A0")
    ns.connect()
    assert ns.read(1, blocks - 256, 256) == bytes(expect[(blocks - 256) * BS:])
    ns.close()


def test_mimo_rpc_has_the_same_commands(daemons):
    """mimo-rpc, mimo's own rpc.py, takes the same command lines and prints the same."""
    d = daemons()

    def mimo_rpc(*args):
        p = subprocess.run([os.path.join(BIN, "mimo-rpc"), "-s", d.sock, *map(str, args)],
                           capture_output=True, text=True, timeout=60 * SLOW)
        assert p.returncode == 0, p.stderr
        return p.stdout.strip()

    for i in range(4):
        d.result("bdev_malloc_create", {"name": f"M{i}", "num_blocks": 2048, "block_size": BS})
    assert mimo_rpc("bdev_split_create", "-s", 0, "M0", 2) == "M0p0 M0p1"
    assert mimo_rpc("bdev_passthru_create", "-b", "M0p0", "-p", "P", "-u",
                    "00000000-0000-4000-8000-000000000001") == "P"
    assert mimo_rpc("bdev_delay_create", "-b", "P", "-d", "D", "-r", 1, "-t", 2, "-w", 3,
                    "-n", 4) == "D"
    assert mimo_rpc("bdev_delay_update_latency", "D", "p99_write", 9) == "true"
    assert bdev(d, "D")["driver_specific"]["delay"]["p99_write_latency"] == 9
    mimo_rpc("bdev_raid_create", "-n", "R", "-r", "raid1", "-b", "M1 M2")
    assert json.loads(mimo_rpc("bdev_raid_get_bdevs", "online"))[0]["name"] == "R"
    mimo_rpc("bdev_raid_remove_base_bdev", "M2")
    mimo_rpc("bdev_raid_set_options", "-w", 4)
    mimo_rpc("bdev_raid_add_base_bdev", "R", "M3")
    wait_until(lambda: raid_info(d, "R")[0]["num_base_bdevs_operational"] == 2, 10 * SLOW,
               "M3 to be rebuilt")
    mimo_rpc("bdev_raid_delete", "R")
    mimo_rpc("bdev_delay_delete", "D")
    mimo_rpc("bdev_passthru_delete", "P")
    mimo_rpc("bdev_split_delete", "M0")
    wait_until(lambda: names(d) == {"M0", "M1", "M2", "M3"}, 10 * SLOW, "the stacks to go")
