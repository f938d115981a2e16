"""vhost-user-scsi without a guest: mimo_tgt's scsi controllers driven by the Python front-end
of test/integration/vhost_user.py (queue 0 control, 1 events, 2.. requests): RPCs, saved
configuration, SCSI commands and their data, addressing errors, task management, hot-add and
removal seen on the event queue, refusals of malformed requests (docs/vhost.md)."""
import json
import os
import struct
import subprocess

import pytest

import vhost_user as vu
from conftest import BIN, RpcFailure, wait_until

GOOD, CHECK_CONDITION = 0x00, 0x02
UNIT_ATTENTION, ILLEGAL_REQUEST = 0x6, 0x5


@pytest.fixture
def stgt(daemons, rundir):
    t = daemons("-S", rundir)
    t.vhost_dir = rundir
    for n in ("M0", "M1"):
        t.result("bdev_malloc_create", {"name": n, "block_size": 512, "num_blocks": 32768})
    return t


def ctrlr(t, name="vs0", targets=("M0",), **params):
    t.result("vhost_create_scsi_controller", dict({"ctrlr": name}, **params))
    for i, b in enumerate(targets):
        assert t.result("vhost_scsi_controller_add_target",
                        {"ctrlr": name, "scsi_target_num": i, "bdev_name": b}) == i
    return os.path.join(t.vhost_dir, name)


def client(path, features=None):
    c = vu.Client(path)
    offered = c.u64(vu.GET_FEATURES)
    c.close()
    c = vu.Client(path)
    c.negotiate(features=features if features is not None else offered & ~(1 << vu.F_EVENT_IDX))
    return c


def ready(q, target=0):
    """TEST UNIT READY until the unit attentions are gone (power on first)."""
    seen = []
    for _ in range(4):
        r = q.scsi(bytes(6), target=target)
        if r.status == GOOD:
            return seen
        seen.append(r.key_asc)
    raise AssertionError(seen)


def rw(op, lba, blocks):
    if op in (0x28, 0x2a):
        return struct.pack(">BBIBHB", op, 0, lba, 0, blocks, 0)
    return struct.pack(">BBQIBB", op, 0, lba, blocks, 0, 0)


# --- RPCs ------------------------------------------------------------------------------------

def test_create_add_list_remove(stgt):
    path = ctrlr(stgt, cpumask="0x1", targets=())
    assert os.path.exists(path)
    assert stgt.result("vhost_scsi_controller_add_target",
                       {"ctrlr": "vs0", "scsi_target_num": 3, "bdev_name": "M1"}) == 3
    # -1: the lowest free target, as SPDK.
    assert stgt.result("vhost_scsi_controller_add_target",
                       {"ctrlr": "vs0", "scsi_target_num": -1, "bdev_name": "M0"}) == 0
    c, = stgt.result("vhost_get_controllers")
    assert c["ctrlr"] == "vs0" and c["cpumask"] == "0x1" and c["socket"] == path
    scsi = c["backend_specific"]["scsi"]
    assert [(d["scsi_dev_num"], d["target_num"], d["target_name"], d["luns"]) for d in scsi] == [
        (0, 0, "Target 0", [{"id": 0, "bdev_name": "M0"}]),
        (3, 3, "Target 3", [{"id": 0, "bdev_name": "M1"}])]
    assert {d["id"] for d in scsi} == {0, 1}
    devs = {d["device_name"]: d for d in stgt.result("scsi_get_devices")}
    assert set(devs) == {"vs0/Target 0", "vs0/Target 3"}
    assert stgt.result("vhost_scsi_controller_remove_target",
                       {"ctrlr": "vs0", "scsi_target_num": 3}) is True
    assert [d["scsi_dev_num"] for d in
            stgt.result("vhost_get_controllers")[0]["backend_specific"]["scsi"]] == [0]
    assert [d["device_name"] for d in stgt.result("scsi_get_devices")] == ["vs0/Target 0"]
    assert stgt.result("vhost_delete_controller", {"ctrlr": "vs0"}) is True
    assert not os.path.exists(path)
    wait_until(lambda: stgt.result("scsi_get_devices") == [], what="the devices to go")
    # The bdevs are free again.
    assert stgt.result("bdev_malloc_delete", {"name": "M0"}) is True


