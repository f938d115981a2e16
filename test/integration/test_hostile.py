"""Hostile and careless clients of mimo_tgt's two network-facing parts, the JSON-RPC socket and
the NVMe/TCP listener: idle connections, clients that never read, half-closes, huge requests,
numbers at the edge of their range, connection storms and running out of file descriptors.
Each test names what a user relies on and fails on the code before these fixes (docs/
ROBUSTNESS.md). No test asserts a timing: they wait on what the daemon shows (its reactor's
sleep counter, its queue pair count, its resident memory, a socket reaching EOF)."""
import json
import os
import resource
import socket
import struct

import pytest

from conftest import SANITIZE, RawConn, RpcFailure, free_port, wait_until
from nvme_tcp_host import CMD, SGL_ICD, Closed, Host, admin_session, io_session, status_of
from nvmf_target import NQN, NvmfTarget

U64_MAX = 2**64 - 1


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def sleeps(conn):
    """How often the daemon's reactors went to sleep so far: a reactor that spins never does."""
    return sum(r["sleeps"] for r in conn.result("framework_get_reactors")["reactors"])


def reactor_sleeps_again(conn, more=20):
    """Wait until the reactors went to sleep `more` times (each poll wakes them once)."""
    start = sleeps(conn)
    wait_until(lambda: sleeps(conn) >= start + more, 30, "the reactor to sleep between polls")


