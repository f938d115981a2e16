"""Inflight I/O tracking (INFLIGHT_SHMFD, GET/SET_INFLIGHT_FD) without a guest: the region's
layout and contents as requests are taken and given back, and a mimo_tgt killed with a write
in flight whose successor, handed the same region, writes it (docs/vhost.md)."""
import json
import mmap
import os
import signal
import struct

import pytest

import vhost_user as vu
from conftest import wait_until

QSIZE = 64


def region_bytes(qsize):
    return (16 + 16 * qsize + 63) & ~63


class Region:
    """A view of one queue's part: header, then 16 bytes per descriptor."""

    def __init__(self, m, q=0, qsize=QSIZE):
        self.m, self.base = m, q * region_bytes(qsize)

    def header(self):
        return struct.unpack_from("<QHHHH", self.m, self.base)  # features, version, desc_num,
        # last_batch_head, used_idx

    def desc(self, i):
        inflight, nxt, counter = struct.unpack_from("<B5xHQ", self.m, self.base + 16 + 16 * i)
        return inflight, nxt, counter

    def in_flight(self):
        return [i for i in range(QSIZE) if self.desc(i)[0]]


def connect(path, region=None):
    """A front-end with the inflight feature; the region made by GET_INFLIGHT_FD, or the one
    given, handed back with SET_INFLIGHT_FD as QEMU's vhost-user-blk does at every start."""
    c = vu.Client(path)
    offered, pf = c.negotiate(protocol=None, mem=False)
    assert pf & (1 << vu.PF_INFLIGHT_SHMFD)
    if region is None:
        region = c.get_inflight(1, QSIZE)
    size, off, fd = region
    c.set_inflight(fd, size, off, 1, QSIZE, ack=True)
    return c, region


def read_req(q, sector, n):
    m = q.c.mem
    hdr = q.c.alloc(16, 16)
    struct.pack_into("<IIQ", m, hdr, vu.T_IN, 0, sector)
    data, st = q.c.alloc(n), q.c.alloc(1, 1)
    m[st] = 0xff
    return [(hdr, 16, False), (data, n, True), (st, 1, True)], st


def write_req(q, sector, payload):
    m = q.c.mem
    hdr = q.c.alloc(16, 16)
    struct.pack_into("<IIQ", m, hdr, vu.T_OUT, 0, sector)
    data, st = q.c.alloc(len(payload)), q.c.alloc(1, 1)
    m[data:data + len(payload)] = payload
    m[st] = 0xff
    return [(hdr, 16, False), (data, len(payload), False), (st, 1, True)], st


def test_region_layout_and_contents(daemons, rundir):
    t = daemons("-S", rundir)
    t.result("bdev_malloc_create", {"name": "M0", "block_size": 512, "num_blocks": 8192})
    t.result("bdev_error_create", {"base_name": "M0"})
    t.result("vhost_create_blk_controller", {"ctrlr": "b0", "dev_name": "EE_M0"})
    c, (size, off, fd) = connect(os.path.join(rundir, "b0"))
    # One part per queue, each a 16-byte header and 16 bytes per descriptor, 64-byte aligned.
    assert (size, off) == (region_bytes(QSIZE), 0)
    m = mmap.mmap(fd, size)
    r = Region(m)
    assert r.header() == (0, 1, QSIZE, 0, 0)
    c.set_mem_table(ack=True)
    q = c.queue(0, QSIZE)
    heads = []
    for k in range(3):
        st, _ = q.blk_read(k, 512)
        assert st == vu.S_OK
    # Three requests taken (counters 0, 1, 2), given back and published: none in flight, the
    # used index noted, the last batch's head the last request's.
    assert r.header()[3:] == (6, 3)
    assert [r.desc(h)[2] for h in (0, 3, 6)] == [0, 1, 2]
    assert r.in_flight() == []
    # A read held by the bdev is in flight, with the next counter, until it completes.
    t.result("bdev_error_inject_error", {"name": "EE_M0", "io_type": "read",
                                         "error_type": "pending", "num": 1})
    chain, st = read_req(q, 0, 512)
    heads.append(q.submit(chain))
    wait_until(lambda: r.in_flight() == heads, what="the held read noted in flight")
    assert r.desc(heads[0])[2] == 3 and r.header()[4] == 3
    t.result("bdev_error_resume_pending", {"name": "EE_M0"})
    (hid, _), = q.wait()
    assert hid == heads[0] and c.mem[st] == vu.S_OK
    wait_until(lambda: r.header()[3:] == (heads[0], 4), what="the region's used index")
    assert r.in_flight() == []
    m.close()
    os.close(fd)
    c.close()


