"""mimo_tgt through raw sockets: SPDK's JSON-RPC framing and error codes, every method and
legacy name, start-up states, the single-instance lock, hostile clients, saved configuration,
and events at a real HTTP receiver."""
import json
import os
import signal
import socket
import stat
import subprocess
import threading
import time

import pytest

from conftest import TGT, Daemon, RawConn, clean_env

pytestmark = pytest.mark.skipif(not os.path.exists(TGT), reason="mimo_tgt is not built")

MODERN = ["rpc_get_methods", "spdk_get_version", "framework_start_init", "framework_wait_init",
          "framework_get_subsystems", "framework_get_config", "spdk_kill_instance",
          "bdev_malloc_create", "bdev_malloc_delete", "bdev_null_create", "bdev_null_delete",
          "bdev_aio_create", "bdev_aio_delete", "bdev_error_create", "bdev_error_delete",
          "bdev_error_inject_error", "bdev_get_bdevs", "bdev_get_iostat", "notify_get_types",
          "notify_get_notifications"]
LEGACY = ["get_rpc_methods", "get_bdevs", "delete_bdev", "kill_instance",
          "construct_malloc_bdev", "construct_null_bdev", "construct_aio_bdev",
          "construct_error_bdev"]


def err(conn, method, params=None):
    resp = conn.call(method, params)
    assert "error" in resp, resp
    return resp["error"]["code"], resp["error"]["message"]


# --- framing -------------------------------------------------------------------------------

def test_concatenated_pretty_and_split_requests(tgt):
    c = tgt.conn()
    # Two requests in one write, pretty-printed as rpc.py sends them, no separator.
    reqs = [{"jsonrpc": "2.0", "method": "spdk_get_version", "id": 1},
            {"jsonrpc": "2.0", "method": "rpc_get_methods", "id": 2}]
    c.send("".join(json.dumps(r, indent=2) for r in reqs))
    assert c.recv_json()["id"] == 1
    assert c.recv_json()["id"] == 2
    # One request dribbled a byte at a time.
    text = json.dumps({"method": "spdk_get_version", "id": "x"})
    for ch in text:
        c.send(ch)
    resp = c.recv_json()
    assert resp["id"] == "x" and resp["result"]["version"].startswith("mimo v")
    # Each response is one JSON object on one line.
    c.send(json.dumps({"method": "bdev_get_bdevs", "id": 5}))
    assert c.buf == b""
    raw = c.sock.recv(65536)
    assert raw.endswith(b"\n") and raw.count(b"\n") == 1


def test_batches_and_notifications(tgt):
    c = tgt.conn()
    c.send(json.dumps([
        {"jsonrpc": "2.0", "method": "bdev_malloc_create", "id": 1,
         "params": {"num_blocks": 16, "block_size": 512, "name": "B1"}},
        {"jsonrpc": "2.0", "method": "bdev_malloc_create",   # a notification: no answer
         "params": {"num_blocks": 16, "block_size": 512, "name": "B2"}},
        {"jsonrpc": "2.0", "method": "no_such_method", "id": 3},
        {"jsonrpc": "1.0", "method": "spdk_get_version", "id": 4},
        {"jsonrpc": "2.0", "method": "bdev_get_bdevs", "id": 5},
    ]))
    out = c.recv_json()
    assert isinstance(out, list) and [r["id"] for r in out] == [1, 3, 4, 5]
    assert out[0]["result"] == "B1"
    assert out[1]["error"]["code"] == -32601
    assert out[2]["error"]["code"] == -32600
    assert {b["name"] for b in out[3]["result"]} == {"B1", "B2"}
    # A batch of notifications only gets no answer at all; an empty batch is invalid.
    c.send(json.dumps([{"method": "spdk_get_version"}, {"method": "spdk_get_version", "id": None}]))
    c.send("[]")
    resp = c.recv_json()
    assert resp["error"]["code"] == -32600 and resp["id"] is None


