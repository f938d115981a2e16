"""mimo_tgt as an NVMe-oF/TCP target: the nvmf_* RPCs and their shapes, connect and I/O from a
host written from the specification (nvme_tcp_host.py), identify/log/feature data, namespace
notices, keep-alive, discovery, events at a real receiver, and what bad hosts get."""
import json
import os
import socket
import struct
import sys
import threading
import time

import pytest

from conftest import REPO, RpcFailure, free_port, wait_until
from nvme_tcp_host import (C2H_DATA, C2H_TERM, CMD, DISCOVERY_NQN, F_LAST, F_SUCCESS, H2C_DATA,
                           IC_REQ, R2T, RSP,
                           SGL_ICD, SGL_TRANSPORT, Closed, Host, admin_session, io_session,
                           status_of)
from nvmf_target import NQN, NvmfTarget, cleanup_stale

sys.path.insert(0, os.path.join(REPO, "python"))
from mimo import Client, NvmfTgt  # noqa: E402

HOSTNQN = "nqn.2014-08.org.nvmexpress:uuid:11111111-2222-3333-4444-555555555555"
OK = (0, 0)
INVALID_OPCODE, INVALID_FIELD, SEQUENCE_ERROR = (0, 0x01), (0, 0x02), (0, 0x0C)
INVALID_NS, SGL_LENGTH, LBA_RANGE, TRANSIENT = (0, 0x0B), (0, 0x0F), (0, 0x80), (0, 0x22)
CONNECT_INVALID_PARAMS, CONNECT_INVALID_HOST = (1, 0x82), (1, 0x84)


def st(cqe):
    return status_of(cqe["status"])[:2]


@pytest.fixture
def target(daemons):
    t = NvmfTarget.start(daemons, free_port())
    yield t
    t.stop()


# --- RPCs ----------------------------------------------------------------------------------

def test_discovery_subsystem_exists_from_start(tgt):
    assert tgt.result("nvmf_get_subsystems") == [{
        "nqn": DISCOVERY_NQN, "subtype": "Discovery", "listen_addresses": [],
        "allow_any_host": True, "hosts": []}]
    assert tgt.result("nvmf_get_transports") == []
    assert "nvmf" in [s["subsystem"] for s in tgt.result("framework_get_subsystems")]


def test_rpc_shapes_and_errors(tgt):
    def err(method, params):
        with pytest.raises(RpcFailure) as e:
            tgt.result(method, params)
        return e.value

    tgt.result("bdev_malloc_create", {"name": "M0", "num_blocks": 2048, "block_size": 512})
    tgt.result("bdev_malloc_create", {"name": "M1", "num_blocks": 4096, "block_size": 4096})
    port = free_port()
    listen = {"trtype": "tcp", "traddr": "127.0.0.1", "trsvcid": str(port)}
    # A listener needs the transport first, as in SPDK.
    tgt.result("nvmf_create_subsystem", {"nqn": NQN})
    e = err("nvmf_subsystem_add_listener", {"nqn": NQN, "listen_address": listen})
    assert e.code == -32602 and "transport" in e.message
    # rpc.py sends its store_true flags even when unset: they are accepted.
    assert tgt.result("nvmf_create_transport", {
        "trtype": "tcp", "no_srq": False, "c2h_success": True, "zcopy": False,
        "dif_insert_or_strip": False, "max_queue_depth": 64}) is True
    e = err("nvmf_create_transport", {"trtype": "TCP"})
    assert (e.code, e.message) == (-32602, "Transport type 'TCP' already exists")
    tr = tgt.result("nvmf_get_transports")
    assert len(tr) == 1 and tr[0]["trtype"] == "TCP" and tr[0]["max_queue_depth"] == 64
    assert tr[0]["max_io_qpairs_per_ctrlr"] == 127 and tr[0]["in_capsule_data_size"] == 4096
    assert err("nvmf_create_subsystem", {"nqn": NQN}).code == -32602  # exists
    assert err("nvmf_create_subsystem", {"nqn": "not-an-nqn"}).code == -32602
    assert err("nvmf_create_subsystem", {"nqn": NQN + "x", "serial_number": "S" * 21}).code \
        == -32602
    assert tgt.result("nvmf_subsystem_add_ns", {"nqn": NQN, "namespace": {"bdev_name": "M0"}}) == 1
    uuid = "ceccf520-691e-4b46-9546-34af789907c5"
    assert tgt.result("nvmf_subsystem_add_ns", {
        "nqn": NQN, "namespace": {"bdev_name": "M1", "nsid": 7, "uuid": uuid,
                                  "nguid": "000102030405060708090A0B0C0D0E0F",
                                  "eui64": "0011223344556677"}}) == 7
    assert "in use" in err("nvmf_subsystem_add_ns",
                           {"nqn": NQN, "namespace": {"bdev_name": "M0"}}).message
    assert err("nvmf_subsystem_add_ns", {"nqn": NQN, "namespace": {"bdev_name": "nope"}}).code \
        == -32602
    assert err("nvmf_subsystem_add_ns", {"nqn": "nqn.2016-06.io.mimo:none",
                                         "namespace": {"bdev_name": "M0"}}).message == \
        "Subsystem with NQN 'nqn.2016-06.io.mimo:none' not found"
    assert tgt.result("nvmf_subsystem_add_host", {"nqn": NQN, "host": HOSTNQN}) is True
    assert err("nvmf_subsystem_add_host", {"nqn": NQN, "host": HOSTNQN}).code == -32602
    assert tgt.result("nvmf_subsystem_add_listener", {"nqn": NQN, "listen_address": listen})
    assert err("nvmf_subsystem_add_listener", {"nqn": NQN, "listen_address": listen}).code \
        == -32602
    s = tgt.result("nvmf_get_subsystems", {"nqn": NQN})
    assert s == [{
        "nqn": NQN, "subtype": "NVMe",
        "listen_addresses": [{"trtype": "TCP", "adrfam": "IPv4", "traddr": "127.0.0.1",
                              "trsvcid": str(port)}],
        "allow_any_host": False, "hosts": [{"nqn": HOSTNQN}],
        "serial_number": "00000000000000000000", "model_number": "mimo bdev Controller",
        "max_namespaces": 32, "min_cntlid": 1, "max_cntlid": 65519,
        "namespaces": [
            {"nsid": 1, "bdev_name": "M0", "name": "M0", "nguid": s[0]["namespaces"][0]["nguid"],
             "uuid": tgt.result("bdev_get_bdevs", {"name": "M0"})[0]["uuid"]},
            {"nsid": 7, "bdev_name": "M1", "name": "M1",
             "nguid": "000102030405060708090A0B0C0D0E0F", "uuid": uuid,
             "eui64": "0011223344556677"}]}]
    assert tgt.result("nvmf_subsystem_allow_any_host", {"nqn": NQN, "allow_any_host": True})
    assert tgt.result("nvmf_get_subsystems", {"nqn": NQN})[0]["allow_any_host"] is True
    assert tgt.result("nvmf_subsystem_get_controllers", {"nqn": NQN}) == []
    assert tgt.result("nvmf_subsystem_remove_ns", {"nqn": NQN, "nsid": 7}) is True
    assert err("nvmf_subsystem_remove_ns", {"nqn": NQN, "nsid": 7}).code == -32602
    assert tgt.result("nvmf_subsystem_remove_host", {"nqn": NQN, "host": HOSTNQN}) is True
    assert tgt.result("nvmf_subsystem_remove_listener", {"nqn": NQN, "listen_address": listen})
    assert err("nvmf_delete_subsystem", {"nqn": DISCOVERY_NQN}).code == -32602
    assert tgt.result("nvmf_delete_subsystem", {"nqn": NQN}) is True
    assert [x["nqn"] for x in tgt.result("nvmf_get_subsystems")] == [DISCOVERY_NQN]
    # Deleting the subsystem closed its namespaces: the bdevs can go.
    tgt.result("bdev_malloc_delete", {"name": "M0"})


