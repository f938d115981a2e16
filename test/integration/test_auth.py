"""Keys and in-band authentication (DH-HMAC-CHAP): SPDK's keyring RPCs on files that hold
nvme-cli's interchange formats; the target's per-host keys, the exchange as the Python host
(nvme_tcp_host.py, written from the specification) runs it - every digest and group,
bidirectional, refusals, rotation - and what an unauthenticated queue may do; mimo's initiator
(mimo_perf, mimo_identify, bdev_nvme) authenticating to mimo_tgt; saved configurations."""
import json
import os
import socket
import struct
import subprocess
import threading

import pytest

from conftest import BIN, REPO, SLOW, RpcFailure, clean_env, free_port, wait_until
from nvme_tcp_host import (ASCR, ATR, AUTH_RECV, AUTH_SEND, C2H_DATA, CHALLENGE, DHCHAP,
                           DHGROUP_UNUSABLE, FAILED, FAILURE1, FAILURE2, F_LAST, GROUPS, HASHES,
                           HASH_UNUSABLE, IC_REQ, IC_RESP, INCORRECT_PAYLOAD,
                           INCORRECT_PROTOCOL_MESSAGE, NEGOTIATE, PROTOCOL_UNUSABLE, REPLY, RSP,
                           SCC_MISMATCH, SUCCESS1, SUCCESS2, AuthOutcome, Closed, DhKey, Host,
                           admin_session, dhchap_response, ffdhe_prime, io_session,
                           make_dhchap_key, make_tls_psk, negotiate_msg, parse_auth, status_of)

HOSTNQN = "nqn.2014-08.org.nvmexpress:uuid:11111111-2222-3333-4444-555555555555"


def key_file(tmp_path, name, text, mode=0o600):
    path = tmp_path / name
    path.write_text(text + "\n")
    os.chmod(path, mode)
    return str(path)


def refused(d, method, params, says, code=None):
    with pytest.raises(RpcFailure) as e:
        d.result(method, params)
    assert says in e.value.message, e.value.message
    if code is not None:
        assert e.value.code == code, (e.value.code, e.value.message)
    return e.value


# --- the keyring -------------------------------------------------------------------------------

def test_keyring_adds_lists_and_removes_keys_without_showing_them(tgt, tmp_path):
    dh = make_dhchap_key(hh=1)
    psk = make_tls_psk(hh=2)
    p0, p1 = key_file(tmp_path, "k0", dh), key_file(tmp_path, "k1", psk, mode=0o400)
    assert tgt.result("keyring_get_keys") == []
    assert tgt.result("keyring_file_add_key", {"name": "key0", "path": p0}) is True
    assert tgt.result("keyring_file_add_key", {"name": "key1", "path": p1}) is True
    keys = tgt.result("keyring_get_keys")
    assert keys == [
        {"name": "key0", "module": "keyring_file", "removed": False, "probed": False,
         "refcnt": 1, "path": p0, "kind": "dhchap"},
        {"name": "key1", "module": "keyring_file", "removed": False, "probed": False,
         "refcnt": 1, "path": p1, "kind": "tls_psk"}]
    # The secrets appear nowhere: not in the listing, not in the saved configuration.
    listing = json.dumps(keys) + json.dumps(tgt.saved_config())
    for secret in (dh, psk):
        assert secret.split(":")[2] not in listing
    assert tgt.result("framework_get_config", {"name": "keyring"}) == [
        {"method": "keyring_file_add_key", "params": {"name": "key0", "path": p0}},
        {"method": "keyring_file_add_key", "params": {"name": "key1", "path": p1}}]
    refused(tgt, "keyring_file_add_key", {"name": "key0", "path": p1}, "exists already",
            code=-17)
    assert tgt.result("keyring_file_remove_key", {"name": "key0"}) is True
    refused(tgt, "keyring_file_remove_key", {"name": "key0"}, "no key named 'key0'", code=-2)
    assert [k["name"] for k in tgt.result("keyring_get_keys")] == ["key1"]
    # The name is free again.
    assert tgt.result("keyring_file_add_key", {"name": "key0", "path": p0}) is True


def test_keyring_refuses_files_it_should_not_trust(tgt, tmp_path):
    good = make_dhchap_key()
    rel = key_file(tmp_path, "rel", good)
    refused(tgt, "keyring_file_add_key", {"name": "k", "path": os.path.relpath(rel)},
            "must be absolute", code=-22)
    for mode in (0o644, 0o640, 0o604, 0o660):
        refused(tgt, "keyring_file_add_key",
                {"name": "k", "path": key_file(tmp_path, f"m{mode:o}", good, mode)},
                "it must be 0600", code=-1)
    other = key_file(tmp_path, "other", good)
    os.chown(other, 4321, 4321)
    refused(tgt, "keyring_file_add_key", {"name": "k", "path": other},
            "owned by uid 4321, must be owned by the daemon's user", code=-1)
    refused(tgt, "keyring_file_add_key", {"name": "k", "path": str(tmp_path / "none")},
            "No such file", code=-2)
    refused(tgt, "keyring_file_add_key", {"name": "k", "path": str(tmp_path)},
            "not a regular file", code=-22)
    # One base64 character changed: the CRC-32 says so.
    prefix, hh, b64, _ = good.split(":")
    typo = f"{prefix}:{hh}:{'B' if b64[0] != 'B' else 'C'}{b64[1:]}:"
    refused(tgt, "keyring_file_add_key", {"name": "k", "path": key_file(tmp_path, "typo", typo)},
            "bad CRC-32", code=-74)
    refused(tgt, "keyring_file_add_key",
            {"name": "k", "path": key_file(tmp_path, "plain", "password123")}, "not a key")
    refused(tgt, "keyring_file_add_key",
            {"name": "k", "path": key_file(tmp_path, "hh", good.replace(":00:", ":07:"))},
            "hash 07")
    refused(tgt, "keyring_file_add_key", {"name": "", "path": key_file(tmp_path, "e", good)},
            "key name")
    refused(tgt, "keyring_file_add_key", {"name": "a b", "path": key_file(tmp_path, "s", good)},
            "key name")
    assert tgt.result("keyring_get_keys") == []