def test_parse_error_is_answered_then_the_connection_closes(tgt):
    c = tgt.conn()
    c.send('{"method": "spdk_get_version", "id": 1} }garbage')
    assert c.recv_json()["id"] == 1
    resp = c.recv_json()
    assert resp["error"]["code"] == -32700 and resp["id"] is None
    assert c.recv_json() is None  # closed, as SPDK does
    # A well-formed frame that is not JSON is a parse error too.
    c2 = tgt.conn()
    c2.send('{"method": spdk_get_version}')
    assert c2.recv_json()["error"]["code"] == -32700


@pytest.mark.parametrize("req", [
    {"jsonrpc": "2.0", "method": 5, "id": 1},
    {"jsonrpc": "2.0", "id": 1},
    {"jsonrpc": "2.1", "method": "spdk_get_version", "id": 1},
    {"jsonrpc": "2.0", "method": "spdk_get_version", "id": {"a": 1}},
    {"jsonrpc": "2.0", "method": "spdk_get_version", "id": 1, "params": 3},
    {"jsonrpc": "2.0", "method": "spdk_get_version", "id": 1, "extra": True},
    ["not", "requests"],
    "a string",
])
def test_invalid_requests(tgt, req):
    c = tgt.conn()
    c.send(json.dumps(req))
    resp = c.recv_json()
    if isinstance(resp, list):
        assert all(r["error"]["code"] == -32600 for r in resp)
    else:
        assert resp["error"]["code"] == -32600
    # The connection stays usable.
    assert "version" in c.result("spdk_get_version")


# --- errors --------------------------------------------------------------------------------

def test_error_codes(tgt):
    c = tgt.conn()
    assert err(c, "nope")[0] == -32601
    code, msg = err(c, "bdev_malloc_create", {"num_blocks": 8})
    assert code == -32602 and "block_size" in msg
    code, msg = err(c, "bdev_malloc_create", {"num_blocks": 8, "block_size": 512, "colour": 1})
    assert code == -32602 and '"colour"' in msg
    code, msg = err(c, "bdev_malloc_create", {"num_blocks": "8", "block_size": 512})
    assert code == -32602 and "num_blocks" in msg
    code, msg = err(c, "bdev_malloc_create", {"num_blocks": 8, "block_size": 500})
    assert code == -32602 and "block_size" in msg
    code, msg = err(c, "bdev_malloc_create", {"num_blocks": 8, "block_size": 512, "md_size": 8})
    assert code == -32602 and "md_size" in msg
    code, msg = err(c, "spdk_get_version", {"verbose": True})
    assert code == -32602
    assert err(c, "bdev_malloc_delete", {"name": "missing"}) == (-19, "No such device")
    assert c.result("bdev_malloc_create", {"num_blocks": 8, "block_size": 512, "name": "E0"}) == "E0"
    assert err(c, "bdev_malloc_create",
               {"num_blocks": 8, "block_size": 512, "name": "E0"}) == (-17, "File exists")
    assert err(c, "bdev_get_bdevs", {"name": "missing"}) == (-19, "No such device")
    code, msg = err(c, "bdev_aio_create", {"name": "A", "filename": "/nonexistent"})
    assert code == -2 and msg == "No such file or directory"
    # A claimed bdev cannot be deleted: a clear error, and it stays.
    assert c.result("bdev_error_create", {"base_name": "E0"}) is True
    code, msg = err(c, "bdev_malloc_delete", {"name": "E0"})
    assert code == -16 and "E0" in msg
    assert c.result("bdev_get_bdevs", {"name": "E0"})[0]["claimed"] is True
    # The wrong module's delete does not touch another module's bdev.
    assert err(c, "bdev_null_delete", {"name": "EE_E0"})[0] == -19