@pytest.mark.parametrize("method,params,code,text", [
    ("vhost_scsi_controller_add_target", {"ctrlr": "vs0", "scsi_target_num": 8,
                                          "bdev_name": "M0"}, -22, "0 to 7"),
    ("vhost_scsi_controller_add_target", {"ctrlr": "vs0", "scsi_target_num": 0,
                                          "bdev_name": "M1"}, -17, "exists"),
    ("vhost_scsi_controller_add_target", {"ctrlr": "vs0", "scsi_target_num": 1,
                                          "bdev_name": "nope"}, -19, "no such bdev"),
    ("vhost_scsi_controller_add_target", {"ctrlr": "vb0", "scsi_target_num": 1,
                                          "bdev_name": "M1"}, -19, "not a vhost-user-scsi"),
    ("vhost_scsi_controller_add_target", {"ctrlr": "x", "scsi_target_num": 1,
                                          "bdev_name": "M1"}, -19, "no controller"),
    ("vhost_scsi_controller_remove_target", {"ctrlr": "vs0", "scsi_target_num": 5}, -19,
     "no target 5"),
    ("vhost_scsi_controller_remove_target", {"ctrlr": "vs0", "scsi_target_num": -1}, -22,
     "0 to 7"),
    ("vhost_create_scsi_controller", {"ctrlr": "vs0"}, -17, "exists"),
    ("vhost_start_scsi_controller", {"ctrlr": "x"}, -19, "no controller"),
    ("vhost_start_scsi_controller", {"ctrlr": "vb0"}, -22, "not a vhost-user-scsi"),
    ("vhost_create_scsi_controller", {"ctrlr": "vs1", "cpumask": "0x2"}, -22, "reactor"),
])
def test_refused(stgt, method, params, code, text):
    ctrlr(stgt)
    stgt.result("vhost_create_blk_controller", {"ctrlr": "vb0", "dev_name": "M1"})
    with pytest.raises(RpcFailure) as e:
        stgt.result(method, params)
    assert e.value.code == code and text in e.value.message, e.value.message


def test_saved_and_replayed(daemons, stgt, rundir, tmp_path):
    ctrlr(stgt, targets=("M0", "M1"))
    stgt.result("vhost_scsi_controller_remove_target", {"ctrlr": "vs0", "scsi_target_num": 0})
    cfg = stgt.saved_config()
    vs = [s for s in cfg["subsystems"] if s["subsystem"] == "vhost_scsi"][0]
    assert vs["config"] == [
        {"method": "vhost_create_scsi_controller", "params": {"ctrlr": "vs0", "cpumask": "0x1"}},
        {"method": "vhost_scsi_controller_add_target",
         "params": {"ctrlr": "vs0", "scsi_target_num": 1, "bdev_name": "M1"}}]
    stgt.stop()
    f = tmp_path / "saved.json"
    f.write_text(json.dumps(cfg))
    t2 = daemons("-S", rundir, "-c", str(f), name="again")
    c, = t2.result("vhost_get_controllers")
    assert [(d["scsi_dev_num"], d["luns"]) for d in c["backend_specific"]["scsi"]] == [
        (1, [{"id": 0, "bdev_name": "M1"}])]


