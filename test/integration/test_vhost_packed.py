"""vhost-user-blk with packed virtqueues (VIRTIO_F_RING_PACKED), without a guest: the option
(packed_ring) that makes a controller offer them, I/O through packed rings laid out by
test/integration/vhost_user.py's PackedQueue (direct chains, indirect tables, buffers
completed out of order, the ring's end crossed many times), the event structures for calls
and kicks, the ring base with its wrap counters across a stop, and malformed rings."""
import json
import os
import struct

import pytest

import vhost_user as vu
from conftest import RpcFailure, wait_until

PACKED = 1 << vu.F_RING_PACKED


@pytest.fixture
def vtgt(daemons, rundir):
    t = daemons("-S", rundir)
    t.vhost_dir = rundir
    t.result("bdev_malloc_create", {"name": "M0", "block_size": 512, "num_blocks": 32768})
    return t


def ctrlr(t, name="vb0", **params):
    t.result("vhost_create_blk_controller",
             dict({"ctrlr": name, "dev_name": "M0", "packed_ring": True}, **params))
    return os.path.join(t.vhost_dir, name)


def packed_client(path, event_idx=False):
    c = vu.Client(path)
    offered = c.u64(vu.GET_FEATURES)
    assert offered & PACKED
    c.negotiate(features=offered if event_idx else offered & ~(1 << vu.F_EVENT_IDX))
    return c


def queue_info(t, index=0, name="vb0"):
    return t.result("vhost_get_controllers", {"name": name})[0]["sessions"][0]["queues"][index]


def test_offered_only_when_asked(vtgt):
    split = ctrlr(vtgt, name="split", packed_ring=False)
    c = vu.Client(split)
    assert not c.u64(vu.GET_FEATURES) & PACKED
    # A front-end taking it anyway has left the protocol.
    c.call(vu.SET_FEATURES, struct.pack("<Q", PACKED | (1 << vu.F_VERSION_1)))
    assert c.closed()
    c.close()
    c = packed_client(ctrlr(vtgt))
    # The session's features once SET_FEATURES is handled (the front-end does not wait).
    wait_until(lambda: int(vtgt.result("vhost_get_controllers", {"name": "vb0"})[0]
                           ["sessions"][0]["features"], 16) & PACKED,
               what="the session to take packed rings")
    c.close()


def test_packed_ring_recovery_taken_scsi_packed_ring_refused(vtgt):
    # Older SPDK's packed_ring_recovery: both values are taken (false leaves packed rings
    # untracked: test_vhost_inflight_packed.py).
    for v in (True, False):
        ctrlr(vtgt, packed_ring_recovery=v)
        assert vtgt.result("vhost_delete_controller", {"ctrlr": "vb0"}) is True
    # SPDK's vhost-user-scsi takes no packed_ring (its decoder is strict): neither does mimo's.
    with pytest.raises(RpcFailure) as e:
        vtgt.result("vhost_create_scsi_controller", {"ctrlr": "vs0", "packed_ring": True})
    assert e.value.code == -32602 and "packed_ring" in e.value.message


@pytest.mark.parametrize("event_idx", [False, True])
def test_io_across_many_laps(vtgt, event_idx):
    """A ring of 8 descriptors: requests of 3 descriptors (direct) and 1 (indirect) make the
    positions cross the ring's end at every place, both wrap counters flipping many times."""
    c = packed_client(ctrlr(vtgt), event_idx)
    q = c.queue(0, size=8)
    written = {}
    for i in range(40):
        sector = 8 * (i % 13)
        data = os.urandom(4096)
        assert q.blk_write(sector, data, indirect=i % 3 == 0) == vu.S_OK
        written[sector] = data
        assert q.blk_read(sector, 4096, indirect=i % 2 == 0) == (vu.S_OK, data)
    for sector, data in written.items():
        assert q.blk_read(sector, 4096) == (vu.S_OK, data)
    assert q.blk(vu.T_FLUSH)[0] == vu.S_OK
    st, ident, used = q.blk(vu.T_GET_ID, in_len=20)
    assert (st, ident, used) == (vu.S_OK, b"M0" + bytes(18), 21)
    assert q.blk_ranges(vu.T_DISCARD, [(0, 16, 0)]) == vu.S_OK
    assert q.blk_read(0, 8192)[1] == bytes(8192)
    assert q.blk_ranges(vu.T_WRITE_ZEROES, [(8, 8, 0)]) == vu.S_OK
    assert q.blk_read(32768 - 1, 1024)[0] == vu.S_IOERR
    assert q.blk(99)[0] == vu.S_UNSUPP
    info = queue_info(vtgt)
    assert info["requests"] >= 87 and not info["broken"]
    c.close()