def test_wait_for_rpc_state_machine(daemons):
    d = daemons("--wait-for-rpc")
    c = d.conn()
    code, msg = err(c, "bdev_malloc_create", {"num_blocks": 8, "block_size": 512})
    assert code == -1 and "framework_start_init" in msg
    current = c.result("rpc_get_methods", {"current": True})
    assert "framework_start_init" in current and "bdev_malloc_create" not in current
    # framework_wait_init on another connection is answered once init is done.
    waiter = d.conn()
    # Requests of one connection are taken in order: the answer to the second proves the
    # first was taken, and that it waits (it would have been answered first otherwise).
    waiter.send(json.dumps({"method": "framework_wait_init", "id": 9}))
    waiter.send(json.dumps({"method": "spdk_get_version", "id": 10}))
    assert waiter.recv_json()["id"] == 10
    assert c.result("framework_start_init") is True
    resp = waiter.recv_json()
    assert resp["id"] == 9 and resp["result"] is True
    assert c.result("framework_wait_init") is True
    # The list follows the state (rpc_get_methods' answers are cached per state).
    current = c.result("rpc_get_methods", {"current": True})
    assert "bdev_malloc_create" in current and "framework_start_init" not in current
    assert c.result("bdev_malloc_create", {"num_blocks": 8, "block_size": 512}) == "Malloc0"
    assert err(c, "framework_start_init")[0] == -1


# --- methods -------------------------------------------------------------------------------

def test_every_method_is_listed(tgt):
    methods = tgt.result("rpc_get_methods")
    assert set(MODERN) <= set(methods)
    assert not set(LEGACY) & set(methods)
    assert set(LEGACY) <= set(tgt.result("rpc_get_methods", {"include_aliases": True}))
    v = tgt.result("spdk_get_version")
    assert set(v["fields"]) == {"major", "minor", "patch", "suffix"}


def test_bdev_methods_and_shapes(tgt, tmp_path):
    c = tgt.conn()
    assert c.result("bdev_malloc_create", {"num_blocks": 131072, "block_size": 512}) == "Malloc0"
    assert c.result("bdev_malloc_create", {"num_blocks": 8, "block_size": 4096}) == "Malloc1"
    uuid = "6b8ad1d8-3a3c-4b6e-9f1b-2f1c6d0b1a10"
    assert c.result("bdev_null_create", {"name": "Null0", "num_blocks": 1024, "block_size": 4096,
                                         "uuid": uuid}) == "Null0"
    f = tmp_path / "disk.img"
    f.write_bytes(b"\0" * (4 << 20))
    assert c.result("bdev_aio_create", {"name": "Aio0", "filename": str(f),
                                        "block_size": 512}) == "Aio0"
    assert c.result("bdev_error_create", {"base_name": "Malloc1"}) is True
    bdevs = {b["name"]: b for b in c.result("bdev_get_bdevs")}
    assert set(bdevs) == {"Malloc0", "Malloc1", "Null0", "Aio0", "EE_Malloc1"}
    m = bdevs["Malloc0"]
    assert m["product_name"] == "Malloc disk" and m["num_blocks"] == 131072
    assert m["block_size"] == 512 and m["aliases"] == [] and m["claimed"] is False
    assert {"read", "write", "unmap", "flush", "reset", "write_zeroes"} <= set(
        k for k, v in m["supported_io_types"].items() if v)
    assert bdevs["Null0"]["uuid"] == uuid and bdevs["Null0"]["product_name"] == "Null disk"
    assert bdevs["Aio0"]["product_name"] == "AIO disk" and bdevs["Aio0"]["num_blocks"] == 8192
    assert bdevs["Aio0"]["driver_specific"]["aio"]["filename"] == str(f)
    assert bdevs["EE_Malloc1"]["product_name"] == "Error disk"
    assert bdevs["Malloc1"]["claimed"] is True
    # By UUID, too.
    assert c.result("bdev_get_bdevs", {"name": uuid})[0]["name"] == "Null0"
    st = c.result("bdev_get_iostat")
    assert st["tick_rate"] > 0 and {b["name"] for b in st["bdevs"]} == set(bdevs)
    assert c.result("bdev_get_iostat", {"name": "Aio0"})["bdevs"][0]["num_read_ops"] == 0
    for io_type in ("read", "write", "all", "clear"):
        assert c.result("bdev_error_inject_error", {"name": "EE_Malloc1", "io_type": io_type,
                                                    "error_type": "failure", "num": 2}) is True
    assert err(c, "bdev_error_inject_error", {"name": "EE_Malloc1", "io_type": "read",
                                              "error_type": "melt"})[0] == -32602
    assert err(c, "bdev_error_inject_error", {"name": "Malloc0", "io_type": "read",
                                              "error_type": "failure"})[0] == -19
    for method, name in (("bdev_error_delete", "EE_Malloc1"), ("bdev_malloc_delete", "Malloc1"),
                         ("bdev_malloc_delete", "Malloc0"), ("bdev_null_delete", "Null0"),
                         ("bdev_aio_delete", "Aio0")):
        assert c.result(method, {"name": name}) is True
    assert c.result("bdev_get_bdevs") == []