def killed_with_a_write_held(daemons, rundir, tmp_path, view, base, check, packed=False):
    """The scenario of the tests below, for either ring layout: write A; write B held in the
    bdev; write C completed after it; mimo_tgt SIGKILLed; the next one started from the saved
    configuration; a front-end on the same guest memory hands it the region and base(q), the
    base QEMU can send then. B is answered, the ring goes on after it (a read of B's data is
    the next request) and the disk has all three writes. view(mmap) reads the region;
    check(q) then looks at where the ring stands."""
    img = tmp_path / "disk.img"
    img.write_bytes(bytes(4 << 20))
    t = daemons("-S", rundir)
    t.result("bdev_aio_create", {"name": "A0", "filename": str(img), "block_size": 512})
    t.result("bdev_error_create", {"base_name": "A0"})
    t.result("vhost_create_blk_controller", dict({"ctrlr": "b0", "dev_name": "EE_A0"},
                                                 **({"packed_ring": True} if packed else {})))
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps(t.saved_config()))
    path = os.path.join(rundir, "b0")
    c, region = connect(path)
    assert bool(c.features & (1 << vu.F_RING_PACKED)) == packed
    r = view(mmap.mmap(region[2], region[0]))
    c.set_mem_table(ack=True)
    q = c.queue(0, QSIZE)
    assert q.blk_write(0, b"A" * 512) == vu.S_OK
    t.result("bdev_error_inject_error", {"name": "EE_A0", "io_type": "write",
                                         "error_type": "pending", "num": 1})
    held, held_st = write_req(q, 8, b"B" * 4096)
    head = q.submit(held)
    wait_until(lambda: len(r.in_flight()) == 1, what="the held write noted in flight")
    in_flight = r.in_flight()
    later, later_st = write_req(q, 16, b"C" * 512)
    later_head = q.submit(later)
    (hid, _), = q.wait()
    assert hid == later_head and c.mem[later_st] == vu.S_OK
    t.stop(signal.SIGKILL)
    assert c.mem[held_st] == 0xff and r.in_flight() == in_flight

    # What QEMU does: it could not ask the dead back-end for its base; the region it kept
    # goes to the new one.
    t2 = daemons("-S", rundir, "-c", str(cfg), name="again")
    wait_until(lambda: t2.result("vhost_get_controllers"), what="the controller again")
    c2 = vu.Client(path)
    c2.mem.close()
    os.close(c2.fd)
    c2.fd, c2.mem = c.fd, c.mem  # the same guest memory
    c2.negotiate(protocol=None, mem=False)
    c2.set_inflight(region[2], region[0], region[1], 1, QSIZE, ack=True)
    c2.set_mem_table(ack=True)
    q.c = c2
    q.configure(base(q))
    (hid, _), = q.wait()
    assert hid == head and c.mem[held_st] == vu.S_OK
    assert "submitted again" in t2.output()
    q.recycle(head, 3)
    q.recycle(later_head, 3)
    st, data = q.blk_read(8, 4096)
    assert st == vu.S_OK and data == b"B" * 4096
    check(q)
    with open(img, "rb") as f:
        disk = f.read(16 * 512 + 512)
    assert disk[:512] == b"A" * 512 and disk[8 * 512:16 * 512] == b"B" * 4096
    assert disk[16 * 512:] == b"C" * 512
    assert r.in_flight() == []
    c2.sock.close()
    c.close()
    os.close(region[2])


def test_killed_target_resubmits_what_was_in_flight(daemons, rundir, tmp_path):
    """A write held in the bdev when mimo_tgt is killed (SIGKILL: nothing completes), with a
    later write completed before it (out of order, as bdevs complete), is written by the next
    mimo_tgt, started from the same configuration, once the front-end reconnects with the
    region and the base it can know: its used index. Without the region the ring would go on
    from there: the later write taken again (a second completion of one request: Linux's
    virtio calls the ring broken) and the held one never answered."""
    def check(q):
        assert q.used_idx() == 4  # the later write was not taken again
    killed_with_a_write_held(daemons, rundir, tmp_path, Region, lambda q: q.used_idx(), check)


@pytest.mark.parametrize("case", ["no-feature", "too-many-queues", "short", "not-a-file",
                                  "unsealed", "offset"])
def test_bad_regions_cost_the_connection(daemons, rundir, case):
    t = daemons("-S", rundir)
    t.result("bdev_malloc_create", {"name": "M0", "block_size": 512, "num_blocks": 8192})
    t.result("vhost_create_blk_controller", {"ctrlr": "b0", "dev_name": "M0"})
    path = os.path.join(rundir, "b0")
    c = vu.Client(path)
    if case == "no-feature":
        c.negotiate(protocol=1 << vu.PF_REPLY_ACK, mem=False)
        c.send(vu.GET_INFLIGHT_FD, struct.pack("<QQHH4x", 0, 0, 1, QSIZE))
    else:
        c.negotiate(protocol=None, mem=False)
        size = region_bytes(QSIZE)
        fd = vu.memfd(size, seal=case != "unsealed")
        n, off = 1, 0
        if case == "too-many-queues":
            n = 17
        elif case == "short":
            size -= 64
        elif case == "offset":
            off = 100
        if case == "not-a-file":
            os.close(fd)
            fd = os.eventfd(0)
        c.send(vu.SET_INFLIGHT_FD, struct.pack("<QQHH4x", size, off, n, QSIZE), [fd])
        os.close(fd)
    assert c.closed()
    c.close()
    # The daemon serves on.
    c = vu.Client(path)
    c.negotiate()
    assert c.queue(0).blk_read(0, 512)[0] == vu.S_OK
    c.close()


def test_running_queues_go_on_after_get_inflight_fd(daemons, rundir):
    """GET_INFLIGHT_FD stops the queues to put a new region under them. QEMU sends it before
    the first start; a front-end may send it while they run: they go on, tracked in the new
    region (left stopped, the next request would never complete)."""
    t = daemons("-S", rundir)
    t.result("bdev_malloc_create", {"name": "M0", "block_size": 512, "num_blocks": 8192})
    t.result("vhost_create_blk_controller", {"ctrlr": "b0", "dev_name": "M0"})
    c, (_, _, fd) = connect(os.path.join(rundir, "b0"))
    c.set_mem_table(ack=True)
    q = c.queue(0, QSIZE)
    st, _ = q.blk_read(0, 512)
    assert st == vu.S_OK
    size2, _, fd2 = c.get_inflight(1, QSIZE)
    st, _ = q.blk_read(1, 512)
    assert st == vu.S_OK
    m = mmap.mmap(fd2, size2)
    # The used index noted in the new region is the ring's: both requests.
    wait_until(lambda: Region(m).header()[4] == 2, what="the new region's used index")
    m.close()
    for f in (fd, fd2):
        os.close(f)
    c.close()
