"""vhost-user-blk without a guest: mimo_tgt's controllers driven by test/integration/vhost_user.py,
a front-end that does what QEMU does (docs/vhost.md). RPCs, configuration, the protocol, I/O,
refusals, hostile messages, deletion under a connected front-end."""
import json
import os
import socket
import struct
import time

import pytest

import vhost_user as vu
from conftest import RpcFailure, wait_until


@pytest.fixture
def vtgt(daemons, rundir):
    t = daemons("-S", rundir)
    t.vhost_dir = rundir
    t.result("bdev_malloc_create", {"name": "M0", "block_size": 512, "num_blocks": 32768})
    return t


def ctrlr(t, name="vb0", **params):
    t.result("vhost_create_blk_controller", dict({"ctrlr": name, "dev_name": "M0"}, **params))
    return os.path.join(t.vhost_dir, name)


def client(path):
    c = vu.Client(path)
    c.negotiate()
    return c


def sessions(t, name="vb0"):
    return t.result("vhost_get_controllers", {"name": name})[0]["sessions"]


# --- RPCs ------------------------------------------------------------------------------------

def test_create_list_delete(vtgt):
    path = ctrlr(vtgt, cpumask="0x1")
    assert os.path.exists(path)
    c, = vtgt.result("vhost_get_controllers")
    assert c == {"ctrlr": "vb0", "cpumask": "0x1", "delay_base_us": 0, "iops_threshold": 60000,
                 "socket": path, "sessions": [],
                 "backend_specific": {"block": {"readonly": False, "bdev": "M0",
                                                "transport": "vhost_user_blk"}}}
    assert vtgt.result("vhost_delete_controller", {"ctrlr": "vb0"}) is True
    assert not os.path.exists(path)
    assert vtgt.result("vhost_get_controllers") == []


@pytest.mark.parametrize("params,code,text", [
    ({"dev_name": "nope"}, -19, "no such bdev"),
    ({"transport": "vfio_user_blk"}, -95, "vhost_user_blk"),
    ({"cpumask": "0x2"}, -22, "without a reactor"),
    ({"cpumask": "zz"}, -22, "not a core mask"),
    ({"ctrlr": "a/b"}, -22, "no '/'"),
    ({"colour": 1}, -32602, "colour"),
])
def test_create_refused(vtgt, params, code, text):
    with pytest.raises(RpcFailure) as e:
        vtgt.result("vhost_create_blk_controller", dict({"ctrlr": "vb0", "dev_name": "M0"},
                                                        **params))
    assert e.value.code == code and text in e.value.message
    assert vtgt.result("vhost_get_controllers") == []


def test_duplicates_unknown_and_coalescing(vtgt):
    ctrlr(vtgt)
    with pytest.raises(RpcFailure) as e:
        ctrlr(vtgt)
    assert e.value.code == -17
    for m, p in [("vhost_delete_controller", {"ctrlr": "x"}), ("vhost_get_controllers",
                                                                {"name": "x"})]:
        with pytest.raises(RpcFailure) as e:
            vtgt.result(m, p)
        assert e.value.code == -19
    assert vtgt.result("vhost_controller_set_coalescing",
                       {"ctrlr": "vb0", "delay_base_us": 0, "iops_threshold": 1000}) is True
    assert vtgt.result("vhost_get_controllers")[0]["iops_threshold"] == 1000
    # SPDK's limits: the threshold counts requests per 10 ms; the delay fits 32 bits of ticks.
    for p, text in [({"delay_base_us": 50, "iops_threshold": 99}, "minimum is 100"),
                    ({"delay_base_us": 0xffffffff, "iops_threshold": 1000}, "too big")]:
        with pytest.raises(RpcFailure) as e:
            vtgt.result("vhost_controller_set_coalescing", dict(p, ctrlr="vb0"))
        assert e.value.code == -22 and text in e.value.message