def test_bdev_listing_follows_claims(tgt):
    """bdev_get_bdevs answers from a per-bdev cache: a claim and its release must show."""
    c = tgt.conn()
    c.result("bdev_malloc_create", {"num_blocks": 8, "block_size": 512, "name": "Cl"})
    for _ in range(2):  # the second answer comes from the cache
        assert c.result("bdev_get_bdevs", {"name": "Cl"})[0]["claimed"] is False
    c.result("bdev_error_create", {"base_name": "Cl"})
    b = c.result("bdev_get_bdevs", {"name": "Cl"})[0]
    assert b["claimed"] is True and b["claim_type"] == "exclusive_write"
    assert {x["name"]: x["claimed"] for x in c.result("bdev_get_bdevs")} == \
        {"Cl": True, "EE_Cl": False}
    c.result("bdev_error_delete", {"name": "EE_Cl"})
    b = c.result("bdev_get_bdevs", {"name": "Cl"})[0]
    assert b["claimed"] is False and "claim_type" not in b


def test_bdev_get_bdevs_waits_with_a_timeout(tgt):
    c = tgt.conn()
    c.send(json.dumps({"method": "bdev_get_bdevs", "id": 1,
                       "params": {"name": "Later", "timeout": 60000}}))
    # Taken in order: once the second is answered, the first is known to be waiting.
    c.send(json.dumps({"method": "spdk_get_version", "id": 5}))
    assert c.recv_json()["id"] == 5
    tgt.result("bdev_malloc_create", {"num_blocks": 8, "block_size": 512, "name": "Later"})
    resp = c.recv_json()
    assert resp["id"] == 1 and resp["result"][0]["name"] == "Later"
    c.send(json.dumps({"method": "bdev_get_bdevs", "id": 2,
                       "params": {"name": "Never", "timeout": 100}}))
    assert c.recv_json()["error"]["code"] == -19


def test_legacy_names_with_their_old_parameters(tgt, tmp_path):
    c = tgt.conn()
    assert c.result("construct_malloc_bdev", {"total_size": 64, "block_size": 512}) == "Malloc0"
    assert c.result("construct_malloc_bdev", {"num_blocks": 16, "block_size": 512,
                                              "name": "Old1"}) == "Old1"
    assert c.result("construct_null_bdev", {"name": "N", "total_size": 1,
                                            "block_size": 512}) == "N"
    f = tmp_path / "f.img"
    f.write_bytes(b"\0" * (1 << 20))
    assert c.result("construct_aio_bdev", {"filename": str(f), "name": "A",
                                           "block_size": 512}) == "A"
    assert c.result("construct_error_bdev", {"basename": "Old1"}) is True
    assert c.result("construct_error_bdev", {"base_name": "N"}) is True
    bdevs = {b["name"]: b for b in c.result("get_bdevs")}
    assert bdevs["Malloc0"]["num_blocks"] == 131072 and bdevs["N"]["num_blocks"] == 2048
    assert {"EE_Old1", "EE_N"} <= set(bdevs)
    assert c.result("get_bdevs", {"name": "A"})[0]["name"] == "A"
    # delete_bdev removes any type; a claimed base first needs its error bdev gone.
    assert err(c, "delete_bdev", {"name": "Old1"})[0] == -16
    for name in ("EE_Old1", "Old1", "EE_N", "N", "A", "Malloc0"):
        assert c.result("delete_bdev", {"name": name}) is True
    assert c.result("get_bdevs") == []
    assert "get_bdevs" in c.result("get_rpc_methods", {"include_aliases": True})
    assert err(c, "construct_error_bdev", {})[0] == -32602


