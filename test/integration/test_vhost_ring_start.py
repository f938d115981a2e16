"""When a ring starts: what the driver did before, and the interrupts for what mimo_tgt answered
before the front-end gave it the call eventfd it reads (docs/vhost.md, "the probe hang").

QEMU 7.2 starts a vhost-user-scsi or -blk device (vhost_scsi_common_start, vhost_user_blk_start)
in this order: SET_VRING_NUM/BASE/ADDR/KICK for each queue, SET_VRING_ENABLE, and only then
SET_VRING_CALL with the guest's notifier ("unmask everything here"). After a device reset the
back-end has no call descriptor at all until then; before, it has the "masked" notifier, which
nobody reads under TCG. The guest runs on as soon as its DRIVER_OK write returns, while the
back-end still works through those messages: its first request (the SCSI scan's INQUIRY) can
be answered in between, and that interrupt was lost - the probe waited forever. The Python
front-end of vhost_user.py sends the messages in QEMU's order, and waits for the completion in
the used ring before it sends the call descriptor, so the race is taken every time."""
import os
import select
import struct

import pytest

import vhost_user as vu
from conftest import wait_until

INQUIRY = bytes([0x12, 0, 0, 0, 36, 0])


@pytest.fixture
def vtgt(daemons, rundir):
    t = daemons("-S", rundir)
    t.result("bdev_malloc_create", {"name": "M0", "block_size": 512, "num_blocks": 8192})
    return t


def controller(t, rundir, kind):
    if kind == "scsi":
        t.result("vhost_create_scsi_controller", {"ctrlr": "v0"})
        t.result("vhost_scsi_controller_add_target",
                 {"ctrlr": "v0", "scsi_target_num": 0, "bdev_name": "M0"})
        index = 2  # the first request queue
    else:
        t.result("vhost_create_blk_controller", {"ctrlr": "v0", "dev_name": "M0"})
        index = 0
    c = vu.Client(os.path.join(rundir, "v0"))
    offered = c.u64(vu.GET_FEATURES)
    c.close()
    c = vu.Client(os.path.join(rundir, "v0"))
    # EVENT_IDX as Linux takes it: the first completion of a start always wants a call.
    c.negotiate(features=offered)
    assert c.features & (1 << vu.F_PROTOCOL_FEATURES)
    return c, index


def ring_without_call(c, index):
    """SET_VRING_NUM, BASE, ADDR, KICK as QEMU sends them: no call descriptor."""
    q = vu.Queue(c, index, 64)
    c.queues[index] = q
    m = c.mem
    m[q.desc:q.used + 4 + 8 * q.size + 2] = bytes(q.used + 4 + 8 * q.size + 2 - q.desc)
    c.call(vu.SET_VRING_NUM, struct.pack("<II", index, q.size))
    c.call(vu.SET_VRING_BASE, struct.pack("<II", index, 0))
    c.call(vu.SET_VRING_ADDR, struct.pack("<IIQQQQ", index, 0, vu.UVA + q.desc,
                                          vu.UVA + q.used, vu.UVA + q.avail, 0))
    c.call(vu.SET_VRING_KICK, struct.pack("<Q", index), [q.kick])
    return q


def signalled(fd):
    return bool(select.select([fd], [], [], 0)[0]) and os.eventfd_read(fd) > 0


def one_request(q, kind):
    """A request answered with no interrupt the front-end would see."""
    if kind == "scsi":
        r = q.scsi(INQUIRY, in_len=36)
        assert r.response == 0 and r.status == 0 and r.data[0] == 0
    else:
        st, _ = q.blk_read(0, 512)
        assert st == 0


@pytest.mark.parametrize("kind", ["scsi", "blk"])
def test_call_descriptor_after_the_start_is_signalled(vtgt, rundir, kind):
    c, index = controller(vtgt, rundir, kind)
    q = ring_without_call(c, index)
    if kind == "scsi":
        # The guest's first command, kicked before the ring is enabled (the kick is kept).
        h = q.scsi_post(INQUIRY, in_len=36)
        c.call(vu.SET_VRING_ENABLE, struct.pack("<II", index, 1), ack=True)
        (hid, used), = q.wait()
        assert hid == h[0] and q.scsi_result(h, used).response == 0
    else:
        c.call(vu.SET_VRING_ENABLE, struct.pack("<II", index, 1), ack=True)
        one_request(q, kind)
    # Done, in the used ring, and nobody told: the guest's notifier arrives now.
    c.call(vu.SET_VRING_CALL, struct.pack("<Q", index), [q.callfd])
    wait_until(lambda: signalled(q.callfd), what="a call on the new call descriptor")
    # The ring goes on, with calls as usual.
    one_request(q, kind)
    wait_until(lambda: signalled(q.callfd), what="the call of the next completion")
    c.close()


@pytest.mark.parametrize("kind", ["scsi", "blk"])
def test_call_descriptor_replaced_is_signalled(vtgt, rundir, kind):
    """The interrupt went to the old descriptor (QEMU's masked notifier, which it does not
    read): the new one is signalled too."""
    c, index = controller(vtgt, rundir, kind)
    q = c.queue(index)
    one_request(q, kind)
    wait_until(lambda: signalled(q.callfd), what="a call on the first call descriptor")
    new = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
    try:
        c.call(vu.SET_VRING_CALL, struct.pack("<Q", index), [new], ack=True)
        wait_until(lambda: signalled(new), what="a call on the replacing descriptor")
    finally:
        os.close(new)
    c.close()


def test_requests_before_the_start_are_served(vtgt, rundir):
    """Kicks are never lost: requests made before the memory table, before the ring is
    enabled, and while the kick descriptor is replaced are all taken when the ring starts."""
    vtgt.result("vhost_create_blk_controller", {"ctrlr": "v0", "dev_name": "M0"})
    c = vu.Client(os.path.join(rundir, "v0"))
    c.negotiate(mem=False)
    q = vu.Queue(c, 0, 64)
    c.queues[0] = q
    q.setup(enable=False)
    # Built by hand: blk() would wait for its answer.
    m = c.mem
    hdr = c.alloc(16, 16)
    struct.pack_into("<IIQ", m, hdr, vu.T_IN, 0, 0)
    data, st = c.alloc(512), c.alloc(1, 1)
    m[st] = 0xff
    head = q.submit([(hdr, 16, False), (data, 512, True), (st, 1, True)])
    c.set_mem_table(ack=True)
    assert q.used_idx() == 0  # not enabled: not served
    c.call(vu.SET_VRING_ENABLE, struct.pack("<II", 0, 1), ack=True)
    (hid, used), = q.wait()
    assert hid == head and m[st] == 0
    q.recycle(head, 3)
    # A request posted without a kick, then the kick descriptor replaced: the restart looks.
    m[st] = 0xff
    head = q.submit([(hdr, 16, False), (data, 512, True), (st, 1, True)], kick=False)
    kick = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
    os.close(q.kick)
    q.kick = kick
    c.call(vu.SET_VRING_KICK, struct.pack("<Q", 0), [kick], ack=True)
    (hid, used), = q.wait()
    assert hid == head and m[st] == 0
    c.close()