def raise_own_fd_limit(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n:
        if hard != resource.RLIM_INFINITY and hard < n:
            pytest.skip(f"needs {n} file descriptors, the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (n, hard))


def eof_within(sock, timeout):
    """True when the peer closes (or resets) the connection within timeout; data is dropped."""
    sock.settimeout(timeout)
    try:
        while True:
            if not sock.recv(65536):
                return True
    except socket.timeout:
        return False
    except ConnectionResetError:
        return True


def read_all_json(sock, timeout=30):
    """Every newline-terminated answer until the daemon closes the connection."""
    sock.settimeout(timeout)
    buf = b""
    while True:
        chunk = sock.recv(1 << 20)
        if not chunk:
            break
        buf += chunk
    return [json.loads(line) for line in buf.split(b"\n") if line.strip()]


def request(method, params=None, id_=1):
    r = {"jsonrpc": "2.0", "method": method, "id": id_}
    if params is not None:
        r["params"] = params
    return json.dumps(r).encode()


# --- the JSON-RPC socket -----------------------------------------------------------------------

def test_idle_rpc_connections_cannot_lock_the_operator_out(tgt):
    """The server takes 64 connections. Idle ones are evicted for a new client - those that
    never sent a request first, oldest first: a script that leaks connections, or someone who
    opens many on purpose, never keeps the operator's own mimo-rpc out, nor evicts a client
    that keeps its connection between requests."""
    operator = tgt.conn()  # a client that keeps its connection (py-spdk's, mimo's Client)
    assert operator.result("spdk_get_version")["version"]
    idle = [RawConn(tgt.sock) for _ in range(100)]
    # A new client still gets in, and is answered.
    assert "version" in tgt.result("spdk_get_version")
    # The oldest silent connections made room; the newest are still open, and the operator's
    # connection, which had sent a request, was not the one evicted.
    assert eof_within(idle[0].sock, 10)
    assert idle[-1].result("spdk_get_version")["version"]
    assert operator.result("spdk_get_version")["version"]
    for c in idle:
        c.close()


def test_a_client_that_never_reads_costs_no_cpu_and_bounded_memory(tgt):
    """Requests pipelined by a client that never reads its answers: once its unread answers
    pass a bound the daemon stops reading from it - without spinning on the readable socket -
    and its memory stays bounded. Nothing is lost: when the client reads, every request it sent
    is answered."""
    for i in range(20):
        tgt.result("bdev_null_create", {"name": f"Null{i}", "num_blocks": 1024,
                                        "block_size": 512})
    ops = tgt.conn()
    rss_before = rss_kib(tgt.proc.pid)
    hog = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    hog.connect(tgt.sock)
    hog.setblocking(False)
    one = request("bdev_get_bdevs")  # each answer is ~20 KiB, the request 50 bytes
    sent = 0
    try:
        while sent < 200000:
            hog.send(one)
            sent += 1
    except BlockingIOError:
        pass  # the daemon stopped reading: our send buffer and its receive buffer are full
    assert sent < 200000, "the daemon kept reading from a client that reads nothing"
    # It stopped reading and sleeps: no busy loop on the socket it will not read.
    reactor_sleeps_again(ops)
    assert rss_kib(tgt.proc.pid) - rss_before < 32 * 1024
    # Now the client reads: every request it got in is answered, in order.
    hog.setblocking(True)
    hog.shutdown(socket.SHUT_WR)
    answers = read_all_json(hog, timeout=120)
    assert len(answers) == sent
    assert all(len(a["result"]) == 20 for a in answers)
    hog.close()


def test_half_close_still_gets_every_answer(tgt):
    """nc -N and many scripts send their requests and shut down their side: the answers of
    every request - bdev_malloc_delete answers asynchronously - still arrive, then EOF."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(tgt.sock)
    s.sendall(request("bdev_malloc_create", {"name": "M0", "num_blocks": 64, "block_size": 512}, 1)
              + request("bdev_malloc_delete", {"name": "M0"}, 2)
              + request("bdev_get_bdevs", None, 3))
    s.shutdown(socket.SHUT_WR)
    answers = read_all_json(s)
    s.close()
    # Asynchronous answers may come after later synchronous ones, as with SPDK.
    by_id = {a["id"]: a for a in answers}
    assert sorted(by_id) == [1, 2, 3] and len(answers) == 3
    assert by_id[1]["result"] == "M0" and by_id[2]["result"] is True
    assert "result" in by_id[3]


def test_large_requests_are_answered_and_their_memory_given_back(tgt):
    """Eight requests of almost 4 MiB each, sent in pieces: every one is answered, other
    clients are served meanwhile, and the memory they took is given back."""
    other = tgt.conn()
    rss_before = rss_kib(tgt.proc.pid)
    big = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    big.connect(tgt.sock)
    for i in range(8):
        payload = request("rpc_get_methods", {"x": "a" * (4 * 1024 * 1024 - 100)}, i)
        assert len(payload) < 4 * 1024 * 1024
        for off in range(0, len(payload), 65536):
            big.sendall(payload[off:off + 65536])
        assert other.result("spdk_get_version")["version"]
    big.shutdown(socket.SHUT_WR)
    answers = read_all_json(big)
    big.close()
    assert [a["id"] for a in answers] == list(range(8))
    assert all(a["error"]["code"] == -32602 for a in answers)
    # The buffers went back (a little slack for the allocator's own bookkeeping). ASan keeps
    # freed memory in quarantine: only the plain build can say.
    if not SANITIZE:
        wait_until(lambda: rss_kib(tgt.proc.pid) < rss_before + 4096, 10,
                   "the daemon's memory to return to its level before the requests")


def test_unsigned_64_bit_parameters_take_their_whole_range(tgt):
    """rpc.py sends unsigned 64-bit parameters as plain JSON integers up to 2^64-1: they are
    parameters like any other, never a parse error that closes the connection."""
    c = tgt.conn()
    c.result("bdev_null_create", {"name": "N0", "num_blocks": 8, "block_size": 512})
    assert c.result("notify_get_notifications", {"id": 0, "max": U64_MAX})
    assert c.result("notify_get_notifications", {"id": U64_MAX, "max": 1}) == []
    # A size past what a bdev may have is a clear error, on the same connection.
    r = c.call("bdev_null_create", {"name": "N1", "num_blocks": U64_MAX, "block_size": 512})
    assert r["error"]["code"] == -32602 and "largest size" in r["error"]["message"]
    # 2^64 does not fit anywhere: a parse error, as SPDK answers, and then the close.
    c.send(request("bdev_null_create", {"name": "N1", "num_blocks": 2**64, "block_size": 512}))
    r = c.recv_json()
    assert r["error"]["code"] == -32700 and r["id"] is None
    assert c.recv_json() is None


# --- the NVMe/TCP listener ---------------------------------------------------------------------

def test_connections_that_never_connect_are_closed(daemons):
    """A connection that sends nothing, or only its ICReq, is closed at connect_timeout_ms; a
    host that connected is left alone however long it idles."""
    port = free_port()
    t = NvmfTarget.start(daemons, port, cores="0x1", bdev_mib=4,
                         transport={"connect_timeout_ms": 500})
    good = admin_session(port, NQN)
    silent = socket.create_connection(("127.0.0.1", port))
    half = Host(port)
    half.icreq()
    assert eof_within(silent, 30)
    assert half.closed(timeout=30)
    # Long past the deadline, the connected host is served.
    cqe, data = good.identify(1)
    assert status_of(cqe["status"])[:2] == (0, 0) and len(data) == 4096
    good.close()
    silent.close()
    half.close()
    t.stop()


def test_connections_past_the_listener_cap_are_refused(daemons):
    port = free_port()
    t = NvmfTarget.start(daemons, port, cores="0x1", bdev_mib=4,
                         transport={"max_connections_per_listener": 4})
    # The probe that saw the port listening is gone before the count starts.
    wait_until(lambda: t.daemon.result("nvmf_get_transports")[0]["num_qpairs"] == 0, 10,
               "the start-up probe to be gone")
    held = [socket.create_connection(("127.0.0.1", port)) for _ in range(4)]
    wait_until(lambda: t.daemon.result("nvmf_get_transports")[0]["num_qpairs"] == 4, 10,
               "four connections to be taken")
    extra = socket.create_connection(("127.0.0.1", port))
    assert eof_within(extra, 10), "a connection past the cap was kept"
    held.pop().close()
    wait_until(lambda: t.daemon.result("nvmf_get_transports")[0]["num_qpairs"] == 3, 10,
               "a place to be free again")
    h = admin_session(port, NQN)  # room again
    h.close()
    for s in held:
        s.close()
    extra.close()
    t.stop()


def storm(port, n):
    """n idle connections to port (the kernel completes them from the backlog even when the
    daemon does not accept)."""
    conns = []
    for _ in range(n):
        s = socket.socket()
        s.setblocking(False)
        try:
            s.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        conns.append(s)
    return conns


def test_running_out_of_descriptors_neither_spins_nor_locks_out(daemons):
    """The descriptor limit lowered under a running target (its cap was sized for the old
    one): a storm of idle connections runs the daemon out of descriptors, accept() fails with
    EMFILE. The listener backs off instead of spinning, logs one line a second, and the RPC
    connection and the connected host keep working; when the storm ends, new hosts get in
    again."""
    raise_own_fd_limit(4096)
    port = free_port()
    t = NvmfTarget.start(daemons, port, cores="0x1", bdev_mib=4,
                         transport={"connect_timeout_ms": 600000}, env={"MIMO_LOG": "warn"})
    resource.prlimit(t.daemon.proc.pid, resource.RLIMIT_NOFILE, (200, 200))
    ops = t.daemon.conn()
    admin = admin_session(port, NQN)
    io = io_session(port, admin, NQN)
    conns = storm(port, 400)
    wait_until(lambda: t.daemon.output().count("Too many open files") > 0, 30,
               "accept() to run out of descriptors")
    reactor_sleeps_again(ops)
    cqe, _ = io.write(1, 0, b"\xab" * 4096)
    assert status_of(cqe["status"])[:2] == (0, 0)
    cqe, data = io.read(1, 0, 8)
    assert data == b"\xab" * 4096
    assert ops.result("spdk_get_version")["version"]
    # One rate-limited line per second, not one per spin of the loop.
    lines = t.daemon.output().count("cannot accept a connection")
    assert 1 <= lines <= 60
    for s in conns:
        s.close()
    wait_until(lambda: ops.result("nvmf_get_transports")[0]["num_qpairs"] == 2, 30,
               "the storm's connections to be gone")
    late = admin_session(port, NQN)
    late.close()
    io.close()
    admin.close()
    t.stop()


def test_default_cap_keeps_descriptors_for_everything_else(daemons):
    """Without a cap, a listener takes three quarters of the descriptor limit: a storm is
    refused cleanly past it and a new RPC client is still served during the storm."""
    raise_own_fd_limit(4096)
    port = free_port()
    d = daemons("-m", "0x1", name=f"cap{port}")
    # The limit the transport sizes its cap from (mimo_tgt raised its soft limit at start).
    resource.prlimit(d.proc.pid, resource.RLIMIT_NOFILE, (200, 200))
    d.result("bdev_malloc_create", {"name": "Malloc0", "block_size": 512, "num_blocks": 8192})
    # A cap the limit cannot hold is refused, saying why.
    with pytest.raises(RpcFailure, match="more than the file descriptor limit allows"):
        d.result("nvmf_create_transport", {"trtype": "TCP", "max_connections_per_listener": 190})
    d.result("nvmf_create_transport", {"trtype": "TCP", "connect_timeout_ms": 600000})
    assert d.result("nvmf_get_transports")[0]["max_connections_per_listener"] == 150
    d.result("nvmf_create_subsystem", {"nqn": NQN, "allow_any_host": True})
    d.result("nvmf_subsystem_add_ns", {"nqn": NQN, "namespace": {"bdev_name": "Malloc0"}})
    d.result("nvmf_subsystem_add_listener", {
        "nqn": NQN, "listen_address": {"trtype": "TCP", "adrfam": "IPv4",
                                       "traddr": "127.0.0.1", "trsvcid": str(port)}})
    conns = storm(port, 300)
    wait_until(lambda: "refusing more" in d.output(), 30, "the cap to refuse connections")
    wait_until(lambda: d.result("nvmf_get_transports")[0]["num_qpairs"] == 150, 30,
               "the listener to hold its cap")
    fresh = RawConn(d.sock)  # a new RPC client, during the storm
    assert fresh.result("spdk_get_version")["version"]
    fresh.close()
    for s in conns:
        s.close()


def test_idle_connections_cost_little_and_their_memory_comes_back(daemons):
    """An idle connection that never sent ICReq costs at most 16 KiB of the daemon's memory,
    and once a storm of them is gone the daemon's memory is back within 10 % of before."""
    raise_own_fd_limit(4096)
    port = free_port()
    t = NvmfTarget.start(daemons, port, cores="0x1", bdev_mib=4,
                         transport={"connect_timeout_ms": 600000})
    ops = t.daemon.conn()
    before = rss_kib(t.daemon.proc.pid)
    n = 1000
    conns = storm(port, n)
    wait_until(lambda: ops.result("nvmf_get_transports")[0]["num_qpairs"] == n, 30,
               "every connection to be taken")
    during = rss_kib(t.daemon.proc.pid)
    per_conn = (during - before) * 1024 / n
    print(f"RSS {before} KiB before, {during} KiB with {n} idle connections: "
          f"{per_conn:.0f} bytes each")
    if not SANITIZE:  # ASan's redzones and quarantine are not the daemon's memory
        assert per_conn <= 16 * 1024
    for s in conns:
        s.close()
    wait_until(lambda: ops.result("nvmf_get_transports")[0]["num_qpairs"] == 0, 30,
               "the connections to be gone")
    if not SANITIZE:
        wait_until(lambda: rss_kib(t.daemon.proc.pid) <= before * 1.1, 10,
                   "the memory to come back")
    t.stop()


def test_in_capsule_data_past_the_sgl_is_a_protocol_error(daemons):
    """A write whose capsule carries more data than its SGL describes: the host and target
    disagree about the stream, so the target ends the connection with a C2HTermReq (Data
    Transfer Out of Range) instead of silently dropping the extra bytes."""
    port = free_port()
    t = NvmfTarget.start(daemons, port, cores="0x1", bdev_mib=4)
    admin = admin_session(port, NQN)
    io = io_session(port, admin, NQN)
    cid = io.next_cid()
    sqe = io.sqe(0x01, cid, 1, cdw12=0, sgl=(0, 512, SGL_ICD))  # one block described...
    io.send_raw(io.pdu_bytes(CMD, sqe, b"\x11" * 1024))          # ...two sent
    with pytest.raises(Closed, match="fes=4"):
        io.finish(cid)
    assert io.closed()
    # The first block was not written either.
    io2 = io_session(port, admin, NQN, qid=2)
    _, data = io2.read(1, 0, 1)
    assert data == b"\0" * 512
    io2.close()
    admin.close()
    t.stop()
