"""The Python package ``mimo`` against the real mimo_tgt: Client framing and errors, Target
process control, py-spdk's NvmfTgt legacy methods, and the mimo-rpc command line."""
import fcntl
import json
import os
import shutil
import socket
import subprocess
import struct
import sys
import termios
import threading
import time

import pytest

from conftest import BIN, PY, REPO, clean_env, wait_until

TGT = os.path.join(BIN, "mimo_tgt")
if not os.path.exists(TGT):
    pytest.skip(f"{TGT} is not built yet", allow_module_level=True)

sys.path.insert(0, os.path.join(REPO, "python"))

from mimo import Client, NvmfTgt, RpcConnectionError, RpcError, Target, VhostTgt  # noqa: E402

MIMO_RPC = os.path.join(BIN, "mimo-rpc")  # the package as one executable zip (make build)


# --- fixtures and helpers ----------------------------------------------------------------

@pytest.fixture
def start(rundir):
    """Start mimo_tgt daemons on private sockets; every one is stopped after the test."""
    started = []

    def run(**kw):
        t = Target(TGT, rpc_socket=os.path.join(rundir, f"tgt{len(started)}.sock"))
        t.start_server(env=clean_env(), **kw)
        started.append(t)
        return t

    yield run
    for t in started:
        t.close_server()


@pytest.fixture
def tgt(start):
    return start()


def rpc(sock, *args, stdin=None):
    """Run mimo-rpc (the script itself, shebang and all) against ``sock``."""
    return subprocess.run([MIMO_RPC, "-s", sock, *map(str, args)], input=stdin,
                          capture_output=True, text=True, timeout=60)


def wait_dead(t, timeout=10.0):
    wait_until(lambda: not t.is_alive(), timeout, "mimo_tgt to exit")


def unread_bytes(sock):
    """Bytes sent on a Unix stream socket that the peer has not read yet (SIOCOUTQ)."""
    return struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0" * 4))[0]


def scripted_server(path, chunks, close=True):
    """A one-connection peer that reads a request, sends ``chunks`` with short pauses, then
    closes (``close``) or waits for the client to hang up: framing cases a daemon never makes
    on purpose."""
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(path)
    srv.listen(1)

    def run():
        conn, _ = srv.accept()
        with conn:
            conn.recv(65536)
            for chunk in chunks:
                conn.sendall(chunk)
                # The client has read this chunk before the next is sent: each arrives in
                # a read of its own.
                wait_until(lambda: unread_bytes(conn) == 0, 10, "the client to read a chunk")
            while not close and conn.recv(65536):
                pass
        srv.close()

    threading.Thread(target=run, daemon=True).start()


def malloc(client, name, num_blocks=8, block_size=512):
    return client.call("bdev_malloc_create",
                       {"name": name, "num_blocks": num_blocks, "block_size": block_size})


# --- Client ------------------------------------------------------------------------------

def test_call_returns_results(tgt):
    with Client(tgt.rpc_socket) as c:
        methods = c.call("rpc_get_methods")
        assert "rpc_get_methods" in methods and "bdev_malloc_create" in methods
        version = c.call("spdk_get_version")
        assert isinstance(version["version"], str) and "major" in version["fields"]
        subsystems = [s["subsystem"] for s in c.call("framework_get_subsystems")]
        assert subsystems[:2] == ["keyring", "bdev"]


def test_many_calls_share_one_connection(tgt):
    with Client(tgt.rpc_socket) as c:
        for i in range(50):
            assert malloc(c, f"M{i}") == f"M{i}"
        for _ in range(100):
            assert len(c.call("bdev_get_bdevs")) == 50


def test_notification_runs_without_reply(tgt):
    with Client(tgt.rpc_socket) as c:
        c.notify("bdev_malloc_create", {"name": "N0", "num_blocks": 8, "block_size": 512})
        assert c.call("bdev_get_bdevs", {"name": "N0"})[0]["name"] == "N0"


def test_batch_answers_in_request_order(tgt):
    with Client(tgt.rpc_socket) as c:
        r = c.batch([("spdk_get_version", None), ("no_such_method", None),
                     ("bdev_malloc_delete", {"name": "nope"}),
                     ("bdev_malloc_create", {"name": "B0", "num_blocks": 8, "block_size": 512})])
        assert "version" in r[0]
        assert isinstance(r[1], RpcError) and r[1].code == -32601
        assert isinstance(r[2], RpcError) and r[2].code == -19
        assert r[3] == "B0"
        assert c.batch([]) == []