def test_listener_on_a_port_in_use_fails_cleanly(tgt):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        tgt.result("nvmf_create_transport", {"trtype": "TCP"})
        tgt.result("nvmf_create_subsystem", {"nqn": NQN})
        with pytest.raises(RpcFailure) as e:
            tgt.result("nvmf_subsystem_add_listener", {"nqn": NQN, "listen_address": {
                "trtype": "TCP", "traddr": "127.0.0.1", "trsvcid": str(port)}})
        assert "in use" in e.value.message
    assert tgt.result("nvmf_get_subsystems", {"nqn": NQN})[0]["listen_addresses"] == []


def test_legacy_construct_get_delete(tgt):
    n = NvmfTgt(Client(tgt.sock))
    name = n.construct_malloc_bdev(16, 512)
    port = free_port()
    assert n.construct_nvmf_subsystem(NQN, f"trtype:tcp traddr:127.0.0.1 trsvcid:{port}",
                                      HOSTNQN, "SN42", [name]) is True
    s = [x for x in n.get_nvmf_subsystems() if x["nqn"] == NQN][0]
    assert s["serial_number"] == "SN42" and s["hosts"] == [{"nqn": HOSTNQN}]
    assert s["namespaces"][0]["bdev_name"] == name
    assert s["listen_addresses"][0]["trsvcid"] == str(port)
    h = admin_session(port, NQN, HOSTNQN)
    assert st(h.identify(1)[0]) == OK
    h.close()
    # A bad part undoes the whole call.
    with pytest.raises(Exception):
        n.construct_nvmf_subsystem(NQN + "b", [], [], "SN", ["no_such_bdev"])
    assert all(x["nqn"] != NQN + "b" for x in n.get_nvmf_subsystems())
    assert n.delete_nvmf_subsystem(NQN) is True
    assert [x["nqn"] for x in n.get_nvmf_subsystems()] == [DISCOVERY_NQN]


def test_legacy_construct_takes_spdk_17_forms(tgt):
    """SPDK 17.x's rpc.py, which py-spdk drives, sends "core": -1, "mode": "Virtual" and the
    namespaces as bare bdev names: accepted as SPDK 17 did. What mimo cannot do - pinning to a
    core, Direct mode - is refused, saying so."""
    tgt.result("bdev_malloc_create", {"name": "Malloc0", "num_blocks": 64, "block_size": 512})
    tgt.result("bdev_malloc_create", {"name": "Malloc1", "num_blocks": 64, "block_size": 512})
    port = free_port()
    assert tgt.result("construct_nvmf_subsystem", {
        "core": -1, "mode": "Virtual", "nqn": NQN, "serial_number": "SPDK17",
        "listen_addresses": [{"trtype": "TCP", "traddr": "127.0.0.1", "trsvcid": str(port)}],
        "hosts": [HOSTNQN], "namespaces": ["Malloc0", "Malloc1"]}) is True
    s = tgt.result("nvmf_get_subsystems", {"nqn": NQN})[0]
    assert [(n["nsid"], n["bdev_name"]) for n in s["namespaces"]] == [(1, "Malloc0"),
                                                                      (2, "Malloc1")]
    h = admin_session(port, NQN, HOSTNQN)
    assert st(h.identify(1)[0]) == OK
    h.close()
    for bad, says in (({"core": 1}, "does not pin"), ({"mode": "Direct"}, "only Virtual"),
                      ({"pci_address": "0000:01:00.0"}, "Direct mode")):
        with pytest.raises(RpcFailure) as e:
            tgt.result("construct_nvmf_subsystem", {"nqn": NQN + "x", "serial_number": "S",
                                                     "namespaces": [], **bad})
        assert says in e.value.message
    assert all(x["nqn"] != NQN + "x" for x in tgt.result("nvmf_get_subsystems"))


# --- connect, I/O -------------------------------------------------------------------------

@pytest.mark.parametrize("digests", [(False, False), (True, True), (True, False)])
def test_io_roundtrip(target, digests):
    a = admin_session(target.port, NQN, hdgst=digests[0], ddgst=digests[1])
    q1 = io_session(target.port, a, NQN, qid=1, hdgst=digests[0], ddgst=digests[1])
    q2 = io_session(target.port, a, NQN, qid=2, hdgst=digests[0], ddgst=digests[1])
    small, big = os.urandom(4096), os.urandom(128 * 1024)
    assert st(q1.write(1, 0, small)[0]) == OK                     # in-capsule
    assert st(q2.write(1, 1000, big)[0]) == OK                    # R2T + H2CData
    assert st(q1.write(1, 8, small, icd=False)[0]) == OK          # small, but by R2T
    cqe, back = q2.read(1, 0, 8)
    assert st(cqe) == OK and back == small
    cqe, back = q1.read(1, 1000, 256)
    assert st(cqe) == OK and back == big
    assert q2.read(1, 8, 8)[1] == small
    # Write Zeroes, Flush, Compare (equal, different), Deallocate.
    assert st(q1.command(0x08, nsid=1, cdws=(1000, 0, 7))[0]) == OK
    assert q1.read(1, 1000, 8)[1] == b"\0" * 4096
    assert st(q1.command(0x00, nsid=1)[0]) == OK
    assert st(q1.command(0x05, nsid=1, data_out=small, cdws=(0, 0, 7))[0]) == OK
    assert st(q1.command(0x05, nsid=1, data_out=os.urandom(4096), cdws=(0, 0, 7))[0]) == \
        (2, 0x85)
    rng = struct.pack("<IIQ", 0, 8, 0) + struct.pack("<IIQ", 0, 16, 2000)
    assert st(q1.command(0x09, nsid=1, data_out=rng, cdws=(1, 1 << 2))[0]) == OK
    # Errors the host gets as completions.
    blocks = 64 * 2048
    assert st(q1.read(1, blocks - 4, 8)[0]) == LBA_RANGE
    assert st(q1.read(2, 0, 1)[0]) == INVALID_NS
    assert st(q1.command(0x7E, nsid=1)[0]) == INVALID_OPCODE
    cqe, _ = q1.command(0x02, nsid=1, data_in=256 * 1024, cdws=(0, 0, 511))
    assert st(cqe) == SGL_LENGTH
    cqe = q1.command(0x02, nsid=1, data_in=512, cdws=(0, 0, 7))[0]  # SGL shorter than 8 blocks
    assert st(cqe) == SGL_LENGTH
    for h in (q1, q2, a):
        h.close()


