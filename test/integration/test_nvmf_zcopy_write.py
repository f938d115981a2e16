"""Writes that land in the bdev's memory (docs/nvmf.md, "The data path"): over NVMe/TCP a Write
to a malloc namespace receives its data - in-capsule, or H2CData after an R2T - straight into
the bdev, without a buffer the malloc module then copies from. Checked from a host written from
the specification (nvme_tcp_host.py) and with mimo_perf --verify and SPDK's spdk_nvme_perf:
patterns written and read back at in-capsule and R2T sizes, one and many H2CData PDUs, with
and without digests; the data visibly landing before the write completes (what a reader of
the same blocks may see); a damaged data digest, an inaccessible ANA path and an injected
error leaving the bdev unchanged; a connection killed in the middle of a transfer leaving the
target healthy and the namespace removable."""
import os
import socket
import struct
import subprocess

import pytest

from conftest import BIN, SLOW, clean_env, free_port, wait_until
from nvme_tcp_host import (CMD, F_LAST, H2C_DATA, R2T, RSP, SGL_TRANSPORT, admin_session,
                           io_session, status_of)
from nvmf_target import NQN, NvmfTarget

PERF = os.path.join(BIN, "mimo_perf")
SPDK_PERF = os.environ.get("SPDK_NVME_PERF", "/work/spdk-peer/build/bin/spdk_nvme_perf")
OK, TRANSIENT, INTERNAL = (0, 0), (0, 0x22), (0, 0x06)
ANA_INACCESSIBLE = (3, 0x02)
BS = 512
# The target's reactor runs on core 0; an initiator, where there is another, on core 1.
PERF_CORES = "0x2" if (os.cpu_count() or 1) >= 2 else "0x1"


def st(cqe):
    return status_of(cqe["status"])[:2]


@pytest.fixture
def target(daemons):
    # One reactor: the queue pairs of a test share it, as they do in the benchmarks.
    t = NvmfTarget.start(daemons, free_port(), cores="0x1")
    yield t
    t.stop()


def writes(d, bdev="Malloc0"):
    return d.result("bdev_get_iostat", {"name": bdev})["bdevs"][0]["num_write_ops"]


def io_qpairs(d):
    return sum(g["current_io_qpairs"] for g in d.result("nvmf_get_stats")["poll_groups"])