def test_interrupt_coalescing(daemons, vtgt, rundir, tmp_path):
    """Above the threshold the calls are held and merged; the held one always comes; the
    setting is saved as SPDK saves it."""
    path = ctrlr(vtgt)
    # 100 IOPS: one request per 10 ms window; each past it holds calls 1 ms longer.
    assert vtgt.result("vhost_controller_set_coalescing",
                       {"ctrlr": "vb0", "delay_base_us": 1000, "iops_threshold": 100}) is True
    c = client(path)
    q = c.queue(0)
    m = c.mem
    hdr, buf, st = c.alloc(16, 16), c.alloc(512), c.alloc(1, 1)

    def submit(sector):
        struct.pack_into("<IIQ", m, hdr, vu.T_IN, 0, sector)
        return q.submit([(hdr, 16, False), (buf, 512, True), (st, 1, True)])

    # One at a time, each waited for on the used ring, over several 10 ms windows (the rate
    # is measured per window: a fast machine does hundreds of requests in the first).
    n, start = 0, time.monotonic()
    while n < 300 or time.monotonic() - start < 0.1:
        head = submit(n % 1024)
        q.wait()
        q.recycle(head, 3)
        n += 1
    calls = sessions(vtgt)[0]["queues"][0]["calls"]
    assert calls < n // 2, f"{calls} calls for {n} requests: none held"

    # One more request: a call must follow its completion even if it was held (the timer).
    while True:
        try:
            os.eventfd_read(q.callfd)
        except BlockingIOError:
            break
    head = submit(7)
    seen = {"call": False}

    def signalled_after_completion():
        r, _, _ = vu.select.select([q.callfd], [], [], 0)
        if r:
            os.eventfd_read(q.callfd)
            seen["call"] = True
        # A call held for an earlier completion may come first: look for one after ours.
        if seen["call"] and q.used_idx() != q.last_used:
            return True
        seen["call"] = False
        return False

    wait_until(signalled_after_completion, what="the held call after the last completion")
    q.wait()
    q.recycle(head, 3)
    c.close()

    saved = vtgt.result("framework_get_config", {"name": "vhost_blk"})
    assert saved[-1] == {"method": "vhost_controller_set_coalescing", "params": {
        "ctrlr": "vb0", "delay_base_us": 1000, "iops_threshold": 100}}
    cfg = vtgt.saved_config()
    vtgt.stop()
    f = tmp_path / "saved.json"
    f.write_text(json.dumps(cfg))
    again, = daemons("-S", rundir, "-c", str(f), name="again").result("vhost_get_controllers")
    assert (again["delay_base_us"], again["iops_threshold"]) == (1000, 100)


def test_a_file_in_the_way_is_not_replaced(vtgt):
    path = os.path.join(vtgt.vhost_dir, "vb0")
    open(path, "w").close()
    with pytest.raises(RpcFailure) as e:
        ctrlr(vtgt)
    assert e.value.code == -17 and "not a socket" in e.value.message
    os.unlink(path)
    # A socket left by a process that is gone is.
    s = socket.socket(socket.AF_UNIX)
    s.bind(path)
    s.close()
    ctrlr(vtgt)


def test_saved_and_replayed(daemons, vtgt, rundir, tmp_path):
    ctrlr(vtgt, readonly=True)
    cfg = vtgt.saved_config()
    vb = [s for s in cfg["subsystems"] if s["subsystem"] == "vhost_blk"][0]
    assert vb["config"] == [{"method": "vhost_create_blk_controller", "params": {
        "ctrlr": "vb0", "dev_name": "M0", "cpumask": "0x1", "readonly": True,
        "transport": "vhost_user_blk"}}]
    vtgt.stop()
    assert not os.path.exists(os.path.join(rundir, "vb0"))
    f = tmp_path / "saved.json"
    f.write_text(json.dumps(cfg))
    t2 = daemons("-S", rundir, "-c", str(f), name="again")
    c, = t2.result("vhost_get_controllers")
    assert c["backend_specific"]["block"] == {"readonly": True, "bdev": "M0",
                                              "transport": "vhost_user_blk"}


def test_events(vtgt):
    path = ctrlr(vtgt)
    c = client(path)
    c.close()
    wait_until(lambda: sessions(vtgt) == [], what="the session to end")
    vtgt.result("vhost_delete_controller", {"ctrlr": "vb0"})
    types = vtgt.result("notify_get_types")
    for t in ("vhost_controller_created", "vhost_controller_deleted", "vhost_guest_connected",
              "vhost_guest_disconnected"):
        assert t in types

    def seen():
        ev = [(e["type"], e["ctx"]) for e in vtgt.result("notify_get_notifications")
              if e["type"].startswith("vhost_")]
        return ev if len(ev) == 4 else None
    assert wait_until(seen, what="4 vhost events") == [
        ("vhost_controller_created", "vb0"), ("vhost_guest_connected", "vb0"),
        ("vhost_guest_disconnected", "vb0"), ("vhost_controller_deleted", "vb0")]