def test_sq_head_and_c2h_success(target):
    a = admin_session(target.port, NQN)
    # Flow control on: every response carries the SQ head, which wraps at the queue size.
    q = io_session(target.port, a, NQN, sqsize=3)
    heads = [q.read(1, 0, 1)[0]["sqhd"] for _ in range(6)]
    assert heads == [1, 2, 3, 0, 1, 2]
    q.close()
    # Flow control off: a read's C2HData says SUCCESS and no response follows.
    q = io_session(target.port, a, NQN, qid=2, cattr=1 << 2)
    cqe, data = q.read(1, 0, 8)
    assert cqe.get("success_flag") and len(data) == 4096
    assert st(q.write(1, 0, b"x" * 512)[0]) == OK
    a.close()
    q.close()


def test_identify_logs_features_properties(target):
    a = admin_session(target.port, NQN)
    cqe, cd = a.identify(1)
    assert st(cqe) == OK
    assert cd[4:24].decode().rstrip() == "MIMO0001"
    assert cd[24:64].decode().rstrip() == "mimo bdev Controller"
    assert struct.unpack_from("<H", cd, 78)[0] == a.cntlid
    assert struct.unpack_from("<I", cd, 80)[0] == 0x10300            # VER 1.3
    assert cd[77] == 5                                                # MDTS: 128 KiB
    assert cd[111] == 1                                               # I/O controller
    assert cd[258] == 3                                               # AERL: 4
    assert struct.unpack_from("<I", cd, 516)[0] == 32                 # NN
    assert struct.unpack_from("<H", cd, 520)[0] & 0x0D == 0x0D        # compare, DSM, WZ
    assert cd[768:768 + len(NQN)].decode() == NQN
    assert struct.unpack_from("<I", cd, 1792)[0] == (64 + 4096) // 16  # IOCCSZ
    cqe, nd = a.identify(0, nsid=1)
    assert struct.unpack_from("<QQ", nd, 0) == (131072, 131072) and nd[130] == 9
    cqe, lst = a.identify(2)
    assert struct.unpack_from("<II", lst, 0) == (1, 0)
    cqe, desc = a.identify(3, nsid=1)
    bdev = [s for s in target.daemon.result("nvmf_get_subsystems", {"nqn": NQN})[0]["namespaces"]]
    assert desc[0] == 2 and desc[1] == 16 and desc[4:20].hex().upper() == bdev[0]["nguid"]
    assert desc[20] == 3 and desc[21] == 16
    assert st(a.identify(0, nsid=33)[0]) == INVALID_NS
    assert st(a.identify(3, nsid=5)[0]) == INVALID_NS
    assert st(a.identify(0x1F)[0]) == INVALID_FIELD
    # Properties.
    cap = a.prop_get(0x0, size8=True)
    assert (cap["cdw0"] & 0xFFFF) == 127 and (cap["cdw1"] >> 5) & 1      # MQES, CSS NVM
    assert a.prop_get(0x8)["cdw0"] == 0x10300
    assert st(a.prop_get(0x40)) == INVALID_FIELD
    # Features.
    cqe, _ = a.command(0x09, cdws=(0x07, (3 << 16) | 3))               # 4 + 4 queues
    assert st(cqe) == OK and cqe["cdw0"] == (3 << 16) | 3
    assert a.command(0x0A, cdws=(0x07,))[0]["cdw0"] == (3 << 16) | 3
    assert st(a.command(0x09, cdws=(0x0F, 5000))[0]) == OK            # KATO
    assert a.command(0x0A, cdws=(0x0F,))[0]["cdw0"] == 5000
    assert a.command(0x0A, cdws=(0x06,))[0]["cdw0"] == 1               # write cache on
    assert st(a.command(0x09, cdws=(0x06, 0))[0]) == OK
    assert a.command(0x0A, cdws=(0x06,))[0]["cdw0"] == 0
    assert st(a.command(0x0A, cdws=(0x0C,))[0]) == INVALID_FIELD
    # The features spdk_nvme_identify reads, with nothing behind them: what is set reads back.
    for fid, value in ((0x01, 0x03020107), (0x02, 0), (0x05, 100), (0x0A, 1)):
        assert st(a.command(0x09, cdws=(fid, value))[0]) == OK
        assert a.command(0x0A, cdws=(fid,))[0]["cdw0"] == value
    assert a.command(0x0A, cdws=(0x04, 0))[0]["cdw0"] == 343           # over: 70 °C
    assert st(a.command(0x09, cdws=(0x04, (1 << 20) | 250))[0]) == OK  # under: 250 K
    assert a.command(0x0A, cdws=(0x04, 1 << 20))[0]["cdw0"] == 250
    assert st(a.command(0x0A, cdws=(0x04, 1 << 16))[0]) == INVALID_FIELD  # no sensor 1
    assert st(a.command(0x09, cdws=(0x02, 1))[0]) == INVALID_FIELD      # no power state 1
    assert st(a.command(0x09, cdws=(0x05, 1 << 16))[0]) == INVALID_FIELD  # no DULBE
    assert st(a.command(0x09, cdws=(0x0B | (1 << 31), 0))[0]) == (1, 0x0D)  # not saveable
    assert st(a.command(0x05)[0]) == INVALID_OPCODE                    # Create I/O CQ
    assert st(a.command(0x18)[0]) == OK                                # Keep Alive
    assert a.command(0x08, cdws=(0,))[0]["cdw0"] == 1                  # Abort: not aborted
    # Logs: the error log remembers the failures above, newest first.
    cqe, log = a.get_log_page(0x01, 64 * 4)
    assert st(cqe) == OK and struct.unpack_from("<Q", log, 0)[0] >= 4
    # The newest: Abort succeeded, Keep Alive too; before them Create I/O CQ's Invalid Opcode
    # (status word as in the completion: SC 1 above the phase tag, DNR).
    sqid, cid, status = struct.unpack_from("<HHH", log, 8)
    assert sqid == 0 and status_of(status) == (0, 0x01, True) and status & 1 == 0
    q = io_session(target.port, a, NQN)
    q.write(1, 0, os.urandom(8192), icd=False)
    cqe, health = a.get_log_page(0x02, 512)
    assert st(cqe) == OK and struct.unpack_from("<Q", health, 80)[0] >= 1  # write commands
    cqe, fw = a.get_log_page(0x03, 512)
    assert fw[0] == 1 and fw[8:16].strip()
    assert st(a.get_log_page(0x70, 1024)[0]) == (1, 0x09)              # not a discovery ctrlr
    assert st(a.get_log_page(0x01, 64, offset=2)[0]) == INVALID_FIELD
    q.close()
    a.close()


