"""The agent's HTTP front under hostile clients (issue 9): slow-header storms, requests that never
complete, one address opening too many connections, descriptors running out, bodies over the
limit, and callback URLs aimed at link-local or cloud-metadata addresses. Real agent, real
sockets; attackers connect from other loopback addresses (127.0.0.2...) than the good client
(127.0.0.1), as clients on other hosts would."""
import http.client
import json
import os
import resource
import socket
import subprocess

import pytest

from conftest import SLOW, clean_env, free_port, wait_until
from test_agent import AGENT, AgentClient, AgentError, fabric, register  # noqa: F401

pytestmark = pytest.mark.skipif(not os.path.exists(AGENT), reason="mimo_agent is not built")

# A request line and headers that never end: what a slowloris sends.
PARTIAL = b"GET /v1/health HTTP/1.1\r\nHost: agent\r\nX-Slow: "


def raise_nofile(n):
    """This test process holds many sockets: raise its own descriptor limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(n, hard), hard))


def slow_conns(port, n, first_source=2, per_source=60):
    """n connections that send half a request and then nothing, spread over loopback source
    addresses 127.0.0.<first_source>... (per_source each)."""
    raise_nofile(n + 256)
    conns = []
    try:
        for i in range(n):
            src = f"127.0.0.{first_source + i // per_source}"
            s = socket.create_connection(("127.0.0.1", port), timeout=10 * SLOW,
                                         source_address=(src, 0))
            conns.append(s)
            try:
                s.sendall(PARTIAL)
            except (ConnectionResetError, BrokenPipeError):
                pass  # refused by a limit: an attacker's loss, not the test's concern
    except BaseException:
        close_all(conns)
        raise
    return conns


def close_all(conns):
    for s in conns:
        s.close()


def health(port, source="127.0.0.1", timeout=5.0):
    """GET /v1/health on a new connection; the generous timeout bounds a failure only."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout * SLOW,
                                   source_address=(source, 0))
    try:
        c.request("GET", "/v1/health")
        r = c.getresponse()
        return r.status, json.loads(r.read())
    finally:
        c.close()


def closed_by_peer(s, nudge=None):
    """True once the server closed s (EOF or reset). nudge, if given, is sent first: a client
    that keeps trickling bytes, so that only a deadline - not an idle timeout - can close it."""
    try:
        if nudge:
            s.sendall(nudge)
        s.settimeout(0.2)
        return s.recv(4096) == b""
    except socket.timeout:
        return False
    except (ConnectionResetError, BrokenPipeError):
        return True


def sockets_of(pid):
    n = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            n += os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
        except OSError:
            pass
    return n


def test_slow_header_storm_leaves_health_answering(fabric):
    """700 connections that never finish their headers - more than the 512 threads the old
    thread-per-connection front had - and a good client is still answered, every time."""
    a = fabric.agent()
    conns = slow_conns(a.port, 700)
    try:
        for _ in range(20):
            status, body = health(a.port)
            assert status == 200 and body["agent_id"] == a.agent_id
        # The API behind it works too (a slot change goes through the worker pool).
        rx = fabric.receiver()
        register(a, "cplug", rx)
    finally:
        close_all(conns)


def test_incomplete_request_is_closed_at_its_deadline(fabric):
    """A client that trickles a header byte at a time - never idle, never done - is closed
    once --http-header-timeout has passed; a complete request on another connection is
    answered meanwhile."""
    a = fabric.agent(args=["--http-header-timeout", "1", "--http-idle-timeout", "60"])
    s = socket.create_connection(("127.0.0.1", a.port), source_address=("127.0.0.2", 0))
    try:
        s.sendall(PARTIAL)
        wait_until(lambda: closed_by_peer(s, nudge=b"x"), 15,
                   "the server to close a connection that never completes its headers")
    finally:
        s.close()
    assert health(a.port)[0] == 200
    # A keep-alive connection that completed a request is not cut by the header deadline:
    # it waits for its next request up to the idle timeout.
    c = AgentClient(a.url)
    c.health()
    sock = c._conn.sock
    later = socket.create_connection(("127.0.0.1", a.port), source_address=("127.0.0.2", 0))
    try:
        later.sendall(PARTIAL)
        wait_until(lambda: closed_by_peer(later), 15, "a later incomplete request to be cut")
    finally:
        later.close()
    assert "connection(s) that sent no complete request" in a.output()
    c.health()
    assert c._conn.sock is sock, "the keep-alive connection was closed"
    c.close()


def test_connections_per_address_are_limited(fabric):
    a = fabric.agent(args=["--http-max-conns-per-ip", "4"])
    conns = slow_conns(a.port, 4, first_source=3)
    extra = socket.create_connection(("127.0.0.1", a.port), source_address=("127.0.0.3", 0))
    try:
        # The fifth from the same address is closed at once, unanswered.
        extra.sendall(b"GET /v1/health HTTP/1.1\r\nHost: agent\r\n\r\n")
        wait_until(lambda: closed_by_peer(extra), 10, "the fifth connection to be refused")
        # Other addresses are served, and so are the first four once they finish.
        assert health(a.port)[0] == 200
        assert health(a.port, source="127.0.0.4")[0] == 200
        conns[0].sendall(b"x\r\n\r\n")
        conns[0].settimeout(10 * SLOW)
        assert conns[0].recv(4096).startswith(b"HTTP/1.1 200")
    finally:
        extra.close()
        close_all(conns)