def test_several_in_flight(vtgt):
    """Buffers made available together, on a ring they fill, come back in whatever order
    the device completes them, each with its id; the data are right."""
    c = packed_client(ctrlr(vtgt))
    q = c.queue(0, size=16)
    m = c.mem
    for rnd in range(4):
        reqs = {}
        for k in range(5):
            data = os.urandom(2048)
            hdr, buf, st = c.alloc(16, 16), c.alloc(2048), c.alloc(1, 1)
            struct.pack_into("<IIQ", m, hdr, vu.T_OUT, 0, 100 * k + rnd)
            m[buf:buf + 2048] = data
            m[st] = 0xff
            i = q.submit([(hdr, 16, False), (buf, 2048, False), (st, 1, True)],
                         kick=k == 4)
            reqs[i] = (st, k, data)
        done = q.wait(5)
        assert sorted(i for i, _ in done) == sorted(reqs)
        for i, _ in done:
            assert m[reqs[i][0]] == vu.S_OK
            q.recycle(i, 3)
        for i, (_, k, data) in reqs.items():
            assert q.blk_read(100 * k + rnd, 2048) == (vu.S_OK, data)
    c.close()


def calls(t):
    return queue_info(t)["calls"]


def test_driver_event_suppression(vtgt):
    """Calls follow the driver's event structure: none while it says DISABLE, one per batch
    with ENABLE, and with EVENT_IDX (DESC) only once the position it names is used."""
    c = packed_client(ctrlr(vtgt), event_idx=True)
    q = c.queue(0, size=8)
    assert q.blk_read(0, 512)[0] == vu.S_OK         # the first publish always calls
    wait_until(lambda: calls(vtgt) == 1, what="the first call")
    q.event(vu.EVENT_DISABLE)
    for _ in range(3):
        assert q.blk_read(0, 512)[0] == vu.S_OK
    q.event(vu.EVENT_ENABLE)
    assert q.blk_read(0, 512)[0] == vu.S_OK         # its call comes after the others'
    wait_until(lambda: calls(vtgt) >= 2, what="a call with ENABLE")
    assert calls(vtgt) == 2
    # DESC: call when the third buffer from now (one descriptor each: indirect) is used.
    target = (q.used_pos + 2) % q.size
    wrap = q.used_wrap ^ (1 if q.used_pos + 2 >= q.size else 0)
    q.event(vu.EVENT_DESC, target | wrap << 15)
    for _ in range(3):
        assert q.blk_read(0, 512, indirect=True)[0] == vu.S_OK
    wait_until(lambda: calls(vtgt) >= 3, what="the call at the named position")
    q.event(vu.EVENT_ENABLE)
    assert q.blk_read(0, 512)[0] == vu.S_OK
    wait_until(lambda: calls(vtgt) >= 4, what="a call with ENABLE again")
    assert calls(vtgt) == 4
    c.close()


def test_device_event_asks_for_kicks(vtgt):
    """The device's event structure: ENABLE without EVENT_IDX; with it, DESC at the next
    position the device will look at, kept up to date as it goes round."""
    c = packed_client(ctrlr(vtgt))
    q = c.queue(0, size=8)
    assert q.blk_read(0, 512)[0] == vu.S_OK
    assert q.device_event() == (0x8000, vu.EVENT_ENABLE)
    c.close()
    c = packed_client(os.path.join(vtgt.vhost_dir, "vb0"), event_idx=True)
    q = c.queue(0, size=8)
    for _ in range(5):
        assert q.blk_read(0, 512)[0] == vu.S_OK     # 3 descriptors each: 15 of 8
    want = (q.avail_pos | q.avail_wrap << 15, vu.EVENT_DESC)
    assert q.avail_wrap == 0
    wait_until(lambda: q.device_event() == want, what="the device's event at our position")
    c.close()