def test_delay_then_start_as_spdk_saves_it(daemons, stgt, rundir, tmp_path):
    """delay: no socket (no front-end can connect) until vhost_start_scsi_controller, which the
    targets come before - the order SPDK's save_config writes, so SPDK's files load."""
    path = os.path.join(rundir, "vs1")
    assert stgt.result("vhost_create_scsi_controller", {"ctrlr": "vs1", "delay": True}) is True
    assert not os.path.exists(path)
    stgt.result("vhost_scsi_controller_add_target",
                {"ctrlr": "vs1", "scsi_target_num": 0, "bdev_name": "M0"})
    saved = stgt.result("framework_get_config", {"name": "vhost_scsi"})
    assert saved[0] == {"method": "vhost_create_scsi_controller",
                        "params": {"ctrlr": "vs1", "cpumask": "0x1", "delay": True}}
    assert stgt.result("vhost_start_scsi_controller", {"ctrlr": "vs1"}) is True
    assert stgt.result("vhost_start_scsi_controller", {"ctrlr": "vs1"}) is True  # again: nothing
    c = client(path)
    assert ready(c.queue(2))[0][:2] == (UNIT_ATTENTION, 0x29)   # power on: target 0 serves
    c.close()
    stgt.stop()
    # A configuration in SPDK's own form.
    f = tmp_path / "spdk.json"
    f.write_text(json.dumps({"subsystems": [
        {"subsystem": "bdev", "config": [{"method": "bdev_malloc_create", "params": {
            "name": "M9", "num_blocks": 2048, "block_size": 512}}]},
        {"subsystem": "vhost_scsi", "config": [
            {"method": "vhost_create_scsi_controller",
             "params": {"ctrlr": "vs9", "cpumask": "0x1", "delay": True}},
            {"method": "vhost_scsi_controller_add_target",
             "params": {"ctrlr": "vs9", "scsi_target_num": 0, "bdev_name": "M9"}},
            {"method": "vhost_start_scsi_controller", "params": {"ctrlr": "vs9"}}]}]}))
    t2 = daemons("-S", rundir, "-c", str(f), name="spdk-config")
    c, = t2.result("vhost_get_controllers")
    assert c["ctrlr"] == "vs9" and os.path.exists(os.path.join(rundir, "vs9"))


def test_mimo_rpc_commands(stgt):
    def rpc(*args):
        return subprocess.run([os.path.join(BIN, "mimo-rpc"), "-s", stgt.sock, *args],
                              capture_output=True, text=True)
    assert rpc("vhost_create_scsi_controller", "vs1", "--cpumask", "0x1").returncode == 0
    r = rpc("vhost_scsi_controller_add_target", "vs1", "-1", "M0")
    assert r.returncode == 0 and json.loads(r.stdout) == 0
    r = rpc("vhost_get_controllers", "-n", "vs1")
    assert json.loads(r.stdout)[0]["backend_specific"]["scsi"][0]["luns"] == [
        {"id": 0, "bdev_name": "M0"}]
    assert rpc("vhost_scsi_controller_remove_target", "vs1", "0").returncode == 0
    assert rpc("vhost_create_scsi_controller", "vs2", "--delay").returncode == 0
    assert not os.path.exists(os.path.join(stgt.vhost_dir, "vs2"))
    assert rpc("vhost_start_scsi_controller", "vs2").returncode == 0
    assert os.path.exists(os.path.join(stgt.vhost_dir, "vs2"))
    assert rpc("vhost_delete_controller", "vs1").returncode == 0


# --- the device --------------------------------------------------------------------------------

def test_negotiation_and_config(stgt):
    c = vu.Client(ctrlr(stgt))
    offered, _ = c.negotiate()
    assert offered & (1 << vu.SCSI_F_HOTPLUG) and offered & (1 << vu.SCSI_F_CHANGE)
    assert not offered & 1                                # no INOUT
    assert c.u64(vu.GET_QUEUE_NUM) == 18                  # control, event, 16 request queues
    cfg = struct.unpack("<IIIIIIIHHI", c.get_config(0, 36))
    assert cfg == (16, 124, 0xffff, 128, 16, 96, 32, 0, 7, 255)
    c.close()