def test_keyring_is_saved_first_and_replayed_with_c(daemons, tmp_path):
    d = daemons()
    path = key_file(tmp_path, "k0", make_dhchap_key(hh=3, length=64))
    d.result("keyring_file_add_key", {"name": "key0", "path": path})
    d.result("bdev_malloc_create", {"name": "M0", "num_blocks": 64, "block_size": 512})
    config = d.saved_config()
    subs = [s["subsystem"] for s in config["subsystems"]]
    assert subs[0] == "keyring" and subs.index("keyring") < subs.index("bdev")
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps(config))
    d.stop()
    d2 = daemons("-c", str(cfg), name="again")
    assert d2.result("framework_wait_init") is True
    assert [(k["name"], k["path"]) for k in d2.result("keyring_get_keys")] == [("key0", path)]
    # A key file gone bad stops a replay, naming the call.
    os.chmod(path, 0o644)
    p = subprocess.run([os.path.join(BIN, "mimo_tgt"), "-r", str(tmp_path / "x.sock"), "-c",
                        str(cfg)], env=clean_env(MIMO_NOTIFY_DISABLE=1), capture_output=True,
                       text=True, timeout=30)
    assert p.returncode != 0 and "keyring_file_add_key failed" in p.stderr, p.stderr


# --- the target: hosts with keys -------------------------------------------------------------

NQN = "nqn.2016-06.io.mimo:cnode1"
OK = (0, 0)
AUTH_REQUIRED = (1, 0x91)
INVALID_FIELD, SEQUENCE_ERROR = (0, 0x02), (0, 0x0C)


def st(cqe):
    return status_of(cqe["status"])[:2]


class AuthTarget:
    """mimo_tgt serving NQN (a malloc namespace) on a port, with keys in its keyring."""

    def __init__(self, daemons, tmp_path, transport=None, allow_any_host=False):
        self.d = daemons("-m", "0x3")
        self.tmp = tmp_path
        self.port = free_port()
        self.keys = {}
        d = self.d
        d.result("bdev_malloc_create", {"name": "M0", "num_blocks": 8192, "block_size": 512})
        d.result("nvmf_create_transport", dict({"trtype": "TCP"}, **(transport or {})))
        d.result("nvmf_create_subsystem", {"nqn": NQN, "allow_any_host": allow_any_host})
        d.result("nvmf_subsystem_add_ns", {"nqn": NQN, "namespace": {"bdev_name": "M0"}})
        d.result("nvmf_subsystem_add_listener", {"nqn": NQN, "listen_address": {
            "trtype": "TCP", "traddr": "127.0.0.1", "trsvcid": str(self.port)}})

    def key(self, name, text=None, **kw):
        """Add a key to the keyring (a new random one unless text is given); its text."""
        text = text or make_dhchap_key(**kw)
        self.d.result("keyring_file_add_key",
                      {"name": name, "path": key_file(self.tmp, name, text)})
        self.keys[name] = text
        return text

    def add_host(self, host=HOSTNQN, key=None, ctrl_key=None):
        params = {"nqn": NQN, "host": host}
        if key:
            params["dhchap_key"] = key
        if ctrl_key:
            params["dhchap_ctrlr_key"] = ctrl_key
        return self.d.result("nvmf_subsystem_add_host", params)

    def host_entry(self, host=HOSTNQN):
        return next(h for h in self.d.result("nvmf_get_subsystems", {"nqn": NQN})[0]["hosts"]
                    if h["nqn"] == host)

    def qpairs(self):
        return self.d.result("nvmf_subsystem_get_qpairs", {"nqn": NQN})


@pytest.fixture
def at(daemons, tmp_path):
    return AuthTarget(daemons, tmp_path)


def connected_events(at):
    return [e["ctx"] for e in at.d.result("notify_get_notifications", {"id": 0})
            if e["type"] == "nvmf_host_connected"]


def connected(port, host=HOSTNQN, qid=0, admin=None):
    """A queue past Connect (admin, or I/O of admin's controller), not yet authenticated."""
    h = Host(port)
    h.icreq()
    if admin is None:
        cqe = h.connect(NQN, host)
    else:
        cqe = h.connect(NQN, host, qid=qid, sqsize=31, cntlid=admin.cntlid,
                        hostid=admin.hostid)
    assert st(cqe) == OK, cqe
    h.hostnqn, h.cntlid, h.authreq = host, cqe["cdw0"] & 0xFFFF, cqe["cdw0"] >> 16
    return h


def test_a_host_with_a_key_authenticates_each_queue_before_using_it(at):
    key = at.key("key0", hh=1)
    at.add_host(key="key0")
    a = connected(at.port)
    # Connect succeeds and says authentication is required (AUTHREQ.ATR, not ASCR).
    assert a.cntlid != 0 and a.authreq & (ATR >> 16) and not a.authreq & (ASCR >> 16)
    assert [(q["qid"], q["state"], q["auth"]["state"]) for q in at.qpairs()] == \
        [(0, "authenticating", "negotiate")]
    # Nothing but authentication until then: Property Get/Set, admin commands, Disconnect.
    assert st(a.prop_get(0x1C)) == AUTH_REQUIRED
    assert st(a.prop_set(0x14, 0x00460001)) == AUTH_REQUIRED
    assert st(a.identify(1)[0]) == AUTH_REQUIRED
    assert st(a.command(0x18)[0]) == AUTH_REQUIRED
    assert st(a.disconnect()) == AUTH_REQUIRED
    # Not yet announced: no nvmf_host_connected until the admin queue has authenticated.
    assert connected_events(at) == []
    assert a.authenticate(NQN, HOSTNQN, key) == {"hash": "sha512", "group": "ffdhe8192",
                                                 "bidirectional": False}
    assert connected_events(at) == [NQN]
    a.enable()
    assert st(a.identify(1)[0]) == OK
    ctrl = at.d.result("nvmf_subsystem_get_controllers", {"nqn": NQN})
    assert ctrl[0]["auth"] == {"state": "completed", "digest": "sha512", "dhgroup": "ffdhe8192"}
    # The I/O queue is told the same and refuses I/O until it authenticated too.
    q = connected(at.port, admin=a, qid=1)
    assert q.authreq & (ATR >> 16)
    assert st(q.write(1, 0, b"\xab" * 512)[0]) == AUTH_REQUIRED
    assert st(q.read(1, 0, 1)[0]) == AUTH_REQUIRED
    assert {(p["qid"], p["state"]) for p in at.qpairs()} == {(0, "enabled"),
                                                             (1, "authenticating")}
    q.authenticate(NQN, HOSTNQN, key, groups=(0,))
    assert st(q.write(1, 0, b"\xab" * 512)[0]) == OK
    cqe, data = q.read(1, 0, 1)
    assert st(cqe) == OK and data == b"\xab" * 512
    assert [(p["qid"], p["state"], p["auth"]["dhgroup"]) for p in at.qpairs()] == \
        [(0, "enabled", "ffdhe8192"), (1, "enabled", "null")]
    assert at.host_entry() == {"nqn": HOSTNQN, "dhchap_key": "key0", "auth_failures": 0}
    q.close()
    a.close()