def test_connect_rejections(target, daemons):
    def connect(**kw):
        h = Host(target.port)
        h.icreq()
        args = dict(subnqn=NQN, hostnqn=HOSTNQN)
        args.update(kw)
        cqe = h.connect(**args)
        h.close()
        return cqe

    cqe = connect(subnqn="nqn.2016-06.io.mimo:unknown")
    assert st(cqe) == CONNECT_INVALID_PARAMS and cqe["cdw0"] == (1 << 16) | 256
    assert st(connect(recfmt=1)) == (1, 0x80)
    assert st(connect(sqsize=0)) == CONNECT_INVALID_PARAMS
    assert st(connect(sqsize=4096)) == CONNECT_INVALID_PARAMS
    assert connect(cntlid=5)["cdw0"] == (1 << 16) | 16
    # I/O queue before the controller is enabled; unknown controller; wrong host.
    h = Host(target.port)
    h.icreq()
    adm = h.connect(NQN, HOSTNQN)
    cntlid = adm["cdw0"]
    assert st(connect(qid=1, cntlid=cntlid, hostid=h.hostid)) == SEQUENCE_ERROR
    h.enable()
    assert st(connect(qid=1, cntlid=cntlid + 100, hostid=h.hostid)) == CONNECT_INVALID_PARAMS
    cqe = connect(qid=1, cntlid=cntlid, hostid=h.hostid,
                  hostnqn="nqn.2014-08.org.nvmexpress:uuid:00000000-0000-0000-0000-000000000000")
    assert cqe["cdw0"] == (1 << 16) | 512
    assert st(connect(qid=200, cntlid=cntlid, hostid=h.hostid)) == CONNECT_INVALID_PARAMS
    # A second Connect on a connected queue is out of sequence.
    assert st(h.connect(NQN, HOSTNQN)) == SEQUENCE_ERROR
    h.close()
    # Allowed hosts only.
    target.daemon.result("nvmf_subsystem_allow_any_host", {"nqn": NQN, "allow_any_host": False})
    assert st(connect()) == CONNECT_INVALID_HOST
    target.daemon.result("nvmf_subsystem_add_host", {"nqn": NQN, "host": HOSTNQN})
    assert st(connect()) == OK


def test_discovery_log_and_its_notice(target):
    d = target.daemon
    other = "nqn.2016-06.io.mimo:restricted"
    d.result("nvmf_create_subsystem", {"nqn": other})
    d.result("nvmf_subsystem_add_listener", {"nqn": other, "listen_address": {
        "trtype": "TCP", "traddr": "127.0.0.1", "trsvcid": str(target.port)}})
    h = admin_session(target.port, DISCOVERY_NQN, HOSTNQN)
    cqe, cd = h.identify(1)
    assert cd[111] == 2 and cd[768:768 + len(DISCOVERY_NQN)].decode() == DISCOVERY_NQN
    cqe, hdr = h.get_log_page(0x70, 1024)
    genctr, numrec = struct.unpack_from("<QQ", hdr, 0)
    assert numrec == 1  # the restricted subsystem does not allow this host
    cqe, log = h.get_log_page(0x70, 1024 * (1 + numrec))
    e = log[1024:2048]
    assert e[0] == 3 and e[1] == 1 and e[2] == 2                 # TCP, IPv4, NVMe
    assert e[32:64].decode().strip() == str(target.port)
    assert e[256:512].rstrip(b"\0").decode() == NQN
    assert e[512:768].decode().strip() == "127.0.0.1"
    # An AER completes when the log changes; reading the log re-arms it.
    aer_cid = h.next_cid()
    h.send_raw(h.pdu_bytes(CMD, h.sqe(0x0C, aer_cid)))
    d.result("nvmf_subsystem_add_host", {"nqn": other, "host": HOSTNQN})
    pdu = h.recv_pdu()
    cqe = pdu.cqe()
    assert cqe["cid"] == aer_cid and cqe["cdw0"] == 0x70F002
    cqe, hdr = h.get_log_page(0x70, 1024)
    assert struct.unpack_from("<QQ", hdr, 0)[0] > genctr and struct.unpack_from("<Q", hdr, 8)[0] == 2
    h.close()


def test_namespace_hot_add_and_remove_raise_notices(target):
    d = target.daemon
    a = admin_session(target.port, NQN)
    aer = [a.next_cid() for _ in range(2)]
    for cid in aer:
        a.send_raw(a.pdu_bytes(CMD, a.sqe(0x0C, cid)))
    d.result("bdev_malloc_create", {"name": "Hot", "num_blocks": 4096, "block_size": 4096})
    assert d.result("nvmf_subsystem_add_ns", {"nqn": NQN, "namespace": {"bdev_name": "Hot"}}) == 2
    cqe = a.recv_pdu().cqe()
    assert cqe["cid"] in aer and cqe["cdw0"] == 0x040002
    cqe, log = a.get_log_page(0x04, 4096)
    assert struct.unpack_from("<II", log, 0) == (2, 0)
    assert struct.unpack_from("<III", a.identify(2)[1], 0) == (1, 2, 0)
    # Removing it: another notice, and the bdev can be deleted afterwards.
    d.result("nvmf_subsystem_remove_ns", {"nqn": NQN, "nsid": 2})
    cqe = a.recv_pdu().cqe()
    assert cqe["cdw0"] == 0x040002
    assert struct.unpack_from("<II", a.get_log_page(0x04, 4096)[1], 0) == (2, 0)
    d.result("bdev_malloc_delete", {"name": "Hot"})
    # Deleting a bdev that is a namespace removes the namespace first (SPDK's hot remove).
    d.result("bdev_malloc_create", {"name": "Hot2", "num_blocks": 64, "block_size": 512})
    nsid = d.result("nvmf_subsystem_add_ns", {"nqn": NQN, "namespace": {"bdev_name": "Hot2"}})
    d.result("bdev_malloc_delete", {"name": "Hot2"})
    ns = d.result("nvmf_get_subsystems", {"nqn": NQN})[0]["namespaces"]
    assert [n["nsid"] for n in ns] == [1] and nsid == 2
    # No request was outstanding: the notice waited, and the next request gets it at once.
    cqe = a.command(0x0C)[0]
    assert st(cqe) == OK and cqe["cdw0"] == 0x040002
    assert struct.unpack_from("<II", a.get_log_page(0x04, 4096)[1], 0) == (2, 0)
    # A fifth outstanding request is refused (AERL is 3: four at most).
    for _ in range(4):
        a.send_raw(a.pdu_bytes(CMD, a.sqe(0x0C, a.next_cid())))
    assert st(a.command(0x0C)[0]) == (1, 0x05)
    a.close()


HOST_B = "nqn.2014-08.org.nvmexpress:uuid:22222222-3333-4444-5555-666666666666"


def active_ns(h):
    cqe, data = h.identify(2)
    assert st(cqe) == OK
    ids = struct.unpack_from("<1024I", data)
    return [i for i in ids if i != 0]


