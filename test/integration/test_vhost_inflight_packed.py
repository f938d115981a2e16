"""Inflight I/O tracking for packed rings (INFLIGHT_SHMFD with VIRTIO_F_RING_PACKED) without
a guest: the region's packed layout - the spec's QueueRegionPacked - and its contents as
buffers are taken and given back, and a mimo_tgt killed with a write in flight whose
successor, handed the same region and the stale base QEMU sends, writes it and goes on where
the ring stands (docs/vhost.md, inflight tracking)."""
import mmap
import os
import struct

import vhost_user as vu
from conftest import wait_until
from test_vhost_inflight import QSIZE, connect, killed_with_a_write_held, read_req

START = 1 << 15 | (1 << 15) << 16     # QEMU's base at a ring's first start: both wraps set


def region_bytes(qsize):
    return (32 + 32 * qsize + 63) & ~63


class Region:
    """A view of one queue's part: a 32-byte header, then 32 bytes per entry."""

    def __init__(self, m, q=0, qsize=QSIZE):
        self.m, self.base = m, q * region_bytes(qsize)

    def header(self):
        """(features, version, desc_num, free_head, old_free_head, used_idx, old_used_idx,
        used_wrap_counter, old_used_wrap_counter)"""
        return struct.unpack_from("<QHHHHHHBB", self.m, self.base)

    def entry(self, i):
        """(inflight, next, last, num, counter, id, flags, len, addr)"""
        return struct.unpack_from("<BxHHHQHHIQ", self.m, self.base + 32 + 32 * i)

    def in_flight(self):
        return [i for i in range(QSIZE) if self.entry(i)[0]]


def controller(t, bdev):
    t.result("vhost_create_blk_controller", {"ctrlr": "b0", "dev_name": bdev,
                                             "packed_ring": True})


def test_region_layout_and_contents(daemons, rundir):
    t = daemons("-S", rundir)
    t.result("bdev_malloc_create", {"name": "M0", "block_size": 512, "num_blocks": 8192})
    t.result("bdev_error_create", {"base_name": "M0"})
    controller(t, "EE_M0")
    c, (size, off, fd) = connect(os.path.join(rundir, "b0"))
    assert c.features & (1 << vu.F_RING_PACKED)
    # One part per queue: a 32-byte header and 32 bytes per entry, 64-byte aligned; left
    # zeroed (version 0) until the queue first starts.
    assert (size, off) == (region_bytes(QSIZE), 0)
    m = mmap.mmap(fd, size)
    r = Region(m)
    assert r.header() == (0,) * 9
    c.set_mem_table(ack=True)
    q = c.queue(0, QSIZE)
    wait_until(lambda: r.header()[1] == 1, what="the part laid out at the queue's start")
    assert r.header() == (0, 1, QSIZE, 0, 0, 0, 0, 1, 1)
    assert [r.entry(i)[1] for i in range(QSIZE)] == list(range(1, QSIZE + 1))
    for k in range(3):
        st, _ = q.blk_read(k, 512)
        assert st == vu.S_OK
    # Three buffers of three descriptors taken, given back: their entries went back to the
    # free list's head (the same three serve each), the used position moved nine on.
    assert r.header()[3:] == (0, 0, 9, 9, 1, 1) and r.in_flight() == []
    assert r.entry(0)[4] == 2                         # the third buffer's counter
    # A read held by the bdev is in flight with copies of its descriptors, until it
    # completes.
    t.result("bdev_error_inject_error", {"name": "EE_M0", "io_type": "read",
                                         "error_type": "pending", "num": 1})
    chain, st = read_req(q, 0, 512)
    bid = q.submit(chain)
    wait_until(lambda: r.in_flight() == [0], what="the held read noted in flight")
    hdr = r.header()
    assert hdr[3:5] == (3, 3) and hdr[5:7] == (9, 9)  # free list past its three entries
    inflight, _, last, num, counter, _, _, _, _ = r.entry(0)
    assert (num, counter) == (3, 3) and last == r.entry(r.entry(0)[1])[1]
    copies = [r.entry(0), r.entry(r.entry(0)[1]), r.entry(last)]
    assert [(e[8] - vu.GPA, e[7]) for e in copies] == [(off_, n) for off_, n, _ in chain]
    assert all(e[5] == bid for e in copies)
    assert [bool(e[6] & vu.DESC_WRITE) for e in copies] == [w for _, _, w in chain]
    t.result("bdev_error_resume_pending", {"name": "EE_M0"})
    (hid, _), = q.wait()
    assert hid == bid and c.mem[st] == vu.S_OK
    wait_until(lambda: r.header()[3:] == (0, 0, 12, 12, 1, 1), what="the part committed")
    assert r.in_flight() == []
    m.close()
    os.close(fd)
    c.close()


def test_packed_ring_recovery_false_leaves_packed_rings_untracked(daemons, rundir):
    """SPDK's switch, false: the region has the split layout, so a packed ring's requests are
    not marked in it; the choice is saved and comes back with the replay."""
    t = daemons("-S", rundir)
    t.result("bdev_malloc_create", {"name": "M0", "block_size": 512, "num_blocks": 8192})
    t.result("vhost_create_blk_controller", {"ctrlr": "b0", "dev_name": "M0",
                                             "packed_ring": True, "packed_ring_recovery": False})
    c, (size, off, fd) = connect(os.path.join(rundir, "b0"))
    assert c.features & (1 << vu.F_RING_PACKED)
    assert (size, off) == ((16 + 16 * QSIZE + 63) & ~63, 0)   # the split layout's size
    saved = [m for m in t.result("framework_get_config", {"name": "vhost_blk"})
             if m["method"] == "vhost_create_blk_controller"]
    assert saved[0]["params"]["packed_ring_recovery"] is False
    c.close()
    # The default (true) keeps the packed layout, and is not written.
    t.result("vhost_create_blk_controller", {"ctrlr": "b1", "dev_name": "M0",
                                             "packed_ring": True})
    c, (size, off, fd) = connect(os.path.join(rundir, "b1"))
    assert (size, off) == (region_bytes(QSIZE), 0)
    saved = [m for m in t.result("framework_get_config", {"name": "vhost_blk"})
             if m["method"] == "vhost_create_blk_controller" and m["params"]["ctrlr"] == "b1"]
    assert "packed_ring_recovery" not in saved[0]["params"]
    c.close()


def test_killed_target_resubmits_what_was_in_flight(daemons, rundir, tmp_path):
    """A write held in the bdev when mimo_tgt is killed, with a later write completed before
    it: its used descriptor overwrote the held write's in the ring. The next mimo_tgt gets the
    region and the base QEMU sends after a crash - the one of the ring's last start, stale -
    submits the held write again from the region's copies and takes new buffers after both.
    Without the packed layout it starts at the stale base and finds the ring used there."""
    def check(q):
        # Three buffers of three descriptors before the read of the held write's data.
        assert (q.avail_pos, q.used_pos) == (12, 12)
    killed_with_a_write_held(daemons, rundir, tmp_path, Region, lambda q: START, check,
                             packed=True)
