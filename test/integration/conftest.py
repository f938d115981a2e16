"""Shared fixtures for mimo's integration tests: paths, free ports, real HTTP receivers."""
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from receivers import Receiver  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
# `make BUILD=dir test` builds elsewhere; the Makefile passes the directory on.
BUILD = os.path.join(REPO, os.environ.get("MIMO_BUILD", "build"))
BIN = os.path.join(BUILD, "bin")
LIB = os.path.join(BUILD, "lib")
# The sanitizers the programs under test were built with ("address,undefined", "thread"), as
# `make test-asan` / `make test-tsan` say; empty for the plain build.
SANITIZE = os.environ.get("MIMO_SANITIZE", "")
# The socket layer every daemon's plain NVMe/TCP listeners default to ("" leaves "posix").
SOCK_IMPL = os.environ.get("MIMO_TEST_SOCK_IMPL", "")
PY = "/usr/bin/python3"
# An explicit, empty bridge configuration: no file on this machine changes the tests.
EMPTY_CONFIG = os.path.join(os.path.dirname(__file__), "empty_config.json")
# Sanitizer builds run several times slower: every deadline a test waits for stretches.
SLOW = 4 if SANITIZE else 1


def wait_until(pred, timeout=10.0, what=None, step=0.01):
    """Poll pred() until it returns something true and return that. Tests wait on what they
    can observe (a counter, a state, a file), never for a fixed time; the deadline only bounds
    a failure, so it is generous and stretched for sanitizer builds. Raises AssertionError
    naming `what` (or pred) when the deadline passes."""
    deadline = time.monotonic() + timeout * SLOW
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout * SLOW:g} s waiting for "
                                 f"{what or getattr(pred, '__name__', 'a condition')}")
        time.sleep(step)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def closed_port():
    """A loopback port nothing listens on (connections are refused)."""
    return free_port()


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def wait_port(port, timeout=10.0):
    """True once something listens on the loopback port, False if nothing does in time."""
    try:
        return wait_until(lambda: port_open(port), timeout, f"port {port}", step=0.02)
    except AssertionError:
        return False