def test_namespace_visibility_per_host(target):
    """--no-auto-visible and nvmf_ns_add_host / _remove_host (SPDK's): a namespace hidden from a
    host is absent from its active list, reads as zeroes in Identify, and its I/O gets Invalid
    Namespace; making it visible or hiding it again raises a namespace notice for that host
    only; the configuration keeps it."""
    d = target.daemon
    d.result("bdev_malloc_create", {"name": "Private", "num_blocks": 64, "block_size": 512})
    assert d.result("nvmf_subsystem_add_ns", {"nqn": NQN, "namespace": {
        "bdev_name": "Private", "no_auto_visible": True}}) == 2
    a = admin_session(target.port, NQN, HOSTNQN)
    b = admin_session(target.port, NQN, HOST_B)
    qa = io_session(target.port, a, NQN)
    assert active_ns(a) == [1] and active_ns(b) == [1]
    assert a.identify(0, nsid=2)[1] == b"\0" * 4096
    assert st(qa.read(2, 0, 1)[0]) == INVALID_NS
    # A sees it now: A's controller gets a notice, B's does not.
    aer_a, aer_b = a.next_cid(), b.next_cid()
    a.send_raw(a.pdu_bytes(CMD, a.sqe(0x0C, aer_a)))
    b.send_raw(b.pdu_bytes(CMD, b.sqe(0x0C, aer_b)))
    assert d.result("nvmf_ns_add_host", {"nqn": NQN, "nsid": 2, "host": HOSTNQN}) is True
    cqe = a.recv_pdu().cqe()
    assert cqe["cid"] == aer_a and cqe["cdw0"] == 0x040002
    assert struct.unpack_from("<II", a.get_log_page(0x04, 4096)[1], 0) == (2, 0)
    assert active_ns(a) == [1, 2] and active_ns(b) == [1]
    assert st(qa.write(2, 0, b"\x5a" * 512)[0]) == OK
    assert qa.read(2, 0, 1)[1] == b"\x5a" * 512
    # B's request is still outstanding: it heard nothing (a keep-alive is answered first).
    b.send_raw(b.pdu_bytes(CMD, b.sqe(0x18, b.next_cid())))
    assert b.recv_pdu().cqe()["cid"] != aer_b
    listed = d.result("nvmf_get_subsystems", {"nqn": NQN})[0]["namespaces"][1]
    assert listed["no_auto_visible"] is True and listed["hosts"] == [HOSTNQN]
    config = json.dumps(d.result("framework_get_config", {"name": "nvmf"}))
    assert '"no_auto_visible": true' in config and '"nvmf_ns_add_host"' in config
    # Hidden again: a notice, and I/O is refused.
    aer_a = a.next_cid()
    a.send_raw(a.pdu_bytes(CMD, a.sqe(0x0C, aer_a)))
    assert d.result("nvmf_ns_remove_host", {"nqn": NQN, "nsid": 2, "host": HOSTNQN}) is True
    assert a.recv_pdu().cqe()["cid"] == aer_a
    assert active_ns(a) == [1]
    assert st(qa.read(2, 0, 1)[0]) == INVALID_NS
    # What cannot be done says why.
    for params, says in (({"nsid": 1, "host": HOSTNQN}, "visible to every host"),
                         ({"nsid": 9, "host": HOSTNQN}, "not found"),
                         ({"nsid": 2, "host": "not-an-nqn"}, "Invalid")):
        with pytest.raises(RpcFailure) as e:
            d.result("nvmf_ns_add_host", {"nqn": NQN, **params})
        assert says in e.value.message
    for h in (qa, a, b):
        h.close()


def refused(d, method, params, says):
    with pytest.raises(RpcFailure) as e:
        d.result(method, params)
    assert says in e.value.message, e.value.message


def test_spdk_options_are_implemented_or_refused(daemons):
    """Every option of SPDK's nvmf RPCs is implemented, or refused unless it asks for nothing
    (false, 0, "") - never accepted and ignored. Options that only size what mimo does not have
    (RDMA's queues, SPDK's buffer caches) are accepted at any value, documented."""
    d = daemons()
    d.result("bdev_malloc_create", {"name": "Malloc0", "num_blocks": 2048, "block_size": 512})
    refused(d, "nvmf_create_transport", {"trtype": "TCP", "dif_insert_or_strip": True},
            "dif_insert_or_strip")
    refused(d, "nvmf_create_transport", {"trtype": "TCP", "sock_priority": 7}, "Invalid")
    # Implemented: KAS, a minimum KATO, masked optional commands; the rest sized or no meaning.
    assert d.result("nvmf_create_transport", {
        "trtype": "TCP", "kas": 5, "min_kato": 5000, "masked_oncs": 1, "sock_priority": 2,
        "acceptor_backlog": 64, "buf_cache_size": 8, "dif_insert_or_strip": False,
        "num_cqe": 4096, "zcopy": True, "iobuf_small_cache_size": 32, "abort_timeout_sec": 1,
        "acceptor_poll_rate": 10000, "control_msg_num": 32}) is True
    tr = d.result("nvmf_get_transports")[0]
    assert (tr["kas"], tr["min_kato"], tr["masked_oncs"]) == (5, 5000, 1)
    for params, says in (({"passthrough": True}, "passthrough"),
                         ({"admin_label": "rack-7"}, "admin_label"),
                         ({"enable_nssr": True}, "enable_nssr")):
        refused(d, "nvmf_create_subsystem", {"nqn": NQN + "x", **params}, says)
    d.result("nvmf_create_subsystem", {"nqn": NQN, "allow_any_host": True,
                                       "ana_reporting": False, "dmrsl": 0, "admin_label": ""})
    refused(d, "nvmf_subsystem_add_ns", {"nqn": NQN, "namespace": {
        "bdev_name": "Malloc0", "ptpl_file": "/tmp/ptpl"}}, "ptpl_file")
    refused(d, "nvmf_subsystem_add_ns", {"nqn": NQN, "namespace": {
        "bdev_name": "Malloc0", "nsid": 1, "anagrpid": 33}}, "ANA groups are 1 to 32")
    assert d.result("nvmf_subsystem_add_ns", {"nqn": NQN, "namespace": {
        "bdev_name": "Malloc0", "nsid": 1, "anagrpid": 1}}) == 1
    # PSKs (test_tls.py) and DH-HMAC-CHAP keys (test_auth.py) name keyring keys: an unknown
    # one is refused.
    refused(d, "nvmf_subsystem_add_host", {"nqn": NQN, "host": HOSTNQN, "psk": "key0"},
            "no key of that name")
    port = free_port()
    addr = {"trtype": "TCP", "traddr": "127.0.0.1", "trsvcid": str(port)}
    for params, says in (({"secure_channel": True, "sock_impl": "uring"}, "secure_channel"),
                         ({"sock_impl": "tls"}, "ssl"),
                         ({"ana_state": "inaccessible"}, "ANA reporting is disabled"),
                         ({"ana_state": "unknown"}, "non_optimized"),
                         ({"listen_address": dict(addr, priority=3)}, "priority")):
        refused(d, "nvmf_subsystem_add_listener",
                {"nqn": NQN, "listen_address": addr, **params}, says)
    d.result("nvmf_subsystem_add_listener", {"nqn": NQN, "listen_address": addr,
                                             "secure_channel": False, "sock_impl": "posix",
                                             "ana_state": "optimized"})
    # The implemented ones act: KAS 5 (500 ms), a 1 s KATO raised to 5 s, Compare masked.
    a = admin_session(port, NQN, kato=1000)
    cd = a.identify(1)[1]
    kas, = struct.unpack_from("<H", cd, 320)
    oncs, = struct.unpack_from("<H", cd, 520)
    assert kas == 5 and oncs & 1 == 0 and oncs & 0b1100 == 0b1100
    cqe = a.command(0x0A, cdws=(0x0F,))[0]  # Get Features: Keep Alive Timer
    assert st(cqe) == OK and cqe["cdw0"] == 5000
    q = io_session(port, a, NQN)
    assert st(q.command(0x05, nsid=1, data_out=b"\0" * 512, cdws=(0, 0, 0))[0]) == (0, 0x01)
    q.close()
    a.close()