def test_descriptors_run_out_without_locking_everyone_out(fabric, rundir):
    """With RLIMIT_NOFILE 512 the front takes at most 512 - 256 connections: a storm fills
    them, yet plugins still connect (their descriptors were kept back), the storm is cleared
    by the header deadline, and the good client is answered. A connection limit that cannot
    fit is refused at start with a clear error."""
    def limit_fds():
        resource.setrlimit(resource.RLIMIT_NOFILE, (512, 512))

    port = free_port()
    p = subprocess.run([AGENT, "--agent-id", "x", "--socket", os.path.join(rundir, "x.sock"),
                        "--http", f"127.0.0.1:{port}", "--state-dir",
                        os.path.join(rundir, "x-state"), "--http-max-conns", "4096"],
                       env=clean_env(), preexec_fn=limit_fds, capture_output=True, text=True,
                       timeout=30 * SLOW)
    assert p.returncode != 0 and "RLIMIT_NOFILE" in p.stderr, p.stderr

    a = fabric.agent(args=["--http-header-timeout", "2"], preexec=limit_fds)
    assert "at most 256 HTTP connections" in a.output()
    rx = fabric.receiver()
    register(a, "cplug", rx)
    conns = slow_conns(a.port, 300, per_source=50)
    try:
        wait_until(lambda: sockets_of(a.proc.pid) >= 256, 10,
                   "the storm to fill the HTTP front's 256 connections")
        # The plugin's socket, the up-queue's files and the callback's connection use
        # descriptors the storm could not take.
        cp = fabric.plugin(a, "cplug")
        assert cp.wait("launched")[0]["rc"] == 0
        cp.cmd("send fd-1 still here")
        assert rx.wait_for(1)[0]["message_id"] == "fd-1"
        # The header deadline clears the storm (the ones in the backlog too): served again.
        assert health(a.port, timeout=20)[0] == 200
    finally:
        close_all(conns)