def test_unknown_method_is_32601_and_connection_survives(tgt):
    with Client(tgt.rpc_socket) as c:
        with pytest.raises(RpcError) as e:
            c.call("no_such_method")
        assert e.value.code == -32601 and e.value.method == "no_such_method"
        assert str(e.value).startswith("no_such_method: -32601 ")
        assert "version" in c.call("spdk_get_version")


def test_bad_params_name_the_parameter(tgt):
    with Client(tgt.rpc_socket) as c:
        with pytest.raises(RpcError) as e:
            c.call("bdev_malloc_create", {"block_size": 512})
        assert e.value.code == -32602 and "num_blocks" in e.value.message
        with pytest.raises(RpcError) as e:
            c.call("bdev_malloc_create", {"num_blocks": 8, "block_size": 512, "bogus": 1})
        assert e.value.code == -32602 and "bogus" in e.value.message


def test_deleting_a_missing_bdev_is_enodev(tgt):
    with Client(tgt.rpc_socket) as c:
        with pytest.raises(RpcError) as e:
            c.call("bdev_malloc_delete", {"name": "nope"})
        assert e.value.code == -19
        assert str(e.value) == "bdev_malloc_delete: -19 No such device"


def test_missing_socket_is_a_connection_error_naming_it(rundir):
    path = os.path.join(rundir, "none.sock")
    with pytest.raises(RpcConnectionError) as e:
        Client(path)
    assert isinstance(e.value, ConnectionError) and path in str(e.value)


def test_conn_retries_wait_for_a_starting_daemon(rundir):
    sock = os.path.join(rundir, "late.sock")
    p = subprocess.Popen([TGT, "-r", sock, "--pid-file", sock + ".pid"], env=clean_env())
    try:
        with Client(sock, conn_retries=100) as c:
            assert "version" in c.call("spdk_get_version")
    finally:
        p.terminate()
        p.wait(10)


def test_daemon_exit_is_a_connection_error(tgt):
    c = Client(tgt.rpc_socket)
    try:
        c.call("spdk_kill_instance", {"sig_name": "SIGTERM"})
    except RpcConnectionError:
        pass  # it may die before replying
    wait_dead(tgt)
    with pytest.raises(RpcConnectionError):
        c.call("spdk_get_version")


def test_client_reassembles_split_and_joined_replies(rundir):
    path = os.path.join(rundir, "split.sock")
    scripted_server(path, [b'{"jsonrpc":"2.0","id":1,"res', b'ult":"a\xc3',
                           b'\xa9"}\n{"jsonrpc":"2.0",\n"id":2,"result":[2]}\n'], close=False)
    with Client(path, timeout=5) as c:
        assert c.call("x") == "a\u00e9"
        assert c.call("y") == [2]


def test_client_rejects_a_mismatched_id(rundir):
    path = os.path.join(rundir, "id.sock")
    scripted_server(path, [b'{"jsonrpc":"2.0","id":99,"result":1}\n'], close=False)
    with Client(path, timeout=5) as c, pytest.raises(RpcConnectionError, match="id"):
        c.call("x")


def test_client_peer_closing_mid_reply(rundir):
    path = os.path.join(rundir, "close.sock")
    scripted_server(path, [b'{"jsonrpc":"2.0","id":1,"re'])
    with Client(path, timeout=5) as c, pytest.raises(RpcConnectionError, match="closed"):
        c.call("x")


def test_client_timeout(rundir):
    path = os.path.join(rundir, "silent.sock")
    scripted_server(path, [], close=False)
    with Client(path, timeout=0.3) as c, pytest.raises(TimeoutError):
        c.call("x")


# --- Target ------------------------------------------------------------------------------

def test_target_start_is_alive_and_close(rundir):
    t = Target(TGT, rpc_socket=os.path.join(rundir, "life.sock"))
    assert t.pid_file == t.rpc_socket + ".pid"
    pid = t.start_server(env=clean_env())
    assert t.get_process_id() == pid and t.is_alive()
    with open(f"/proc/{pid}/comm") as f:
        assert f.read().strip() == "mimo_tgt"
    assert t.exec_rpc("spdk_get_version")["version"]
    assert t.close_server() == 0
    assert not t.is_alive()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert t.close_server() is None