def test_keep_alive_expiry_disconnects_a_silent_host(target):
    d = target.daemon
    quiet = admin_session(target.port, NQN, kato=1000)
    chatty = admin_session(target.port, NQN, kato=1000)
    # The chatty host sends a Keep Alive every 0.3 s - paced by waiting that long for the
    # quiet one's connection to end - until the target gives up on the quiet one.
    deadline = time.monotonic() + 30
    while not quiet.closed(timeout=0.3):
        assert st(chatty.command(0x18)[0]) == OK
        assert time.monotonic() < deadline, "the silent host was never disconnected"
    # Its controller goes once its queues are torn down (after the socket closed).
    wait_until(lambda: [c["cntlid"] for c in d.result("nvmf_subsystem_get_controllers",
                                                      {"nqn": NQN})] == [chatty.cntlid],
               10, "only the chatty host's controller to remain")
    chatty.close()


def test_controllers_listing_and_teardown_paths(target):
    d = target.daemon
    a = admin_session(target.port, NQN)
    q = io_session(target.port, a, NQN)
    c = d.result("nvmf_subsystem_get_controllers", {"nqn": NQN})
    assert len(c) == 1 and c[0]["hostnqn"] == HOSTNQN and c[0]["num_io_qpairs"] == 1
    # Fabrics Disconnect on the I/O queue: answered, then that queue (only) closes.
    assert st(q.disconnect()) == OK
    assert q.closed()
    assert d.result("nvmf_subsystem_get_controllers", {"nqn": NQN})[0]["num_io_qpairs"] == 0
    assert st(a.identify(1)[0]) == OK
    q.close()
    # Removing the listener disconnects hosts that came through it.
    d.result("nvmf_subsystem_remove_listener", {"nqn": NQN, "listen_address": {
        "trtype": "TCP", "traddr": "127.0.0.1", "trsvcid": str(target.port)}})
    assert a.closed()
    with pytest.raises(OSError):
        Host(target.port)


def test_bdev_delete_with_zero_copy_reads_unsent(target):
    """Reads of a malloc bdev go onto the socket from the bdev's own memory, with no copy in
    between. Deleting the bdev while that data still waits to be sent (the host reads nothing
    for a while, 8 MiB of reads queued behind a full socket) must not free the memory under
    the sends: every read arrives with what was written, then the deletion completes."""
    d = target.daemon
    a = admin_session(target.port, NQN)
    q = io_session(target.port, a, NQN)
    size, count = 128 * 1024, 64
    data = [os.urandom(size) for _ in range(count)]
    for i, chunk in enumerate(data):
        assert st(q.write(1, i * 256, chunk)[0]) == OK
    cids = []
    for i in range(count):
        cid = q.next_cid()
        cids.append(cid)
        sqe = q.sqe(0x02, cid, 1, sgl=(0, size, SGL_TRANSPORT), cdw10=i * 256, cdw12=255)
        q.send_raw(q.pdu_bytes(CMD, sqe))
    # The target has read every command and executed every read: their data waits to be
    # sent behind a socket the host does not read.
    wait_until(lambda: d.result("bdev_get_iostat", {"name": "Malloc0"})["bdevs"][0]
               ["num_read_ops"] >= count, what="the reads to execute")
    done = []
    deleter = threading.Thread(
        target=lambda: done.append(d.result("bdev_malloc_delete", {"name": "Malloc0"})))
    deleter.start()
    # The deletion has begun (the bdev is no longer listed) while the data is still unsent.
    wait_until(lambda: "Malloc0" not in {b["name"] for b in d.result("bdev_get_bdevs")},
               what="the deletion to begin")
    got, finished = {cid: bytearray() for cid in cids}, {}
    while len(finished) < count:
        pdu = q.recv_pdu()
        if pdu.type == C2H_DATA:
            cccid, _, datao, datal = struct.unpack_from("<HHII", pdu.header, 8)
            assert datao == len(got[cccid]) and datal == len(pdu.data)
            got[cccid] += pdu.data
            if pdu.flags & F_SUCCESS:
                finished[cccid] = OK
        else:
            assert pdu.type == RSP, f"unexpected PDU type {pdu.type}"
            cqe = pdu.cqe()
            finished[cqe["cid"]] = st(cqe)
    for i, cid in enumerate(cids):
        # A read may fail once its namespace is going (not here: each was in before the
        # delete), but never deliver other bytes than those written.
        assert finished[cid] == OK and bytes(got[cid]) == data[i], f"read {i}"
    deleter.join(30)
    assert done == [True]


def test_delete_subsystem_with_hosts_and_io(target):
    d = target.daemon
    a = admin_session(target.port, NQN)
    q = io_session(target.port, a, NQN)
    stop = threading.Event()
    errors = []
    writes = [0]
    cut = [False]

    def load():
        try:
            while not stop.is_set():
                q.write(1, 0, os.urandom(8192), icd=False)
                writes[0] += 1
        except (Closed, OSError):
            cut[0] = True  # the deletion ended the queue under the writes
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    t = threading.Thread(target=load)
    t.start()
    wait_until(lambda: writes[0] >= 5 or errors, 30, "writes to be flowing")
    assert d.result("nvmf_delete_subsystem", {"nqn": NQN}) is True
    # The deletion ends the queue under the writes: the loop stops by itself.
    t.join(30)
    stop.set()
    assert not errors
    assert cut[0] and not t.is_alive(), "the host's I/O queue outlived its subsystem"
    assert a.closed()
    d.result("bdev_malloc_delete", {"name": "Malloc0"})


# --- bad input ----------------------------------------------------------------------------

def term_req(h):
    """The C2HTermReq the target sent, then the connection closes: (fes, fei)."""
    pdu = h.recv_pdu()
    assert pdu.type == C2H_TERM, f"expected C2HTermReq, got type {pdu.type}"
    fes, fei = struct.unpack_from("<HI", pdu.header, 8)
    assert h.closed()
    return fes, fei


def bad_wrong_hlen(h):
    raw = bytearray(h.pdu_bytes(CMD, h.sqe(0x06, 1, cdw10=1)))
    raw[2] = 24
    h.send_raw(bytes(raw))
    return term_req(h) == (1, 2)


def bad_unknown_type(h):
    h.send_raw(struct.pack("<BBBBI", 0x0F, 0, 24, 0, 24) + b"\0" * 16)
    return term_req(h) == (1, 0)


def bad_controller_pdu_from_host(h):
    h.send_raw(struct.pack("<BBBBI", RSP, 0, 24, 0, 24) + b"\0" * 16)
    return term_req(h) == (1, 0)


def bad_plen_short(h):
    raw = bytearray(h.pdu_bytes(CMD, h.sqe(0x06, 1, cdw10=1)))
    struct.pack_into("<I", raw, 4, 40)
    h.send_raw(bytes(raw))
    return term_req(h) == (1, 4)