def test_every_digest_and_dhgroup(at):
    """Each hash function with each group: both queues authenticate and the I/O queue reads
    what it wrote."""
    key = at.key("key0", hh=1)
    at.add_host(key="key0")
    for hash_id in (1, 2, 3):
        for group in (0, 1, 2, 3, 4, 5):
            kw = dict(key=key, hashes=(hash_id,), groups=(group,))
            a = admin_session(at.port, NQN, HOSTNQN, dhchap=kw)
            assert a.auth == {"hash": HASHES[hash_id], "group": GROUPS[group],
                              "bidirectional": False}
            q = io_session(at.port, a, NQN, dhchap=kw)
            data = bytes([hash_id * 16 + group]) * 512
            assert st(q.write(1, group, data)[0]) == OK
            assert q.read(1, group, 1)[1] == data
            q.close()
            a.close()
    assert at.host_entry()["auth_failures"] == 0


def test_every_kind_of_secret(at):
    """Secrets of 32, 48 and 64 bytes, used as they are (hh 00) or transformed with each hash
    (01-03), whatever hash the exchange then negotiates."""
    for i, (hh, length) in enumerate(((0, 32), (0, 48), (0, 64), (1, 32), (2, 48), (3, 64),
                                      (1, 64), (3, 32))):
        host = f"nqn.2014-08.io.mimo:host{i}"
        key = at.key(f"key{i}", hh=hh, length=length)
        at.add_host(host, key=f"key{i}")
        a = admin_session(at.port, NQN, host,
                          dhchap=dict(key=key, hashes=(1 + i % 3,), groups=(i % 2,)))
        assert st(a.identify(1)[0]) == OK
        a.close()


def test_bidirectional_authentication(at):
    key, ckey = at.key("key0", hh=2, length=48), at.key("ckey0", hh=3, length=64)
    at.add_host(key="key0", ctrl_key="ckey0")
    for group in (0, 1):
        kw = dict(key=key, ctrl_key=ckey, groups=(group,))
        a = admin_session(at.port, NQN, HOSTNQN, dhchap=kw)
        assert a.auth["bidirectional"]
        q = io_session(at.port, a, NQN, dhchap=kw)
        assert st(q.write(1, 0, b"\x01" * 512)[0]) == OK
        q.close()
        a.close()
    # A host that does not ask the controller to prove itself still authenticates.
    a = admin_session(at.port, NQN, HOSTNQN, dhchap=dict(key=key))
    assert a.auth["bidirectional"] is False
    a.close()


def failures_logged(at, host=HOSTNQN):
    return at.d.output().count(f"host {host} (")


def test_a_wrong_key_gets_no_queue_and_is_counted_and_logged_once(at):
    right = at.key("key0", hh=1)
    at.add_host(key="key0")
    for attempt in range(3):
        h = connected(at.port)
        with pytest.raises(AuthOutcome) as e:
            h.authenticate(NQN, HOSTNQN, make_dhchap_key(hh=1))
        assert (e.value.what, e.value.step, e.value.reason) == ("failure1", "success1", FAILED)
        assert h.closed()
        wait_until(lambda: at.host_entry()["auth_failures"] == attempt + 1, 10,
                   "the failure to be counted")
    assert failures_logged(at) == 1
    assert "wrong response: the host does not hold the key" in at.d.output()
    # The right key works; a failure after a success is worth a line again.
    a = admin_session(at.port, NQN, HOSTNQN, dhchap=dict(key=right))
    # An I/O queue with the wrong key: that queue goes, the controller stays.
    q = connected(at.port, admin=a, qid=1)
    with pytest.raises(AuthOutcome):
        q.authenticate(NQN, HOSTNQN, make_dhchap_key())
    assert q.closed()
    wait_until(lambda: at.host_entry()["auth_failures"] == 4, 10, "the failure to be counted")
    assert failures_logged(at) == 2
    assert st(a.identify(1)[0]) == OK
    q = io_session(at.port, a, NQN, dhchap=dict(key=right))
    assert st(q.write(1, 0, b"\x07" * 512)[0]) == OK
    assert [p["state"] for p in at.qpairs()] == ["enabled", "enabled"]
    q.close()
    a.close()


def test_a_host_without_its_key_is_refused(daemons, tmp_path):
    at = AuthTarget(daemons, tmp_path, transport={"connect_timeout_ms": 500})
    at.key("key0")
    at.add_host(key="key0")
    h = connected(at.port)
    assert h.authreq & (ATR >> 16)
    # It never authenticates: every command is refused, an I/O queue cannot attach to the
    # controller (never enabled), and the connect timeout closes the queue.
    assert st(h.prop_get(0x1C)) == AUTH_REQUIRED
    q = Host(at.port)
    q.icreq()
    assert st(q.connect(NQN, HOSTNQN, qid=1, cntlid=h.cntlid, hostid=h.hostid)) == SEQUENCE_ERROR
    q.close()
    assert h.closed(timeout=10)
    wait_until(lambda: at.host_entry()["auth_failures"] == 1, 10, "the failure to be counted")
    assert "closed before it authenticated (no authentication started)" in at.d.output()
    assert "sent no successful authentication within 500 ms" in at.d.output()
    assert at.d.result("nvmf_subsystem_get_controllers", {"nqn": NQN}) == []
    # A controller never announced is not announced gone either.
    assert not [e for e in at.d.result("notify_get_notifications", {"id": 0})
                if e["type"] in ("nvmf_host_connected", "nvmf_host_disconnected")]


