"""The NVMe-oF target's views and multipath features, driven by SPDK's rpc.py where parameters
matter and checked from a host written from the specification (nvme_tcp_host.py):
nvmf_subsystem_get_listeners and nvmf_get_stats (their shapes and what they count), discovery
referrals (the log page entries a host gets, the notice, save_config), and Asymmetric Namespace
Access (Identify fields, the ANA log page per path, the ANA change notice, Path Related Status
for I/O through an inaccessible path, save_config and its replay)."""
import json
import os
import struct
import subprocess

import pytest

from conftest import BIN, SLOW, RpcFailure, clean_env, free_port, wait_until
from nvme_tcp_host import CMD, DISCOVERY_NQN, Host, admin_session, io_session, status_of
from nvmf_target import NQN, NvmfTarget, wait_listening

RPC_PY = os.environ.get("SPDK_RPC_PY", "/work/spdk-peer/scripts/rpc.py")
HOSTNQN = "nqn.2014-08.org.nvmexpress:uuid:11111111-2222-3333-4444-555555555555"
ANA_NQN = "nqn.2016-06.io.mimo:ana"
OPTIMIZED, NON_OPTIMIZED, INACCESSIBLE = 1, 2, 3

needs_rpc_py = pytest.mark.skipif(not os.path.exists(RPC_PY),
                                  reason="SPDK's rpc.py not found (set SPDK_RPC_PY)")


def rpc_py(d, *args, ok=True):
    """SPDK's own client against mimo_tgt; its parsed answer (or the failed process)."""
    env = dict(os.environ, PYTHONPATH=os.path.join(os.path.dirname(os.path.dirname(RPC_PY)),
                                                   "python"))
    p = subprocess.run(["/usr/bin/python3", RPC_PY, "-s", d.sock, *map(str, args)],
                       capture_output=True, text=True, timeout=60, env=env)
    if not ok:
        assert p.returncode != 0, p.stdout
        return p.stdout + p.stderr  # rpc.py prints the error response on stdout
    assert p.returncode == 0, p.stderr
    out = p.stdout.strip()
    return json.loads(out) if out.startswith(("[", "{")) else out


def st(cqe):
    return status_of(cqe["status"])[:2]


def listen(port):
    return {"trtype": "TCP", "adrfam": "IPv4", "traddr": "127.0.0.1", "trsvcid": str(port)}


@pytest.fixture
def target(daemons):
    t = NvmfTarget.start(daemons, free_port())
    yield t
    t.stop()


# --- nvmf_subsystem_get_listeners, nvmf_get_stats -------------------------------------------

@needs_rpc_py
def test_listeners_and_stats_as_spdk_shows_them(target):
    d = target.daemon
    assert rpc_py(d, "nvmf_subsystem_get_listeners", NQN) == [{"address": listen(target.port)}]
    p = rpc_py(d, "nvmf_subsystem_get_listeners", "nqn.2016-06.io.mimo:none", ok=False)
    assert "not found" in p
    stats = rpc_py(d, "nvmf_get_stats")
    assert stats["tick_rate"] > 0
    # One poll group per reactor of the target (-m 0x3), named as SPDK's threads.
    assert [g["name"] for g in stats["poll_groups"]] == [
        "nvmf_tgt_poll_group_000", "nvmf_tgt_poll_group_001"]
    assert set(stats["poll_groups"][0]) == {
        "name", "admin_qpairs", "io_qpairs", "current_admin_qpairs", "current_io_qpairs",
        "current_unassociated_qpairs", "pending_bdev_io", "completed_nvme_io", "transports"}
    assert stats["poll_groups"][0]["transports"] == [{"trtype": "TCP"}]

    def total(key):
        return sum(g[key] for g in d.result("nvmf_get_stats")["poll_groups"])

    assert total("admin_qpairs") == total("io_qpairs") == total("completed_nvme_io") == 0
    # A connection that has not sent Connect yet is unassociated.
    bare = Host(target.port)
    bare.icreq()
    wait_until(lambda: total("current_unassociated_qpairs") == 1,
               what="the accepted connection to be counted")
    bare.close()
    wait_until(lambda: total("current_unassociated_qpairs") == 0,
               what="the closed connection to leave the count")
    a = admin_session(target.port, NQN)
    q = io_session(target.port, a, NQN)
    for lba in range(5):
        assert st(q.write(1, lba, bytes([lba]) * 512)[0]) == (0, 0)
    assert st(q.read(1, 0, 1)[0]) == (0, 0)
    assert (total("admin_qpairs"), total("io_qpairs")) == (1, 1)
    assert (total("current_admin_qpairs"), total("current_io_qpairs")) == (1, 1)
    assert total("current_unassociated_qpairs") == 0
    assert total("completed_nvme_io") == 6  # I/O queue commands only (Connect is the admin's)
    q.close()
    a.close()
    wait_until(lambda: total("current_admin_qpairs") + total("current_io_qpairs") == 0,
               what="the closed queue pairs leave the current counts")
    assert (total("admin_qpairs"), total("io_qpairs")) == (1, 1)