def bad_oversized_icd(h):
    data = os.urandom(8192)
    h.send_raw(h.pdu_bytes(CMD, h.sqe(0x01, 1, nsid=1, cdw12=15, sgl=(0, 8192, SGL_ICD)), data))
    return term_req(h)[0] == 5


def bad_h2c_wrong_ttag(h):
    cid = h.next_cid()
    h.send_raw(h.pdu_bytes(CMD, h.sqe(0x01, cid, nsid=1, cdw12=15, sgl=(0, 8192, SGL_TRANSPORT))))
    pdu = h.recv_pdu()
    assert pdu.type == R2T
    cccid, ttag, r2to, r2tl = struct.unpack_from("<HHII", pdu.header, 8)
    h.send_raw(h.pdu_bytes(H2C_DATA, struct.pack("<HHII4x", cid, ttag + 7, 0, 8192),
                           os.urandom(8192), flags=F_LAST))
    return term_req(h) == (1, 10)


def bad_h2c_out_of_range(h):
    cid = h.next_cid()
    h.send_raw(h.pdu_bytes(CMD, h.sqe(0x01, cid, nsid=1, cdw12=15, sgl=(0, 8192, SGL_TRANSPORT))))
    pdu = h.recv_pdu()
    _, ttag, _, _ = struct.unpack_from("<HHII", pdu.header, 8)
    h.send_raw(h.pdu_bytes(H2C_DATA, struct.pack("<HHII4x", cid, ttag, 4096, 8192),
                           os.urandom(8192), flags=F_LAST))
    return term_req(h)[0] == 4


def bad_pfv(h):
    body = struct.pack("<HBBI", 1, 0, 0, 0) + b"\0" * 112
    h.send_raw(h.pdu_bytes(IC_REQ, body, hdgst=False, ddgst=False))
    return term_req(h) == (6, 8)


def bad_command_before_icreq(h):
    h.send_raw(h.pdu_bytes(CMD, h.sqe(0x06, 1, cdw10=1)))
    return term_req(h)[0] == 2


def bad_second_icreq(h):
    body = struct.pack("<HBBI", 0, 0, 0, 0) + b"\0" * 112
    h.send_raw(h.pdu_bytes(IC_REQ, body))
    return term_req(h)[0] == 2


def bad_header_digest(h):
    raw = bytearray(h.pdu_bytes(CMD, h.sqe(0x06, 1, cdw10=1)))
    raw[72] ^= 0xFF
    h.send_raw(bytes(raw))
    return term_req(h)[0] == 3


def bad_data_digest(h):
    """A data digest error is not fatal: the command fails with a transient transport error."""
    raw = bytearray(h.pdu_bytes(CMD, h.sqe(0x01, 9, nsid=1, cdw12=7, sgl=(0, 4096, SGL_ICD)),
                                os.urandom(4096)))
    raw[-1] ^= 0xFF
    h.send_raw(bytes(raw))
    cqe = h.recv_pdu().cqe()
    return cqe["cid"] == 9 and st(cqe) == TRANSIENT and st(h.read(1, 0, 1)[0]) == OK


def bad_command_before_connect(h):
    cqe = h.identify(1)[0]
    return st(cqe) == SEQUENCE_ERROR and st(h.connect(NQN, HOSTNQN)) == OK


def bad_truncated_then_close(h):
    h.send_raw(h.pdu_bytes(CMD, h.sqe(0x06, 1, cdw10=1))[:30])
    h.close()
    return True


def bad_capsule_data_cut_short(h):
    raw = h.pdu_bytes(CMD, h.sqe(0x01, 1, nsid=1, cdw12=7, sgl=(0, 4096, SGL_ICD)),
                      os.urandom(4096))
    h.send_raw(raw[:72 + 100])
    h.close()
    return True


def bad_queue_overflow(h):
    # More commands than the queue holds: writes whose R2Ts are never answered stay open.
    for _ in range(129):
        cid = h.next_cid()
        h.send_raw(h.pdu_bytes(CMD, h.sqe(0x01, cid, nsid=1, cdw12=15,
                                          sgl=(0, 8192, SGL_TRANSPORT))))
    while True:
        pdu = h.recv_pdu()
        if pdu.type == C2H_TERM:
            break
        assert pdu.type == R2T
    return h.closed()


# where: "io" (an I/O queue of a connected controller), "ic" (after ICReq, before Connect),
# "raw" (a bare TCP connection).
BAD = {
    "wrong_hlen": (bad_wrong_hlen, "io", {}),
    "unknown_type": (bad_unknown_type, "io", {}),
    "controller_pdu_from_host": (bad_controller_pdu_from_host, "io", {}),
    "plen_short": (bad_plen_short, "io", {}),
    "oversized_icd": (bad_oversized_icd, "io", {}),
    "h2c_wrong_ttag": (bad_h2c_wrong_ttag, "io", {}),
    "h2c_out_of_range": (bad_h2c_out_of_range, "io", {}),
    "header_digest": (bad_header_digest, "io", {"hdgst": True}),
    "data_digest": (bad_data_digest, "io", {"ddgst": True}),
    "truncated_then_close": (bad_truncated_then_close, "io", {}),
    "capsule_data_cut_short": (bad_capsule_data_cut_short, "io", {}),
    "queue_overflow": (bad_queue_overflow, "io", {}),
    "pfv": (bad_pfv, "raw", {}),
    "command_before_icreq": (bad_command_before_icreq, "raw", {}),
    "second_icreq": (bad_second_icreq, "ic", {}),
    "command_before_connect": (bad_command_before_connect, "ic", {}),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_gets_the_specified_answer_and_others_go_on(target, case):
    good = admin_session(target.port, NQN)
    gq = io_session(target.port, good, NQN)
    payload = os.urandom(4096)
    assert st(gq.write(1, 64, payload)[0]) == OK
    fn, where, digests = BAD[case]
    admin = None
    if where == "io":
        admin = admin_session(target.port, NQN, **digests)
        h = io_session(target.port, admin, NQN, **digests)
    else:
        h = Host(target.port)
        if where == "ic":
            h.icreq()
    assert fn(h)
    # The good host never noticed.
    cqe, back = gq.read(1, 64, 8)
    assert st(cqe) == OK and back == payload
    for c in (h, admin, gq, good):
        if c is not None:
            c.close()
    # And once every host is gone, so is every queue pair the target had.
    wait_until(lambda: target.daemon.result("nvmf_get_transports")[0]["num_qpairs"] == 0, 10,
               "every queue pair to be freed (none left behind)")


def test_garbage_connections_do_not_hurt(target):
    for junk in (b"", b"\x00" * 7, os.urandom(64), os.urandom(4096), b"GET / HTTP/1.0\r\n\r\n"):
        s = socket.create_connection(("127.0.0.1", target.port))
        s.sendall(junk)
        s.close()
    a = admin_session(target.port, NQN)
    assert st(a.identify(1)[0]) == OK
    a.close()


# --- events ---------------------------------------------------------------------------------

def test_events_reach_a_real_receiver(daemons, receiver):
    r = receiver()
    port = free_port()
    t = NvmfTarget.start(daemons, port, env={"MIMO_NOTIFY_URL": r.url})
    a = admin_session(port, NQN)
    local = a.sock.getsockname()
    a.close()
    # The host's own disconnect, not the deletion, ends its controller.
    wait_until(lambda: t.daemon.result("nvmf_subsystem_get_controllers", {"nqn": NQN}) == [],
               10, "the controller to go with its host")
    t.daemon.result("nvmf_delete_subsystem", {"nqn": NQN})
    want = ["nvmf_subsystem_created", "nvmf_listener_added", "nvmf_host_connected",
            "nvmf_host_disconnected", "nvmf_subsystem_deleted"]

    def events():
        got = [q.json() for q in r.requests]
        return got if all(w in [e["event"] for e in got] for w in want) else None
    got = wait_until(events, 10, "every event at the receiver")
    by = {e["event"]: e["payload"] for e in got}
    assert by["nvmf_subsystem_created"] == {"nqn": NQN}
    assert by["nvmf_listener_added"] == {"nqn": NQN, "trtype": "TCP", "adrfam": "IPv4",
                                         "traddr": "127.0.0.1", "trsvcid": str(port)}
    assert by["nvmf_host_connected"] == {"subnqn": NQN, "hostnqn": HOSTNQN,
                                         "traddr": "127.0.0.1", "trsvcid": str(local[1]),
                                         "cntlid": 1}
    assert by["nvmf_host_disconnected"] == by["nvmf_host_connected"]
    assert by["nvmf_subsystem_deleted"] == {"nqn": NQN}


# --- configuration ----------------------------------------------------------------------------

def test_save_config_replays_into_a_new_daemon(daemons, tmp_path):
    port = free_port()
    t = NvmfTarget.start(daemons, port)
    t.daemon.result("nvmf_subsystem_add_host", {"nqn": NQN, "host": HOSTNQN})
    cfg = t.daemon.saved_config()
    t.stop()
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps(cfg))
    d = daemons("-c", str(path))
    s = d.result("nvmf_get_subsystems", {"nqn": NQN})[0]
    assert s["hosts"] == [{"nqn": HOSTNQN}] and s["namespaces"][0]["bdev_name"] == "Malloc0"
    assert s["listen_addresses"][0]["trsvcid"] == str(port)
    a = admin_session(port, NQN)
    assert st(a.identify(1)[0]) == OK
    a.close()