def test_a_wrong_controller_key_is_refused_by_the_host(at):
    key = at.key("key0")
    at.key("ckey0")
    at.add_host(key="key0", ctrl_key="ckey0")
    h = connected(at.port)
    # The host expects another controller key: the controller's response does not match, the
    # host says so with AUTH_Failure2 (answered), and the queue goes.
    with pytest.raises(AuthOutcome) as e:
        h.authenticate(NQN, HOSTNQN, key, ctrl_key=make_dhchap_key())
    assert e.value.what == "controller_failed" and e.value.rvalid == 1
    assert e.value.failure2_status[:2] == OK
    assert h.closed()
    wait_until(lambda: at.host_entry()["auth_failures"] == 1, 10, "the failure to be counted")
    assert "the host refused the controller's response (AUTH_Failure2)" in at.d.output()
    # A host that asks the controller to prove itself when it has no controller key for it.
    at.d.result("nvmf_subsystem_set_keys", {"nqn": NQN, "host": HOSTNQN, "dhchap_key": "key0"})
    h = connected(at.port)
    with pytest.raises(AuthOutcome) as e:
        h.authenticate(NQN, HOSTNQN, key, ctrl_key=make_dhchap_key())
    assert (e.value.what, e.value.step, e.value.reason) == ("failure1", "success1", FAILED)
    assert h.closed()


def test_key_rotation_and_reauthentication(at):
    k0, c0 = at.key("key0"), at.key("ckey0")
    k1, c1 = at.key("key1", hh=2, length=48), at.key("ckey1", hh=1)
    at.add_host(key="key0", ctrl_key="ckey0")
    old = admin_session(at.port, NQN, HOSTNQN, dhchap=dict(key=k0, ctrl_key=c0, groups=(1,)))
    oldq = io_session(at.port, old, NQN, dhchap=dict(key=k0, ctrl_key=c0, groups=(0,)))
    assert at.d.result("nvmf_subsystem_set_keys", {"nqn": NQN, "host": HOSTNQN,
                                                   "dhchap_key": "key1",
                                                   "dhchap_ctrlr_key": "ckey1"}) is True
    assert at.host_entry() == {"nqn": HOSTNQN, "dhchap_key": "key1", "dhchap_ctrlr_key": "ckey1",
                               "auth_failures": 0}
    # New connections need the new keys.
    h = connected(at.port)
    with pytest.raises(AuthOutcome):
        h.authenticate(NQN, HOSTNQN, k0, ctrl_key=c0)
    assert h.closed()
    new = admin_session(at.port, NQN, HOSTNQN, dhchap=dict(key=k1, ctrl_key=c1, groups=(1,)))
    # Connections made before keep working, and re-authenticate (as the Linux host does when
    # its keys change) with the new keys; I/O goes on between the messages.
    assert st(oldq.write(1, 8, b"\x11" * 512)[0]) == OK
    assert old.authenticate(NQN, HOSTNQN, k1, ctrl_key=c1)["bidirectional"]
    assert oldq.authenticate(NQN, HOSTNQN, k1, ctrl_key=c1,
                             tamper=lambda name, b: (oldq.write(1, 9, b"\x22" * 512), b)[1])
    assert oldq.read(1, 8, 2)[1] == b"\x11" * 512 + b"\x22" * 512
    assert st(old.identify(1)[0]) == OK
    # A re-authentication with the old key fails: that queue goes.
    with pytest.raises(AuthOutcome):
        oldq.authenticate(NQN, HOSTNQN, k0, ctrl_key=c0)
    assert oldq.closed()
    assert st(old.identify(1)[0]) == OK
    # Without keys, the host no longer authenticates.
    at.d.result("nvmf_subsystem_set_keys", {"nqn": NQN, "host": HOSTNQN})
    assert at.host_entry() == {"nqn": HOSTNQN, "auth_failures": 2}
    plain = admin_session(at.port, NQN, HOSTNQN)
    assert plain.authreq == 0 and st(plain.identify(1)[0]) == OK
    for bad, says in (({"host": "nqn.2014-08.io.mimo:nobody", "dhchap_key": "key0"},
                       "is not in the list"),
                      ({"host": HOSTNQN, "dhchap_ctrlr_key": "ckey0"}, "needs dhchap_key"),
                      ({"host": HOSTNQN, "dhchap_key": "nope"}, "no key of that name")):
        refused(at.d, "nvmf_subsystem_set_keys", dict({"nqn": NQN}, **bad), says)
    for c in (plain, new, old):
        c.close()


def test_hosts_without_keys_connect_as_before(daemons, tmp_path):
    at = AuthTarget(daemons, tmp_path, allow_any_host=True)
    key = at.key("key0")
    at.add_host("nqn.2014-08.io.mimo:listed")
    at.add_host("nqn.2014-08.io.mimo:keyed", key="key0")
    for host in ("nqn.2014-08.io.mimo:listed", "nqn.2014-08.io.mimo:anyone"):
        a = admin_session(at.port, NQN, host)
        assert a.authreq == 0
        q = io_session(at.port, a, NQN)
        assert q.authreq == 0 and st(q.write(1, 0, b"\x33" * 512)[0]) == OK
        assert "auth" not in at.d.result("nvmf_subsystem_get_controllers", {"nqn": NQN})[0]
        q.close()
        a.close()
    # allow_any_host does not excuse a listed host from its key.
    assert connected(at.port, "nqn.2014-08.io.mimo:keyed").authreq & (ATR >> 16)
    a = admin_session(at.port, NQN, "nqn.2014-08.io.mimo:keyed", dhchap=dict(key=key))
    assert st(a.identify(1)[0]) == OK
    # A host may authenticate though not asked to (wanting the controller to prove itself):
    # without a key configured for it, it cannot.
    b = admin_session(at.port, NQN, "nqn.2014-08.io.mimo:anyone")
    with pytest.raises(AuthOutcome) as e:
        b.authenticate(NQN, "nqn.2014-08.io.mimo:anyone", key, ctrl_key=key)
    assert (e.value.what, e.value.reason) == ("failure1", FAILED)
    assert b.closed()
    a.close()


