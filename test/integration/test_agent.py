"""mimo_agent end to end with real processes: the agent, plugins built on libmimo_plugin
(progs/plugin_ctl.c) and on GSE's IPC (progs/gse_plugin.py, framed as bk-gse-sdk frames),
real HTTP receivers for the callbacks, mimo_tgt as a plugin, and the Python client."""
import base64
import json
import os
import signal
import socket
import stat
import struct
import subprocess
import sys
import threading
import time

import pytest

from conftest import (BIN, PY, REPO, SANITIZE, SLOW, TGT, clean_env, free_port,  # noqa: F401
                      wait_until)

sys.path.insert(0, os.path.join(REPO, "python"))
from mimo.agent import AgentClient, AgentError, CallbackReceiver, verify_signature  # noqa: E402

AGENT = os.environ.get("MIMO_AGENT_BIN") or os.path.join(BIN, "mimo_agent")
PLUGIN = os.environ.get("MIMO_PLUGIN_CTL") or os.path.join(BIN, "plugin_ctl")
GSE_PLUGIN = os.path.join(os.path.dirname(__file__), "progs", "gse_plugin.py")

pytestmark = pytest.mark.skipif(not os.path.exists(AGENT), reason="mimo_agent is not built")


class Agent:
    """A mimo_agent on private sockets, port and state directory."""

    def __init__(self, rundir, agent_id="host-1", nats=None, args=(), name="agent",
                 preexec=None):
        self.rundir, self.agent_id, self.nats, self.args, self.name = \
            rundir, agent_id, nats, list(args), name
        self.preexec = preexec  # run in the child before exec (resource limits)
        self.sock = os.path.join(rundir, f"{name}.sock")
        self.gse_sock = os.path.join(rundir, f"{name}-gse.sock")
        self.state = os.path.join(rundir, f"{name}-state")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(os.path.join(rundir, f"{name}.log"), "a+")
        self.proc = None
        self.start()

    def start(self):
        cmd = [AGENT, "--agent-id", self.agent_id, "--socket", self.sock, "--gse-socket",
               self.gse_sock, "--http", f"127.0.0.1:{self.port}", "--state-dir", self.state,
               "--callback-backoff-ms", "50", *self.args]
        if self.nats:
            cmd += ["--nats", self.nats]
        self.proc = subprocess.Popen(cmd, env=clean_env(MIMO_LOG="info"), stdout=self.log,
                                     stderr=subprocess.STDOUT, preexec_fn=self.preexec)
        wait_until(self._ready, 10, f"mimo_agent to start (log: {self.log.name})")

    def _ready(self):
        if self.proc.poll() is not None:
            raise RuntimeError(f"mimo_agent exited {self.proc.returncode}:\n{self.output()}")
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return os.path.exists(self.sock)
        except OSError:
            return False

    @property
    def admin_token(self):
        with open(os.path.join(self.state, "admin.token")) as f:
            return f.read().strip()

    def admin(self):
        return AgentClient(self.url, admin_token=self.admin_token)

    def client(self, slot):
        return AgentClient(self.url, slot_id=slot["slot_id"], token=slot["token"])

    def health(self):
        return AgentClient(self.url).health()

    def plugin_state(self, name):
        for p in self.health()["plugins"]:
            if p["name"] == name:
                return p
        return None

    def connected(self, name):
        return wait_until(lambda: (self.plugin_state(name) or {}).get("connected"), 10)

    def output(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def kill(self):
        self.proc.kill()
        self.proc.wait()

    def stop(self, timeout=15):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)


class Proc:
    """A plugin process that reports JSON lines on stdout and takes commands on stdin."""

    def __init__(self, args, env=None):
        import tempfile
        self.err = tempfile.TemporaryFile("w+")
        self.p = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=self.err, text=True,
                                  env=env or clean_env(MIMO_LOG="warn"))
        self.events = []
        self.cond = threading.Condition()
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self):
        for line in self.p.stdout:
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            with self.cond:
                self.events.append(ev)
                self.cond.notify_all()

    def cmd(self, line):
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()

    def wait(self, kind, pred=lambda e: True, timeout=15.0, count=1):
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                got = [e for e in self.events if e.get("event") == kind and pred(e)]
                if len(got) >= count:
                    return got
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no {count} '{kind}' events; saw {self.events[-5:]}")
                self.cond.wait(left)

    def messages(self):
        with self.cond:
            return [(e["id"], base64.b64decode(e["content_b64"]))
                    for e in self.events if e.get("event") == "message"]

    def stop(self):
        if self.p.poll() is None:
            try:
                self.cmd("quit")
                self.p.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.p.kill()
        self.p.wait()

    def stderr(self):
        self.err.flush()
        self.err.seek(0)
        return self.err.read()

    def kill(self):
        self.p.kill()
        self.p.wait()


def c_plugin(agent, name, *args):
    p = Proc([PLUGIN, "--socket", agent.sock, "--name", name, *args])
    return p


def gse_plugin(agent, name, *args):
    return Proc([PY, GSE_PLUGIN, "--socket", agent.gse_sock, "--name", name, *args])


@pytest.fixture
def fabric(rundir):
    """Start agents, plugins and receivers; everything is stopped at the end, and no agent
    may have crashed or reported a sanitizer error."""
    made = {"agents": [], "procs": [], "rx": []}

    class F:
        def agent(self, **kw):
            a = Agent(rundir, name=f"agent{len(made['agents'])}", **kw)
            made["agents"].append(a)
            return a

        def plugin(self, agent, name, *args):
            p = c_plugin(agent, name, *args)
            made["procs"].append(p)
            return p

        def gse(self, agent, name, *args):
            p = gse_plugin(agent, name, *args)
            made["procs"].append(p)
            return p

        def receiver(self, **kw):
            r = CallbackReceiver(**kw).start()
            made["rx"].append(r)
            return r

    yield F()
    problems = []
    for p in made["procs"]:
        p.stop()
        err = p.stderr()
        if "Sanitizer" in err or "runtime error" in err:
            problems.append(f"plugin: {err[-3000:]}")
    for a in made["agents"]:
        rc = a.stop() if a.proc.poll() is None else a.proc.returncode
        out = a.output()
        if rc not in (0, -signal.SIGKILL) or "Sanitizer" in out or "runtime error" in out:
            problems.append(f"{a.name}: exit {rc}\n{out[-3000:]}")
    for r in made["rx"]:
        r.stop()
    assert not problems, "\n".join(problems)