def test_commands_and_data(stgt):
    c = client(ctrlr(stgt))
    q = c.queue(2)
    # The first command of a new LUN reports POWER ON OCCURRED.
    assert ready(q)[0] == (UNIT_ATTENTION, 0x29, 0x01)
    r = q.scsi(bytes([0x12, 0, 0, 0, 36, 0]), in_len=36)
    assert (r.response, r.status, r.resid, r.used) == (vu.VS_OK, GOOD, 0, vu.SCSI_RESP + 36)
    assert r.data[0] == 0x00 and r.data[8:16].rstrip() == b"MIMO"
    r = q.scsi(bytes([0x25]) + bytes(9), in_len=8)
    assert struct.unpack(">II", r.data) == (32767, 512)
    r = q.scsi(bytes([0x9e, 0x10]) + bytes(8) + struct.pack(">I", 32) + bytes(2), in_len=32)
    assert struct.unpack_from(">QI", r.data) == (32767, 512)
    data = os.urandom(64 * 1024)
    for wop, rop, lba in ((0x2a, 0x28, 100), (0x8a, 0x88, 20000)):
        r = q.scsi(rw(wop, lba, 128), out=data, split=4096 + 512)
        assert (r.response, r.status, r.resid) == (vu.VS_OK, GOOD, 0), r
        r = q.scsi(rw(rop, lba, 128), in_len=len(data), split=3000)
        assert (r.status, r.data) == (GOOD, data)
    # A buffer larger than the command moves: the residual says by how much.
    r = q.scsi(rw(0x28, 100, 1), in_len=1024)
    assert (r.status, r.resid, r.data[:512]) == (GOOD, 512, data[:512])
    # Past the end: CHECK CONDITION, LOGICAL BLOCK ADDRESS OUT OF RANGE, with its sense.
    r = q.scsi(rw(0x88, 32767, 2), in_len=1024)
    assert (r.response, r.status, r.key_asc) == (vu.VS_OK, CHECK_CONDITION,
                                                 (ILLEGAL_REQUEST, 0x21, 0x00))
    # Two request queues, on the same target.
    q3 = c.queue(3)
    assert q3.scsi(rw(0x28, 100, 8), in_len=4096).data == data[:4096]
    c.close()


def test_addressing(stgt):
    c = client(ctrlr(stgt))
    q = c.queue(2)
    ready(q)
    for kw in ({"target": 1}, {"target": 7}, {"target": 8},
               {"lun_bytes": bytes([2, 0, 0, 0, 0, 0, 0, 0])}):
        r = q.scsi(bytes(6), **kw)
        assert r.response == vu.VS_BAD_TARGET, (kw, r)
    # A LUN that is not there, on a target that is: SCSI's own answers.
    r = q.scsi(bytes([0x12, 0, 0, 0, 36, 0]), lun=1, in_len=36)
    assert (r.response, r.status, r.data[0] >> 5) == (vu.VS_OK, GOOD, 0b011)
    r = q.scsi(bytes(6), lun=1)
    assert (r.status, r.key_asc) == (CHECK_CONDITION, (ILLEGAL_REQUEST, 0x25, 0x00))
    r = q.scsi(bytes([0xa0, 0, 0, 0, 0, 0]) + struct.pack(">I", 64) + bytes(2), in_len=64)
    assert r.status == GOOD and struct.unpack_from(">I", r.data)[0] == 8    # one LUN: 0
    c.close()