def test_ring_base_keeps_the_wrap_counters(vtgt):
    """GET_VRING_BASE stops the queue and says where it is, wrap counters in bit 15 of each
    half; set up again with it (a VM stopped and continued), the ring goes on where it was.
    A stale base (from before the ring moved on) fails the queue rather than redo requests."""
    c = packed_client(ctrlr(vtgt))
    q = c.queue(0, size=8)
    data = os.urandom(4096)
    for i in range(7):                               # 21 descriptors: two laps and 5
        assert q.blk_write(8 * i, data) == vu.S_OK
    num, = struct.unpack_from("<I", c.call(vu.GET_VRING_BASE, struct.pack("<II", 0, 0)), 4)
    assert (q.avail_pos, q.avail_wrap) == (5, 1)
    assert num == q.base() == (5 | 1 << 15) * 0x10001
    wait_until(lambda: not queue_info(vtgt)["started"], what="the queue stopped")
    q.restart()
    for i in range(7):                               # one descriptor each: 28, lap 3
        assert q.blk_read(8 * i, 4096, indirect=True) == (vu.S_OK, data)
    assert not queue_info(vtgt)["broken"]
    num, = struct.unpack_from("<I", c.call(vu.GET_VRING_BASE, struct.pack("<II", 0, 0)), 4)
    assert num == q.base() and (q.avail_pos, q.avail_wrap) == (4, 0)
    # Started again at a position this lap has used already (a stale base, as a restarted
    # back-end would get): the queue fails instead of taking used descriptors again.
    err = os.eventfd(0, os.EFD_NONBLOCK)
    assert c.call(vu.SET_VRING_ERR, struct.pack("<Q", 0), [err], ack=True) == 0
    q.restart(base=1)
    wait_until(lambda: queue_info(vtgt)["broken"], what="the queue failed")
    assert os.eventfd_read(err) == 1
    c.close()


def test_ring_base_beyond_the_ring(vtgt):
    c = packed_client(ctrlr(vtgt))
    q = c.queue(0, size=8, enable=False)
    q.restart(base=9 | 1 << 15)
    assert c.call(vu.SET_VRING_ENABLE, struct.pack("<II", 0, 1), ack=True) == 0
    wait_until(lambda: queue_info(vtgt)["broken"], what="the queue refused")
    assert not queue_info(vtgt)["started"]
    # Set again with a good base, it serves.
    q.restart(base=q.base())
    assert q.blk_read(0, 512)[0] == vu.S_OK
    c.close()


def test_malformed_buffers_come_back_empty(vtgt):
    """What the split walker refuses, the packed one refuses too: the buffer comes back with
    length 0 and the queue goes on."""
    c = packed_client(ctrlr(vtgt))
    q = c.queue(0, size=8)
    m = c.mem
    a = vu.GPA + c.alloc(64, 16)
    tbl = c.alloc(32, 16)
    cases = [
        [(0x10, 16, 0, 0)],                                     # outside guest memory
        [(a, 16, 0, vu.DESC_WRITE | vu.DESC_NEXT), (a, 16, 0, 0)],   # readable after writable
        [(0x20, 64, 0, vu.DESC_INDIRECT)],                      # table outside memory
        [(a, 24, 0, vu.DESC_INDIRECT)],                         # table length not 16 * n
        [(a, 16, 0, vu.DESC_NEXT), (vu.GPA + tbl, 32, 0, vu.DESC_INDIRECT)],  # in a chain
        [(vu.GPA + tbl, 32, 0, vu.DESC_INDIRECT | vu.DESC_NEXT)],            # and NEXT
    ]
    struct.pack_into("<QIHH", m, tbl, a, 16, 0, vu.DESC_INDIRECT)   # a table in a table
    struct.pack_into("<QIHH", m, tbl + 16, a, 16, 0, 0)
    cases.append([(vu.GPA + tbl, 32, 0, vu.DESC_INDIRECT)])
    for case in cases:
        id_ = q.free.pop(0)
        q.ndescs[id_] = len(case)
        q.raw([(ad, n, id_, f) for ad, n, _, f in case])
        assert q.wait() == [(id_, 0)], case
        q.recycle(id_, 0)
    assert q.blk_read(0, 512)[0] == vu.S_OK
    assert not queue_info(vtgt)["broken"]
    c.close()