# --- the protocol ------------------------------------------------------------------------------

def test_negotiation_and_config(vtgt):
    c = vu.Client(ctrlr(vtgt))
    offered, pf = c.negotiate()
    for bit in (vu.F_VERSION_1, vu.F_PROTOCOL_FEATURES, vu.F_INDIRECT, vu.F_EVENT_IDX,
                1, 2, 6, 9, 12, 13, 14):   # size_max seg_max blk_size flush mq discard wz
        assert offered & (1 << bit), bit
    assert not offered & (1 << 34)        # no packed ring unless asked for
    assert not offered & (1 << 26)        # no dirty logging
    assert pf == ((1 << vu.PF_MQ) | (1 << vu.PF_REPLY_ACK) | (1 << vu.PF_BACKEND_REQ) |
                  (1 << vu.PF_CONFIG) | (1 << vu.PF_INFLIGHT_SHMFD) | (1 << 13))
    assert c.u64(vu.GET_QUEUE_NUM) == 16
    cfg = c.get_config()
    capacity, size_max, seg_max = struct.unpack_from("<QII", cfg, 0)
    blk_size, = struct.unpack_from("<I", cfg, 20)
    num_queues, max_discard, discard_seg = struct.unpack_from("<HII", cfg, 34)
    assert (capacity, size_max, seg_max, blk_size) == (32768, 128 * 1024, 125, 512)
    assert (num_queues, max_discard, discard_seg) == (16, 32768, 1)
    # A part of the space, at an offset; past its end is zero.
    assert c.get_config(20, 4) == struct.pack("<I", 512)
    assert c.get_config(200, 56) == bytes(56)
    # REPLY_ACK: refusals are answered, the connection goes on.
    assert c.call(vu.SET_CONFIG, struct.pack("<III", 32, 1, 0) + b"\x01", ack=True) != 0
    assert c.call(vu.SET_LOG_BASE, struct.pack("<QQ", 4096, 0), [os.memfd_create("log")],
                  ack=True) != 0
    assert c.call(22, bytes(8), ack=True) != 0          # IOTLB_MSG: not offered
    assert c.call(vu.SET_OWNER, ack=True) == 0
    q = c.queue(0)
    assert q.blk_read(0, 512)[0] == vu.S_OK
    c.close()


def test_io(vtgt):
    c = client(ctrlr(vtgt))
    q = c.queue(0)
    data = os.urandom(64 * 1024)
    assert q.blk_write(2048, data) == vu.S_OK
    assert q.blk_read(2048, len(data)) == (vu.S_OK, data)
    assert q.blk_read(2048, 4096, indirect=True) == (vu.S_OK, data[:4096])
    assert q.blk_write(2056, b"\x5a" * 512, indirect=True) == vu.S_OK
    assert q.blk_read(2056, 512)[1] == b"\x5a" * 512
    assert q.blk(vu.T_FLUSH)[0] == vu.S_OK
    st, ident, used = q.blk(vu.T_GET_ID, in_len=20)
    assert (st, ident, used) == (vu.S_OK, b"M0" + bytes(18), 21)
    # Discard and write zeroes: malloc reads zeroes back.
    assert q.blk_ranges(vu.T_DISCARD, [(2048, 16, 0)]) == vu.S_OK
    assert q.blk_read(2048, 8192)[1] == bytes(8192)
    assert q.blk_ranges(vu.T_WRITE_ZEROES, [(2064, 8, 1)]) == vu.S_OK
    assert q.blk_read(2064, 4096)[1] == bytes(4096)
    assert q.blk_read(2072, 4096)[1] == data[24 * 512:24 * 512 + 4096]
    # Errors: past the end, unknown type, bad discard flags, a request without data.
    assert q.blk_read(32768 - 1, 1024)[0] == vu.S_IOERR
    assert q.blk(99)[0] == vu.S_UNSUPP
    assert q.blk_ranges(vu.T_DISCARD, [(0, 8, 1)]) == vu.S_UNSUPP
    assert q.blk_read(100, 0)[0] == vu.S_OK
    c.close()


