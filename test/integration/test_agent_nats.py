"""More than one host: two agents and gateways over a real nats-server with JetStream
(Debian's package) on a loopback port - dispatch, request-reply and cache through a gateway,
messages up through the stream, and a gateway killed with kill -9 mid-stream."""
import os
import shutil
import signal
import socket
import subprocess

import pytest

from conftest import BIN, clean_env, free_port, wait_until
from test_agent import Agent, AgentClient, AgentError, CallbackReceiver, c_plugin, gse_plugin
from test_agent_http import close_all, health, slow_conns

GATEWAY = os.environ.get("MIMO_GATEWAY_BIN") or os.path.join(BIN, "mimo_gateway")
NATS_SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"

pytestmark = pytest.mark.skipif(not (os.path.exists(GATEWAY) and os.path.exists(NATS_SERVER)),
                                reason="mimo_gateway or nats-server missing")


class Gateway:
    def __init__(self, rundir, nats, token_file, name, args=()):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(os.path.join(rundir, f"{name}.log"), "a+")
        self.token_file = token_file
        self.proc = subprocess.Popen(
            [GATEWAY, "--nats", nats, "--http", f"127.0.0.1:{self.port}", "--admin-token-file",
             token_file, "--ack-wait-ms", "2000", "--callback-backoff-ms", "50", *args],
            env=clean_env(MIMO_LOG="info"), stdout=self.log, stderr=subprocess.STDOUT)
        wait_until(self._ready, 15, f"mimo_gateway to start (log: {self.log.name})")

    def _ready(self):
        if self.proc.poll() is not None:
            raise RuntimeError(f"gateway exited {self.proc.returncode}:\n{self.output()}")
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return True
        except OSError:
            return False

    def admin(self):
        return AgentClient(self.url, admin_token=open(self.token_file).read().strip())

    def client(self, slot):
        return AgentClient(self.url, slot_id=slot["slot_id"], token=slot["token"])

    def output(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=20)