def test_task_management(stgt):
    c = client(ctrlr(stgt))
    ctl, q = c.queue(0), c.queue(2)
    ready(q)
    assert ctl.tmf(vu.TMF_ABORT_TASK, tag=12345) == vu.VS_OK          # nothing to abort
    assert ctl.tmf(vu.TMF_ABORT_TASK_SET) == vu.VS_OK
    assert ctl.tmf(vu.TMF_CLEAR_TASK_SET) == vu.VS_OK
    assert ctl.tmf(vu.TMF_QUERY_TASK, tag=1) == vu.VS_OK              # not in the task set
    assert ctl.tmf(vu.TMF_CLEAR_ACA) == vu.VS_FUNCTION_REJECTED
    assert ctl.tmf(vu.TMF_QUERY_TASK_SET) == vu.VS_FUNCTION_REJECTED
    assert ctl.tmf(99) == vu.VS_FUNCTION_REJECTED
    assert ctl.tmf(vu.TMF_LOGICAL_UNIT_RESET, target=5) == vu.VS_BAD_TARGET
    assert ctl.tmf(vu.TMF_LOGICAL_UNIT_RESET, lun=3) == vu.VS_INCORRECT_LUN
    # A reset is reported to the next command: BUS DEVICE RESET FUNCTION OCCURRED.
    assert ctl.tmf(vu.TMF_LOGICAL_UNIT_RESET) == vu.VS_OK
    assert ready(q) == [(UNIT_ATTENTION, 0x29, 0x03)]
    assert ctl.tmf(vu.TMF_I_T_NEXUS_RESET) == vu.VS_OK
    assert ready(q)[0][0] == UNIT_ATTENTION
    # Asynchronous notification: no class is supported, none is reported.
    assert ctl.an_query() == (0, vu.VS_OK)
    c.close()


def test_hot_add_and_remove_events(stgt):
    path = ctrlr(stgt)
    c = client(path)
    ev, q = c.queue(1), c.queue(2)
    ev.event_bufs(4)
    ready(q)
    assert stgt.result("vhost_scsi_controller_add_target",
                       {"ctrlr": "vs0", "scsi_target_num": 2, "bdev_name": "M1"}) == 2
    assert ev.events() == [(vu.EV_TRANSPORT_RESET, 2, 0, vu.EV_RESCAN, 16)]
    assert ready(q, target=2)[0] == (UNIT_ATTENTION, 0x29, 0x01)
    assert stgt.result("vhost_scsi_controller_remove_target",
                       {"ctrlr": "vs0", "scsi_target_num": 2}) is True
    assert ev.events() == [(vu.EV_TRANSPORT_RESET, 2, 0, vu.EV_REMOVED, 16)]
    assert q.scsi(bytes(6), target=2).response == vu.VS_BAD_TARGET
    # The bdev of target 0 deleted: the target goes, and the guest is told.
    stgt.result("bdev_malloc_delete", {"name": "M0"})
    assert ev.events() == [(vu.EV_TRANSPORT_RESET, 0, 0, vu.EV_REMOVED, 16)]
    assert q.scsi(bytes(6), target=0).response == vu.VS_BAD_TARGET
    assert stgt.result("vhost_get_controllers")[0]["backend_specific"]["scsi"] == []
    wait_until(lambda: stgt.result("scsi_get_devices") == [], what="target 0's device to go")
    # More events than buffers: the one left over says that events were missed.
    ev2 = client(path)
    e2 = ev2.queue(1)
    e2.event_bufs(1)
    ev2.u64(vu.GET_FEATURES)   # a reply: the queue's set-up messages have been handled
    for i in range(3):
        stgt.result("vhost_scsi_controller_add_target",
                    {"ctrlr": "vs0", "scsi_target_num": -1, "bdev_name": "M1" if i == 0 else
                     stgt.result("bdev_malloc_create", {"name": f"X{i}", "block_size": 512,
                                                        "num_blocks": 1024})})
    got = e2.events(1, repost=False)
    assert got[0][:2] == (vu.EV_TRANSPORT_RESET, 0)
    # 2 more were made with no buffer: they wait; past 16 they would be "missed".
    e2.event_bufs(2)
    assert [e[1] for e in e2.events(2, repost=False)] == [1, 2]
    ev2.close()
    c.close()