def write_cmd(q, lba, nbytes, icd):
    """The CapsuleCmd of a Write (SGL in-capsule or transport data block) and its cid."""
    cid = q.next_cid()
    sgl = (0, nbytes, 0x01 if icd else SGL_TRANSPORT)
    return cid, q.sqe(0x01, cid, 1, sgl=sgl, cdw10=lba & 0xFFFFFFFF, cdw11=lba >> 32,
                      cdw12=nbytes // BS - 1)


def h2c(q, cid, ttag, offset, part, last, bad_digest=False):
    raw = bytearray(q.pdu_bytes(H2C_DATA, struct.pack("<HHII4x", cid, ttag, offset, len(part)),
                                part, flags=F_LAST if last else 0))
    if bad_digest:
        raw[-1] ^= 0xFF
    q.send_raw(bytes(raw))


def r2t_write(q, lba, data, pdu_size, bad_digest_at=None):
    """A Write through R2T, its data sent in H2CData PDUs of pdu_size bytes. Returns the CQE."""
    cid, sqe = write_cmd(q, lba, len(data), icd=False)
    q.send_raw(q.pdu_bytes(CMD, sqe))
    pdu = q.recv_pdu()
    assert pdu.type == R2T
    cccid, ttag, r2to, r2tl = struct.unpack_from("<HHII", pdu.header, 8)
    assert (cccid, r2to, r2tl) == (cid, 0, len(data))
    for i, off in enumerate(range(0, len(data), pdu_size)):
        part = data[off:off + pdu_size]
        h2c(q, cid, ttag, off, part, off + len(part) == len(data), bad_digest=i == bad_digest_at)
    pdu = q.recv_pdu()
    assert pdu.type == RSP
    return pdu.cqe()


# --- patterns written and read back --------------------------------------------------------

@pytest.mark.parametrize("digests", [(False, False), (True, True)], ids=["plain", "digests"])
def test_patterns_written_and_read_back(target, digests):
    d = target.daemon
    a = admin_session(target.port, NQN, hdgst=digests[0], ddgst=digests[1])
    q = io_session(target.port, a, NQN, hdgst=digests[0], ddgst=digests[1])
    r = io_session(target.port, a, NQN, qid=2, hdgst=digests[0], ddgst=digests[1])
    before = writes(d)
    cases = [  # (lba, bytes, how)
        (0, 512, "icd"), (7, 4096, "icd"),             # in-capsule: one block, the ICD size
        (100, 4096, "r2t"), (200, 64 * 1024, "r2t"),   # one H2CData PDU
        (400, 128 * 1024, 8192),                       # 16 H2CData PDUs for one command
        (800, 96 * 1024, 4096 + 512),                  # PDUs that do not divide the length
    ]
    for lba, n, how in cases:
        data = os.urandom(n)
        if how == "icd":
            cqe = q.write(1, lba, data, icd=True)[0]
        elif how == "r2t":
            cqe = q.write(1, lba, data, icd=False)[0]
        else:
            cqe = r2t_write(q, lba, data, how)
        assert st(cqe) == OK, (lba, n, how)
        cqe, back = r.read(1, lba, n // BS)
        assert st(cqe) == OK and back == data, (lba, n, how)
    # Neighbours untouched: the block before and after the 16-PDU write read as zeroes.
    assert r.read(1, 399, 1)[1] == b"\0" * BS and r.read(1, 656, 1)[1] == b"\0" * BS
    # Every write counted once, as any write is.
    assert writes(d) - before == len(cases)
    for h in (q, r, a):
        h.close()


# --- the data lands in the bdev: what a reader sees meanwhile -------------------------------

def test_reader_sees_h2c_data_land_before_completion(target):
    a = admin_session(target.port, NQN)
    q = io_session(target.port, a, NQN)
    r = io_session(target.port, a, NQN, qid=2)
    data = os.urandom(32 * 1024)
    cid, sqe = write_cmd(q, 64, len(data), icd=False)
    q.send_raw(q.pdu_bytes(CMD, sqe))
    pdu = q.recv_pdu()
    assert pdu.type == R2T
    ttag = struct.unpack_from("<HH", pdu.header, 8)[1]
    h2c(q, cid, ttag, 0, data[:16384], last=False)
    # No buffer in between: the first half is in the bdev before the write is complete (with
    # a buffer it would stay invisible until the command ran).
    wait_until(lambda: r.read(1, 64, 32)[1][:16384] == data[:16384], 10 * SLOW,
               "the first H2CData PDU's data to show in the bdev")
    assert r.read(1, 96, 32)[1] == b"\0" * 16384  # the second half has not come
    h2c(q, cid, ttag, 16384, data[16384:], last=True)
    pdu = q.recv_pdu()
    assert pdu.type == RSP and st(pdu.cqe()) == OK
    assert r.read(1, 64, 64)[1] == data
    for h in (q, r, a):
        h.close()


def test_reader_sees_in_capsule_data_land_before_completion(target):
    a = admin_session(target.port, NQN)
    q = io_session(target.port, a, NQN)
    r = io_session(target.port, a, NQN, qid=2)
    data = os.urandom(4096)
    cid, sqe = write_cmd(q, 16, len(data), icd=True)
    raw = q.pdu_bytes(CMD, sqe, data)
    q.send_raw(raw[:-2048])
    wait_until(lambda: r.read(1, 16, 4)[1] == data[:2048], 10 * SLOW,
               "the in-capsule data's first half to show in the bdev")
    q.send_raw(raw[-2048:])
    pdu = q.recv_pdu()
    assert pdu.type == RSP and st(pdu.cqe()) == OK and pdu.cqe()["cid"] == cid
    assert r.read(1, 16, 8)[1] == data
    for h in (q, r, a):
        h.close()


def test_transport_zcopy_false_keeps_writes_staged(daemons):
    """SPDK's transport option zcopy (off by default there, on in mimo): false gives every
    write a buffer, so a reader sees nothing of it before it completes. The barrier is a Read
    on the writing queue itself, which the target takes after the H2CData PDU sent before it."""
    t = NvmfTarget.start(daemons, free_port(), cores="0x1", transport={"zcopy": False})
    try:
        (tr,) = t.daemon.result("nvmf_get_transports")
        assert tr["zcopy"] is False
        saved = [c for c in t.daemon.result("framework_get_config", {"name": "nvmf"})
                 if c["method"] == "nvmf_create_transport"]
        assert saved[0]["params"]["zcopy"] is False
        a = admin_session(t.port, NQN)
        q = io_session(t.port, a, NQN)
        data = os.urandom(32 * 1024)
        cid, sqe = write_cmd(q, 64, len(data), icd=False)
        q.send_raw(q.pdu_bytes(CMD, sqe))
        pdu = q.recv_pdu()
        assert pdu.type == R2T
        ttag = struct.unpack_from("<HH", pdu.header, 8)[1]
        h2c(q, cid, ttag, 0, data[:16384], last=False)
        assert q.read(1, 64, 32)[1] == b"\0" * 16384
        h2c(q, cid, ttag, 16384, data[16384:], last=True)
        pdu = q.recv_pdu()
        assert pdu.type == RSP and st(pdu.cqe()) == OK
        assert q.read(1, 64, 64)[1] == data
        for h in (q, a):
            h.close()
    finally:
        t.stop()


# --- what must leave the bdev unchanged ------------------------------------------------------

def test_damaged_data_digest_leaves_bdev_unchanged(target):
    """With a data digest the data is staged: a write whose digest fails never reaches the
    bdev, so the host's retry finds the blocks as they were."""
    d = target.daemon
    a = admin_session(target.port, NQN, ddgst=True)
    q = io_session(target.port, a, NQN, ddgst=True)
    old = os.urandom(8192)
    assert st(q.write(1, 32, old, icd=False)[0]) == OK
    before = writes(d)
    # In-capsule, the digest corrupted.
    cid, sqe = write_cmd(q, 32, 4096, icd=True)
    raw = bytearray(q.pdu_bytes(CMD, sqe, os.urandom(4096)))
    raw[-1] ^= 0xFF
    q.send_raw(bytes(raw))
    pdu = q.recv_pdu()
    assert pdu.type == RSP and st(pdu.cqe()) == TRANSIENT
    # Through R2T, the first of four H2CData PDUs damaged.
    assert st(r2t_write(q, 32, os.urandom(8192), 2048, bad_digest_at=0)) == TRANSIENT
    assert q.read(1, 32, 16)[1] == old
    assert writes(d) == before
    q.close()
    a.close()


@pytest.mark.parametrize("icd", [True, False], ids=["in-capsule", "r2t"])
def test_inaccessible_path_leaves_bdev_unchanged(daemons, icd):
    """ANA is checked before any data lands: a write through an inaccessible path fails and
    the blocks stay as they were."""
    port = free_port()
    d = daemons("-m", "0x1")
    d.result("bdev_malloc_create", {"name": "Malloc0", "block_size": BS, "num_blocks": 16384})
    d.result("nvmf_create_transport", {"trtype": "TCP"})
    d.result("nvmf_create_subsystem", {"nqn": NQN, "allow_any_host": True,
                                       "ana_reporting": True})
    d.result("nvmf_subsystem_add_ns", {"nqn": NQN, "namespace": {"bdev_name": "Malloc0"}})
    addr = {"trtype": "TCP", "adrfam": "IPv4", "traddr": "127.0.0.1", "trsvcid": str(port)}
    d.result("nvmf_subsystem_add_listener", {"nqn": NQN, "listen_address": addr})
    a = admin_session(port, NQN)
    q = io_session(port, a, NQN)
    old = os.urandom(4096)
    assert st(q.write(1, 8, old, icd=icd)[0]) == OK
    before = writes(d)
    d.result("nvmf_subsystem_listener_set_ana_state",
             {"nqn": NQN, "listen_address": addr, "ana_state": "inaccessible"})
    assert st(q.write(1, 8, os.urandom(4096), icd=icd)[0]) == ANA_INACCESSIBLE
    d.result("nvmf_subsystem_listener_set_ana_state",
             {"nqn": NQN, "listen_address": addr, "ana_state": "optimized"})
    assert q.read(1, 8, 8)[1] == old
    assert writes(d) == before
    q.close()
    a.close()


@pytest.mark.parametrize("icd", [True, False], ids=["in-capsule", "r2t"])
def test_error_bdev_still_fails_writes(target, icd):
    """A module that must see each write (error injection) gives no memory to write into."""
    d = target.daemon
    d.result("bdev_malloc_create", {"name": "Base", "block_size": BS, "num_blocks": 2048})
    d.result("bdev_error_create", {"base_name": "Base"})
    assert d.result("nvmf_subsystem_add_ns", {"nqn": NQN,
                                              "namespace": {"bdev_name": "EE_Base"}}) == 2
    a = admin_session(target.port, NQN)
    q = io_session(target.port, a, NQN)
    old = os.urandom(4096)
    assert st(q.write(2, 0, old, icd=icd)[0]) == OK
    d.result("bdev_error_inject_error", {"name": "EE_Base", "io_type": "write",
                                         "error_type": "failure", "num": 1})
    assert st(q.write(2, 0, os.urandom(4096), icd=icd)[0]) == INTERNAL
    assert q.read(2, 0, 8)[1] == old
    q.close()
    a.close()


def test_qos_limited_bdev_writes_through_a_buffer(target):
    """Under a QoS limit a write waits for its budget before it lands: no zero copy there,
    and the data still arrives whole."""
    d = target.daemon
    d.result("bdev_set_qos_limit", {"name": "Malloc0", "rw_ios_per_sec": 10000})
    a = admin_session(target.port, NQN)
    q = io_session(target.port, a, NQN)
    for icd, n in ((True, 4096), (False, 64 * 1024)):
        data = os.urandom(n)
        assert st(q.write(1, 300, data, icd=icd)[0]) == OK
        assert q.read(1, 300, n // BS)[1] == data
    q.close()
    a.close()


# --- a connection killed in the middle ---------------------------------------------------------

def kill(q):
    """Close with a reset, as a host that died would."""
    q.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    q.sock.close()


@pytest.mark.parametrize("icd", [True, False], ids=["in-capsule", "r2t"])
def test_connection_killed_mid_transfer(target, icd):
    d = target.daemon
    a = admin_session(target.port, NQN)
    q = io_session(target.port, a, NQN)
    r = io_session(target.port, a, NQN, qid=2)
    data = os.urandom(4096 if icd else 64 * 1024)
    before = writes(d)
    cid, sqe = write_cmd(q, 1000, len(data), icd=icd)
    if icd:
        raw = q.pdu_bytes(CMD, sqe, data)
        q.send_raw(raw[:-1024])
    else:
        q.send_raw(q.pdu_bytes(CMD, sqe))
        pdu = q.recv_pdu()
        assert pdu.type == R2T
        h2c(q, cid, struct.unpack_from("<HH", pdu.header, 8)[1], 0, data[:8192], last=False)
    # The data is arriving (a reader sees it land), then the host goes.
    wait_until(lambda: r.read(1, 1000, 2)[1] == data[:1024], 10 * SLOW, "data to land")
    kill(q)
    wait_until(lambda: io_qpairs(d) == 1, 10 * SLOW, "the killed queue pair to go")
    # The dropped write is no write (the blocks hold part of its data: undefined, as NVMe
    # has it for an aborted write); the target serves on.
    assert writes(d) == before
    fresh = os.urandom(len(data))
    assert st(r.write(1, 1000, fresh, icd=icd)[0]) == OK
    assert r.read(1, 1000, len(data) // BS)[1] == fresh
    # Nothing of the dropped write is held: the namespace drains and its bdev goes.
    r.close()
    a.close()
    d.result("nvmf_subsystem_remove_ns", {"nqn": NQN, "nsid": 1})
    d.result("bdev_malloc_delete", {"name": "Malloc0"})
    wait_until(lambda: d.result("bdev_get_bdevs") == [], 10 * SLOW, "Malloc0 to go")


# --- whole initiators ------------------------------------------------------------------------

def perf(prog, port, *args, env=None):
    trid = f"trtype:tcp adrfam:IPv4 traddr:127.0.0.1 trsvcid:{port} subnqn:{NQN}"
    return subprocess.run([prog, "-r", trid, *map(str, args)], capture_output=True, text=True,
                          timeout=60 * SLOW, env=env or clean_env())


@pytest.mark.skipif(not os.path.exists(PERF), reason="mimo_perf is not built")
@pytest.mark.parametrize("digests", [[], ["-H", "-I"]], ids=["plain", "digests"])
def test_mimo_perf_verify_many_h2c_pdus(daemons, digests):
    """mimo's initiator writes patterns and reads them back: 4 KiB in-capsule, and 128 KiB in
    sixteen 8 KiB H2CData PDUs (io_unit_size is the target's MAXH2CDATA)."""
    t = NvmfTarget.start(daemons, free_port(), cores="0x1", transport={"io_unit_size": 8192})
    for size in (4096, 131072):
        p = perf(PERF, t.port, "-q", 16, "-o", size, "-w", "randrw", "-t", 1, "--verify",
                 *digests)
        assert p.returncode == 0, p.stdout + p.stderr
        assert "mismatch" not in p.stderr
    t.stop()


@pytest.mark.skipif(not os.path.exists(SPDK_PERF), reason="SPDK's spdk_nvme_perf not found")
def test_spdk_nvme_perf_writes(target):
    """SPDK's initiator (4 KiB in-capsule, 128 KiB through R2T): every write completes and is
    counted once."""
    d = target.daemon
    env = clean_env(LD_LIBRARY_PATH=os.path.join(os.path.dirname(os.path.dirname(SPDK_PERF)),
                                                 "lib"))
    for size, qd in ((4096, 32), (131072, 8)):
        before = writes(d)
        p = perf(SPDK_PERF, target.port, "--no-huge", "-s", "512", "-c", PERF_CORES, "-q", qd,
                 "-o", size, "-w", "randwrite", "-t", 1, env=env)
        assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
        total = [x for x in p.stdout.splitlines() if x.startswith("Total")]
        assert total, p.stdout[-2000:]
        assert writes(d) - before > 0