def clean_env(**overrides):
    """The environment for a program under test: no inherited MIMO_* settings, no config
    file from the machine, logs at warn."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MIMO_")}
    env["MIMO_NOTIFY_CONFIG"] = EMPTY_CONFIG
    env["MIMO_LOG"] = "warn"
    env.update({k: str(v) for k, v in overrides.items()})
    return env


@pytest.fixture
def receiver():
    receivers = []

    def make(**kw):
        r = Receiver(**kw)
        r.start()
        receivers.append(r)
        return r

    yield make
    for r in receivers:
        r.stop()


@pytest.fixture
def procs():
    """Start processes that are killed at the end of the test."""
    started = []

    def start(args, **kw):
        p = subprocess.Popen(args, **kw)
        started.append(p)
        return p

    yield start
    for p in started:
        if p.poll() is None:
            p.kill()
        p.wait()


# --- mimo_tgt ---------------------------------------------------------------------------------

# MIMO_TGT_BIN runs the daemon tests against another build (make test-asan: ASan+UBSan).
TGT = os.environ.get("MIMO_TGT_BIN") or os.path.join(BIN, "mimo_tgt")


class RpcFailure(Exception):
    def __init__(self, code, message):
        super().__init__(f"{code} {message}")
        self.code = code
        self.message = message


class RawConn:
    """A JSON-RPC connection with nothing clever in it: send bytes, read whole responses."""

    def __init__(self, path, timeout=10.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buf = b""
        self.next_id = 0

    def send(self, data):
        self.sock.sendall(data if isinstance(data, bytes) else data.encode())

    def recv_json(self):
        """The next response (responses end with a newline); None when the server closed."""
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def call(self, method, params=None):
        self.next_id += 1
        req = {"jsonrpc": "2.0", "method": method, "id": self.next_id}
        if params is not None:
            req["params"] = params
        self.send(json.dumps(req))
        resp = self.recv_json()
        assert resp is not None, "server closed the connection"
        assert resp["id"] == self.next_id
        return resp

    def result(self, method, params=None):
        resp = self.call(method, params)
        if "error" in resp:
            raise RpcFailure(resp["error"]["code"], resp["error"]["message"])
        return resp["result"]

    def close(self):
        self.sock.close()


class Daemon:
    """mimo_tgt on a private socket. Events are off unless the test gives MIMO_NOTIFY_URL."""

    def __init__(self, rundir, args=(), env=None, name="tgt", wait=True, prefix=()):
        self.sock = os.path.join(rundir, f"{name}.sock")
        self.pid_file = os.path.join(rundir, f"{name}.pid")
        self.log = open(os.path.join(rundir, f"{name}.log"), "w+")
        env = dict(env or {})
        env.setdefault("MIMO_NOTIFY_DISABLE", "1" if "MIMO_NOTIFY_URL" not in env else "0")
        # prefix: what runs it elsewhere, e.g. in a network namespace (`ip netns exec NS`,
        # which execs mimo_tgt: self.proc.pid is still mimo_tgt's).
        self.proc = subprocess.Popen([*prefix, TGT, "-r", self.sock, "--pid-file", self.pid_file,
                                      *map(str, args)], env=clean_env(**env),
                                     stdout=self.log, stderr=subprocess.STDOUT)
        self.conns = []
        if wait:
            self.wait_ready()
            # MIMO_TEST_SOCK_IMPL=uring runs a test file's NVMe/TCP targets on io_uring: the
            # plain listeners the test opens take the default this sets.
            if SOCK_IMPL:
                self.result("sock_set_default_impl", {"impl_name": SOCK_IMPL})

    def wait_ready(self, timeout=10.0):
        def answers():
            if self.proc.poll() is not None:
                raise RuntimeError(f"mimo_tgt exited with {self.proc.returncode}:\n{self.output()}")
            try:
                c = RawConn(self.sock, timeout=2)
                c.call("rpc_get_methods")
                c.close()
                return True
            except OSError:
                return False
        wait_until(answers, timeout, "mimo_tgt to answer on its socket")

    def conn(self):
        c = RawConn(self.sock)
        self.conns.append(c)
        return c

    def result(self, method, params=None):
        c = self.conn()
        try:
            return c.result(method, params)
        finally:
            c.close()

    def saved_config(self):
        """What rpc.py's save_config writes: every subsystem's framework_get_config, in
        framework_get_subsystems' order."""
        return {"subsystems": [
            {"subsystem": s["subsystem"],
             "config": self.result("framework_get_config", {"name": s["subsystem"]})}
            for s in self.result("framework_get_subsystems")]}

    def save_config(self, path):
        """saved_config() written to path; returns path, for `-c`."""
        with open(path, "w") as f:
            json.dump(self.saved_config(), f)
        return path

    def output(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def stop(self, sig=signal.SIGTERM, timeout=10.0):
        for c in self.conns:
            c.close()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise


@pytest.fixture
def rundir(tmp_path):
    """A directory for sockets: tmp_path unless it is too long for sun_path (108 bytes)."""
    import shutil
    import tempfile
    if len(str(tmp_path)) < 80:
        yield str(tmp_path)
        return
    d = tempfile.mkdtemp(prefix="mimo-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def daemons(rundir):
    """Start mimo_tgt daemons; each is stopped (and must not crash) at the end of the test."""
    started = []

    def start(*args, env=None, name=None, wait=True, prefix=()):
        d = Daemon(rundir, args, env, name or f"tgt{len(started)}", wait, prefix)
        started.append(d)
        return d

    yield start
    problems = []
    for d in started:
        rc = d.stop() if d.proc.poll() is None else d.proc.returncode
        out = d.output()
        # A clean exit, and no sanitizer report (make test-asan runs this on ASan+UBSan).
        if rc not in (0, -signal.SIGKILL) or "Sanitizer" in out or "runtime error" in out:
            problems.append(f"{d.sock}: exit {rc}\n{out[-4000:]}")
    assert not problems, "\n".join(problems)


@pytest.fixture
def tgt(daemons):
    return daemons()


@pytest.fixture
def netns():
    """A network namespace of the test's own, with lo up: its name. Processes the test starts
    in it (`ip netns exec NAME ...`, daemons(prefix=...)) are killed and the namespace deleted
    at the end; named so that test/guest/vm.py's clean_stale() removes it if this process is
    killed first. Skips where namespaces cannot be made (no CAP_NET_ADMIN or no iproute2)."""
    import itertools
    sys.path.insert(0, os.path.join(REPO, "test", "guest"))
    import vm
    if not vm.netns_usable():
        pytest.skip("network namespaces cannot be made here (needs CAP_NET_ADMIN, iproute2)")
    global _netns_seq
    _netns_seq = globals().get("_netns_seq") or itertools.count()
    name = f"{vm.NS_PREFIX}{os.getpid()}-ns{next(_netns_seq)}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        pids = subprocess.run(["ip", "netns", "pids", name], capture_output=True,
                              text=True).stdout.split()
        for pid in pids:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass
        subprocess.run(["ip", "netns", "delete", name])


# --- kernel clients in a QEMU guest (guest_fixtures.py, docs/guest-tests.md) ------------------

def pytest_configure(config):
    config.addinivalue_line("markers", "guest: boots a QEMU guest with Debian's kernel as the "
                            "client (-m guest selects these, -m 'not guest' leaves them out)")
    config.addinivalue_line("markers", "guest_kernel(name): the guest's kernel, one of "
                            "test/guest/image.py's KERNELS (default: bookworm, Debian 12's)")


from guest_fixtures import guest, guest_image  # noqa: E402,F401