def test_resize_is_an_event_and_a_unit_attention(stgt):
    """A bdev that grows under a target: PARAM_CHANGE (CAPACITY DATA HAS CHANGED) at once,
    then the unit attention, then READ CAPACITY's new size."""
    stgt.result("bdev_null_create", {"name": "N0", "block_size": 512, "num_blocks": 2048})
    path = ctrlr(stgt, targets=("N0",))
    c = client(path)
    ev, q = c.queue(1), c.queue(2)
    ev.event_bufs(4)
    ready(q)
    assert stgt.result("bdev_null_resize", {"name": "N0", "new_size": 4}) is True
    assert ev.events() == [(vu.EV_PARAM_CHANGE, 0, 0, 0x2a | 0x09 << 8, 16)]
    assert ready(q) == [(UNIT_ATTENTION, 0x2a, 0x09)]
    r = q.scsi(bytes([0x25]) + bytes(9), in_len=8)
    assert struct.unpack(">II", r.data) == (4 * 2048 - 1, 512)
    c.close()


def test_event_buffers_come_back_on_stop(stgt):
    c = client(ctrlr(stgt))
    ev = c.queue(1)
    ev.event_bufs(3)
    # GET_VRING_BASE stops the queue: the held buffers come back empty ("no event").
    c.call(vu.GET_VRING_BASE, struct.pack("<II", 1, 0))
    assert [e[0] for e in ev.events(3, repost=False)] == [vu.EV_NO_EVENT] * 3
    c.close()


def test_no_events_without_hotplug(stgt):
    path = ctrlr(stgt)
    offered = vu.Client(path).u64(vu.GET_FEATURES)
    c = client(path, features=offered & ~(1 << vu.F_EVENT_IDX) & ~(1 << vu.SCSI_F_HOTPLUG))
    ev = c.queue(1)
    ev.event_bufs(1)
    stgt.result("vhost_scsi_controller_add_target",
                {"ctrlr": "vs0", "scsi_target_num": 1, "bdev_name": "M1"})
    with pytest.raises(TimeoutError):
        ev.events(1, timeout=0.5)
    c.close()


def test_malformed_requests(stgt):
    c = client(ctrlr(stgt))
    q = c.queue(2)
    ready(q)
    m = c.mem
    # A header shorter than virtio_scsi_cmd_req: FAILURE.
    hdr, resp = c.alloc(64, 16), c.alloc(vu.SCSI_RESP, 16)
    head = q.submit([(hdr, 20, False), (resp, vu.SCSI_RESP, True)])
    (hid, used), = q.wait()
    assert hid == head and used == vu.SCSI_RESP and m[resp + 11] == vu.VS_FAILURE
    q.recycle(head, 2)
    # No room for the response: back unanswered.
    head = q.submit([(hdr, vu.SCSI_REQ, False), (resp, 40, True)])
    assert q.wait() == [(head, 0)]
    q.recycle(head, 2)
    # Data both ways (INOUT was not offered): FAILURE.
    r = q.scsi(rw(0x28, 0, 1), out=b"x" * 512, in_len=512)
    assert r.response == vu.VS_FAILURE
    # A write whose buffer is shorter than the command: refused, nothing written.
    r = q.scsi(rw(0x2a, 0, 2), out=b"y" * 512)
    assert r.status == CHECK_CONDITION
    # The control queue: an unknown type goes back unanswered, a short TMF is FAILURE.
    ctl = c.queue(0)
    o, r_ = c.alloc(32, 16), c.alloc(8, 16)
    struct.pack_into("<I", m, o, 7)
    head = ctl.submit([(o, 4, False), (r_, 1, True)])
    assert ctl.wait() == [(head, 0)]
    ctl.recycle(head, 2)
    struct.pack_into("<I", m, o, 0)
    head = ctl.submit([(o, 8, False), (r_, 1, True)])
    assert ctl.wait() == [(head, 1)] and m[r_] == vu.VS_FAILURE
    ctl.recycle(head, 2)
    # The connection goes on.
    assert q.scsi(rw(0x28, 0, 1), in_len=512).status == GOOD
    c.close()