def test_pid_file_exists_once_the_socket_answers(rundir):
    """Whoever sees the RPC socket answer finds the daemon's PID file (scripts that start
    mimo_tgt, wait for the socket and then read the file rely on it)."""
    sock = os.path.join(rundir, "early.sock")
    pid_file = sock + ".pid"
    for _ in range(10):  # the old daemon wrote the file late about 1 start in 4
        p = subprocess.Popen([TGT, "-r", sock, "--pid-file", pid_file], env=clean_env())
        try:
            def answers():
                # A bare socket, so the answer is seen as early as the daemon gives it.
                try:
                    with socket.socket(socket.AF_UNIX) as c:
                        c.settimeout(5)
                        c.connect(sock)
                        c.sendall(b'{"jsonrpc":"2.0","method":"spdk_get_version","id":1}')
                        return c.recv(4096) != b""
                except OSError:
                    return p.poll() is not None  # exited: let the assertion below say so
            wait_until(answers, 10, "the RPC socket to answer", step=0)
            assert p.poll() is None
            with open(pid_file) as f:
                assert int(f.read()) == p.pid
        finally:
            p.terminate()
            p.wait(10)
        assert not os.path.exists(pid_file), "the PID file outlived the daemon"


def test_is_alive_never_trusts_a_foreign_pid(rundir):
    t = Target(TGT, rpc_socket=os.path.join(rundir, "foreign.sock"))
    assert t.get_process_id() is None and not t.is_alive()
    with open(t.pid_file, "w") as f:
        f.write(f"{os.getpid()}\n")
    assert t.get_process_id() == os.getpid() and not t.is_alive()


def test_start_failure_reports_exit_status(rundir):
    t = Target(TGT, rpc_socket=os.path.join(rundir, "bad.sock"))
    with pytest.raises(RuntimeError, match="exited with status"):
        t.start_server(extra_args=["--no-such-option"], env=clean_env(),
                       stderr=subprocess.DEVNULL)


def test_start_timeout_kills_the_process(rundir):
    fake = os.path.join(rundir, "mimo_tgt")
    pid_out = os.path.join(rundir, "fake.pid")
    with open(fake, "w") as f:
        f.write(f"#!/bin/sh\necho $$ > {pid_out}\nexec sleep 60\n")
    os.chmod(fake, 0o755)
    t = Target(fake, rpc_socket=os.path.join(rundir, "slow.sock"))
    with pytest.raises(TimeoutError):
        t.start_server(timeout=0.5)
    with open(pid_out) as f:
        pid = int(f.read())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_wait_for_rpc_then_start_init(start):
    t = start(wait_for_rpc=True)
    current = t.exec_rpc("rpc_get_methods", {"current": True})
    assert "framework_start_init" in current and "bdev_malloc_create" not in current
    with pytest.raises(RpcError) as e:
        malloc(t.client(), "Early")
    assert e.value.code == -1
    assert t.exec_rpc("framework_start_init") is True
    assert t.exec_rpc("framework_wait_init") is True
    assert malloc(t.client(), "Late") == "Late"


def test_exec_rpc_reconnects_after_a_drop(tgt):
    c = tgt.client()
    assert tgt.client() is c
    c.close()
    assert "version" in tgt.exec_rpc("spdk_get_version")
    assert tgt.client() is not c


def test_init_hugepages_and_search_file(tmp_path):
    t = Target(TGT, rpc_socket=str(tmp_path / "x.sock"))
    assert t.init_hugepages() == {"required": False, "reason": "mimo needs no hugepages"}
    for d in ("c", "a/b"):
        (tmp_path / d).mkdir(parents=True)
        (tmp_path / d / "conf.json").write_text("{}")
    assert t.search_file(str(tmp_path), "conf.json") == str(tmp_path / "a" / "b" / "conf.json")
    assert t.search_file(str(tmp_path), "absent") is None


# --- NvmfTgt (py-spdk's legacy names) ----------------------------------------------------