def test_authentication_messages_the_controller_refuses(at):
    key = at.key("key0")
    at.add_host(key="key0")

    def refused_msg(run, reason, step=None):
        h = connected(at.port)
        with pytest.raises(AuthOutcome) as e:
            run(h)
        assert (e.value.what, e.value.reason) == ("failure1", reason), e.value
        if step:
            assert e.value.step == step
        assert h.closed()

    auth = dict(subnqn=NQN, hostnqn=HOSTNQN, key=key)
    # Command fields: refused, the queue stays and may still authenticate.
    h = connected(at.port)
    assert st(h.auth_send(negotiate_msg(1), secp=0xEA)) == INVALID_FIELD
    assert st(h.auth_send(negotiate_msg(1), spsp0=0)) == INVALID_FIELD
    assert st(h.auth_send(negotiate_msg(1), tl=8)) == INVALID_FIELD
    assert st(h.auth_recv(al=64, spsp1=2)[0]) == INVALID_FIELD
    assert h.authenticate(**auth)["hash"] == "sha512"
    h.close()
    # Messages: Failure1 with the reason, then the queue closes.
    refused_msg(lambda h: h.authenticate(**auth, tamper=lambda n, b: b[:6] + b"\x01" + b[7:]
                                         if n == "negotiate" else b), SCC_MISMATCH)
    refused_msg(lambda h: h.authenticate(**auth, tamper=lambda n, b: b[:8] + b"\x02" + b[9:]
                                         if n == "negotiate" else b), PROTOCOL_UNUSABLE)
    refused_msg(lambda h: h.authenticate(**auth, tamper=lambda n, b: b[:8] + b"\x01\x00\x1f"
                                         + b[11:] if n == "negotiate" else b), INCORRECT_PAYLOAD)
    refused_msg(lambda h: h.authenticate(**auth, tamper=lambda n, b: b[:4] + b"\xff\xff" + b[6:]
                                         if n == "reply" else b), INCORRECT_PAYLOAD, "success1")
    refused_msg(lambda h: h.authenticate(**auth, tamper=lambda n, b: b[:-1]
                                         if n == "reply" else b), INCORRECT_PAYLOAD, "success1")
    # The host's DH value 0, 1 or p - 1: not a value of the group (p - 1 is of order 2).
    for bad in (0, 1, ffdhe_prime(1) - 1):
        refused_msg(lambda h: h.authenticate(**auth, groups=(1,), tamper=lambda n, b: b[:-256] +
                                             bad.to_bytes(256, "big") if n == "reply" else b),
                    FAILED)
    # A message the controller cannot use, then a new AUTH_Negotiate: that starts afresh.
    h = connected(at.port)
    assert st(h.auth_send(bytes(16 + 64))) == OK
    assert h.authenticate(**auth)["hash"] == "sha512"
    h.close()
    # A queue not yet authenticated gets three transactions (each challenge costs the target
    # a DH key pair), then AUTH_Failure1.
    h = connected(at.port)
    for tid in range(3):
        assert st(h.auth_send(negotiate_msg(tid, groups=(1,)))) == OK
        assert parse_auth(h.auth_recv()[1])["id"] == CHALLENGE
    assert st(h.auth_send(negotiate_msg(3))) == OK
    m = parse_auth(h.auth_recv()[1])
    assert (m["id"], m["rescode_exp"]) == (FAILURE1, INCORRECT_PROTOCOL_MESSAGE)
    assert h.closed()
    # Out of sequence: a receive first, a reply first.

    def receive_first(h):
        cqe, data = h.auth_recv()
        m = parse_auth(data)
        raise AuthOutcome("failure1", reason=m["rescode_exp"], step="first")
    refused_msg(receive_first, INCORRECT_PROTOCOL_MESSAGE)

    def reply_first(h):
        assert st(h.auth_send(struct.pack("<BBxxH10x", DHCHAP, REPLY, 0))) == OK
        receive_first(h)
    refused_msg(reply_first, INCORRECT_PROTOCOL_MESSAGE)
    # An AUTH_Receive too short for any message: refused, and the queue goes.
    h = connected(at.port)
    assert st(h.auth_send(negotiate_msg(5))) == OK
    assert st(h.auth_recv(al=4)[0]) == INVALID_FIELD
    assert h.closed()
    # What only the target's configuration forbids.
    at.d.result("nvmf_set_config", {"dhchap_digests": ["sha512"], "dhchap_dhgroups": ["null"]})
    refused_msg(lambda h: h.authenticate(**auth, hashes=(1, 2)), HASH_UNUSABLE, "challenge")
    refused_msg(lambda h: h.authenticate(**auth, groups=(1, 2, 3, 4, 5)), DHGROUP_UNUSABLE)
    assert at.host_entry()["auth_failures"] == 14
    # One line for the failures before the fresh start's success, one for those after it.
    assert failures_logged(at) == 2


def test_nvmf_set_config_chooses_what_the_target_accepts(at):
    key = at.key("key0")
    at.add_host(key="key0")
    # What SPDK's save_config writes by default loads unchanged.
    assert at.d.result("nvmf_set_config", {
        "discovery_filters": [], "admin_cmd_passthru": {"identify_ctrlr": False,
                                                        "get_log_page": False},
        "dhchap_digests": ["sha256", "sha384", "sha512"],
        "dhchap_dhgroups": ["null", "ffdhe2048", "ffdhe3072", "ffdhe4096", "ffdhe6144",
                            "ffdhe8192"],
        "dup_host_policy": "allow"}) is True
    assert [c["method"] for c in at.d.result("framework_get_config", {"name": "nvmf"})][0] == \
        "nvmf_create_transport"
    # The host offers everything: the strongest the target allows is chosen.
    assert at.d.result("nvmf_set_config", {"dhchap_digests": ["sha256", "sha384"],
                                           "dhchap_dhgroups": ["null", "ffdhe2048"]}) is True
    a = admin_session(at.port, NQN, HOSTNQN, dhchap=dict(key=key))
    assert a.auth == {"hash": "sha384", "group": "ffdhe2048", "bidirectional": False}
    a.close()
    assert at.d.result("framework_get_config", {"name": "nvmf"})[0] == {
        "method": "nvmf_set_config", "params": {"dhchap_digests": ["sha256", "sha384"],
                                                "dhchap_dhgroups": ["null", "ffdhe2048"]}}
    for params, says in (({"dhchap_digests": ["md5"]}, "unknown 'md5'"),
                         ({"dhchap_dhgroups": ["ffdhe1024"]}, "unknown 'ffdhe1024'"),
                         ({"dhchap_digests": []}, "non-empty array"),
                         ({"dhchap_dhgroups": "null"}, "non-empty array"),
                         ({"admin_cmd_passthru": {"identify_ctrlr": True}}, "all false"),
                         ({"poll_groups_mask": "0x1"}, "poll_groups_mask"),
                         ({"discovery_filter": "transport"}, "match_any"),
                         ({"discovery_filters": ["address"]}, "match_any"),
                         ({"dup_host_policy": "restrict_per_listener"}, "allow"),
                         ({"bogus": 1}, "bogus")):
        refused(at.d, "nvmf_set_config", params, says)
    a = admin_session(at.port, NQN, HOSTNQN, dhchap=dict(key=key))
    assert a.auth["hash"] == "sha384"
    a.close()