def test_resize_is_told_to_the_front_end(vtgt):
    """A bdev that grows: the front-end gets CONFIG_CHANGE on its back-end channel and reads
    the new capacity (QEMU then tells the guest); requests reach the new blocks."""
    vtgt.result("bdev_null_create", {"name": "N0", "block_size": 512, "num_blocks": 2048})
    c = vu.Client(ctrlr(vtgt, dev_name="N0"))
    c.negotiate()
    chan = c.backend_channel()
    q = c.queue(0)
    assert struct.unpack_from("<Q", c.get_config(), 0)[0] == 2048
    assert q.blk_read(4096, 512)[0] == vu.S_IOERR       # past the end
    assert vtgt.result("bdev_null_resize", {"name": "N0", "new_size": 4}) is True
    chan.settimeout(10)
    req, flags, size = struct.unpack("<III", chan.recv(12))
    assert (req, flags & 0x3, size) == (vu.BACKEND_CONFIG_CHANGE_MSG, 1, 0)
    assert struct.unpack_from("<Q", c.get_config(), 0)[0] == 4 * 2048
    assert q.blk_read(4096, 512)[0] == vu.S_OK
    chan.close()
    c.close()


def test_null_read_leaves_the_guest_buffer(vtgt):
    """A null bdev's read into guest memory leaves the buffer as it was (SPDK's null bdev
    does not fill buffers it is given; the guest's memory holds only the guest's data), and
    succeeds with the full length; through the bdev layer for anyone else it still reads
    zeroes (bdev_null's own tests)."""
    vtgt.result("bdev_null_create", {"name": "N0", "block_size": 512, "num_blocks": 2048})
    c = vu.Client(ctrlr(vtgt, dev_name="N0"))
    c.negotiate()
    q = c.queue(0)
    st, data, used = q.blk(vu.T_IN, 8, in_len=8192)    # blk() fills the buffer with 0xee
    assert (st, used) == (vu.S_OK, 8193)
    assert data == b"\xee" * 8192
    c.close()


def test_readonly(vtgt):
    c = vu.Client(ctrlr(vtgt, readonly=True))
    offered, _ = c.negotiate()
    assert offered & (1 << 5) and not offered & (1 << 13) and not offered & (1 << 14)
    q = c.queue(0)
    assert q.blk_write(0, b"x" * 512) == vu.S_IOERR
    assert q.blk_ranges(vu.T_DISCARD, [(0, 8, 0)]) == vu.S_UNSUPP
    assert q.blk_read(0, 512)[0] == vu.S_OK
    assert q.blk(vu.T_FLUSH)[0] == vu.S_OK
    c.close()


def test_two_queues_and_event_idx(vtgt):
    c = vu.Client(ctrlr(vtgt))
    c.negotiate(features=c.u64(vu.GET_FEATURES))     # EVENT_IDX too
    qs = [c.queue(0), c.queue(1)]
    for i, q in enumerate(qs):
        d = bytes([i + 1]) * 4096
        assert q.blk_write(8 * i, d) == vu.S_OK
        assert q.blk_read(8 * i, 4096) == (vu.S_OK, d)
    info = sessions(vtgt)[0]
    assert info["started"] and info["max_queues"] == 2
    assert [x["requests"] for x in info["queues"]] == [2, 2]
    c.close()


def test_stop_returns_the_next_index_and_restart_goes_on(vtgt):
    c = client(ctrlr(vtgt))
    q = c.queue(0)
    for i in range(5):
        assert q.blk_read(i, 512)[0] == vu.S_OK
    base = struct.unpack("<II", c.call(vu.GET_VRING_BASE, struct.pack("<II", 0, 0)))
    assert base == (0, 5)
    assert not sessions(vtgt)[0]["queues"][0]["started"]
    # A request made while stopped is taken when the ring starts again (new eventfds).
    q.kick = os.eventfd(0, os.EFD_NONBLOCK)
    q.callfd = os.eventfd(0, os.EFD_NONBLOCK)
    c.call(vu.SET_VRING_CALL, struct.pack("<Q", 0), [q.callfd])
    m = c.mem
    hdr, st = c.alloc(16, 16), c.alloc(1, 1)
    struct.pack_into("<IIQ", m, hdr, vu.T_FLUSH, 0, 0)
    head = q.submit([(hdr, 16, False), (st, 1, True)], kick=False)
    c.call(vu.SET_VRING_KICK, struct.pack("<Q", 0), [q.kick])
    assert q.wait()[0][0] == head and m[st] == vu.S_OK
    c.close()