@pytest.fixture
def nats(rundir):
    port = free_port()
    store = os.path.join(rundir, "js")
    p = subprocess.Popen([NATS_SERVER, "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", store],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def up():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            return False
    assert wait_until(up, 10)
    yield f"nats://127.0.0.1:{port}"
    p.terminate()
    p.wait(timeout=10)


@pytest.fixture
def world(rundir, nats):
    made = {"agents": [], "gws": [], "procs": [], "rx": []}
    token_file = os.path.join(rundir, "gateway-admin.token")

    class W:
        url = nats

        def gateway(self, *args):
            g = Gateway(rundir, nats, token_file, f"gw{len(made['gws'])}", args)
            made["gws"].append(g)
            return g

        def agent(self, agent_id):
            a = Agent(rundir, agent_id=agent_id, nats=nats, name=f"agent-{agent_id}")
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

    yield W()
    problems = []
    for p in made["procs"]:
        p.stop()
        err = p.stderr()
        if "Sanitizer" in err or "runtime error" in err:
            problems.append(f"plugin: {err[-3000:]}")
    for x in made["agents"] + made["gws"]:
        rc = x.stop() if x.proc.poll() is None else x.proc.returncode
        out = x.output()
        if rc not in (0, -signal.SIGKILL) or "Sanitizer" in out or "runtime error" in out:
            problems.append(f"exit {rc}\n{out[-3000:]}")
    for r in made["rx"]:
        r.stop()
    assert not problems, "\n".join(problems)


def test_two_agents_behind_a_gateway(world):
    gw = world.gateway()
    admin = gw.admin()
    rx = world.receiver()
    slot = admin.register_slot("echo", rx.url)
    rx.secret = slot["secret"]
    a1, a2 = world.agent("host-a"), world.agent("host-b.example")
    # Agents learn the slot from the gateways' KV bucket; slots are managed at the gateway.
    p1 = world.plugin(a1, "echo", "--echo")
    assert p1.wait("launched")[0]["rc"] == 0
    p2 = world.gse(a2, "echo", "--echo")
    p2.wait("keepalive_resp")
    assert a2.connected("echo")
    with pytest.raises(AgentError) as e:
        a1.admin().register_slot("x", rx.url)
    assert e.value.status == 405

    c = gw.client(slot)
    out = c.dispatch(["host-a", "host-b.example", "host-gone"], b"\x00to all", message_id="d-1")
    res = {r["agent_id"]: r for r in out["results"]}
    assert res["host-a"]["status"] == "delivered" and res["host-b.example"]["status"] == "delivered"
    assert res["host-gone"]["status"] == "failed" and res["host-gone"]["code"] == 404
    assert p1.wait("message")[0]["id"] == "d-1" and p2.wait("message")[0]["id"] == "d-1"
    gse_out = c.dispatch_gse(["host-a", "host-gone"], "gse", message_id="d-2")
    assert [r["bk_agent_id"] for r in gse_out["data"]["results"]] == ["host-gone"]

    # The echoes of d-1 (and d-2) came up through JetStream, signed by the gateway.
    msgs = rx.wait_for(3)
    assert {(m["bk_agent_id"], m["message_id"]) for m in msgs} == \
        {("host-a", "d-1"), ("host-b.example", "d-1"), ("host-a", "d-2")}
    assert all(m["_verified"] for m in msgs)
    assert [m["_content"] for m in msgs if m["message_id"] == "d-1"] == [b"\x00to all"] * 2

    # Request-reply through NATS, one agent and several at once.
    assert c.request("host-a", b"ping", timeout_ms=5000) == b"ping"
    many = c.request_many(["host-a", "host-b.example", "host-gone"], b"all?", timeout_ms=3000)
    assert [r["status"] for r in many] == ["ok", "ok", "failed"]
    assert many[2]["code"] == 404
    # Cache through the gateway.
    c.cache_put("host-a", "echo", "k", b"cached bytes")
    assert c.cache_get("host-a", "echo", "k", offset=7) == b"bytes"
    with pytest.raises(AgentError) as e:
        c.cache_get("host-gone", "echo", "k")
    assert e.value.status == 404
    # Wrong token at the gateway.
    with pytest.raises(AgentError) as e:
        AgentClient(gw.url, slot_id=slot["slot_id"], token="0" * 64).dispatch(["host-a"], b"x")
    assert e.value.status == 403


def test_gateway_callback_retries_keep_the_webhook_id_and_4xx_is_final(world):
    """The gateway posts messages up with the agent's delivery loop (lib/fabric/callback_post):
    a 5xx is retried with the same webhook-id, any other status is final and the next message
    goes through. One worker, so that the messages are posted in the stream's order."""
    gw = world.gateway("--workers", "1")
    rx = world.receiver(responses=[503, 500])
    slot = gw.admin().register_slot("up", rx.url)
    rx.secret = slot["secret"]
    seen = []
    orig = rx._take

    def spy(headers, body):
        seen.append({k.lower(): v for k, v in headers.items()}["webhook-id"])
        return orig(headers, body)
    rx._take = spy
    p = world.plugin(world.agent("h1"), "up")
    assert p.wait("launched")[0]["rc"] == 0
    p.cmd("send r-1 retried")
    assert rx.wait_for(1)[0]["message_id"] == "r-1"
    assert len(seen) == 3 and len(set(seen)) == 1
    assert all(m["_verified"] for m in rx.messages)
    rx.responses = [404]
    p.cmd("send r-2 refused")
    p.cmd("send r-3 fine")
    p.cmd("send r-4 marker")
    assert [m["message_id"] for m in rx.wait_for(3)] == ["r-1", "r-3", "r-4"]
    assert rx.requests == 6


def test_gateway_killed_mid_stream_loses_nothing(world):
    gw = world.gateway()
    rx = world.receiver()
    slot = gw.admin().register_slot("up", rx.url)
    rx.secret = slot["secret"]
    agents = [world.agent("h1"), world.agent("h2")]
    plugins = [world.plugin(a, "up") for a in agents]
    for p in plugins:
        assert p.wait("launched")[0]["rc"] == 0
    n = 1500
    for i, p in enumerate(plugins):
        p.cmd(f"sendn m{i} {n} 300")
    wait_until(lambda: len(rx.messages) > 100, 30, "callbacks to flow")
    gw.proc.kill()  # kill -9, holding unacknowledged messages
    gw.proc.wait()
    for p in plugins:
        p.wait("sendn", timeout=60)
        p.cmd("flush 60000")
        assert p.wait("flushed", timeout=90)[0]["rc"] == 0  # the agents acknowledged all
    # Two gateways now share the stream (one durable consumer, as a queue group).
    world.gateway()
    world.gateway()
    msgs = rx.wait_for(2 * n, timeout=120)
    got = {(m["bk_agent_id"], m["message_id"]) for m in msgs}
    want = {(f"h{i + 1}", f"m{i}-{k}") for i in range(2) for k in range(n)}
    assert got == want


def test_gateway_http_front_holds_a_slow_header_storm(world):
    """The gateway serves the same HTTP front as the agent: 700 connections that never finish
    their headers leave health, and the API behind it (a slot change: a NATS KV round trip on
    the worker pool), answering; callback URLs at metadata addresses are refused there too."""
    gw = world.gateway()
    conns = slow_conns(gw.port, 700)
    try:
        for _ in range(20):
            status, body = health(gw.port)
            assert status == 200 and body["role"] == "gateway"
        rx = world.receiver()
        admin = gw.admin()
        admin.register_slot("p", rx.url)
        with pytest.raises(AgentError) as e:
            admin.register_slot("meta", "http://169.254.169.254/latest/meta-data/")
        assert e.value.status == 400 and "--allow-link-local-callbacks" in e.value.body["error"]
    finally:
        close_all(conns)