def test_notify_ring(tgt):
    c = tgt.conn()
    types = c.result("notify_get_types")
    assert {"bdev_register", "bdev_unregister", "bdev_created", "bdev_deleted",
            "mimo_tgt_started"} <= set(types)
    c.result("bdev_malloc_create", {"num_blocks": 8, "block_size": 512, "name": "R0"})
    c.result("bdev_malloc_delete", {"name": "R0"})
    events = c.result("notify_get_notifications", {"id": 0})
    ring = [(e["type"], e["ctx"]) for e in events]
    assert ("bdev_register", "R0") in ring and ("bdev_unregister", "R0") in ring
    ids = [e["id"] for e in events]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    # From an id on, at most max.
    later = c.result("notify_get_notifications", {"id": ids[-2], "max": 1})
    assert [e["id"] for e in later] == [ids[-2]]


# --- the process ---------------------------------------------------------------------------

def test_second_instance_is_refused_and_stale_socket_cleaned(daemons, rundir):
    first = daemons(name="one")
    second = subprocess.run([TGT, "-r", first.sock], env=clean_env(MIMO_NOTIFY_DISABLE=1),
                            capture_output=True, text=True, timeout=30)
    assert second.returncode != 0
    assert "another process serves" in second.stderr + second.stdout
    assert first.result("spdk_get_version")  # unharmed
    first.stop()
    # A socket file left by a crash (no lock held) is cleaned up at the next start.
    stale = os.path.join(rundir, "stale.sock")
    s = socket.socket(socket.AF_UNIX)
    s.bind(stale)
    s.close()
    d = Daemon(rundir, name="stale", env={})
    assert d.result("spdk_get_version")
    d.stop()


def test_pid_file_socket_mode_and_clean_exit(daemons, rundir):
    d = daemons()
    assert int(open(d.pid_file).read()) == d.proc.pid
    assert stat.S_IMODE(os.stat(d.sock).st_mode) == 0o600
    assert d.stop(signal.SIGINT) == 0
    assert not os.path.exists(d.pid_file) and not os.path.exists(d.sock)
    wide = daemons("--rpc-socket-mode", "0660", name="wide")
    assert stat.S_IMODE(os.stat(wide.sock).st_mode) == 0o660


def test_clean_exit_with_bdev_names_of_any_length(daemons):
    """Shutdown deletes every bdev by its whole name: one longer than 255 bytes (bdev names
    have no limit, as in SPDK) used to be retried forever under a cut name."""
    d = daemons()
    for n in ("x" * 255, "y" * 256, "z" * 5000):
        assert d.result("bdev_null_create", {"name": n, "num_blocks": 8, "block_size": 512}) == n
    assert d.stop(signal.SIGTERM) == 0


def test_kill_instance(daemons):
    d = daemons()
    assert d.result("spdk_kill_instance", {"sig_name": "SIGTERM"}) is True
    assert d.proc.wait(timeout=10) == 0
    d2 = daemons(name="legacy")
    assert d2.result("kill_instance", {"sig_name": "SIGINT"}) is True
    assert d2.proc.wait(timeout=10) == 0
    d3 = daemons(name="bad")
    c = d3.conn()
    assert err(c, "spdk_kill_instance", {"sig_name": "SIGSEGV"})[0] == -32602