def test_host_keys_refused_unless_usable(at, tmp_path):
    at.key("key0")
    at.d.result("keyring_file_add_key",
                {"name": "psk0", "path": key_file(tmp_path, "psk0", make_tls_psk())})
    for params, says in (({"dhchap_key": "nope"}, "no key of that name"),
                         ({"dhchap_key": "psk0"}, "not a DH-HMAC-CHAP secret"),
                         ({"dhchap_key": "key0", "dhchap_ctrlr_key": "psk0"},
                          "not a DH-HMAC-CHAP secret"),
                         ({"dhchap_ctrlr_key": "key0"}, "needs dhchap_key"),
                         ({"psk": "key0"}, "not a TLS PSK")):
        refused(at.d, "nvmf_subsystem_add_host", dict({"nqn": NQN, "host": HOSTNQN}, **params),
                says)
    assert at.d.result("nvmf_get_subsystems", {"nqn": NQN})[0]["hosts"] == []
    refused(at.d, "nvmf_subsystem_add_host", {"nqn": "nqn.2014-08.org.nvmexpress.discovery",
                                               "host": HOSTNQN, "dhchap_key": "key0"},
            "Invalid host NQN")


def test_a_key_removed_from_the_keyring_fails_closed(at):
    key = at.key("key0")
    at.add_host(key="key0")
    assert [k["refcnt"] for k in at.d.result("keyring_get_keys")] == [2]
    at.d.result("keyring_file_remove_key", {"name": "key0"})
    # The host still must authenticate, and cannot: the key is gone.
    assert at.d.result("keyring_get_keys") == [{
        "name": "key0", "module": "keyring_file", "removed": True, "probed": False, "refcnt": 1,
        "path": str(at.tmp / "key0"), "kind": "dhchap"}]
    h = connected(at.port)
    assert h.authreq & (ATR >> 16)
    with pytest.raises(AuthOutcome) as e:
        h.authenticate(NQN, HOSTNQN, key)
    assert e.value.reason == FAILED
    assert "the host's key cannot be read" in at.d.output()
    # A key file that changed meanwhile is read again at each authentication.
    at.key("key1", key)
    at.d.result("nvmf_subsystem_set_keys", {"nqn": NQN, "host": HOSTNQN, "dhchap_key": "key1"})
    assert at.d.result("keyring_get_keys")[0]["name"] == "key1"
    new = make_dhchap_key(hh=2, length=48)
    key_file(at.tmp, "key1", new)
    a = admin_session(at.port, NQN, HOSTNQN, dhchap=dict(key=new))
    assert st(a.identify(1)[0]) == OK
    a.close()
    os.chmod(at.tmp / "key1", 0o644)
    h = connected(at.port)
    with pytest.raises(AuthOutcome):
        h.authenticate(NQN, HOSTNQN, new)
    assert "it must be 0600" in at.d.output()
    at.d.result("nvmf_subsystem_remove_host", {"nqn": NQN, "host": HOSTNQN})
    assert [k["refcnt"] for k in at.d.result("keyring_get_keys")] == [1]


def test_saved_configuration_with_keys_replays(daemons, tmp_path):
    at = AuthTarget(daemons, tmp_path)
    key, ckey = at.key("key0"), at.key("ckey0")
    at.add_host(key="key0", ctrl_key="ckey0")
    at.add_host("nqn.2014-08.io.mimo:plain")
    at.d.result("nvmf_set_config", {"dhchap_dhgroups": ["ffdhe3072"]})
    config = at.d.saved_config()
    text = json.dumps(config)
    assert key.split(":")[2] not in text and ckey.split(":")[2] not in text
    hosts = [c["params"] for c in at.d.result("framework_get_config", {"name": "nvmf"})
             if c["method"] == "nvmf_subsystem_add_host"]
    assert hosts == [{"nqn": NQN, "host": HOSTNQN, "dhchap_key": "key0",
                      "dhchap_ctrlr_key": "ckey0"},
                     {"nqn": NQN, "host": "nqn.2014-08.io.mimo:plain"}]
    at.d.stop()
    path = tmp_path / "cfg.json"
    path.write_text(text)
    d = daemons("-c", str(path), name="again")
    assert d.result("framework_wait_init") is True
    a = admin_session(at.port, NQN, HOSTNQN, dhchap=dict(key=key, ctrl_key=ckey))
    assert a.auth == {"hash": "sha512", "group": "ffdhe3072", "bidirectional": True}
    a.close()
    assert d.saved_config() == config


# --- mimo's initiator: mimo_identify, mimo_perf, bdev_nvme -----------------------------------

IDENTIFY = os.path.join(BIN, "mimo_identify")
PERF = os.path.join(BIN, "mimo_perf")


def trid(port, host=HOSTNQN):
    return f"trtype:tcp adrfam:IPv4 traddr:127.0.0.1 trsvcid:{port} subnqn:{NQN} hostnqn:{host}"


def tool(prog, *args, timeout=60):
    p = subprocess.run([prog, *map(str, args)], capture_output=True, text=True,
                       timeout=timeout * SLOW, env=clean_env())
    assert "Sanitizer" not in p.stderr and "runtime error" not in p.stderr, p.stderr
    return p


def identify(port, *args, host=HOSTNQN):
    return tool(IDENTIFY, "-r", trid(port, host), "--json", *args)


