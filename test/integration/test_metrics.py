"""The Prometheus endpoint (--metrics ADDR:PORT) of mimo_tgt, mimo_agent and mimo_gateway,
scraped by the real thing: Debian's prometheus scrapes each program once a second and must
find the target up, without an error, and the counters the test drove above zero; promtool
checks a scrape's text. Then the endpoint as a network-facing part: bad values refused at
start, requests that are not scrapes refused, the header deadline, the connection cap.
docs/metrics.md lists the families."""
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import urllib.parse
import urllib.request

import pytest

from conftest import BIN, SLOW, clean_env, free_port, wait_port, wait_until
from nvme_tcp_host import admin_session, io_session
from nvmf_target import NQN
from test_agent import AGENT, fabric, register  # noqa: F401
from test_agent_nats import GATEWAY, NATS_SERVER, nats, world  # noqa: F401

TGT = os.path.join(BIN, "mimo_tgt")
PROMETHEUS = "/usr/bin/prometheus"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
# Debian 12's package `prometheus` (scripts/deps.sh installs it) ships both binaries.
need_prometheus = pytest.mark.skipif(
    not os.path.exists(PROMETHEUS),
    reason="/usr/bin/prometheus is missing: install Debian's package prometheus "
           "(scripts/deps.sh) to scrape mimo with the real Prometheus")
need_promtool = pytest.mark.skipif(
    not os.path.exists(PROMTOOL),
    reason="promtool is missing: install Debian's package prometheus (scripts/deps.sh)")

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
UNESCAPE = re.compile(r"\\(.)")


def scrape(port, path="/metrics", method="GET", source=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10 * SLOW,
                                   source_address=(source, 0) if source else None)
    try:
        c.request(method, path)
        r = c.getresponse()
        return r.status, r.getheader("Content-Type"), r.read().decode()
    finally:
        c.close()