def test_memory_table_changes_under_io(vtgt):
    c = client(ctrlr(vtgt))
    q = c.queue(0)
    d = os.urandom(4096)
    assert q.blk_write(0, d) == vu.S_OK
    assert c.set_mem_table(ack=True) == 0             # remapped: the same memory again
    assert q.blk_read(0, 4096) == (vu.S_OK, d)
    c.close()


def test_reconnect_and_bdev_deleted(vtgt):
    path = ctrlr(vtgt)
    c = client(path)
    q = c.queue(0)
    assert q.blk_write(0, b"\x11" * 512) == vu.S_OK
    c.close()
    wait_until(lambda: sessions(vtgt) == [], what="the session to end")
    c = client(path)
    q = c.queue(0)
    assert q.blk_read(0, 512) == (vu.S_OK, b"\x11" * 512)
    # The bdev goes under the connected front-end: its requests fail, the controller stays.
    vtgt.result("bdev_malloc_delete", {"name": "M0"})
    assert q.blk_read(0, 512)[0] == vu.S_IOERR
    assert vtgt.result("vhost_get_controllers")[0]["backend_specific"]["block"]["bdev"] is None
    assert struct.unpack_from("<Q", c.get_config(), 0)[0] == 0
    c.close()


def test_deleted_while_connected(vtgt):
    path = ctrlr(vtgt)
    c = client(path)
    q = c.queue(0)
    assert q.blk_read(0, 512)[0] == vu.S_OK
    assert vtgt.result("vhost_delete_controller", {"ctrlr": "vb0"}) is True
    assert not os.path.exists(path)
    assert vtgt.result("vhost_get_controllers") == []
    # The connected front-end's requests fail; the bdev is free to go.
    assert q.blk_read(0, 512)[0] == vu.S_IOERR
    assert q.blk_write(0, b"x" * 512) == vu.S_IOERR
    wait_until(lambda: vtgt.result("bdev_malloc_delete", {"name": "M0"}), what="M0 deleted")
    c.close()
    # The same name can serve again.
    vtgt.result("bdev_malloc_create", {"name": "M0", "block_size": 512, "num_blocks": 32768})
    c = client(ctrlr(vtgt))
    assert c.queue(0).blk_read(0, 512)[0] == vu.S_OK
    c.close()


# --- hostile front-ends and drivers -----------------------------------------------------------

def hostile(c):
    """Each returns after sending something that must cost the connection."""
    m = c.mem_table([(vu.GPA, vu.MEM, vu.UVA, 0)])
    r, w = os.pipe()
    unsealed = vu.memfd(vu.MEM, seal=False)
    short = vu.memfd(4096)
    return {
        "oversized": lambda: c.send(vu.GET_FEATURES, b"", size=1 << 20),
        "version": lambda: c.send(vu.GET_FEATURES, b"", flags=0x2),
        "reply flag": lambda: c.send(vu.GET_FEATURES, b"", flags=0x5),
        "short payload": lambda: c.send(vu.SET_FEATURES, b"\x00" * 4),
        "unoffered feature": lambda: c.send(vu.SET_FEATURES, struct.pack("<Q", 1 << 26)),
        "unoffered protocol feature": lambda: c.send(vu.SET_PROTOCOL_FEATURES,
                                                     struct.pack("<Q", 1 << 1)),
        "mem table without fd": lambda: c.send(vu.SET_MEM_TABLE, m),
        "mem table with a pipe": lambda: c.send(vu.SET_MEM_TABLE, m, [r]),
        "unsealed memfd": lambda: c.send(vu.SET_MEM_TABLE, m, [unsealed]),
        "file shorter than region": lambda: c.send(vu.SET_MEM_TABLE, m, [short]),
        "9 regions": lambda: c.send(vu.SET_MEM_TABLE, struct.pack("<II", 9, 0) + bytes(9 * 32)),
        "overlapping regions": lambda: c.send(
            vu.SET_MEM_TABLE, c.mem_table([(0, 8192, 0, 0), (4096, 8192, 1 << 20, 0)]),
            [c.fd, c.fd]),
        "ring outside memory": lambda: (c.set_mem_table(), c.call(
            vu.SET_VRING_NUM, struct.pack("<II", 0, 64)), c.send(
            vu.SET_VRING_ADDR, struct.pack("<IIQQQQ", 0, 0, 0x1000, 0x2000, 0x3000, 0))),
        "queue index": lambda: c.send(vu.SET_VRING_NUM, struct.pack("<II", 40, 64)),
        "ring size": lambda: c.send(vu.SET_VRING_NUM, struct.pack("<II", 0, 100)),
        "kick not an eventfd": lambda: c.send(vu.SET_VRING_KICK, struct.pack("<Q", 0), [r]),
        "fds where none belong": lambda: c.send(vu.GET_FEATURES, b"", [w]),
        "too many fds": lambda: c.send(vu.SET_VRING_CALL, struct.pack("<Q", 0), [w] * 9),
        "eof inside a message": lambda: (c.sock.send(b"\x01\x00"), c.sock.shutdown(
            socket.SHUT_WR)),
    }