def test_mdns_pull_registration_is_refused(tgt):
    for method in ("nvmf_publish_mdns_prr", "nvmf_stop_mdns_prr"):
        with pytest.raises(RpcFailure) as e:
            tgt.result(method)
        assert e.value.code == -95 and "mDNS" in e.value.message


# --- discovery referrals --------------------------------------------------------------------

def discovery_log(h):
    hdr = h.get_log_page(0x70, 1024)[1]
    genctr, numrec = struct.unpack_from("<QQ", hdr, 0)
    log = h.get_log_page(0x70, 1024 * (1 + numrec))[1]
    return genctr, [log[1024 * (i + 1):1024 * (i + 2)] for i in range(numrec)]


@needs_rpc_py
def test_referrals_in_the_discovery_log_and_saved(target, daemons, tmp_path):
    d = target.daemon
    h = admin_session(target.port, DISCOVERY_NQN, HOSTNQN)
    genctr, entries = discovery_log(h)
    assert len(entries) == 1  # the subsystem's listener
    aer = h.next_cid()
    h.send_raw(h.pdu_bytes(CMD, h.sqe(0x0C, aer)))
    rpc_py(d, "nvmf_discovery_add_referral", "-t", "tcp", "-a", "10.0.0.7", "-s", "4420")
    cqe = h.recv_pdu().cqe()
    assert cqe["cid"] == aer and cqe["cdw0"] == 0x70F002  # discovery log change notice
    rpc_py(d, "nvmf_discovery_add_referral", "-t", "tcp", "-a", "10.0.0.8", "-s", "4421",
           "-f", "ipv4", "-n", "nqn.2016-06.io.mimo:elsewhere", "-k")
    # The same one again changes nothing, as SPDK.
    rpc_py(d, "nvmf_discovery_add_referral", "-t", "tcp", "-a", "10.0.0.7", "-s", "4420")
    refs = rpc_py(d, "nvmf_discovery_get_referrals")
    assert refs == [
        {"address": {"trtype": "TCP", "adrfam": "IPv4", "traddr": "10.0.0.7",
                     "trsvcid": "4420"},
         "secure_channel": False, "subnqn": DISCOVERY_NQN},
        {"address": {"trtype": "TCP", "adrfam": "IPv4", "traddr": "10.0.0.8",
                     "trsvcid": "4421"},
         "secure_channel": True, "subnqn": "nqn.2016-06.io.mimo:elsewhere"}]
    genctr2, entries = discovery_log(h)
    assert genctr2 > genctr and len(entries) == 3
    ref, sub = entries[1], entries[2]
    # TCP, IPv4; SUBTYPE 1 (a discovery service) / 2 (an NVM subsystem); TREQ: secure channel
    # not required (10b) / required (01b); the dynamic controller model.
    assert ref[0:4] == bytes([3, 1, 1, 2]) and sub[0:4] == bytes([3, 1, 2, 1])
    assert struct.unpack_from("<H", ref, 6)[0] == 0xFFFF
    assert ref[32:64].decode().strip() == "4420" and ref[512:768].decode().strip() == "10.0.0.7"
    assert ref[256:512].rstrip(b"\0").decode() == DISCOVERY_NQN
    assert sub[256:512].rstrip(b"\0").decode() == "nqn.2016-06.io.mimo:elsewhere"
    # mimo's own initiator reads them from the log as well.
    p = subprocess.run([os.path.join(BIN, "mimo_identify"), "-r",
                        f"trtype:tcp adrfam:IPv4 traddr:127.0.0.1 trsvcid:{target.port}",
                        "--json"], capture_output=True, text=True, timeout=60 * SLOW,
                       env=clean_env())
    assert p.returncode == 0, p.stderr
    seen = json.loads(p.stdout)["discovery_log"]["entries"]
    assert [(e["subtype_name"], e["traddr"], e["trsvcid"]) for e in seen[1:]] == [
        ("Referral to a discovery service", "10.0.0.7", "4420"),
        ("NVM Subsystem", "10.0.0.8", "4421")]
    # Errors: no service ID (SPDK requires one), an unknown referral, a bad NQN.
    p = rpc_py(d, "nvmf_discovery_add_referral", "-t", "tcp", "-a", "10.0.0.9", ok=False)
    assert "Service ID is required" in p
    p = rpc_py(d, "nvmf_discovery_remove_referral", "-t", "tcp", "-a", "10.0.0.9", "-s", "1",
               ok=False)
    assert "Unable to remove a referral" in p
    with pytest.raises(RpcFailure) as e:
        d.result("nvmf_discovery_add_referral", {"address": listen(1), "subnqn": "bad"})
    assert e.value.code == -32602
    # save_config keeps them; a target started from it lists them again.
    saved = rpc_py(d, "save_config")
    nvmf = [s for s in saved["subsystems"] if s["subsystem"] == "nvmf"][0]
    assert [c["method"] for c in nvmf["config"]][:3] == [
        "nvmf_create_transport", "nvmf_discovery_add_referral", "nvmf_discovery_add_referral"]
    # (Only those: the subsystem's listener port is this target's.)
    nvmf["config"] = nvmf["config"][:3]
    cfg = tmp_path / "referrals.json"
    cfg.write_text(json.dumps(saved))
    again = daemons("-c", cfg, name="again")
    assert again.result("nvmf_discovery_get_referrals") == refs
    # Removing one: gone from the log.
    rpc_py(d, "nvmf_discovery_remove_referral", "-t", "tcp", "-a", "10.0.0.8", "-s", "4421",
           "-n", "nqn.2016-06.io.mimo:elsewhere")
    assert len(discovery_log(h)[1]) == 2
    assert len(rpc_py(d, "nvmf_discovery_get_referrals")) == 1
    h.close()