@pytest.mark.parametrize("what", ["long_chain", "id", "unavailable_tail"])
def test_broken_rings_stop_the_queue(vtgt, what):
    """What leaves no way to follow the ring fails the queue (said on its error eventfd);
    the daemon and other connections go on."""
    c = packed_client(ctrlr(vtgt))
    q = c.queue(0, size=8)
    err = os.eventfd(0, os.EFD_NONBLOCK)
    assert c.call(vu.SET_VRING_ERR, struct.pack("<Q", 0), [err], ack=True) == 0
    assert q.blk_read(0, 512)[0] == vu.S_OK
    a = vu.GPA + c.alloc(16, 16)
    if what == "long_chain":       # every descriptor says NEXT, all the way round
        q.raw([(a, 16, 0, vu.DESC_NEXT)] * 8)
    elif what == "id":             # an id beyond the ring
        q.raw([(a, 16, 8, 0)])
    else:                          # the head is available, the next descriptor is not
        heads = q.raw([(a, 16, 0, vu.DESC_NEXT), (a, 16, 0, 0)], kick=False)
        struct.pack_into("<H", c.mem, heads[1][0] + 14, 0 if q.avail_wrap else 0x8080)
        os.eventfd_write(q.kick, 1)
    wait_until(lambda: queue_info(vtgt)["broken"], what="the queue broken")
    assert os.eventfd_read(err) == 1
    c.close()
    c = packed_client(os.path.join(vtgt.vhost_dir, "vb0"))
    assert c.queue(0).blk_read(0, 512)[0] == vu.S_OK
    c.close()


def test_saved_and_replayed(daemons, vtgt, rundir, tmp_path):
    """SPDK's save_config leaves packed_ring out; mimo's writes it when set, and a replay
    offers packed rings again."""
    ctrlr(vtgt)
    vtgt.result("vhost_create_blk_controller", {"ctrlr": "vb1", "dev_name": "M0",
                                                "readonly": True})
    cfg = vtgt.saved_config()
    vb = [s for s in cfg["subsystems"] if s["subsystem"] == "vhost_blk"][0]
    assert sorted(vb["config"], key=lambda m: m["params"]["ctrlr"]) == [
        {"method": "vhost_create_blk_controller", "params": {
            "ctrlr": "vb0", "dev_name": "M0", "cpumask": "0x1", "readonly": False,
            "transport": "vhost_user_blk", "packed_ring": True}},
        {"method": "vhost_create_blk_controller", "params": {
            "ctrlr": "vb1", "dev_name": "M0", "cpumask": "0x1", "readonly": True,
            "transport": "vhost_user_blk"}}]
    # vhost_get_controllers shows what SPDK's does: no packed_ring.
    assert vtgt.result("vhost_get_controllers", {"name": "vb0"})[0]["backend_specific"] == {
        "block": {"readonly": False, "bdev": "M0", "transport": "vhost_user_blk"}}
    vtgt.stop()
    f = tmp_path / "saved.json"
    f.write_text(json.dumps(cfg))
    t2 = daemons("-S", rundir, "-c", str(f), name="again")
    assert len(t2.result("vhost_get_controllers")) == 2
    c = packed_client(os.path.join(rundir, "vb0"))
    assert c.queue(0).blk_read(0, 512)[0] == vu.S_OK
    c.close()
    c = vu.Client(os.path.join(rundir, "vb1"))
    assert not c.u64(vu.GET_FEATURES) & PACKED
    c.close()


def test_queues_on_two_reactors(daemons, rundir):
    """Queue 1 on the second reactor: its buffers, completions, stop (the base with the wrap
    counters handed back to the session's reactor) and restart cross reactors."""
    t = daemons("-m", "0x3", "-S", rundir)
    t.vhost_dir = rundir
    t.result("bdev_malloc_create", {"name": "M0", "block_size": 512, "num_blocks": 32768})
    c = packed_client(ctrlr(t), event_idx=True)
    qs = [c.queue(0, size=8), c.queue(1, size=8)]
    for rnd in range(3):
        for i, q in enumerate(qs):
            d = os.urandom(4096)
            for _ in range(3):                       # 9 descriptors: a lap and one
                assert q.blk_write(8 * i, d) == vu.S_OK
            assert q.blk_read(8 * i, 4096, indirect=True) == (vu.S_OK, d)
            num, = struct.unpack_from("<I", c.call(vu.GET_VRING_BASE,
                                                   struct.pack("<II", q.index, 0)), 4)
            assert num == q.base()
            wait_until(lambda: not queue_info(t, q.index)["started"], what="the queue stopped")
            q.restart()
    assert [x["requests"] for x in queue_info_all(t)] == [12, 12]
    c.close()


def queue_info_all(t, name="vb0"):
    return t.result("vhost_get_controllers", {"name": name})[0]["sessions"][0]["queues"]