def test_nvmf_bdev_methods(tgt, tmp_path):
    n = NvmfTgt(tgt.client())
    assert "get_bdevs" in n.get_rpc_methods()
    name = n.construct_malloc_bdev(64, 512)
    assert isinstance(name, str)
    b = n.get_bdevs(name)[0]
    assert (b["product_name"], b["block_size"], b["num_blocks"]) == ("Malloc disk", 512, 131072)
    assert n.construct_malloc_bdev(8, 4096, name="M1") == "M1"
    assert n.construct_null_bdev("Null0", 16, 512) == "Null0"
    assert n.get_bdevs("Null0")[0]["product_name"] == "Null disk"
    img = tmp_path / "disk.img"
    with open(img, "wb") as f:
        f.truncate(16 << 20)
    assert n.construct_aio_bdev(str(img), "Aio0", 512) == "Aio0"
    b = n.get_bdevs("Aio0")[0]
    assert (b["product_name"], b["num_blocks"]) == ("AIO disk", 32768)
    assert n.construct_error_bdev(name) is True
    ee = n.get_bdevs("EE_" + name)[0]
    assert (ee["product_name"], ee["num_blocks"]) == ("Error disk", 131072)
    assert {b["name"] for b in n.get_bdevs()} == {name, "M1", "Null0", "Aio0", "EE_" + name}
    for bdev in ("EE_" + name, name, "M1", "Null0", "Aio0"):
        assert n.delete_bdev(bdev) is True
    assert n.get_bdevs() == []
    with pytest.raises(RpcError) as e:
        n.get_bdevs(name)
    assert e.value.code == -19


def test_nvmf_subsystem_methods(tgt):
    n = NvmfTgt(tgt.client())
    assert [s["subtype"] for s in n.get_nvmf_subsystems()] == ["Discovery"]
    n.construct_malloc_bdev(8, 512, name="M0")
    nqn = "nqn.2016-06.io.spdk:cnode1"
    assert n.construct_nvmf_subsystem(nqn, "trtype:tcp traddr:127.0.0.1 trsvcid:0", [],
                                      "SPDK001", ["M0:3"], allow_any_host=True) is True
    s = n.get_nvmf_subsystems()[1]
    assert (s["nqn"], s["serial_number"], s["allow_any_host"]) == (nqn, "SPDK001", True)
    assert s["namespaces"][0]["nsid"] == 3 and int(s["listen_addresses"][0]["trsvcid"]) > 0
    assert n.delete_nvmf_subsystem(nqn) is True
    assert len(n.get_nvmf_subsystems()) == 1


def test_vhost_tgt_keeps_py_spdks_methods(tgt):
    """py-spdk's VhostTgt: its legacy names are listed and answer (the SCSI lists are empty
    until a vhost-scsi controller exists; the interface calls are test_net.py's)."""
    v = VhostTgt(tgt.client())
    legacy = set(v.get_rpc_methods())
    assert {"get_scsi_devices", "get_luns", "get_interfaces", "add_ip_address",
            "delete_ip_address", "get_bdevs", "delete_bdev", "kill_instance",
            "construct_malloc_bdev"} <= legacy
    assert v.get_scsi_devices() == [] and v.get_luns() == []
    assert "lo" in {i["name"] for i in v.get_interfaces()}
    name = v.construct_malloc_bdev(8, 512)
    assert v.get_bdevs(name)[0]["num_blocks"] == 16384
    assert v.delete_bdev(name) is True


def test_nvmf_kill_instance(start):
    t = start()
    assert NvmfTgt(t.client()).kill_instance("SIGTERM") is True
    wait_dead(t)


def test_construct_nvmf_subsystem_accepts_py_spdk_loose_forms():
    class Recorder:
        def call(self, method, params=None):
            self.sent = (method, params)
            return True

    r = Recorder()
    assert NvmfTgt(r).construct_nvmf_subsystem(
        "nqn.2016-06.io.spdk:cnode1",
        ["trtype:tcp traddr:127.0.0.1 trsvcid:4420",
         {"trtype": "tcp", "traddr": "::1", "trsvcid": "4421", "adrfam": "ipv6"}],
        "nqn.h1 nqn.h2", "SPDK001", ["Malloc0", "Malloc2:3", {"bdev_name": "M1", "nsid": 5}])
    assert r.sent == ("construct_nvmf_subsystem", {
        "nqn": "nqn.2016-06.io.spdk:cnode1",
        "listen_addresses": [{"trtype": "tcp", "traddr": "127.0.0.1", "trsvcid": "4420"},
                             {"trtype": "tcp", "traddr": "::1", "trsvcid": "4421",
                              "adrfam": "ipv6"}],
        "hosts": ["nqn.h1", "nqn.h2"], "serial_number": "SPDK001",
        "namespaces": [{"bdev_name": "Malloc0"}, {"bdev_name": "Malloc2", "nsid": 3},
                       {"bdev_name": "M1", "nsid": 5}],
        "allow_any_host": False})