# --- Asymmetric Namespace Access ------------------------------------------------------------

@pytest.fixture
def ana(daemons):
    """mimo_tgt with a subsystem made by rpc.py --ana-reporting: Malloc0 as namespace 1,
    Malloc1 as namespace 2 in ANA group 3, two listeners (two paths)."""
    d = daemons("-m", "0x3", name="ana")
    ports = [free_port(), free_port()]
    rpc_py(d, "bdev_malloc_create", "-b", "Malloc0", 8, 512)
    rpc_py(d, "bdev_malloc_create", "-b", "Malloc1", 8, 512)
    rpc_py(d, "nvmf_create_transport", "-t", "tcp")
    rpc_py(d, "nvmf_create_subsystem", ANA_NQN, "-a", "-r", "-m", 4)
    rpc_py(d, "nvmf_subsystem_add_ns", ANA_NQN, "Malloc0")
    rpc_py(d, "nvmf_subsystem_add_ns", ANA_NQN, "Malloc1", "-a", 3)
    for port in ports:
        rpc_py(d, "nvmf_subsystem_add_listener", ANA_NQN, "-t", "tcp", "-a", "127.0.0.1",
               "-s", port)
        assert wait_listening(port)
    d.ports = ports
    return d


def ana_log(h, rgo=False, rae=False):
    """The ANA log page: (change count, [(group, change count, state, [nsids])])."""
    lsp = 1 << 8 if rgo else 0
    cdw10 = 0x0C | lsp | (0x8000 if rae else 0) | ((4096 // 4 - 1) << 16)
    cqe, log = h.command(0x02, nsid=0xFFFFFFFF, data_in=4096, cdws=(cdw10, 0, 0, 0))
    assert st(cqe) == (0, 0), cqe
    chgcnt, ngrps = struct.unpack_from("<QH", log, 0)
    groups, off = [], 16
    for _ in range(ngrps):
        grp, n, gchg, state = struct.unpack_from("<IIQB", log, off)
        nsids = list(struct.unpack_from(f"<{n}I", log, off + 32))
        groups.append((grp, gchg, state & 0xF, nsids))
        off += 32 + 4 * n
    return chgcnt, groups


def test_ana_identify_log_notice_and_path_errors(ana):
    d = ana
    a = admin_session(d.ports[1], ANA_NQN)
    cd = a.identify(1)[1]
    assert cd[76] & 0x8                                   # CMIC bit 3: ANA reporting
    assert struct.unpack_from("<I", cd, 92)[0] & (1 << 11)  # OAES: ANA change notices
    assert cd[342] > 0 and cd[343] & 0x7 == 0x7           # ANATT; ANACAP: the three states
    assert struct.unpack_from("<II", cd, 344) == (4, 4)   # ANAGRPMAX, NANAGRPID
    assert struct.unpack_from("<I", cd, 540)[0] == 4      # MNAN
    assert struct.unpack_from("<I", a.identify(0, nsid=1)[1], 92)[0] == 1  # ANAGRPID
    assert struct.unpack_from("<I", a.identify(0, nsid=2)[1], 92)[0] == 3
    assert ana_log(a) == (0, [(1, 0, OPTIMIZED, [1]), (3, 0, OPTIMIZED, [2])])
    assert ana_log(a, rgo=True) == (0, [(1, 0, OPTIMIZED, []), (3, 0, OPTIMIZED, [])])
    q = io_session(d.ports[1], a, ANA_NQN)
    assert st(q.write(1, 0, b"\xA5" * 512)[0]) == (0, 0)
    # Group 1 inaccessible through this path: a notice, the log says so, I/O to namespace 1
    # gets Path Related Status / ANA Inaccessible without Do Not Retry; namespace 2 (group 3)
    # still works.
    aer = a.next_cid()
    a.send_raw(a.pdu_bytes(CMD, a.sqe(0x0C, aer)))
    rpc_py(d, "nvmf_subsystem_listener_set_ana_state", ANA_NQN, "-n", "inaccessible",
           "-t", "tcp", "-a", "127.0.0.1", "-s", d.ports[1], "-g", 1)
    cqe = a.recv_pdu().cqe()
    assert cqe["cid"] == aer and cqe["cdw0"] == 0x0C0302  # notice, ANA change, LID 0Ch
    assert ana_log(a, rae=True) == (1, [(1, 1, INACCESSIBLE, [1]), (3, 1, OPTIMIZED, [2])])
    cqe, _ = q.read(1, 0, 1)
    assert status_of(cqe["status"]) == (3, 0x02, False)
    assert st(q.read(2, 0, 1)[0]) == (0, 0)
    # The other path is still optimized and serves namespace 1.
    b = admin_session(d.ports[0], ANA_NQN)
    qb = io_session(d.ports[0], b, ANA_NQN)
    cqe, data = qb.read(1, 0, 1)
    assert st(cqe) == (0, 0) and data == b"\xA5" * 512
    assert ana_log(b)[1][0] == (1, 0, OPTIMIZED, [1])
    listeners = rpc_py(d, "nvmf_subsystem_get_listeners", ANA_NQN)
    assert listeners[1]["address"]["trsvcid"] == str(d.ports[1])
    assert listeners[1]["ana_states"] == [
        {"ana_group": 1, "ana_state": "inaccessible"}, {"ana_group": 2, "ana_state": "optimized"},
        {"ana_group": 3, "ana_state": "optimized"}, {"ana_group": 4, "ana_state": "optimized"}]
    # Read with RAE the notice stayed masked; read without it, the next change is told.
    ana_log(a)
    aer = a.next_cid()
    a.send_raw(a.pdu_bytes(CMD, a.sqe(0x0C, aer)))
    rpc_py(d, "nvmf_subsystem_listener_set_ana_state", ANA_NQN, "-n", "non_optimized",
           "-t", "tcp", "-a", "127.0.0.1", "-s", d.ports[1])
    assert a.recv_pdu().cqe()["cdw0"] == 0x0C0302
    assert ana_log(a) == (2, [(1, 2, NON_OPTIMIZED, [1]), (3, 2, NON_OPTIMIZED, [2])])
    assert st(q.read(1, 0, 1)[0]) == (0, 0)
    # Moving namespace 2 into group 1 changes every path's log.
    rpc_py(d, "nvmf_subsystem_set_ns_ana_group", ANA_NQN, 2, 1)
    assert ana_log(b)[1] == [(1, 1, OPTIMIZED, [1, 2])]
    for h in (q, a, qb, b):
        h.close()


def test_ana_errors_and_what_is_refused(ana, target):
    d = ana
    # Without --ana-reporting a path is optimized and stays so.
    p = rpc_py(target.daemon, "nvmf_subsystem_listener_set_ana_state", NQN, "-n",
               "inaccessible", "-t", "tcp", "-a", "127.0.0.1", "-s", target.port, ok=False)
    assert "ANA reporting is disabled" in p
    assert "ana_states" not in target.daemon.result(
        "nvmf_subsystem_get_listeners", {"nqn": NQN})[0]
    h = admin_session(target.port, NQN)
    assert h.identify(1)[1][76] & 0x8 == 0
    assert st(h.get_log_page(0x0C, 4096)[0]) == (1, 0x09)  # no ANA log: invalid log page
    h.close()

    def err(method, params):
        with pytest.raises(RpcFailure) as e:
            d.result(method, params)
        return e.value

    base = {"nqn": ANA_NQN, "listen_address": listen(d.ports[0])}
    assert err("nvmf_subsystem_listener_set_ana_state",
               dict(base, ana_state="change")).code == -32602
    assert err("nvmf_subsystem_listener_set_ana_state",
               dict(base, ana_state="optimized", anagrpid=5)).code == -32602
    e = err("nvmf_subsystem_listener_set_ana_state",
            dict(base, listen_address=listen(1), ana_state="optimized"))
    assert e.code == -32602 and "no listener" in e.message
    assert err("nvmf_subsystem_set_ns_ana_group",
               {"nqn": ANA_NQN, "nsid": 1, "anagrpid": 0}).code == -32602
    assert err("nvmf_subsystem_set_ns_ana_group",
               {"nqn": ANA_NQN, "nsid": 9, "anagrpid": 1}).code == -32602
    rpc_py(d, "bdev_malloc_create", "-b", "Malloc2", 8, 512)
    assert err("nvmf_subsystem_add_ns", {"nqn": ANA_NQN, "namespace": {
        "bdev_name": "Malloc2", "anagrpid": 5}}).code == -32602
    # Removing a listener takes no state.
    e = err("nvmf_subsystem_remove_listener", dict(base, ana_state="inaccessible"))
    assert e.code == -32602 and "only when adding" in e.message
    # A listener added with a state of its own (SPDK's ana_state; mimo's anagrpid).
    port = free_port()
    d.result("nvmf_subsystem_add_listener", {"nqn": ANA_NQN, "listen_address": listen(port),
                                             "ana_state": "non_optimized", "anagrpid": 2})
    states = d.result("nvmf_subsystem_get_listeners", {"nqn": ANA_NQN})[2]["ana_states"]
    assert [s["ana_state"] for s in states] == [
        "optimized", "non_optimized", "optimized", "optimized"]


def test_ana_saved_and_replayed(ana, daemons, tmp_path):
    d = ana
    rpc_py(d, "nvmf_subsystem_listener_set_ana_state", ANA_NQN, "-n", "inaccessible",
           "-t", "tcp", "-a", "127.0.0.1", "-s", d.ports[1])
    rpc_py(d, "nvmf_subsystem_listener_set_ana_state", ANA_NQN, "-n", "non_optimized",
           "-t", "tcp", "-a", "127.0.0.1", "-s", d.ports[0], "-g", 3)
    saved = rpc_py(d, "save_config")
    calls = [c for s in saved["subsystems"] if s["subsystem"] == "nvmf" for c in s["config"]]
    create = [c["params"] for c in calls if c["method"] == "nvmf_create_subsystem"]
    assert create[0]["ana_reporting"] is True
    nss = [c["params"]["namespace"] for c in calls if c["method"] == "nvmf_subsystem_add_ns"]
    assert [(n["nsid"], n["anagrpid"]) for n in nss] == [(1, 1), (2, 3)]
    before = d.result("nvmf_subsystem_get_listeners", {"nqn": ANA_NQN})
    # The listeners' ports must be free for the replay: stop the first target.
    d.stop()
    cfg = tmp_path / "ana.json"
    cfg.write_text(json.dumps(saved))
    again = daemons("-c", cfg, name="again")
    assert again.result("nvmf_subsystem_get_listeners", {"nqn": ANA_NQN}) == before
    assert [s["ana_state"] for s in before[1]["ana_states"]] == ["inaccessible"] * 4
    assert [s["ana_state"] for s in before[0]["ana_states"]] == [
        "optimized", "optimized", "non_optimized", "optimized"]


def test_mimo_rpc_speaks_the_same_commands(ana):
    """mimo-rpc's subcommands of these methods take rpc.py's arguments."""
    d = ana

    def mimo_rpc(*args):
        p = subprocess.run([os.path.join(BIN, "mimo-rpc"), "-s", d.sock, *map(str, args)],
                           capture_output=True, text=True, timeout=60, env=clean_env())
        assert p.returncode == 0, p.stdout + p.stderr
        return json.loads(p.stdout)

    mimo_rpc("nvmf_subsystem_listener_set_ana_state", ANA_NQN, "-n", "non_optimized",
             "-t", "tcp", "-a", "127.0.0.1", "-s", d.ports[0], "-g", 2)
    mimo_rpc("nvmf_subsystem_set_ns_ana_group", ANA_NQN, 2, 4)
    states = mimo_rpc("nvmf_subsystem_get_listeners", ANA_NQN)[0]["ana_states"]
    assert [s["ana_state"] for s in states] == [
        "optimized", "non_optimized", "optimized", "optimized"]
    ns = d.result("nvmf_get_subsystems", {"nqn": ANA_NQN})[0]["namespaces"]
    assert [(n["nsid"], n["anagrpid"]) for n in ns] == [(1, 1), (2, 4)]
    mimo_rpc("nvmf_discovery_add_referral", "-t", "tcp", "-a", "10.0.0.7", "-s", 4420, "-k")
    assert mimo_rpc("nvmf_discovery_get_referrals") == rpc_py(d, "nvmf_discovery_get_referrals")
    mimo_rpc("nvmf_discovery_remove_referral", "-t", "tcp", "-a", "10.0.0.7", "-s", 4420,
             "-n", "discovery")
    assert mimo_rpc("nvmf_discovery_get_referrals") == []
    assert len(mimo_rpc("nvmf_get_stats")["poll_groups"]) == 2