def test_bad_options_and_help():
    p = subprocess.run([TGT, "--help"], capture_output=True, text=True, timeout=10)
    assert p.returncode == 0 and "--rpc-socket" in p.stdout and "--wait-for-rpc" in p.stdout
    for args in (["-m", "0x0"], ["--bogus"], ["stray"], ["--rpc-socket-mode", "999"]):
        p = subprocess.run([TGT, *args], capture_output=True, text=True, timeout=10)
        assert p.returncode != 0 and p.stderr, args
    # SPDK's own start-up flags are accepted, so SPDK scripts start mimo_tgt unchanged.
    p = subprocess.run([TGT, "--no-huge", "-s", "1024", "-i", "0", "--version"],
                       capture_output=True, text=True, timeout=10)
    assert p.returncode == 0 and p.stdout.startswith("mimo_tgt ")


def test_config_saved_and_replayed_with_c(daemons, tmp_path):
    f = tmp_path / "disk.img"
    f.write_bytes(b"\0" * (2 << 20))
    d = daemons()
    c = d.conn()
    c.result("bdev_malloc_create", {"num_blocks": 64, "block_size": 512, "name": "M"})
    c.result("bdev_null_create", {"name": "N", "num_blocks": 64, "block_size": 4096})
    c.result("bdev_aio_create", {"name": "A", "filename": str(f)})
    c.result("bdev_error_create", {"base_name": "A"})
    before = {b["name"]: b for b in c.result("bdev_get_bdevs")}
    subs = c.result("framework_get_subsystems")
    assert {"subsystem": "bdev", "depends_on": []} in subs
    config = {"subsystems": [{"subsystem": s["subsystem"],
                              "config": c.result("framework_get_config", {"name": s["subsystem"]})}
                             for s in subs]}
    assert err(c, "framework_get_config", {"name": "nope"})[0] == -32602
    d.stop()
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config, indent=2))
    d2 = daemons("-c", path, name="again")
    after = {b["name"]: b for b in d2.result("bdev_get_bdevs")}
    assert set(after) == set(before)
    for name in before:
        for key in ("uuid", "num_blocks", "block_size", "product_name", "claimed"):
            assert after[name][key] == before[name][key], (name, key)
    # A configuration that fails stops the start, naming the method.
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"subsystems": [{"subsystem": "bdev", "config": [
        {"method": "bdev_malloc_create", "params": {"num_blocks": 8, "block_size": 3}}]}]}))
    p = subprocess.run([TGT, "-r", str(tmp_path / "bad.sock"), "-c", bad],
                       env=clean_env(MIMO_NOTIFY_DISABLE=1), capture_output=True, text=True,
                       timeout=30)
    assert p.returncode != 0 and "bdev_malloc_create failed" in p.stderr


# --- clients that misbehave --------------------------------------------------------------

def test_hostile_clients_do_not_harm_a_good_one(tgt):
    good = tgt.conn()
    good.result("bdev_malloc_create", {"num_blocks": 8, "block_size": 512})
    # One stalls mid-request, one sends garbage, one sends a request over the size limit.
    staller = tgt.conn()
    staller.send('{"method": "bdev_get_bdevs", "id": 1, "par')
    garbage = tgt.conn()
    garbage.send(b"\x00\xff\xfe garbage")
    huge = tgt.conn()
    try:
        huge.send('{"method": "spdk_get_version", "id": 1, "params": {"x": "' + "a" * (5 << 20))
    except (BrokenPipeError, ConnectionResetError):
        pass
    # One floods requests and never reads an answer.
    flood = tgt.conn()
    flood.sock.setblocking(False)
    req = json.dumps({"method": "bdev_get_bdevs", "id": 1}).encode()
    sent = 0
    for _ in range(20000):
        try:
            sent += flood.sock.send(req)
        except BlockingIOError:
            break
    # One disconnects with a big answer on its way.
    for i in range(50):
        good.result("bdev_malloc_create", {"num_blocks": 8, "block_size": 512, "name": f"X{i}"})
    leaver = tgt.conn()
    leaver.send(json.dumps({"method": "bdev_get_bdevs", "id": 1}))
    leaver.sock.close()
    # The good client keeps being served promptly, on the same connection and on new ones.
    for _ in range(20):
        assert len(good.result("bdev_get_bdevs")) == 51
    assert garbage.recv_json()["error"]["code"] == -32700
    resp = huge.recv_json()
    assert resp is None or resp["error"]["code"] == -32700
    assert tgt.result("spdk_get_version")
    assert tgt.proc.poll() is None