def thread_switches(pid, name):
    """Voluntary context switches of the process's thread called name: a thread that blocks
    in epoll_wait makes them, one that spins on a ready descriptor does not."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/comm") as f:
            if f.read().strip() != name:
                continue
        with open(f"/proc/{pid}/task/{tid}/status") as f:
            for line in f:
                if line.startswith("voluntary_ctxt_switches:"):
                    return int(line.split()[1])
    raise AssertionError(f"no thread {name} in {pid}")


def test_plugin_socket_out_of_descriptors_does_not_spin(fabric):
    """Plugins' connections past the descriptor limit: accept() fails with EMFILE and the
    connection stays queued. The I/O thread stops watching the listeners for a while instead
    of spinning on them (it keeps sleeping in epoll_wait), logs one line a second, and takes
    connections again once descriptors are free."""
    def limit_fds():
        resource.setrlimit(resource.RLIMIT_NOFILE, (512, 512))

    a = fabric.agent(preexec=limit_fds)
    conns = []

    def more_until_refused():
        # Connections beyond the listen backlog fail at once (EAGAIN): keep adding until
        # the agent has taken all it can and one waits in the backlog.
        if "cannot accept a plugin connection" in a.output():
            return True
        for _ in range(50):
            if len(conns) >= 2000:
                break
            s = socket.socket(socket.AF_UNIX)
            s.setblocking(False)
            try:
                s.connect(a.sock)
                conns.append(s)
            except OSError:
                s.close()
        return False

    try:
        wait_until(more_until_refused, 30, "accept() to run out of descriptors")
        before = thread_switches(a.proc.pid, "agent_io")
        wait_until(lambda: thread_switches(a.proc.pid, "agent_io") >= before + 10, 20,
                   "the I/O thread to sleep between its ticks (not spin)")
        assert a.output().count("cannot accept a plugin connection") <= 30
    finally:
        close_all(conns)
    # Descriptors free again: a plugin gets in.
    rx = fabric.receiver()
    register(a, "late", rx)
    p = fabric.plugin(a, "late")
    assert p.wait("launched")[0]["rc"] == 0


def test_oversized_body_is_refused_before_it_is_read(fabric):
    """Content-Length 100 MB: 413 at once, before the client sent one byte of the body."""
    a = fabric.agent()
    for extra in (b"", b"Expect: 100-continue\r\n"):
        s = socket.create_connection(("127.0.0.1", a.port), timeout=10 * SLOW)
        try:
            s.sendall(b"POST /v1/dispatch HTTP/1.1\r\nHost: agent\r\n"
                      b"Content-Type: application/json\r\nContent-Length: 100000000\r\n" +
                      extra + b"\r\n")
            head = s.recv(4096)
            assert head.startswith(b"HTTP/1.1 413"), head
            assert b"100 Continue" not in head
        finally:
            s.close()
    # A chunked body has no length to judge: it is cut once it passes 16 MiB.
    s = socket.create_connection(("127.0.0.1", a.port), timeout=10 * SLOW)
    chunk = b"x" * (1 << 20)
    sent = 0
    try:
        s.sendall(b"POST /v1/dispatch HTTP/1.1\r\nHost: agent\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n")
        for _ in range(64):
            s.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
            sent += len(chunk)
        pytest.fail(f"the server read {sent} bytes of a chunked body")
    except (BrokenPipeError, ConnectionResetError):
        assert sent <= 40 << 20
    finally:
        s.close()
    assert health(a.port)[0] == 200


BAD_CALLBACKS = [
    "http://169.254.169.254/latest/meta-data/",
    "http://169.254.1.1:8080/cb",
    "http://[fe80::1]/cb",
    "http://[fe80::1%25lo]:8080/cb",
    "http://[fd00:ec2::254]/",
    "http://100.100.100.200/latest/meta-data",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://2852039166/",  # 169.254.169.254 as one number: resolvers accept it
    "http://[::ffff:169.254.169.254]/",
    "https://user@169.254.169.254:443/",
]


def test_callback_urls_at_link_local_or_metadata_addresses_are_refused(fabric):
    a = fabric.agent()
    admin = a.admin()
    for url in BAD_CALLBACKS:
        with pytest.raises(AgentError) as e:
            admin.register_slot("meta", url)
        assert e.value.status == 400, url
        assert "--allow-link-local-callbacks" in e.value.body["error"], e.value.body
    # Private and loopback addresses are the usual callbacks: allowed.
    for i, url in enumerate(("http://10.0.0.1/cb", "http://192.168.1.1:8080/cb",
                             "http://127.0.0.1:9/cb")):
        admin.register_slot(f"ok{i}", url)
    b = fabric.agent(args=["--allow-link-local-callbacks"])
    assert b.admin().register_slot("meta", BAD_CALLBACKS[0])["callback_url"] == BAD_CALLBACKS[0]


def test_link_local_callback_is_refused_at_connect_time(fabric):
    """A slot whose callback became link-local behind the registration check (here: one
    registered while allowed; in life a name that resolves elsewhere later, DNS rebinding) is
    refused at connect time, on the address libcurl is about to use: no packet is sent, the
    message is dropped and counted."""
    a = fabric.agent(args=["--allow-link-local-callbacks"])
    rx = fabric.receiver()
    # fe80::1 scoped to the loopback interface: were the check to fail, nothing would leave
    # this machine.
    slot = a.admin().register_slot("cplug", f"http://[fe80::1%25lo]:{free_port()}/cb")
    rx.secret = slot["secret"]
    a.stop()
    a.args = [x for x in a.args if x != "--allow-link-local-callbacks"]
    a.start()
    cp = fabric.plugin(a, "cplug")
    assert cp.wait("launched")[0]["rc"] == 0
    cp.cmd("send ll-1 to a link-local callback")
    wait_until(lambda: a.health()["upq"]["dropped"] == 1, 15, "the message to be dropped")
    assert "fe80::1 is a link-local address: refused" in a.output()


def test_a_request_waiting_for_its_plugin_outlives_the_idle_timeout(fabric):
    """A request-reply is suspended while a worker waits for the plugin: neither the idle
    timeout nor the header deadline cuts it, and its 504 arrives on the same connection."""
    a = fabric.agent(args=["--http-idle-timeout", "1", "--http-header-timeout", "1"])
    rx = fabric.receiver()
    slot = register(a, "quiet", rx)
    fabric.plugin(a, "quiet").wait("launched")
    with pytest.raises(AgentError) as e:
        a.client(slot).request(a.agent_id, b"anyone?", timeout_ms=2500)
    assert e.value.status == 504 and e.value.body["status"] == "timeout"


def test_a_full_worker_queue_answers_503_at_once(fabric):
    """One worker and its 32 places, taken by requests to a plugin that never answers: the
    next requests get 503 with Retry-After at once instead of waiting; health still answers."""
    import threading
    a = fabric.agent(args=["--http-workers", "1"])
    rx = fabric.receiver()
    slot = register(a, "quiet", rx)
    fabric.plugin(a, "quiet").wait("launched")
    results = []

    def ask(i):
        try:
            c = a.client(slot)
            st, hdrs, _ = c.raw("POST", "/v1/request", {
                "slot_id": slot["slot_id"], "token": slot["token"], "message_id": f"q-{i}",
                "agent_id": a.agent_id, "content": "x", "timeout_ms": 30000})
            results.append((st, hdrs.get("Retry-After")))
        except OSError:
            pass  # cut at the agent's shutdown, still queued
    threads = [threading.Thread(target=ask, args=(i,), daemon=True) for i in range(40)]
    for t in threads:
        t.start()
    wait_until(lambda: len(results) >= 40 - 33, 15, "the requests beyond the queue refused")
    assert all(r == (503, "1") for r in results), results
    assert health(a.port)[0] == 200