def test_deleted_while_connected(stgt):
    path = ctrlr(stgt)
    c = client(path)
    ev, q = c.queue(1), c.queue(2)
    ev.event_bufs(2)
    ready(q)
    assert stgt.result("vhost_delete_controller", {"ctrlr": "vs0"}) is True
    assert ev.events() == [(vu.EV_TRANSPORT_RESET, 0, 0, vu.EV_REMOVED, 16)]
    assert q.scsi(bytes(6)).response == vu.VS_BAD_TARGET
    wait_until(lambda: stgt.result("bdev_malloc_delete", {"name": "M0"}), what="M0 deleted")
    c.close()


def test_queues_on_two_reactors(daemons, rundir):
    """Queue i runs on the (i mod n)-th reactor of the cpumask: with two, the control queue
    is on the first, the event queue on the second (events made on home cross to it), the
    request queues alternate; requests, stops and restarts, task management, hot-add and
    removal (a target drained of requests on other reactors) all cross reactors. Under
    TSan in make test-tsan."""
    t = daemons("-m", "0x3", "-S", rundir)
    t.vhost_dir = rundir
    for n in ("M0", "M1"):
        t.result("bdev_malloc_create", {"name": n, "block_size": 512, "num_blocks": 32768})
    path = ctrlr(t)
    assert t.result("vhost_get_controllers")[0]["cpumask"] == "0x3"
    c = client(path)
    ctl, ev = c.queue(0), c.queue(1)
    ev.event_bufs(4)
    qs = [c.queue(i) for i in range(2, 6)]
    ready(qs[0])
    for round_ in range(3):
        for i, q in enumerate(qs):
            d = bytes([16 * round_ + i]) * 4096
            assert q.scsi(rw(0x2a, 8 * i, 8), out=d).status == GOOD
            r = q.scsi(rw(0x28, 8 * i, 8), in_len=4096)
            assert (r.status, r.data) == (GOOD, d)
        # Stop every request ring (as QEMU does at a guest reset) and start them again.
        for q in qs:
            base = struct.unpack("<II", c.call(vu.GET_VRING_BASE, struct.pack("<II", q.index, 0)))
            assert base == (q.index, q.avail_idx)
            q.kick = os.eventfd(0, os.EFD_NONBLOCK)
            q.callfd = os.eventfd(0, os.EFD_NONBLOCK)
            c.call(vu.SET_VRING_CALL, struct.pack("<Q", q.index), [q.callfd])
            c.call(vu.SET_VRING_KICK, struct.pack("<Q", q.index), [q.kick])
    assert ctl.tmf(vu.TMF_LOGICAL_UNIT_RESET) == vu.VS_OK
    assert ready(qs[1]) == [(UNIT_ATTENTION, 0x29, 0x03)]
    # Hot-add and removal: events made on home, delivered on the event queue's reactor.
    for _ in range(2):
        assert t.result("vhost_scsi_controller_add_target",
                        {"ctrlr": "vs0", "scsi_target_num": 1, "bdev_name": "M1"}) == 1
        assert ev.events() == [(vu.EV_TRANSPORT_RESET, 1, 0, vu.EV_RESCAN, 16)]
        for q in qs:
            ready(q, target=1)
            assert q.scsi(rw(0x28, 0, 1), target=1, in_len=512).status == GOOD
        assert t.result("vhost_scsi_controller_remove_target",
                        {"ctrlr": "vs0", "scsi_target_num": 1}) is True
        assert ev.events() == [(vu.EV_TRANSPORT_RESET, 1, 0, vu.EV_REMOVED, 16)]
        assert all(q.scsi(bytes(6), target=1).response == vu.VS_BAD_TARGET for q in qs)
    c.close()
    wait_until(lambda: t.result("vhost_get_controllers")[0]["sessions"] == [],
               what="the session to end")
    t.result("vhost_delete_controller", {"ctrlr": "vs0"})
    wait_until(lambda: t.result("scsi_get_devices") == [], what="the devices to go")
    for n in ("M0", "M1"):
        t.result("bdev_malloc_delete", {"name": n})