def register(agent, plugin, rx):
    slot = agent.admin().register_slot(plugin, rx.url)
    rx.secret = slot["secret"]
    return slot


# --- slots ----------------------------------------------------------------------------------

def test_slots_need_the_admin_token_and_keep_only_hashes(fabric):
    a = fabric.agent()
    tok_file = os.path.join(a.state, "admin.token")
    assert stat.S_IMODE(os.stat(tok_file).st_mode) == 0o600
    anon = AgentClient(a.url)
    with pytest.raises(AgentError) as e:
        anon.register_slot("p1", "http://127.0.0.1:9/cb")
    assert e.value.status == 401 and "admin token" in e.value.body["error"]
    with pytest.raises(AgentError) as e:
        AgentClient(a.url, admin_token="0" * 64).list_slots()
    assert e.value.status == 401

    admin = a.admin()
    s1 = admin.register_slot("p1", "http://127.0.0.1:9/cb")
    assert isinstance(s1["slot_id"], int) and len(s1["token"]) == 64
    assert s1["secret"].startswith("whsec_") and len(base64.b64decode(s1["secret"][6:])) == 32
    s2 = admin.register_slot("p2", "https://example.invalid/cb")
    assert s2["slot_id"] != s1["slot_id"] and s2["token"] != s1["token"]
    with pytest.raises(AgentError) as e:
        admin.register_slot("p1", "http://127.0.0.1:9/other")
    assert e.value.status == 409
    for bad in ({"plugin_name": "a/b", "callback_url": "http://x/"},
                {"plugin_name": "ok", "callback_url": "ftp://x/"},
                {"plugin_name": "ok", "callback_url": "http://x/", "extra": 1}):
        st, _, body = admin.raw("POST", "/v1/slots", bad,
                                {"Authorization": f"Bearer {a.admin_token}"})
        assert st == 400 and "error" in json.loads(body)

    listed = admin.list_slots()
    assert {s["plugin_name"] for s in listed} == {"p1", "p2"}
    assert all("token" not in s and "secret" not in s for s in listed)

    # Stored: hashes only, the file 0600; tokens never in the log.
    reg = os.path.join(a.state, "slots.json")
    assert stat.S_IMODE(os.stat(reg).st_mode) == 0o600
    text = open(reg).read()
    assert s1["token"] not in text and s2["token"] not in text
    rotated = admin.rotate_slot(s1["slot_id"])
    assert rotated["token"] != s1["token"] and rotated["secret"] != s1["secret"]
    with pytest.raises(AgentError) as e:
        a.client(s1).dispatch([a.agent_id], b"x")
    assert e.value.status == 403
    admin.delete_slot(s2["slot_id"])
    with pytest.raises(AgentError) as e:
        admin.delete_slot(s2["slot_id"])
    assert e.value.status == 404
    # A restart keeps the registry (and ids are never reused).
    a.stop()
    a.start()
    assert [s["plugin_name"] for s in a.admin().list_slots()] == ["p1"]
    assert a.admin().register_slot("p3", "http://127.0.0.1:9/cb")["slot_id"] > s2["slot_id"]
    out = a.output()
    for t in (s1["token"], s2["token"], rotated["token"], a.admin_token):
        assert t not in out


# --- down --------------------------------------------------------------------------------------

def test_dispatch_to_c_and_gse_plugins_and_a_missing_agent(fabric):
    a = fabric.agent()
    rx = fabric.receiver()
    cs = register(a, "cplug", rx)
    gs = register(a, "gplug", rx)
    cp = fabric.plugin(a, "cplug")
    assert cp.wait("launched")[0]["rc"] == 0
    gp = fabric.gse(a, "gplug")
    ka = gp.wait("keepalive_resp")[0]
    assert ka["agent_id"] == a.agent_id and ka["status_code"] == 2 and ka["run_mode"] == 1
    assert a.connected("gplug")

    payload = b"\x00\x01binary\xff\xfe" + bytes(range(256))
    out = a.client(cs).dispatch([a.agent_id, "no-such-host"], payload, message_id="m-1")
    res = {r["agent_id"]: r for r in out["results"]}
    assert res[a.agent_id]["status"] == "delivered"
    assert res["no-such-host"]["status"] == "failed" and res["no-such-host"]["code"] == 404
    assert "unknown agent" in res["no-such-host"]["message"]
    assert cp.wait("message")[0]["id"] == "m-1"
    assert cp.messages() == [("m-1", payload)]

    # GSE's API and response shape: only failed agents are listed.
    g = a.client(gs)
    out = g.dispatch_gse([a.agent_id, "ghost"], "hello from the server", message_id="g-1")
    assert out["code"] == 0 and out["message"] == "OK"
    assert out["data"]["results"] == [{"bk_agent_id": "ghost", "code": 404,
                                       "message": "unknown agent"}]
    assert gp.wait("message")[0]["id"] == "g-1"
    assert gp.messages() == [("g-1", b"hello from the server")]
    out = g.dispatch_multi_gse({a.agent_id: "-middle-"}, message_id="g-2",
                               front_content="<front", back_content="back>")
    assert out["data"]["results"] == []
    gp.wait("message", lambda e: e["id"] == "g-2")
    assert gp.messages()[-1] == ("g-2", b"<front-middle-back>")
    # A base path in front (an API gateway's) is accepted as GSE's SDK builds it.
    out = g.dispatch_gse([a.agent_id], "x", message_id="g-3", base_path="/api/bk-gse/prod")
    assert out["code"] == 0