def test_stale_target_of_a_crashed_run_is_cleaned_up(daemons):
    port = free_port()
    t = NvmfTarget.start(daemons, port)
    t.daemon.proc.kill()  # as if the test run died: the PID file stays
    t.daemon.proc.wait()
    assert cleanup_stale(port) is False  # already dead: nothing to kill, file removed
    t2 = NvmfTarget.start(daemons, port)
    assert admin_session(port, NQN)
    t2.stop()


# --- the data path under pressure ---------------------------------------------------------

def pipeline(h, cmds):
    """Send every command first, then serve R2Ts and collect results, as a deep queue does.
    cmds: (opc, nsid, lba, nblocks, data_out or None). Returns {cid: (cqe, data)}."""
    pending = {}
    for opc, nsid, lba, n, out in cmds:
        cid = h.next_cid()
        length = n * 512
        h.send_raw(h.pdu_bytes(CMD, h.sqe(opc, cid, nsid, cdw10=lba, cdw12=n - 1,
                                          sgl=(0, length, SGL_TRANSPORT))))
        pending[cid] = (out, bytearray())
    done = {}
    while len(done) < len(pending):
        pdu = h.recv_pdu()
        if pdu.type == R2T:
            cid, ttag, off, length = struct.unpack_from("<HHII", pdu.header, 8)
            h.h2c_data(cid, ttag, off, pending[cid][0][off:off + length])
        elif pdu.type == 7:  # C2HData
            cid, _, off, length = struct.unpack_from("<HHII", pdu.header, 8)
            buf = pending[cid][1]
            buf.extend(b"\0" * max(0, off + length - len(buf)))
            buf[off:off + length] = pdu.data
        else:
            assert pdu.type == RSP, pdu.type
            cqe = pdu.cqe()
            done[cqe["cid"]] = (cqe, bytes(pending[cqe["cid"]][1]))
    return done


def test_deep_queue_waits_for_large_buffers(daemons):
    port = free_port()
    t = NvmfTarget.start(daemons, port, transport={"num_shared_buffers": 2})
    a = admin_session(port, NQN)
    q = io_session(port, a, NQN)
    blobs = [os.urandom(64 * 1024) for _ in range(8)]
    writes = pipeline(q, [(0x01, 1, i * 128, 128, b) for i, b in enumerate(blobs)])
    assert all(st(c) == OK for c, _ in writes.values())
    reads = pipeline(q, [(0x02, 1, i * 128, 128, None) for i in range(8)])
    got = [d for _, (c, d) in sorted(reads.items())]
    assert got == blobs
    assert t.daemon.result("nvmf_get_transports")[0]["shared_buffers_allocated"] <= 2
    q.close()
    a.close()


def test_bdev_errors_reach_the_host(target):
    d = target.daemon
    d.result("bdev_malloc_create", {"name": "Base", "num_blocks": 2048, "block_size": 512})
    d.result("bdev_error_create", {"base_name": "Base"})
    assert d.result("nvmf_subsystem_add_ns", {"nqn": NQN,
                                              "namespace": {"bdev_name": "EE_Base"}}) == 2
    a = admin_session(target.port, NQN)
    q = io_session(target.port, a, NQN)
    d.result("bdev_error_inject_error", {"name": "EE_Base", "io_type": "read",
                                         "error_type": "failure", "num": 1})
    cqe = q.read(2, 0, 8)[0]
    sct, sc, dnr = status_of(cqe["status"])
    assert (sct, sc, dnr) == (0, 0x06, False)  # internal error, may be retried
    assert st(q.read(2, 0, 8)[0]) == OK
    # Out of memory below is not the host's problem: the target tries again.
    d.result("bdev_error_inject_error", {"name": "EE_Base", "io_type": "write",
                                         "error_type": "nomem", "num": 3})
    data = os.urandom(4096)
    assert st(q.write(2, 16, data)[0]) == OK
    assert q.read(2, 16, 8)[1] == data
    q.close()
    a.close()


def test_namespace_removed_under_load(target):
    d = target.daemon
    a = admin_session(target.port, NQN)
    q = io_session(target.port, a, NQN)
    statuses = []
    stop = threading.Event()

    def load():
        while not stop.is_set():
            statuses.append(st(q.write(1, 0, os.urandom(4096), icd=False)[0]))

    th = threading.Thread(target=load)
    th.start()
    wait_until(lambda: statuses.count(OK) >= 5, 30, "writes to succeed")
    d.result("nvmf_subsystem_remove_ns", {"nqn": NQN, "nsid": 1})
    wait_until(lambda: statuses.count(INVALID_NS) >= 3, 30, "writes to see the namespace gone")
    stop.set()
    th.join()
    assert statuses[0] == OK and statuses[-1] == INVALID_NS
    assert set(statuses) == {OK, INVALID_NS}
    # Its bdev is free again once the in-flight I/O drained.
    d.result("bdev_malloc_delete", {"name": "Malloc0"})
    q.close()
    a.close()