def test_mimo_identify_and_perf_authenticate(at):
    key, ckey = at.key("key0", hh=1), at.key("ckey0", hh=2, length=48)
    at.add_host(key="key0", ctrl_key="ckey0")
    keyfile = str(at.tmp / "key0")
    # The secret itself (as nvme-cli's --dhchap-secret) or a key file (as spdk_nvme_perf's).
    for args in (["--dhchap-key", key], ["--dhchap-key", keyfile],
                 ["--dhchap-key", os.path.relpath(keyfile), "--dhchap-ctrlr-key", ckey]):
        p = identify(at.port, *args)
        assert p.returncode == 0, p.stderr
        assert json.loads(p.stdout)["controller"]["subnqn"] == NQN
    # Each hash function, with the null group and ffdhe2048, both ways.
    for digest in ("sha256", "sha384", "sha512"):
        for group in ("null", "ffdhe2048"):
            p = identify(at.port, "--dhchap-key", key, "--dhchap-ctrlr-key", ckey,
                         "--dhchap-digests", digest, "--dhchap-dhgroups", group)
            assert p.returncode == 0, p.stderr
    # I/O queues authenticate too: mimo_perf verifies what it wrote over two of them.
    p = tool(PERF, "-r", trid(at.port), "-c", "0x1", "-q", "8", "-o", "4096", "-w", "randrw",
             "-t", "1", "-P", "2", "--verify", "--json", "--dhchap-key", keyfile,
             "--dhchap-ctrlr-key", ckey, "--dhchap-dhgroups", "null,ffdhe3072")
    assert p.returncode == 0, p.stderr
    report = json.loads(p.stdout)
    assert report["total"]["io_errors"] == 0 and report["total"]["verify_errors"] == 0
    assert at.host_entry()["auth_failures"] == 0


def test_mimo_identify_and_perf_refuse(at):
    key, ckey = at.key("key0"), at.key("ckey0")
    at.add_host(key="key0", ctrl_key="ckey0")
    for args, says in (
            ([], "the controller requires authentication and no key was given"),
            (["--dhchap-key", make_dhchap_key()], "AUTH_Failure1): authentication failed"),
            (["--dhchap-key", key, "--dhchap-ctrlr-key", make_dhchap_key()],
             "does not hold the controller key"),
            (["--dhchap-key", key, "--dhchap-digests", "sha256", "--dhchap-dhgroups", "ffdhe1"],
             "--dhchap-dhgroups: unknown 'ffdhe1'"),
            (["--dhchap-ctrlr-key", ckey], "controller key needs the host's key"),
            (["--dhchap-key", key[:12] + ("B" if key[12] != "B" else "C") + key[13:]],
             "bad CRC-32"),
            (["--dhchap-key", key_file(at.tmp, "open", key, 0o644)], "it must be 0600"),
            (["--dhchap-key", str(at.tmp / "missing")], "No such file"),
            (["--dhchap-key", make_tls_psk()], "a TLS PSK, not a DH-HMAC-CHAP secret")):
        p = identify(at.port, *args)
        assert p.returncode != 0 and says in p.stderr, (args, p.stderr)
    p = tool(PERF, "-r", trid(at.port), "-q", "1", "-o", "4096", "-w", "read", "-t", "1",
             "--dhchap-key", make_dhchap_key())
    assert p.returncode != 0 and "authentication failed" in p.stderr, p.stderr


def test_bdev_nvme_attaches_with_keyring_keys(daemons, tmp_path):
    at = AuthTarget(daemons, tmp_path / "t")
    os.makedirs(at.tmp, exist_ok=True)
    key, ckey = at.key("key0"), at.key("ckey0")
    at.add_host(key="key0", ctrl_key="ckey0")
    host = daemons(name="host")
    attach = {"name": "Nvme0", "trtype": "tcp", "traddr": "127.0.0.1",
              "trsvcid": str(at.port), "subnqn": NQN, "hostnqn": HOSTNQN}
    refused(host, "bdev_nvme_attach_controller", dict(attach, dhchap_key="key0"),
            "no key of that name")
    for name, text in (("hkey", key), ("hckey", ckey), ("wrong", make_dhchap_key()),
                       ("psk", make_tls_psk())):
        host.result("keyring_file_add_key",
                    {"name": name, "path": key_file(tmp_path, name, text)})
    refused(host, "bdev_nvme_attach_controller", dict(attach, dhchap_key="psk"),
            "not a DH-HMAC-CHAP secret")
    refused(host, "bdev_nvme_attach_controller", dict(attach, dhchap_ctrlr_key="hckey"),
            "needs dhchap_key")
    refused(host, "bdev_nvme_attach_controller", dict(attach, psk="hkey"), "not a TLS PSK")
    refused(host, "bdev_nvme_attach_controller", attach, "Required key not available")
    refused(host, "bdev_nvme_attach_controller", dict(attach, dhchap_key="wrong"),
            "Permission denied")
    assert host.result("bdev_nvme_attach_controller",
                       dict(attach, dhchap_key="hkey", dhchap_ctrlr_key="hckey")) == ["Nvme0n1"]
    assert [q["auth"]["state"] for q in at.qpairs()] == ["completed"] * len(at.qpairs())
    # The configuration names the keys; the keyring, saved first, says where they are.
    config = host.saved_config()
    calls = [c for s in config["subsystems"] for c in s["config"]]
    att = next(c["params"] for c in calls if c["method"] == "bdev_nvme_attach_controller")
    assert (att["dhchap_key"], att["dhchap_ctrlr_key"]) == ("hkey", "hckey")
    assert key.split(":")[2] not in json.dumps(config)
    host.stop()
    path = tmp_path / "host.json"
    path.write_text(json.dumps(config))
    again = daemons("-c", str(path), name="again")
    # The replay (its attach connects in the background) is over once init is.
    assert again.result("framework_wait_init") is True
    assert "Nvme0n1" in [b["name"] for b in again.result("bdev_get_bdevs")]