def test_wrong_slot_or_token_is_refused_and_nothing_is_delivered(fabric):
    a = fabric.agent()
    rx = fabric.receiver()
    slot = register(a, "cplug", rx)
    cp = fabric.plugin(a, "cplug")
    cp.wait("launched")
    bad_token = AgentClient(a.url, slot_id=slot["slot_id"], token="f" * 64)
    bad_slot = AgentClient(a.url, slot_id=slot["slot_id"] + 100, token=slot["token"])
    for client, status in ((bad_token, 403), (bad_slot, 401)):
        with pytest.raises(AgentError) as e:
            client.dispatch([a.agent_id], b"nope")
        assert e.value.status == status and "error" in e.value.body
        with pytest.raises(AgentError) as e:
            client.dispatch_gse([a.agent_id], "nope")
        assert e.value.status == status and e.value.body["code"] == status
        with pytest.raises(AgentError) as e:
            client.request(a.agent_id, b"nope", timeout_ms=100)
        assert e.value.status == status
    with pytest.raises(AgentError) as e:
        AgentClient(a.url, token="f" * 64).cache_put(a.agent_id, "cplug", "k", b"x")
    assert e.value.status == 403
    # The right token still works, and only its message arrived.
    a.client(slot).dispatch([a.agent_id], b"yes", message_id="ok-1")
    # Delivery to a plugin is ordered: once a later marker arrived, anything the refused
    # dispatches had wrongly sent would have arrived before it.
    a.client(slot).dispatch([a.agent_id], b"end", message_id="marker")
    cp.wait("message", lambda e: e["id"] == "marker")
    assert cp.messages() == [("ok-1", b"yes"), ("marker", b"end")]