def test_many_clients_at_once(tgt):
    errors = []

    def client(i):
        try:
            c = RawConn(tgt.sock)
            for j in range(20):
                c.result("bdev_malloc_create", {"num_blocks": 8, "block_size": 512,
                                                "name": f"C{i}_{j}"})
            c.close()
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(tgt.result("bdev_get_bdevs")) == 16 * 20


# --- events ---------------------------------------------------------------------------------

def test_events_reach_a_real_receiver(daemons, receiver):
    r = receiver()
    d = daemons(env={"MIMO_NOTIFY_URL": r.url})
    d.result("bdev_malloc_create", {"num_blocks": 2048, "block_size": 512, "name": "Ev0"})
    d.result("bdev_malloc_delete", {"name": "Ev0"})
    d.stop()
    events = [q.json() for q in r.wait_for(4)]
    names = [e["event"] for e in events]
    assert names == ["mimo_tgt_started", "bdev_created", "bdev_deleted", "mimo_tgt_stopped"]
    started = events[0]["payload"]
    assert started["pid"] == d.proc.pid and started["name"] == "mimo_tgt"
    assert started["rpc_socket"] == d.sock and started["version"]
    assert events[1]["payload"] == {"name": "Ev0", "product_name": "Malloc disk",
                                    "block_size": 512, "num_blocks": 2048, "size": 1048576}
    assert events[2]["payload"]["name"] == "Ev0"


# --- SPDK's own rpc.py, when this machine has it ------------------------------------------

SPDK_RPC = os.environ.get("SPDK_RPC_PY")


@pytest.mark.skipif(not SPDK_RPC, reason="set SPDK_RPC_PY to SPDK's scripts/rpc.py to run")
def test_spdk_rpc_py_unchanged(tgt, tmp_path):
    def rpc(*args):
        p = subprocess.run(["/usr/bin/python3", SPDK_RPC, "-s", tgt.sock, *map(str, args)],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        return p.stdout

    assert rpc("bdev_malloc_create", 64, 512, "-b", "Malloc0").strip() == "Malloc0"
    assert rpc("bdev_null_create", "Null0", 16, 4096).strip() == "Null0"
    assert json.loads(rpc("bdev_get_bdevs", "-b", "Malloc0"))[0]["num_blocks"] == 131072
    rpc("bdev_error_create", "Malloc0")
    rpc("bdev_error_inject_error", "EE_Malloc0", "read", "failure", "-n", 2)
    cfg = rpc("save_config")
    assert "bdev_malloc_create" in cfg
    assert "bdev_get_bdevs" in json.loads(rpc("rpc_get_methods"))
    rpc("bdev_error_delete", "EE_Malloc0")
    rpc("bdev_malloc_delete", "Malloc0")
    f = tmp_path / "aio.img"
    f.write_bytes(b"\0" * (1 << 20))
    assert rpc("bdev_aio_create", f, "Aio0", 512).strip() == "Aio0"
    rpc("bdev_get_iostat")
    rpc("notify_get_types")
    rpc("notify_get_notifications")
    rpc("framework_get_reactors")
    rpc("spdk_get_version")
    # save_config, then load_config into a fresh daemon, reproduces the bdevs.
    cfg = tmp_path / "saved.json"
    cfg.write_text(rpc("save_config"))
    rpc("bdev_aio_delete", "Aio0")
    rpc("bdev_null_delete", "Null0")
    p = subprocess.run(["/usr/bin/python3", SPDK_RPC, "-s", tgt.sock, "load_config", "-j", cfg],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert {b["name"] for b in json.loads(rpc("bdev_get_bdevs"))} == {"Aio0", "Null0"}
    rpc("spdk_kill_instance", "SIGTERM")
    assert tgt.proc.wait(timeout=10) == 0