class SpdkLikeController(threading.Thread):
    """One admin queue of a controller that requires authentication and answers as SPDK's
    target does where that differs from mimo's: Authentication Receive data is the message
    alone (shorter than the host asked for), and Success1 carries HL with or without a
    response. Written from the specification with the Python host's crypto. It records what
    it received after authentication, then closes. wrong_response: it answers the host's
    challenge as if it held another controller key."""

    def __init__(self, key, ctrl_key, group=1, wrong_response=False):
        super().__init__(daemon=True)
        self.key, self.ctrl_key, self.group = key, ctrl_key, group
        self.wrong = wrong_response
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(1)
        self.port = self.srv.getsockname()[1]
        self.events = []
        self.after = None  # (opc, fctype) of the first command after authentication
        self.start()

    def _send_rsp(self, c, cid, status=0, cdw0=0):
        c.send_raw(c.pdu_bytes(RSP, struct.pack("<IIHHHH", cdw0, 0, 0, 0, cid, status)))

    def _send_data(self, c, cid, data):
        c.send_raw(c.pdu_bytes(C2H_DATA, struct.pack("<HHII4x", cid, 0, 0, len(data)), data,
                               flags=F_LAST))
        self._send_rsp(c, cid)

    def run(self):
        sock, _ = self.srv.accept()
        c = Host.__new__(Host)
        c.sock, c.buf, c.hdgst, c.ddgst = sock, b"", False, False
        sock.settimeout(30)
        try:
            self._serve(c)
        except (Closed, OSError) as e:
            self.events.append(("closed", str(e)))
        finally:
            sock.close()
            self.srv.close()

    def _serve(self, c):
        assert c.recv_pdu().type == IC_REQ
        c.send_raw(c.pdu_bytes(IC_RESP, struct.pack("<HBBI", 0, 0, 0, 131072) + b"\0" * 112))
        pdu = c.recv_pdu()
        cid, = struct.unpack_from("<H", pdu.header, 10)
        hostnqn = pdu.data[512:768].rstrip(b"\0").decode()
        subnqn = pdu.data[256:512].rstrip(b"\0").decode()
        self._send_rsp(c, cid, cdw0=1 | ATR)
        dh = mine = None
        while True:
            pdu = c.recv_pdu()
            sqe = pdu.header[8:72]
            opc, cid, fctype = sqe[0], struct.unpack_from("<H", sqe, 2)[0], sqe[4]
            if opc != 0x7F or fctype not in (AUTH_SEND, AUTH_RECV):
                self.after = (opc, fctype)
                return
            if fctype == AUTH_SEND:
                msg = pdu.data
                kind, mid, tid = struct.unpack_from("<BBxxH", msg)
                self.events.append(("send", mid))
                if mid == NEGOTIATE:
                    desc = msg[8:72]
                    assert self.group in desc[34:34 + desc[3]]
                    self.tid, self.hash = tid, 1
                elif mid == REPLY:
                    hl, cvalid, dhvlen, s2 = msg[6], msg[8], *struct.unpack_from("<HI", msg, 10)
                    dh = mine.shared(msg[16 + 2 * hl:16 + 2 * hl + dhvlen]) if mine else None
                    r1 = dhchap_response(1, self.key, "HostHost", hostnqn, subnqn, self.seq,
                                         tid, self.c1, dh)
                    assert msg[16:16 + hl] == r1, "the host's response is wrong"
                    key = make_dhchap_key() if self.wrong else self.ctrl_key
                    self.r2 = dhchap_response(1, key, "Controller", subnqn, hostnqn, s2, tid,
                                              msg[16 + hl:16 + 2 * hl], dh) if cvalid else b""
                self._send_rsp(c, cid)
                continue
            al, = struct.unpack_from("<I", sqe, 44)
            if self.events[-1] == ("send", NEGOTIATE):
                mine = DhKey(self.group) if self.group else None
                pub = mine.pub if mine else b""
                self.c1, self.seq = os.urandom(32), 0x1234
                msg = struct.pack("<BBxxHBxBBHI", DHCHAP, CHALLENGE, self.tid, 32, 1, self.group,
                                  len(pub), self.seq) + self.c1 + pub
            else:
                msg = struct.pack("<BBxxHBxB7x", DHCHAP, SUCCESS1, self.tid, 32,
                                  1 if self.r2 else 0) + self.r2
            assert len(msg) < al
            self.events.append(("recv", msg[1]))
            self._send_data(c, cid, msg)


def test_mimo_initiator_authenticates_to_an_spdk_like_controller(tmp_path):
    key, ckey = make_dhchap_key(hh=1), make_dhchap_key()
    for ctrl_key, group in ((None, 0), (ckey, 1)):
        ctl = SpdkLikeController(key, ctrl_key, group=group)
        args = ["--dhchap-key", key] + (["--dhchap-ctrlr-key", ckey] if ctrl_key else [])
        p = tool(IDENTIFY, "-r", trid(ctl.port), *args)
        ctl.join(30)
        # Authenticated (Success2 when bidirectional), then on to CAP (Property Get).
        want = [("send", NEGOTIATE), ("recv", CHALLENGE), ("send", REPLY), ("recv", SUCCESS1)]
        assert ctl.events == want + ([("send", SUCCESS2)] if ctrl_key else []), ctl.events
        assert ctl.after == (0x7F, 0x04), p.stderr
    # A controller that does not hold the controller key: Failure2, and nothing more.
    ctl = SpdkLikeController(key, ckey, wrong_response=True)
    p = tool(IDENTIFY, "-r", trid(ctl.port), "--dhchap-key", key, "--dhchap-ctrlr-key", ckey)
    ctl.join(30)
    assert p.returncode != 0 and "does not hold the controller key" in p.stderr
    assert ("send", FAILURE2) in ctl.events and ctl.after is None


def test_mimo_rpc_sets_up_authentication_with_rpc_py_s_arguments(daemons, tmp_path):
    """mimo-rpc takes rpc.py's commands and arguments for keys and authentication."""
    at = AuthTarget(daemons, tmp_path)
    mimo_rpc = os.path.join(BIN, "mimo-rpc")

    def cli(*args):
        p = subprocess.run([mimo_rpc, "-s", at.d.sock, *args], capture_output=True, text=True,
                           timeout=60)
        assert p.returncode == 0, p.stderr
        return p.stdout

    key, ckey = make_dhchap_key(), make_dhchap_key(hh=2, length=48)
    cli("keyring_file_add_key", "key0", key_file(tmp_path, "k0", key))
    cli("keyring_file_add_key", "ckey0", key_file(tmp_path, "c0", ckey))
    assert [k["name"] for k in json.loads(cli("keyring_get_keys"))] == ["key0", "ckey0"]
    cli("nvmf_subsystem_add_host", NQN, HOSTNQN, "--dhchap-key", "key0", "--dhchap-ctrlr-key",
        "ckey0")
    cli("nvmf_set_config", "--dhchap-digests", "sha256,sha384", "--dhchap-dhgroups",
        "ffdhe2048")
    a = admin_session(at.port, NQN, HOSTNQN, dhchap=dict(key=key, ctrl_key=ckey))
    assert a.auth == {"hash": "sha384", "group": "ffdhe2048", "bidirectional": True}
    assert json.loads(cli("nvmf_subsystem_get_qpairs", NQN))[0]["auth"]["state"] == "completed"
    cli("nvmf_subsystem_set_keys", NQN, HOSTNQN)
    assert at.host_entry() == {"nqn": HOSTNQN}
    cli("keyring_file_remove_key", "ckey0")
    a.close()