def test_hostile_messages_cost_only_their_connection(vtgt):
    path = ctrlr(vtgt)
    good = client(path)
    gq = good.queue(0)
    names = list(hostile(vu.Client(path)).keys())
    for name in names:
        c = vu.Client(path)
        hostile(c)[name]()
        assert c.closed(), f"{name}: the connection is still open"
        c.close()
        assert gq.blk_read(0, 512)[0] == vu.S_OK, name
    wait_until(lambda: len(sessions(vtgt)) == 1, what="only the good session left")
    assert "closing the connection" in vtgt.output()
    good.close()


def test_broken_chains_are_refused_and_a_broken_ring_stops(vtgt):
    c = client(ctrlr(vtgt))
    q = c.queue(0)
    m = c.mem
    # A descriptor outside guest memory: the request comes back with length 0.
    q.put_desc(0, 0x10, 16, 0)
    q.free.remove(0)
    q.post(0)
    assert q.wait() == [(0, 0)]
    # A cycle.
    q.put_desc(1, vu.GPA + c.alloc(16), 16, vu.DESC_NEXT, 2)
    q.put_desc(2, vu.GPA + c.alloc(16), 16, vu.DESC_NEXT, 1)
    q.free.remove(1)
    q.free.remove(2)
    q.post(1)
    assert q.wait() == [(1, 0)]
    # A writable descriptor then a readable one; an indirect table outside memory.
    q.put_desc(3, vu.GPA + c.alloc(16), 16, vu.DESC_WRITE | vu.DESC_NEXT, 4)
    q.put_desc(4, vu.GPA + c.alloc(16), 16, 0)
    q.put_desc(5, 0x20, 64, vu.DESC_INDIRECT)
    for i in (3, 4, 5):
        q.free.remove(i)
    q.post(3)
    q.post(5)
    assert q.wait(2) == [(3, 0), (5, 0)]
    assert q.blk_read(0, 512)[0] == vu.S_OK
    # A head beyond the ring: the queue stops and says so on its error eventfd.
    err = os.eventfd(0, os.EFD_NONBLOCK)
    assert c.call(vu.SET_VRING_ERR, struct.pack("<Q", 0), [err], ack=True) == 0
    q.post(1000)
    wait_until(lambda: sessions(vtgt)[0]["queues"][0]["broken"], what="the queue broken")
    assert os.eventfd_read(err) == 1
    assert m is c.mem
    c.close()
    # The daemon serves on.
    c = client(os.path.join(vtgt.vhost_dir, "vb0"))
    assert c.queue(0).blk_read(0, 512)[0] == vu.S_OK
    c.close()


def test_mimo_rpc_commands(vtgt):
    import subprocess
    from conftest import BIN

    def rpc(*args):
        return subprocess.run([os.path.join(BIN, "mimo-rpc"), "-s", vtgt.sock, *args],
                              capture_output=True, text=True)
    assert rpc("vhost_create_blk_controller", "vb1", "M0", "--cpumask", "0x1", "-r").returncode == 0
    r = rpc("vhost_get_controllers", "-n", "vb1")
    assert json.loads(r.stdout)[0]["backend_specific"]["block"]["readonly"] is True
    assert rpc("vhost_create_blk_controller", "vb2", "M0", "-p").returncode == 0
    assert rpc("vhost_delete_controller", "vb2").returncode == 0
    assert rpc("vhost_controller_set_coalescing", "vb1", "0", "100").returncode == 0
    assert rpc("vhost_delete_controller", "vb1").returncode == 0
    assert json.loads(rpc("vhost_get_controllers").stdout) == []