# --- mimo-rpc ----------------------------------------------------------------------------

def test_cli_create_get_and_call(tgt):
    sock = tgt.rpc_socket
    p = rpc(sock, "bdev_malloc_create", 64, 512, "-b", "Malloc0")
    assert (p.returncode, p.stdout) == (0, "Malloc0\n"), p.stderr
    p = rpc(sock, "bdev_get_bdevs", "-b", "Malloc0")
    assert p.returncode == 0, p.stderr
    (b,) = json.loads(p.stdout)
    assert (b["name"], b["num_blocks"], b["block_size"]) == ("Malloc0", 131072, 512)
    p = rpc(sock, "call", "spdk_get_version")
    assert "version" in json.loads(p.stdout)
    p = rpc(sock, "call", "bdev_null_create", '{"name":"Null0","num_blocks":64,"block_size":512}')
    assert p.stdout == "Null0\n", p.stderr


def test_cli_dry_run_needs_no_daemon(rundir):
    p = rpc(os.path.join(rundir, "none.sock"), "--dry-run",
            "bdev_malloc_create", 64, 512, "-b", "Malloc0")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == {
        "jsonrpc": "2.0", "method": "bdev_malloc_create", "id": 1,
        "params": {"num_blocks": 131072, "block_size": 512, "name": "Malloc0"}}


def test_cli_errors_exit_1(tgt, rundir):
    p = rpc(tgt.rpc_socket, "bdev_malloc_delete", "nope")
    assert p.returncode == 1
    assert "Got JSON-RPC error response" in p.stderr and '"code": -19' in p.stderr
    missing = os.path.join(rundir, "none.sock")
    p = rpc(missing, "rpc_get_methods")
    assert p.returncode == 1 and missing in p.stderr


def test_cli_verbose_logs_the_exchange(tgt):
    p = rpc(tgt.rpc_socket, "-v", "spdk_get_version")
    assert p.returncode == 0
    assert "request:" in p.stderr and "spdk_get_version" in p.stderr
    assert "response:" in p.stderr


def test_cli_save_config_restores_the_same_bdevs(start, tmp_path):
    t = start()
    sock = t.rpc_socket
    img = tmp_path / "disk.img"
    with open(img, "wb") as f:
        f.truncate(16 << 20)
    for args in (("bdev_malloc_create", 64, 512, "-b", "Malloc0"),
                 ("bdev_malloc_create", 8, 4096, "-b", "Malloc1"),
                 ("bdev_null_create", "Null0", 16, 512),
                 ("bdev_aio_create", img, "Aio0", 512),
                 ("bdev_error_create", "Malloc1")):
        assert rpc(sock, *args).returncode == 0
    p = rpc(sock, "save_config")
    assert p.returncode == 0, p.stderr
    config = json.loads(p.stdout)
    assert any(s["subsystem"] == "bdev" for s in config["subsystems"])
    saved = tmp_path / "config.json"
    saved.write_text(p.stdout)

    def bdevs(target):
        return {b["name"]: (b["product_name"], b["block_size"], b["num_blocks"], b["uuid"])
                for b in target.exec_rpc("bdev_get_bdevs")}

    before = bdevs(t)
    assert set(before) == {"Malloc0", "Malloc1", "Null0", "Aio0", "EE_Malloc1"}
    t.close_server()
    assert bdevs(start(config=str(saved))) == before


def test_cli_load_config_at_startup_and_unknown_methods(start, tmp_path):
    t = start(wait_for_rpc=True)
    conf = tmp_path / "c.json"
    conf.write_text(json.dumps({"subsystems": [{"subsystem": "bdev", "config": [
        {"method": "bdev_malloc_create",
         "params": {"name": "L0", "num_blocks": 64, "block_size": 512}}]}]}))
    p = rpc(t.rpc_socket, "load_config", "-j", conf)
    assert p.returncode == 0, p.stderr
    assert t.exec_rpc("framework_wait_init") is True
    assert t.exec_rpc("bdev_get_bdevs", {"name": "L0"})[0]["num_blocks"] == 64
    bad = json.dumps({"subsystems": [{"subsystem": "bdev", "config": [
        {"method": "bdev_frobnicate", "params": {}}]}]})
    p = rpc(t.rpc_socket, "load_config", stdin=bad)
    assert p.returncode == 1 and "bdev_frobnicate" in p.stderr