def samples(text):
    """{(name, ((label, value), ...)): float} of a scrape, label values unescaped."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, f"not a sample line: {line!r}"
        labels = tuple((k, UNESCAPE.sub(lambda e: "\n" if e.group(1) == "n" else e.group(1), v))
                       for k, v in LABEL.findall(m.group(3) or ""))
        out[(m.group(1), labels)] = float(m.group(4))
    return out


def value(port, name, **labels):
    return samples(scrape(port)[2]).get((name, tuple(labels.items())))


def promtool_check(text):
    """promtool check metrics: its complaints (empty when the text is clean)."""
    p = subprocess.run([PROMTOOL, "check", "metrics"], input=text.encode(), capture_output=True,
                       timeout=60)
    return p.returncode, (p.stdout + p.stderr).decode()


class Prometheus:
    """/usr/bin/prometheus scraping the given ports every second, on a loopback port of its
    own, with its storage in the test's directory."""

    def __init__(self, rundir, targets):
        self.port = free_port()
        d = os.path.join(rundir, f"prom-{self.port}")
        os.makedirs(d)
        cfg = os.path.join(d, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                    "scrape_configs:\n  - job_name: mimo\n    static_configs:\n"
                    "      - targets: [" + ", ".join(f"'127.0.0.1:{p}'" for p in targets)
                    + "]\n")
        self.log = open(os.path.join(d, "prometheus.log"), "w+")
        self.proc = subprocess.Popen(
            [PROMETHEUS, f"--config.file={cfg}", f"--storage.tsdb.path={d}/data",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            env=clean_env(), stdout=self.log, stderr=subprocess.STDOUT)

    def api(self, path, **params):
        if self.proc.poll() is not None:
            raise RuntimeError(f"prometheus exited {self.proc.returncode}:\n{self.output()}")
        url = f"http://127.0.0.1:{self.port}/api/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                return json.loads(r.read())["data"]
        except OSError:
            return None

    def query(self, q):
        """The instant vector's values (floats), or [] before Prometheus has any."""
        data = self.api("query", query=q)
        return [float(r["value"][1]) for r in (data or {}).get("result", [])]

    def targets_up(self, n):
        """True once n targets are up with no scrape error (the text parsed)."""
        data = self.api("targets") or {}
        ts = data.get("activeTargets", [])
        return len(ts) == n and all(t["health"] == "up" and not t["lastError"] for t in ts)

    def wait_for(self, q, n_targets=1):
        wait_until(lambda: self.targets_up(n_targets), 60,
                   f"Prometheus to see {n_targets} target(s) up (log: {self.log.name})")
        return wait_until(lambda: [v for v in self.query(q) if v > 0], 60,
                          f"Prometheus to find {q} > 0")

    def output(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def prometheus(rundir):
    made = []

    def start(*ports):
        p = Prometheus(rundir, ports)
        made.append(p)
        return p
    yield start
    for p in made:
        p.stop()


def nvmf_target(daemons, port, mport, *extra):
    d = daemons("-m", "0x1", "--metrics", f"127.0.0.1:{mport}", *extra)
    d.result("bdev_malloc_create", {"name": "Malloc0", "block_size": 512, "num_blocks": 8192})
    d.result("nvmf_create_transport", {"trtype": "TCP"})
    d.result("nvmf_create_subsystem", {"nqn": NQN, "allow_any_host": True,
                                       "serial_number": "MIMO0001"})
    d.result("nvmf_subsystem_add_ns", {"nqn": NQN, "namespace": {"bdev_name": "Malloc0"}})
    d.result("nvmf_subsystem_add_listener", {
        "nqn": NQN, "listen_address": {"trtype": "TCP", "adrfam": "IPv4",
                                       "traddr": "127.0.0.1", "trsvcid": str(port)}})
    assert wait_port(port)
    return d


# --- mimo_tgt -----------------------------------------------------------------------------------

@need_prometheus
def test_prometheus_scrapes_mimo_tgt_after_nvme_tcp_io(daemons, prometheus):
    port, mport = free_port(), free_port()
    d = nvmf_target(daemons, port, mport)
    admin = admin_session(port, NQN)
    io = io_session(port, admin, NQN)
    for lba in range(8):
        assert io.write(1, lba, bytes([lba]) * 512)[0]["status"] == 0
    for lba in range(8):
        _, data = io.read(1, lba, 1)
        assert data == bytes([lba]) * 512
    # The text as the test reads it, before Prometheus: the counters the I/O moved.
    s = samples(scrape(mport)[2])
    assert s[("mimo_bdev_read_ops_total", (("bdev", "Malloc0"),))] >= 8
    assert s[("mimo_bdev_write_ops_total", (("bdev", "Malloc0"),))] >= 8
    assert s[("mimo_bdev_write_bytes_total", (("bdev", "Malloc0"),))] >= 8 * 512
    assert s[("mimo_bdev_read_seconds_total", (("bdev", "Malloc0"),))] > 0
    # The latency histograms: cumulative buckets up to +Inf, which is the count of the ops.
    for kind in ("read", "write"):
        name = f"mimo_bdev_{kind}_latency_seconds"
        buckets = sorted((float(lb[1][1]), v) for (n, lb), v in s.items()
                         if n == name + "_bucket" and lb[0] == ("bdev", "Malloc0"))
        assert len(buckets) == 18 and buckets[-1][0] == float("inf")
        assert [v for _, v in buckets] == sorted(v for _, v in buckets)
        ops = s[(f"mimo_bdev_{kind}_ops_total", (("bdev", "Malloc0"),))]
        assert buckets[-1][1] == ops == s[(name + "_count", (("bdev", "Malloc0"),))]
        assert s[(name + "_sum", (("bdev", "Malloc0"),))] == \
            s[(f"mimo_bdev_{kind}_seconds_total", (("bdev", "Malloc0"),))]
    assert s[("mimo_nvmf_controllers", ())] == 1
    assert s[("mimo_nvmf_qpairs", (("type", "admin"),))] == 1
    assert s[("mimo_nvmf_qpairs", (("type", "io"),))] == 1
    assert s[("mimo_nvmf_qpairs", (("type", "unassociated"),))] == 0
    assert s[("mimo_nvmf_io_commands_total", ())] == 16
    assert s[("mimo_nvmf_io_command_errors_total", ())] == 0
    # Reused, not counted twice: the same figures as nvmf_get_stats.
    g, = d.result("nvmf_get_stats")["poll_groups"]
    assert g["completed_nvme_io"] == 16 and g["current_io_qpairs"] == 1
    assert s[("mimo_rpc_calls_total", (("method", "bdev_malloc_create"),))] == 1
    assert s[("mimo_rpc_errors_total", (("method", "bdev_malloc_create"),))] == 0
    assert s[("mimo_build_info", (("program", "mimo_tgt"), ("version", "0.1.0")))] == 1
    assert s[("mimo_reactor_busy_seconds_total", (("reactor", "0"), ("core", "0")))] > 0
    # Prometheus parses it: the target is up with no error, and the query finds the reads.
    prom = prometheus(mport)
    assert prom.wait_for('mimo_bdev_read_ops_total{bdev="Malloc0"}')[0] >= 8
    assert prom.query("mimo_nvmf_controllers") == [1.0]
    # Prometheus reads the histogram as one: a quantile comes out of its buckets.
    q = 'histogram_quantile(0.5, mimo_bdev_read_latency_seconds_bucket{bdev="Malloc0"})'
    assert 0 < prom.query(q)[0] <= 2.5
    # What goes away is seen going: the host disconnects, the controller is gone.
    io.close()
    admin.close()
    wait_until(lambda: value(mport, "mimo_nvmf_controllers") == 0, 30,
               "the controller to be gone from the metrics")
    assert value(mport, "mimo_nvmf_qpairs", type="io") == 0
    d.stop()


def test_rpc_calls_errors_and_unknown_methods_are_counted(daemons):
    mport = free_port()
    d = daemons("--metrics", f"127.0.0.1:{mport}")
    c = d.conn()
    for _ in range(3):
        assert "error" in c.call("bdev_malloc_delete", {"name": "nothing"})
    assert c.call("no_such_method")["error"]["code"] == -32601
    c.result("spdk_get_version")
    s = samples(scrape(mport)[2])
    assert s[("mimo_rpc_calls_total", (("method", "bdev_malloc_delete"),))] == 3
    assert s[("mimo_rpc_errors_total", (("method", "bdev_malloc_delete"),))] == 3
    assert s[("mimo_rpc_errors_total", (("method", "spdk_get_version"),))] == 0
    assert s[("mimo_rpc_unknown_method_total", ())] == 1


@need_promtool
def test_promtool_accepts_a_scrape_with_any_bdev_name(daemons):
    mport = free_port()
    d = daemons("--metrics", f"127.0.0.1:{mport}")
    # Label values are escaped: a quote, a backslash and UTF-8 in a bdev's name.
    odd = 'we"ird\\näme'
    d.result("bdev_malloc_create", {"name": odd, "block_size": 512, "num_blocks": 64})
    d.result("bdev_null_create", {"name": "N0", "block_size": 512, "num_blocks": 64})
    status, ctype, text = scrape(mport)
    assert status == 200 and ctype.startswith("text/plain; version=0.0.4")
    rc, complaints = promtool_check(text)
    assert rc == 0 and complaints.strip() == "", complaints
    assert samples(text)[("mimo_bdev_read_ops_total", (("bdev", odd),))] == 0
    # HEAD answers as GET without the body.
    assert scrape(mport, method="HEAD")[:2] == (200, ctype)


def test_vhost_controllers_and_front_ends_are_counted(daemons, rundir):
    import vhost_user as vu
    mport = free_port()
    d = daemons("-S", rundir, "--metrics", f"127.0.0.1:{mport}")
    d.result("bdev_malloc_create", {"name": "M0", "block_size": 512, "num_blocks": 2048})
    d.result("vhost_create_blk_controller", {"ctrlr": "vb0", "dev_name": "M0"})
    assert value(mport, "mimo_vhost_controllers", type="blk") == 1
    assert value(mport, "mimo_vhost_controllers", type="scsi") == 0
    c = vu.Client(os.path.join(rundir, "vb0"))
    c.negotiate()
    q = c.queue(0)
    assert q.blk_write(0, b"\x11" * 512) == vu.S_OK
    assert value(mport, "mimo_vhost_sessions") == 1
    assert value(mport, "mimo_bdev_write_ops_total", bdev="M0") == 1
    c.close()
    wait_until(lambda: value(mport, "mimo_vhost_sessions") == 0, 10, "the session to end")
    d.result("vhost_delete_controller", {"ctrlr": "vb0"})
    assert value(mport, "mimo_vhost_controllers", type="blk") == 0


# --- mimo_agent and mimo_gateway -------------------------------------------------------------

@need_prometheus
@need_promtool
@pytest.mark.skipif(not os.path.exists(AGENT), reason="mimo_agent is not built")
def test_prometheus_scrapes_mimo_agent_deliveries_and_retries(fabric, prometheus):  # noqa: F811
    mport = free_port()
    a = fabric.agent(args=["--metrics", f"127.0.0.1:{mport}"])
    rx = fabric.receiver(responses=[503])
    register(a, "cplug", rx)
    cp = fabric.plugin(a, "cplug")
    cp.wait("launched")
    cp.cmd("send m-1 first")
    cp.cmd("send m-2 second")
    assert [m["message_id"] for m in rx.wait_for(2)] == ["m-1", "m-2"]
    wait_until(lambda: value(mport, "mimo_agent_up_delivered_total") == 2, 10,
               "both deliveries counted")
    text = scrape(mport)[2]
    s = samples(text)
    assert s[("mimo_agent_up_retries_total", ())] == 1  # the 503
    assert s[("mimo_agent_up_failed_total", ())] == 0
    assert s[("mimo_agent_plugin_up_messages_total", (("plugin", "cplug"),))] == 2
    assert s[("mimo_agent_plugin_connected", (("plugin", "cplug"),))] == 1
    assert s[("mimo_agent_upq_appended_total", ())] == 2
    assert s[("mimo_http_responses_total", (("code", "2xx"),))] >= 1  # the slot's creation
    # The same numbers as /v1/health: one source.
    h = a.health()
    assert h["upq"]["delivered"] == 2 and h["plugins"][0]["up"] == 2
    rc, complaints = promtool_check(text)
    assert rc == 0 and complaints.strip() == "", complaints
    prom = prometheus(mport)
    assert prom.wait_for("mimo_agent_up_delivered_total") == [2.0]


@need_prometheus
@need_promtool
@pytest.mark.skipif(not (os.path.exists(GATEWAY) and os.path.exists(NATS_SERVER)),
                    reason="mimo_gateway or nats-server missing")
def test_prometheus_scrapes_mimo_gateway(world, prometheus):  # noqa: F811
    mport = free_port()
    gw = world.gateway("--workers", "1", "--metrics", f"127.0.0.1:{mport}")
    rx = world.receiver(responses=[500])
    slot = gw.admin().register_slot("up", rx.url)
    rx.secret = slot["secret"]
    p = world.plugin(world.agent("h1"), "up")
    assert p.wait("launched")[0]["rc"] == 0
    p.cmd("send g-1 through the gateway")
    assert rx.wait_for(1)[0]["message_id"] == "g-1"
    wait_until(lambda: value(mport, "mimo_gateway_up_delivered_total") == 1, 10,
               "the delivery counted")
    text = scrape(mport)[2]
    s = samples(text)
    assert s[("mimo_gateway_up_retries_total", ())] == 1
    assert s[("mimo_gateway_slots", ())] == 1
    rc, complaints = promtool_check(text)
    assert rc == 0 and complaints.strip() == "", complaints
    prom = prometheus(mport)
    assert prom.wait_for("mimo_gateway_up_delivered_total") == [1.0]


# --- the endpoint as a network-facing part --------------------------------------------------

@pytest.mark.parametrize("value_", ["9464", "localhost:9464", "127.0.0.1:", "127.0.0.1:65536",
                                    "127.0.0.1:-1", "[::1:9464", "::1:9464", "1.2.3:80"])
def test_a_bad_metrics_value_is_refused_at_start(value_, rundir):
    progs = [[TGT, "-r", os.path.join(rundir, "t.sock")]]
    if os.path.exists(AGENT):
        progs.append([AGENT, "--agent-id", "h", "--state-dir", os.path.join(rundir, "st"),
                      "--socket", os.path.join(rundir, "a.sock"), "--http", "127.0.0.1:0"])
    if os.path.exists(GATEWAY):
        progs.append([GATEWAY, "--nats", "nats://127.0.0.1:1"])
    for cmd in progs:
        p = subprocess.run(cmd + ["--metrics", value_], env=clean_env(), capture_output=True,
                           timeout=30 * SLOW)
        name = os.path.basename(cmd[0])
        assert p.returncode != 0, name
        assert f"{name}: --metrics {value_}: " in p.stderr.decode(), p.stderr.decode()


def test_a_metrics_port_in_use_fails_the_start(rundir):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        p = subprocess.run([TGT, "-r", os.path.join(rundir, "t.sock"), "--metrics",
                            f"127.0.0.1:{port}"], env=clean_env(), capture_output=True,
                           timeout=30 * SLOW)
    assert p.returncode == 1
    assert f"--metrics 127.0.0.1:{port}: cannot listen there" in p.stderr.decode()


def raw(port, data, read=True):
    s = socket.create_connection(("127.0.0.1", port), timeout=10 * SLOW)
    s.sendall(data)
    if not read:
        return s
    out = b""
    while True:
        try:
            chunk = s.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        out += chunk
    s.close()
    return out


def test_requests_that_are_not_scrapes_are_refused(daemons):
    mport = free_port()
    daemons("--metrics", f"127.0.0.1:{mport}")
    assert scrape(mport, "/")[0] == 404
    assert scrape(mport, method="DELETE")[0] == 405
    # A body is refused from its headers, before a byte of it is read.
    r = raw(mport, b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n")
    assert r.startswith(b"HTTP/1.1 405")
    r = raw(mport, b"GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n")
    assert r.startswith(b"HTTP/1.1 413")
    # Headers past the request cap (16 KiB): an error answer and the connection closed.
    r = raw(mport, b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 40000 + b"\r\n\r\n")
    assert r.startswith(b"HTTP/1.1 431"), r[:100]
    s = samples(scrape(mport)[2])
    assert s[("mimo_metrics_http_requests_total", (("code", "404"),))] == 1
    assert s[("mimo_metrics_http_requests_total", (("code", "405"),))] == 2
    assert s[("mimo_metrics_http_requests_total", (("code", "413"),))] == 1


def test_slow_headers_are_cut_and_the_connection_cap_holds(daemons):
    """Eight connections from one address that never finish their headers take every place
    that address has (the cap per address); a ninth is turned away rather than queued without
    bound; the scraper on another address (127.0.0.2, loopback too) is answered meanwhile; the
    header deadline (5 s) closes the eight whatever they trickle, and scraping works again."""
    mport = free_port()
    daemons("--metrics", f"127.0.0.1:{mport}")
    slow = [raw(mport, b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ", read=False)
            for _ in range(8)]
    try:
        def refused():
            # "Connection: close": an answered request ends in EOF too, so only a refusal
            # gives nothing (a time-out is not taken for one).
            try:
                out = raw(mport, b"GET /metrics HTTP/1.1\r\nHost: x\r\n"
                          b"Connection: close\r\n\r\n")
            except (ConnectionResetError, BrokenPipeError):
                return True
            return out == b""
        # Refused at once (accepted and closed), not parked in the listen backlog until the
        # deadline frees a place, as the one cap for every address did.
        # (The eight are ahead of it in the listen backlog, so they are counted first.)
        assert refused(), "a ninth connection from the same address was answered"
        status, _, _ = scrape(mport, source="127.0.0.2")
        assert status == 200

        def all_closed():
            for s in slow:
                try:
                    s.sendall(b"a")  # trickling: only a deadline can close these
                except OSError:
                    continue
                s.settimeout(0.05)
                try:
                    if s.recv(1) != b"":
                        return False
                except (socket.timeout, BlockingIOError):
                    return False
                except OSError:
                    continue
            return True
        wait_until(all_closed, 30, "the header deadline to close the slow connections")
    finally:
        for s in slow:
            s.close()
    # The client sees its end shut before libmicrohttpd has let go of the connection (and its
    # place among the address's eight): a scrape at once may still be turned away.
    answer = []

    def scraped():
        try:
            answer.append(scrape(mport))
        except OSError:
            return False
        return True
    assert wait_until(scraped, 10, "a scrape from the first address to be answered again")
    status, _, text = answer[-1]
    assert status == 200
    assert samples(text)[("mimo_metrics_http_deadline_closed_total", ())] >= 8