def test_queues_on_two_reactors(daemons, rundir):
    """Queue i runs on the (i mod n)-th reactor of the cpumask: with two, each queue's
    requests, stops and restarts cross reactors."""
    t = daemons("-m", "0x3", "-S", rundir)
    t.result("bdev_malloc_create", {"name": "M0", "block_size": 512, "num_blocks": 32768})
    t.result("vhost_create_blk_controller", {"ctrlr": "vb0", "dev_name": "M0"})
    assert t.result("vhost_get_controllers")[0]["cpumask"] == "0x3"
    c = vu.Client(os.path.join(rundir, "vb0"))
    c.negotiate(features=c.u64(vu.GET_FEATURES))
    qs = [c.queue(i) for i in range(4)]
    for round_ in range(3):
        for i, q in enumerate(qs):
            d = bytes([16 * round_ + i]) * 4096
            assert q.blk_write(8 * i, d) == vu.S_OK
            assert q.blk_read(8 * i, 4096) == (vu.S_OK, d)
        # Stop every ring (as QEMU does at a guest reset) and start them again.
        for q in qs:
            base = struct.unpack("<II", c.call(vu.GET_VRING_BASE, struct.pack("<II", q.index, 0)))
            assert base == (q.index, q.avail_idx)
            q.kick = os.eventfd(0, os.EFD_NONBLOCK)
            q.callfd = os.eventfd(0, os.EFD_NONBLOCK)
            c.call(vu.SET_VRING_CALL, struct.pack("<Q", q.index), [q.callfd])
            c.call(vu.SET_VRING_KICK, struct.pack("<Q", q.index), [q.kick])
    info = t.result("vhost_get_controllers")[0]["sessions"][0]
    assert [x["requests"] for x in info["queues"]] == [6, 6, 6, 6]
    c.close()
    wait_until(lambda: t.result("vhost_get_controllers")[0]["sessions"] == [],
               what="the session to end")
    t.result("vhost_delete_controller", {"ctrlr": "vb0"})
    t.result("bdev_malloc_delete", {"name": "M0"})


@pytest.mark.skipif(not os.environ.get("SPDK_RPC_PY"),
                    reason="set SPDK_RPC_PY to SPDK's scripts/rpc.py to run")
def test_spdk_rpc_py_unchanged(daemons, rundir, tmp_path):
    import subprocess
    t = daemons("-S", rundir)

    def rpc(*args, ok=True):
        p = subprocess.run(["/usr/bin/python3", os.environ["SPDK_RPC_PY"], "-s", t.sock,
                            *map(str, args)], capture_output=True, text=True, timeout=60)
        assert (p.returncode == 0) == ok, p.stderr
        return p.stdout

    rpc("bdev_malloc_create", 16, 512, "-b", "M0")
    rpc("vhost_create_blk_controller", "vb0", "M0", "--cpumask", "0x1", "-r")
    assert json.loads(rpc("vhost_get_controllers", "-n", "vb0"))[0]["socket"] == \
        os.path.join(rundir, "vb0")
    rpc("vhost_controller_set_coalescing", "vb0", 0, 100)
    rpc("vhost_create_blk_controller", "vb1", "M0", "-p")
    rpc("vhost_delete_controller", "vb1")
    cfg = tmp_path / "saved.json"
    cfg.write_text(rpc("save_config"))
    rpc("vhost_delete_controller", "vb0")
    rpc("bdev_malloc_delete", "M0")
    rpc("load_config", "-j", cfg)
    c, = json.loads(rpc("vhost_get_controllers"))
    assert c["ctrlr"] == "vb0" and c["backend_specific"]["block"]["readonly"] is True


@pytest.mark.parametrize("request_", [vu.RESET_OWNER, 34])  # 34: RESET_DEVICE
def test_reset_forgets_the_rings(vtgt, request_):
    c = client(ctrlr(vtgt))
    q = c.queue(0)
    assert q.blk_write(0, b"\x77" * 512) == vu.S_OK
    assert c.call(request_, ack=True) == 0
    assert sessions(vtgt)[0]["queues"] == []
    # Set up again from nothing, as after a device reset.
    c.call(vu.SET_FEATURES, struct.pack("<Q", c.features))
    c.set_mem_table()
    q = c.queue(0)
    assert q.blk_read(0, 512) == (vu.S_OK, b"\x77" * 512)
    c.close()