def test_cli_kill_instance(start):
    t = start()
    assert rpc(t.rpc_socket, "spdk_kill_instance", "SIGTERM").returncode == 0
    wait_dead(t)


def test_client_calls_methods_by_name(tgt):
    """SPDK's client allows client.bdev_malloc_create(...): so does mimo's, beside call()."""
    c = tgt.client()
    assert c.bdev_malloc_create(num_blocks=8, block_size=512, name="ByName") == "ByName"
    assert [b["name"] for b in c.bdev_get_bdevs(name="ByName")] == ["ByName"]
    assert c.spdk_get_version()["version"]
    with pytest.raises(RpcError):
        c.bdev_malloc_delete(name="nope")
    with pytest.raises(AttributeError):
        c._not_a_method


def test_package_installs_offline_and_its_command_works(tmp_path, tgt):
    """pip install --no-build-isolation ./python, with Debian's setuptools and no network, in
    a virtual environment: the package imports and its mimo-rpc entry point runs."""
    venv = tmp_path / "venv"
    r = subprocess.run([PY, "-m", "venv", "--system-site-packages", str(venv)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"python3-venv (scripts/deps.sh) missing? {r.stderr[-300:]}"
    # From a copy: setuptools builds in the source directory and would leave build/ and
    # mimo.egg-info/ behind in the checkout.
    src = tmp_path / "src"
    shutil.copytree(os.path.join(REPO, "python"), src,
                    ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info"))
    pip = subprocess.run([str(venv / "bin" / "pip"), "install", "--no-build-isolation",
                          "--no-index", "--quiet", str(src)],
                         capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, PIP_NO_INDEX="1"))
    assert pip.returncode == 0, pip.stderr
    out = subprocess.run([str(venv / "bin" / "mimo-rpc"), "-s", tgt.rpc_socket,
                          "spdk_get_version"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and json.loads(out.stdout)["version"], out.stderr
    imp = subprocess.run([str(venv / "bin" / "python"), "-c",
                          "import mimo, os; print(os.path.dirname(mimo.__file__))"],
                         capture_output=True, text=True, timeout=60, cwd=str(tmp_path))
    assert str(venv) in imp.stdout, imp.stdout + imp.stderr


def test_cli_runs_through_a_symlink_and_as_a_module(tmp_path):
    link = tmp_path / "bin" / "mimo-rpc"
    link.parent.mkdir()
    link.symlink_to(MIMO_RPC)
    p = subprocess.run([str(link), "--dry-run", "spdk_get_version"], capture_output=True,
                       text=True, timeout=60)
    assert json.loads(p.stdout)["method"] == "spdk_get_version", p.stderr
    p = subprocess.run([PY, "-m", "mimo", "--dry-run", "spdk_get_version"], capture_output=True,
                       text=True, timeout=60, cwd=os.path.join(REPO, "python"))
    assert json.loads(p.stdout)["method"] == "spdk_get_version", p.stderr


def test_cli_nvmf_commands(tgt):
    sock = tgt.rpc_socket
    nqn = "nqn.2016-06.io.spdk:cnode1"

    def ok(*args):
        p = rpc(sock, *args)
        assert p.returncode == 0, p.stderr
        return p.stdout.strip()

    ok("bdev_malloc_create", 16, 512, "-b", "Malloc0")
    assert ok("nvmf_create_transport", "-t", "tcp", "-q", "64", "-o") == "true"
    t = json.loads(ok("nvmf_get_transports"))[0]
    assert (t["max_queue_depth"], t["c2h_success"]) == (64, False)
    ok("nvmf_create_subsystem", nqn, "-a", "-s", "SPDK00000000000001", "-m", "4")
    assert ok("nvmf_subsystem_add_ns", nqn, "Malloc0", "-n", "2") == "2"
    ok("nvmf_subsystem_add_listener", nqn, "-t", "tcp", "-a", "127.0.0.1", "-s", "0")
    ok("nvmf_subsystem_add_host", nqn, "nqn.2014-08.org.nvmexpress:uuid:"
       "11111111-2222-3333-4444-555555555555")
    ok("nvmf_subsystem_allow_any_host", nqn, "--no-allow-any-host")
    s = json.loads(ok("nvmf_get_subsystems", nqn))[0]
    assert (s["allow_any_host"], s["max_namespaces"], s["namespaces"][0]["nsid"]) == (False, 4, 2)
    assert len(s["hosts"]) == 1 and s["listen_addresses"][0]["trtype"] == "TCP"
    assert json.loads(ok("nvmf_subsystem_get_controllers", nqn)) == []
    ok("nvmf_subsystem_remove_ns", nqn, "2")
    ok("nvmf_delete_subsystem", nqn)
    p = rpc(sock, "nvmf_delete_subsystem", nqn)
    assert p.returncode == 1 and "not found" in p.stderr
    # The request shapes are rpc.py's.
    p = rpc(sock, "--dry-run", "nvmf_subsystem_add_listener", nqn, "-t", "tcp", "-a", "10.0.0.1",
            "-s", "4420", "-f", "ipv4")
    req = json.loads(p.stdout)
    assert req == {
        "jsonrpc": "2.0", "id": 1, "method": "nvmf_subsystem_add_listener",
        "params": {"nqn": nqn, "listen_address": {"trtype": "tcp", "traddr": "10.0.0.1",
                                                  "adrfam": "ipv4", "trsvcid": "4420"}}}


def test_cli_bdev_nvme_commands(tgt):
    """mimo_tgt attaches a subsystem it serves itself, through mimo-rpc."""
    sock = tgt.rpc_socket
    nqn = "nqn.2016-06.io.spdk:self"

    def ok(*args):
        p = rpc(sock, *args)
        assert p.returncode == 0, p.stderr
        return p.stdout.strip()

    ok("bdev_malloc_create", 8, 512, "-b", "Local0")
    ok("nvmf_create_transport", "-t", "tcp")
    ok("nvmf_create_subsystem", nqn, "-a")
    ok("nvmf_subsystem_add_ns", nqn, "Local0")
    ok("nvmf_subsystem_add_listener", nqn, "-t", "tcp", "-a", "127.0.0.1", "-s", "0")
    port = json.loads(ok("nvmf_get_subsystems", nqn))[0]["listen_addresses"][0]["trsvcid"]
    assert ok("bdev_nvme_attach_controller", "-b", "Nvme0", "-t", "tcp", "-a", "127.0.0.1",
              "-f", "ipv4", "-s", port, "-n", nqn) == "Nvme0n1"
    b = json.loads(ok("bdev_get_bdevs", "-b", "Nvme0n1"))[0]
    assert (b["block_size"], b["num_blocks"]) == (512, 16384)
    c = json.loads(ok("bdev_nvme_get_controllers", "-n", "Nvme0"))
    assert c[0]["name"] == "Nvme0"
    h = json.loads(ok("bdev_nvme_get_controller_health_info", "-c", "Nvme0"))
    assert "temperature_celsius" in h
    assert "poll_groups" in json.loads(ok("bdev_nvme_get_transport_statistics"))
    ok("bdev_nvme_reset_controller", "Nvme0")
    c2 = json.loads(ok("bdev_nvme_get_controllers", "-n", "Nvme0"))[0]["ctrlrs"][0]
    assert c2["state"] == "enabled" and c2["cntlid"] != c[0]["ctrlrs"][0]["cntlid"]
    ok("bdev_nvme_detach_controller", "Nvme0")
    # The reconnect options go as given.
    assert ok("bdev_nvme_attach_controller", "-b", "Nvme1", "-t", "tcp", "-a", "127.0.0.1",
              "-f", "ipv4", "-s", port, "-n", nqn, "-l", "30", "-o", "2") == "Nvme1n1"
    cfg = json.loads(ok("framework_get_config", "bdev"))
    att = [m["params"] for m in cfg if m["method"] == "bdev_nvme_attach_controller"][0]
    assert (att["ctrlr_loss_timeout_sec"], att["reconnect_delay_sec"]) == (30, 2)
    ok("bdev_nvme_detach_controller", "Nvme1")
    assert json.loads(ok("bdev_nvme_get_controllers")) == []


def test_built_command_carries_every_module_of_the_package():
    """build/bin/mimo-rpc is made from the list of sources in meson.build; a module added to
    python/mimo and not to that list would be missing from the command."""
    import zipfile
    with zipfile.ZipFile(MIMO_RPC) as z:
        inside = {os.path.basename(n) for n in z.namelist() if n.startswith("mimo/")}
    here = {n for n in os.listdir(os.path.join(REPO, "python", "mimo")) if n.endswith(".py")}
    assert here <= inside, f"add to meson.build's mimo-rpc inputs: {sorted(here - inside)}"