def test_malformed_bodies_get_clear_errors(fabric):
    a = fabric.agent()
    rx = fabric.receiver()
    slot = register(a, "cplug", rx)
    c = a.client(slot)
    auth = {"slot_id": slot["slot_id"], "token": slot["token"]}
    cases = [
        ("/v1/dispatch", b"{not json", 400, "not JSON"),
        ("/v1/dispatch", dict(auth, message_id="x", agent_ids=["h"], content_base64="***"), 400,
         "base64"),
        ("/v1/dispatch", dict(auth, message_id="x", agent_ids=[], content="a"), 400, "agent_ids"),
        ("/v1/dispatch", dict(auth, message_id="", agent_ids=["h"], content="a"), 400,
         "message_id"),
        ("/v1/dispatch", dict(auth, message_id="x", agent_ids=["h"], content="a", bogus=1), 400,
         "unknown key"),
        ("/v1/request", dict(auth, message_id="x", agent_id="h", content="a", timeout_ms=0), 400,
         "timeout_ms"),
        ("/api/v2/cluster/dispatch_message", b"[]", 400, "object"),
        ("/api/v2/cluster/dispatch_multi_message", dict(auth, message_id="x"), 400,
         "agent_message_list"),
    ]
    for path, body, status, words in cases:
        st, _, data = c.raw("POST", path, body, {"Content-Type": "application/json"})
        decoded = json.loads(data)
        if "/api/v2/" in path:  # GSE's envelope, HTTP 200: what GSE's SDK decodes
            assert st == 200 and decoded["code"] == status, (path, body, data)
        else:
            assert st == status, (path, body, data)
        assert words in (decoded.get("error") or decoded.get("message")), (path, decoded)
    # Over 16 MiB: refused from Content-Length, before the body is sent (a client that sends
    # it anyway sees the connection closed: test_agent_http.py).
    s = socket.create_connection(("127.0.0.1", a.port), timeout=10 * SLOW)
    s.sendall(b"POST /v1/dispatch HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % (17 << 20))
    assert s.recv(4096).startswith(b"HTTP/1.1 413")
    s.close()
    # The agent is still fine.
    assert a.health()["agent_id"] == a.agent_id


# --- up ---------------------------------------------------------------------------------------

def test_messages_up_reach_the_callback_signed_in_gse_shape(fabric):
    a = fabric.agent()
    rx = fabric.receiver()
    slot = register(a, "cplug", rx)
    cp = fabric.plugin(a, "cplug")
    cp.wait("launched")
    for i in range(5):
        cp.cmd(f"send up-{i} hello {i}")
    cp.cmd("flush 10000")
    assert cp.wait("flushed")[0]["rc"] == 0
    msgs = rx.wait_for(5)
    assert [m["message_id"] for m in msgs] == [f"up-{i}" for i in range(5)]
    m = msgs[0]
    assert m["bk_agent_id"] == a.agent_id and m["content"] == "hello 0"
    assert m["_content"] == b"hello 0" and m["plugin"] == "cplug"
    assert m["slot_id"] == slot["slot_id"] and abs(m["timestamp"] - time.time()) < 60
    assert m["_verified"] is True
    h = {k.lower(): v for k, v in m["_headers"].items()}
    assert h["content-type"] == "application/json" and h["webhook-id"].startswith("msg_")
    assert rx.rejected == 0


def test_callback_retries_keep_the_webhook_id_and_4xx_is_final(fabric):
    a = fabric.agent()
    rx = fabric.receiver(responses=[503, 500])
    register(a, "cplug", rx)
    seen = []
    orig = rx._take

    def spy(headers, body):
        seen.append({k.lower(): v for k, v in headers.items()}["webhook-id"])
        return orig(headers, body)
    rx._take = spy
    cp = fabric.plugin(a, "cplug")
    cp.wait("launched")
    cp.cmd("send r-1 retried")
    assert rx.wait_for(1)[0]["message_id"] == "r-1"
    assert len(seen) == 3 and len(set(seen)) == 1
    # A permanent refusal is not retried; the next message goes through.
    rx.responses = [404]
    cp.cmd("send r-2 refused")
    cp.cmd("send r-3 fine")
    cp.cmd("send r-4 marker")
    # A slot's messages go out in order: when r-4 is in, r-2 can no longer be retried.
    assert [m["message_id"] for m in rx.wait_for(3)] == ["r-1", "r-3", "r-4"]
    assert rx.requests == 6


def test_gse_plugin_sends_up(fabric):
    a = fabric.agent()
    rx = fabric.receiver()
    register(a, "gplug", rx)
    gp = fabric.gse(a, "gplug")
    gp.wait("keepalive_resp")
    gp.cmd("send gse-up-1 from a GSE plugin")
    m = rx.wait_for(1)[0]
    assert m["message_id"] == "gse-up-1" and m["content"] == "from a GSE plugin"
    assert m["plugin"] == "gplug" and m["_verified"]


# --- request-reply ----------------------------------------------------------------------------

def test_request_reply_and_timeouts(fabric):
    a = fabric.agent()
    rx, grx = fabric.receiver(), fabric.receiver()
    slot = register(a, "echo", rx)
    gslot = register(a, "gecho", grx)
    fabric.plugin(a, "echo", "--echo").wait("launched")
    fabric.gse(a, "gecho", "--echo").wait("keepalive_resp")
    c = a.client(slot)
    assert c.request(a.agent_id, b"\x00ping\xff", timeout_ms=5000) == b"\x00ping\xff"
    assert a.client(gslot).request(a.agent_id, b"gse ping", timeout_ms=5000) == b"gse ping"
    # The reply answers the request; it is not also posted to the callback. A plain dispatch
    # afterwards is echoed up to the callback: messages up leave in order, so by the time
    # these markers arrive a reply posted by mistake would have arrived first.
    c.dispatch([a.agent_id], b"marker", message_id="marker-1")
    a.client(gslot).dispatch_gse([a.agent_id], "marker", message_id="marker-2")
    assert [m["message_id"] for m in rx.wait_for(1)] == ["marker-1"]
    assert [m["message_id"] for m in grx.wait_for(1)] == ["marker-2"]
    many = c.request_many([a.agent_id, "ghost"], b"both", timeout_ms=2000)
    assert many[0]["status"] == "ok" and base64.b64decode(many[0]["content_base64"]) == b"both"
    assert many[1]["status"] == "failed" and many[1]["code"] == 404

    # A plugin that never answers: a timeout, reported as such.
    quiet = register(a, "quiet", rx)
    fabric.plugin(a, "quiet").wait("launched")
    t0 = time.monotonic()
    with pytest.raises(AgentError) as e:
        a.client(quiet).request(a.agent_id, b"hello?", timeout_ms=300)
    assert e.value.status == 504 and e.value.body["status"] == "timeout"
    assert time.monotonic() - t0 < 10
    with pytest.raises(AgentError) as e:
        c.request("ghost", b"x", timeout_ms=300)
    assert e.value.status == 404


# --- cache ------------------------------------------------------------------------------------

def test_cache_store_retrieve_inval_delete(fabric):
    a = fabric.agent()
    rx = fabric.receiver()
    slot = register(a, "cplug", rx)
    cp = fabric.plugin(a, "cplug")
    cp.wait("launched")
    c = a.client(slot)
    c.cache_put(a.agent_id, "cplug", "disk/0", b"0123456789")
    c.cache_put(a.agent_id, "cplug", "disk/0", b"ABC", offset=20)
    n = cp.wait("notify", lambda e: e["code"] == 4, count=2)
    assert n[0]["key"] == "disk/0" and n[1]["offset"] == 20 and n[1]["size"] == 3
    # RETRIEVE: the contiguous cached bytes from the offset, as FUSE's notify_retrieve.
    assert c.cache_get(a.agent_id, "cplug", "disk/0") == b"0123456789"
    assert c.cache_get(a.agent_id, "cplug", "disk/0", offset=3, size=4) == b"3456"
    assert c.cache_get(a.agent_id, "cplug", "disk/0", offset=20) == b"ABC"
    with pytest.raises(AgentError) as e:
        c.cache_get(a.agent_id, "cplug", "disk/0", offset=12)
    assert e.value.status == 416
    # The application reads the same cache.
    cp.cmd("cache disk/0")
    got = cp.wait("cache")[0]
    assert got["total"] == 23 and base64.b64decode(got["content_b64"]) == b"0123456789"
    # INVAL drops a range.
    c.cache_inval(a.agent_id, "cplug", "disk/0", offset=5, size=2)
    cp.wait("notify", lambda e: e["code"] == 2)
    assert c.cache_get(a.agent_id, "cplug", "disk/0") == b"01234"
    assert c.cache_get(a.agent_id, "cplug", "disk/0", offset=7) == b"789"
    # DELETE removes the entry.
    c.cache_delete(a.agent_id, "cplug", "disk/0")
    cp.wait("notify", lambda e: e["code"] == 6)
    with pytest.raises(AgentError) as e:
        c.cache_get(a.agent_id, "cplug", "disk/0")
    assert e.value.status == 404
    c.poll(a.agent_id, "cplug", kh=77)
    assert cp.wait("notify", lambda e: e["code"] == 1)[0]["offset"] == 77
    # Wrong agent, a plugin that is not connected, a GSE plugin (no cache in GSE).
    with pytest.raises(AgentError) as e:
        c.cache_put("ghost", "cplug", "k", b"x")
    assert e.value.status == 404
    register(a, "gplug", rx)
    admin = a.admin()
    with pytest.raises(AgentError) as e:
        admin.cache_put(a.agent_id, "gplug", "k", b"x")
    assert e.value.status == 503
    fabric.gse(a, "gplug").wait("keepalive_resp")
    with pytest.raises(AgentError) as e:
        admin.cache_put(a.agent_id, "gplug", "k", b"x")
    assert e.value.status == 501


def test_retrieve_answered_by_the_application(fabric):
    a = fabric.agent()
    rx = fabric.receiver()
    slot = register(a, "rplug", rx)
    fabric.plugin(a, "rplug", "--retrieve-cb").wait("launched")
    c = a.client(slot)
    assert c.cache_get(a.agent_id, "rplug", "abc", offset=1, size=7) == b"bcabcab"
    with pytest.raises(AgentError) as e:
        c.cache_get(a.agent_id, "rplug", "missing", size=4)
    assert e.value.status == 404


# --- disconnected plugins ----------------------------------------------------------------------

def test_queued_for_a_disconnected_plugin_and_delivered_once(fabric):
    a = fabric.agent(args=["--down-queue", "20"])
    rx = fabric.receiver()
    slot = register(a, "cplug", rx)
    c = a.client(slot)
    for i in range(10):
        out = c.dispatch([a.agent_id], f"queued {i}".encode(), message_id=f"q-{i}")
        assert out["results"][0]["status"] == "queued"
    gse_out = c.dispatch_gse([a.agent_id], "via gse", message_id="q-10")
    assert gse_out["data"]["results"] == [] and gse_out["data"]["queued"] == [a.agent_id]
    # ttl_ms 0: deliver now or not at all.
    out = c.dispatch([a.agent_id], b"now", message_id="now", ttl_ms=0)
    assert out["results"][0]["status"] == "failed" and out["results"][0]["code"] == 503
    assert out["results"][0]["message"] == "plugin not connected"
    # A short TTL expires while the plugin is away.
    assert c.dispatch([a.agent_id], b"short", message_id="short",
                      ttl_ms=1)["results"][0]["status"] == "queued"
    assert wait_until(lambda: a.plugin_state("cplug")["expired"] == 1, 5)
    # The bound: 20 per plugin.
    for i in range(11, 20):
        c.dispatch([a.agent_id], b"fill", message_id=f"q-{i}")
    out = c.dispatch([a.agent_id], b"over", message_id="over")
    assert out["results"][0]["status"] == "failed" and out["results"][0]["code"] == 429
    assert out["results"][0]["message"] == "queue full"

    cp = fabric.plugin(a, "cplug")
    cp.wait("launched")
    msgs = cp.wait("message", count=20)
    ids = [m["id"] for m in msgs]
    assert ids == [f"q-{i}" for i in range(20)]
    # It goes away and comes back: nothing arrives twice.
    cp.stop()
    cp2 = fabric.plugin(a, "cplug")
    cp2.wait("launched")
    c.dispatch([a.agent_id], b"after", message_id="after")
    c.dispatch([a.agent_id], b"end", message_id="marker")
    cp2.wait("message", lambda e: e["id"] == "marker")
    assert [m[0] for m in cp2.messages()] == ["after", "marker"]


def test_unregistered_plugins_and_bad_peers_are_refused(fabric):
    a = fabric.agent()
    p = fabric.plugin(a, "nobody", "--launch-ms", "500")
    assert p.wait("launched")[0]["rc"] == -110  # -ETIMEDOUT: the agent said no
    assert "no slot is registered" in a.output()
    # The sockets are 0660.
    assert stat.S_IMODE(os.stat(a.sock).st_mode) == 0o660
    assert stat.S_IMODE(os.stat(a.gse_sock).st_mode) == 0o660
    rx = fabric.receiver()
    register(a, "liar", rx)
    s = socket.socket(socket.AF_UNIX)
    s.connect(a.sock)
    # HELLO claiming another pid: refused with -EPERM, peer credentials logged.
    name, ver = b"liar", b"1"
    body = struct.pack("<IIHHI", 1, os.getpid() + 100000, len(name), len(ver), 0) + name + ver
    s.sendall(struct.pack("<IiQ", 16 + len(body), 1, 7) + body)
    hdr = s.recv(16)
    length, error, unique = struct.unpack("<IiQ", hdr)
    assert unique == 7 and error == -1  # -EPERM
    assert "says pid" in a.output()
    # A frame shorter than its header breaks the stream: the agent closes it and lives on.
    s.sendall(struct.pack("<IiQ", 3, 2, 8))
    s.settimeout(5)
    assert s.recv(100) == b""
    s.close()
    g = socket.socket(socket.AF_UNIX)
    g.connect(a.gse_sock)
    g.sendall(b"\x00" * 28)  # wrong magic
    g.settimeout(5)
    assert g.recv(100) == b""
    g.close()
    assert a.health()["agent_id"] == a.agent_id


# --- durability -----------------------------------------------------------------------------

def test_agent_killed_and_restarted_while_messages_flow(fabric):
    a = fabric.agent()
    rx = fabric.receiver()
    register(a, "cplug", rx)
    webhook_ids = {}
    orig = rx._take

    def spy(headers, body):
        h = {k.lower(): v for k, v in headers.items()}
        mid = json.loads(body)["message_id"]
        webhook_ids.setdefault(mid, set()).add(h["webhook-id"])
        return orig(headers, body)
    rx._take = spy
    cp = fabric.plugin(a, "cplug")
    cp.wait("launched")
    n = 3000
    cp.cmd(f"sendn k 3000 200")
    # Kill the agent while the plugin is sending and callbacks are flowing.
    wait_until(lambda: len(rx.messages) > 200, 20, "callbacks to flow")
    a.kill()
    a.start()
    cp.wait("sendn")
    cp.cmd("flush 60000")
    flushed = cp.wait("flushed", timeout=90)[0]
    assert flushed["rc"] == 0 and flushed["queued"] == 0
    msgs = rx.wait_for(n, timeout=90)
    ids = {m["message_id"] for m in msgs}
    assert ids == {f"k-{i}" for i in range(n)}
    # Repeats (delivered again after the restart) carry the same webhook-id.
    assert all(len(v) == 1 for v in webhook_ids.values())
    assert rx.requests >= n


def test_acknowledged_means_durable(fabric):
    """What the agent acknowledged survives kill -9 before any callback could be made."""
    a = fabric.agent()
    rx = fabric.receiver(responses=[503] * 100000)  # nothing gets through for now
    register(a, "cplug", rx)
    cp = fabric.plugin(a, "cplug")
    cp.wait("launched")
    cp.cmd("sendn d 500 100")
    cp.wait("sendn")
    cp.cmd("flush 30000")
    assert cp.wait("flushed")[0]["rc"] == 0
    a.kill()
    rx.responses.clear()
    a.start()
    msgs = rx.wait_for(500, timeout=60)
    assert {m["message_id"] for m in msgs} == {f"d-{i}" for i in range(500)}


# --- mimo_tgt --------------------------------------------------------------------------------

@pytest.mark.skipif(not os.path.exists(TGT), reason="mimo_tgt is not built")
def test_mimo_tgt_managed_through_the_agent(fabric, rundir):
    a = fabric.agent()
    rx = fabric.receiver()
    slot = register(a, "mimo_tgt", rx)
    tgt = subprocess.Popen([TGT, "-r", os.path.join(rundir, "tgt.sock"), "--agent-socket",
                            a.sock], env=clean_env(MIMO_NOTIFY_DISABLE="1", MIMO_LOG="warn"),
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert a.connected("mimo_tgt")
        c = a.client(slot)

        def rpc(method, params=None, rid=1):
            req = {"jsonrpc": "2.0", "id": rid, "method": method}
            if params is not None:
                req["params"] = params
            return json.loads(c.request(a.agent_id, json.dumps(req), timeout_ms=5000))

        assert rpc("bdev_malloc_create", {"num_blocks": 2048, "block_size": 512,
                                          "name": "Agent0"})["result"] == "Agent0"
        bdevs = rpc("bdev_get_bdevs", rid=2)["result"]
        assert [b["name"] for b in bdevs] == ["Agent0"]
        err = rpc("bdev_malloc_delete", {"name": "nope"}, rid=3)["error"]
        assert err["code"] == -19
        assert json.loads(c.request(a.agent_id, "{broken", timeout_ms=5000))["error"]["code"] \
            == -32700
        # The same target through its own socket agrees.
        from conftest import RawConn
        rc = RawConn(os.path.join(rundir, "tgt.sock"))
        assert [b["name"] for b in rc.result("bdev_get_bdevs")] == ["Agent0"]
        rc.close()
    finally:
        tgt.send_signal(signal.SIGTERM)
        assert tgt.wait(timeout=20) == 0, tgt.stderr.read()


def test_check_process_name_is_gses_rule(fabric):
    """With --check-process-name a plugin must be the process of its name (GSE's rule)."""
    a = fabric.agent(args=["--check-process-name"])
    rx = fabric.receiver()
    register(a, "plugin_ctl", rx)   # the test plugin's own process name
    register(a, "impostor", rx)
    assert fabric.plugin(a, "plugin_ctl").wait("launched")[0]["rc"] == 0
    assert fabric.plugin(a, "impostor", "--launch-ms", "500").wait("launched")[0]["rc"] == -110
    assert "is not a process named impostor" in a.output()


# --- GSE's SDK, unchanged (issue 10) -------------------------------------------------------------

def _rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def test_gse_agent_info_says_running_and_not_a_proxy(fabric):
    """The SDK's GetAgentInfo: IsRunning() is status_code == 2, IsProxy() is run_mode == 0."""
    a = fabric.agent()
    register(a, "gplug", fabric.receiver())
    ka = fabric.gse(a, "gplug").wait("keepalive_resp")[0]
    assert ka["agent_id"] == a.agent_id and ka["status"] == "ok"
    assert ka["status_code"] == 2, "the SDK would say: agent is running: false"
    assert ka["run_mode"] != 0, "the SDK would say: agent is a proxy: true"


def test_gse_content_with_zero_bytes_is_delivered_whole(fabric):
    """GSE's SDK sends content as a JSON string: a zero byte is "\\u0000". Every byte arrives,
    through dispatch_message, dispatch_multi_message (front and back too) and /v1/dispatch."""
    a = fabric.agent()
    slot = register(a, "gplug", fabric.receiver())
    gp = fabric.gse(a, "gplug", "--digest")
    gp.wait("keepalive_resp")
    g = a.client(slot)
    text = "a\x00b\x00\x00end\u00e9"
    out = g.dispatch_gse([a.agent_id], text, message_id="z-1")
    assert out["code"] == 0 and out["data"]["results"] == []
    out = g.dispatch_multi_gse({a.agent_id: "\x00mid\x00"}, message_id="z-2",
                               front_content="F\x00", back_content="\x00B")
    assert out["code"] == 0 and out["data"]["results"] == []
    st, _, body = g.raw("POST", "/v1/dispatch", {
        "slot_id": slot["slot_id"], "token": slot["token"], "message_id": "z-3",
        "agent_ids": [a.agent_id], "content": "\x00native\x00"})
    assert st == 200 and json.loads(body)["results"][0]["status"] == "delivered"
    import hashlib
    want = {"z-1": text.encode(), "z-2": "F\x00\x00mid\x00\x00B".encode(),
            "z-3": b"\x00native\x00"}
    got = {e["id"]: (e["len"], e["sha256"]) for e in gp.wait("message", count=3)}
    assert got == {k: (len(v), hashlib.sha256(v).hexdigest()) for k, v in want.items()}
    # Strings the agent uses as C strings cannot hide a zero byte: a token with one is refused.
    st, _, body = g.raw("POST", "/api/v2/cluster/dispatch_message", {
        "slot_id": slot["slot_id"], "token": slot["token"] + "\x00junk", "message_id": "z-4",
        "agent_id_list": [a.agent_id], "content": "x"})
    assert st == 200 and json.loads(body)["code"] == 400
    st, _, body = g.raw("POST", "/api/v2/cluster/dispatch_message", {
        "slot_id": slot["slot_id"], "token": slot["token"], "message_id": "z-5",
        "agent_id_list": [a.agent_id + "\x00x"], "content": "x"})
    assert st == 200 and json.loads(body)["code"] == 400


def test_down_queue_limits_hold_for_a_gse_plugin_that_stops_reading(fabric):
    """--down-queue-mb bounds what the agent holds for a GSE plugin too: past it a dispatch is
    told 429 (not "delivered" into an unbounded buffer); every message accepted arrives once
    the plugin reads again, and the memory comes back."""
    a = fabric.agent(args=["--down-queue-mb", "8"])
    slot = register(a, "gplug", fabric.receiver())
    gp = fabric.gse(a, "gplug", "--digest")
    gp.wait("keepalive_resp")
    g = a.client(slot)
    g.dispatch_gse([a.agent_id], "warm-up", message_id="w")
    gp.wait("message")
    rss0 = _rss_kib(a.proc.pid)
    gp.cmd("pause")
    gp.wait("paused")
    big = "x" * (1 << 20)
    accepted, refused = [], []
    for i in range(128):
        out = g.dispatch_gse([a.agent_id], big, message_id=f"big-{i}")
        assert out["code"] == 0
        if out["data"]["results"]:
            r = out["data"]["results"][0]
            assert r["code"] == 429 and r["message"] == "queue full", r
            refused.append(i)
        else:
            accepted.append(i)
    # 8 MiB held, plus what the socket and the stalled reader took (well under 4 MiB).
    assert refused and len(accepted) <= 8 + 4, (len(accepted), len(refused))
    st = a.plugin_state("gplug")
    assert st["held_bytes"] <= 8 << 20
    if not SANITIZE:
        # 8 MiB held and a 1 MiB output buffer (b3c7aab: 128 MiB, never given back).
        assert _rss_kib(a.proc.pid) - rss0 < 32 << 10, "the agent grew past its bounds"
    # The plugin reads again: everything accepted arrives, in order, nothing else.
    gp.cmd("resume")
    msgs = gp.wait("message", lambda e: e["id"] != "w", count=len(accepted))
    assert [m["id"] for m in msgs] == [f"big-{i}" for i in accepted]
    assert all(m["len"] == 1 << 20 for m in msgs)
    wait_until(lambda: a.plugin_state("gplug")["held_bytes"] == 0, 10, "the queue to drain")
    assert a.plugin_state("gplug")["delivered"] == len(accepted) + 1
    if not SANITIZE:
        wait_until(lambda: _rss_kib(a.proc.pid) - rss0 < 8 << 10, 10,
                   "the agent's memory to come back")
    # And the bound is free again.
    assert g.dispatch_gse([a.agent_id], big, message_id="after")["data"]["results"] == []
    gp.wait("message", lambda e: e["id"] == "after")


def test_gse_plugin_gone_while_stalled_loses_nothing_it_was_not_given(fabric):
    """Messages a stalled GSE plugin never received whole are not counted delivered: when it
    goes, they wait for its return (and the memory of its connection goes with it)."""
    a = fabric.agent(args=["--down-queue-mb", "8"])
    slot = register(a, "gplug", fabric.receiver())
    gp = fabric.gse(a, "gplug", "--digest")
    gp.wait("keepalive_resp")
    gp.cmd("pause")
    gp.wait("paused")
    g = a.client(slot)
    big = "y" * (1 << 20)
    accepted = [i for i in range(12)
                if not g.dispatch_gse([a.agent_id], big, message_id=f"s-{i}")["data"]["results"]]
    gp.kill()
    wait_until(lambda: not a.plugin_state("gplug")["connected"], 10, "the plugin to go")
    st = a.plugin_state("gplug")
    # Those the socket had taken whole count as delivered (GSE has no ACK); the rest wait.
    assert st["queued"] + st["delivered"] == len(accepted) and st["queued"] > 0
    gp2 = fabric.gse(a, "gplug", "--digest")
    msgs = gp2.wait("message", count=st["queued"])
    assert [m["id"] for m in msgs] == [f"s-{i}" for i in accepted][-st["queued"]:]
    wait_until(lambda: a.plugin_state("gplug")["held_bytes"] == 0, 10, "the queue to drain")


def test_gse_message_larger_than_the_sdk_receives_is_refused_at_dispatch(fabric):
    """GSE's SDK receives frames of at most 10 MiB, its 28-byte header included; a larger one
    makes its reader fail and the message is lost. The agent refuses it per agent (413)."""
    a = fabric.agent()
    slot = register(a, "gplug", fabric.receiver())
    gp = fabric.gse(a, "gplug", "--digest")
    gp.wait("keepalive_resp")
    g = a.client(slot)
    meta = len(json.dumps({"message_id": "fit", "session_id": ""}, separators=(",", ":")))
    fits = (10 << 20) - 28 - meta
    out = g.dispatch_gse([a.agent_id], "f" * fits, message_id="fit")
    assert out["data"]["results"] == []
    assert gp.wait("message")[0]["len"] == fits
    out = g.dispatch_gse([a.agent_id], "o" * (fits + 1), message_id="fiu")
    assert out["code"] == 0
    [r] = out["data"]["results"]
    assert r["bk_agent_id"] == a.agent_id and r["code"] == 413 and "too large" in r["message"]
    out = g.dispatch(a.agent_id, b"o" * (10 << 20), message_id="native-api")
    assert out["results"][0]["status"] == "failed" and out["results"][0]["code"] == 413
    # The plugin is still connected and gets what comes next.
    g.dispatch_gse([a.agent_id], "next", message_id="next")
    assert gp.wait("message", lambda e: e["id"] == "next")
    assert not [e for e in gp.events if e.get("event") in ("error", "closed")]
    # Known to speak GSE, it is refused as well while away.
    gp.stop()
    wait_until(lambda: not a.plugin_state("gplug")["connected"], 10, "the plugin to go")
    out = g.dispatch_gse([a.agent_id], "o" * (fits + 1), message_id="away")
    assert out["data"]["results"][0]["code"] == 413


def test_gse_routes_answer_errors_in_the_envelope_the_sdk_decodes(fabric):
    """GSE's SDK reads a body only with HTTP 200 (anything else is just "status code: N"), so
    GSE's routes answer a wrong token, slot or body with 200 and a non-zero code; mimo's own
    /v1 routes keep their HTTP statuses."""
    a = fabric.agent()
    slot = register(a, "gplug", fabric.receiver())
    c = a.client(slot)
    good = {"slot_id": slot["slot_id"], "token": slot["token"], "message_id": "e-1",
            "agent_id_list": [a.agent_id], "content": "x"}
    multi = {"slot_id": slot["slot_id"], "token": slot["token"], "message_id": "e-2",
             "agent_message_list": [{"bk_agent_id": a.agent_id, "content": "x"}]}
    for path, body in (("/api/v2/cluster/dispatch_message", good),
                       ("/prefix/api/v2/cluster/dispatch_multi_message", multi)):
        for change, code, text in (({"token": "f" * 64}, 403, "token"),
                                   ({"slot_id": slot["slot_id"] + 9}, 401, "slot"),
                                   ({"message_id": 7}, 400, "message_id")):
            st, _, raw = c.raw("POST", path, dict(body, **change))
            ans = json.loads(raw)
            assert st == 200 and ans["code"] == code and text in ans["message"], (path, ans)
            assert set(ans) == {"code", "message", "data"}
        st, _, raw = c.raw("POST", path, b"{not json")
        assert st == 200 and json.loads(raw)["code"] == 400
        st, _, raw = c.raw("GET", path)
        assert st == 200 and json.loads(raw)["code"] == 405
    st, _, raw = c.raw("POST", "/v1/dispatch", {
        "slot_id": slot["slot_id"], "token": "f" * 64, "message_id": "e-3",
        "agent_ids": [a.agent_id], "content": "x"})
    assert st == 403 and "error" in json.loads(raw)


def test_native_plugin_gone_with_messages_in_flight_keeps_its_bound(fabric):
    """Messages a native plugin left unacknowledged go back to its queue; their bytes count
    again, once: the bound stays right and later dispatches are accepted."""
    a = fabric.agent(args=["--down-queue", "8"])
    slot = register(a, "cplug", fabric.receiver())
    s = socket.socket(socket.AF_UNIX)
    s.connect(a.sock)
    name, ver = b"cplug", b"1"
    body = struct.pack("<IIHHI", 1, os.getpid(), len(name), len(ver), 0) + name + ver
    s.sendall(struct.pack("<IiQ", 16 + len(body), 1, 1 << 63 | 1) + body)
    length, error, _ = struct.unpack("<IiQ", s.recv(16))
    assert error == 0
    c = a.client(slot)
    for i in range(3):
        assert c.dispatch(a.agent_id, b"in flight", message_id=f"f-{i}")[
            "results"][0]["status"] == "delivered"
    wait_until(lambda: a.plugin_state("cplug")["inflight"] == 3, 10, "3 in flight")
    s.close()  # never acknowledged
    wait_until(lambda: not a.plugin_state("cplug")["connected"], 10, "the plugin to go")
    cp = fabric.plugin(a, "cplug")
    cp.wait("message", count=3)
    wait_until(lambda: a.plugin_state("cplug")["inflight"] == 0, 10, "the ACKs")
    for i in range(8):
        out = c.dispatch(a.agent_id, b"later", message_id=f"l-{i}")
        assert out["results"][0]["status"] == "delivered", out
    cp.wait("message", lambda e: e["id"] == "l-7")


@pytest.mark.skipif(not os.path.exists(TGT), reason="mimo_tgt is not built")
def test_mimo_tgt_started_before_its_slot_answers_a_request_made_later(fabric, rundir):
    """mimo_tgt started before its slot exists (README's order) is refused and keeps trying at
    most about a second apart however long it has waited (b3c7aab's backoff grew to 5 s, as
    long as a request's default timeout): a request made just after the slot is registered
    reaches it within 3 s."""
    a = fabric.agent()
    rx = fabric.receiver()
    tgt = subprocess.Popen([TGT, "-r", os.path.join(rundir, "tgt.sock"), "--agent-socket",
                            a.sock], env=clean_env(MIMO_NOTIFY_DISABLE="1", MIMO_LOG="warn"),
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def refusals():
        h = a.health()
        if "plugins_refused" in h:
            return h["plugins_refused"]
        return a.output().count("no slot is registered")  # b3c7aab: no counter, a line each

    try:
        # Long enough for any backoff to reach its cap, then just after a refusal.
        wait_until(lambda: refusals() >= 7, 40, "mimo_tgt to be refused 7 times")
        n = refusals()
        wait_until(lambda: refusals() > n, 20, "the next refusal")
        slot = register(a, "mimo_tgt", rx)
        reply = a.client(slot).request(
            a.agent_id, json.dumps({"jsonrpc": "2.0", "id": 1, "method": "bdev_get_bdevs"}),
            timeout_ms=3000)
        assert json.loads(reply)["result"] == []
    finally:
        tgt.send_signal(signal.SIGTERM)
        assert tgt.wait(timeout=20) == 0, tgt.stderr.read()
