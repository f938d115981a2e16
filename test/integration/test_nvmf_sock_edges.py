"""The NVMe/TCP socket layers' edges (docs/nvmf.md, "io_uring sockets" and "Fairness"):
a reactor whose io_uring ring cannot be set up serves its connections by epoll and says so
(log, counter, each queue pair's sock_impl); a TLS host that floods its connection gets one
read a turn like a plain one, so another host on the same reactor keeps being answered; and
sock_set_default_impl at run time (mimo's; SPDK takes it before framework_start_init only)
decides for the listeners opened afterwards, not for those open already, and save_config
replays both as they were."""
import os
import subprocess
import sys

from conftest import REPO, SLOW, clean_env, free_port, wait_until
from nvme_tcp_host import admin_session, io_session, make_tls_psk, status_of
from test_nvmf_uring import NQN, has_ring_fd, io_round_trip, serve, two_ports, uring_qpairs
from test_tls import HOSTNQN, OTHER_HOST, PERF, key_file, trid

RING_FAILS = os.path.join(REPO, "test", "integration", "ring_setup_fails.py")
OK = (0, 0)
TLS_NQN = "nqn.2016-06.io.mimo:flood"
PLAIN_NQN = "nqn.2016-06.io.mimo:steady"


def transport(d):
    return d.result("nvmf_get_transports")[0]


def qpairs(d, nqn=NQN):
    return d.result("nvmf_subsystem_get_qpairs", {"nqn": nqn})


# --- 1. a reactor without a ring --------------------------------------------------------------

def test_second_reactors_ring_fails_its_connections_use_epoll_visibly(daemons):
    """Two reactors; the second reactor ring's io_uring_setup fails with ENOMEM (a seccomp
    supervisor answers it, as a kernel short of memory would). The connection placed there is
    served by epoll: it works, nvmf_subsystem_get_qpairs shows it as "posix" beside the other
    reactor's "uring", nvmf_get_transports counts it, and the log says which reactor and why."""
    d = daemons("-m", "0x3", prefix=(sys.executable, RING_FAILS, "--setup-allow", "1"))
    assert d.result("sock_set_default_impl", {"impl_name": "uring"}) is True
    port = free_port()
    serve(d, port)
    # Admin and I/O queue: placed on one reactor each (the first still counts as it arrives).
    admin, io = io_round_trip(port)
    qs = qpairs(d)
    assert len(qs) == 2 and qs[0]["thread"] != qs[1]["thread"]
    assert sorted(q["sock_impl"] for q in qs) == ["posix", "uring"]
    t = transport(d)
    assert t["num_uring_qpairs"] == 1 and t["num_uring_fallback_qpairs"] == 1
    out = d.output()
    assert "no io_uring for NVMe/TCP (io_uring_setup: Cannot allocate memory); " \
           "its connections use epoll" in out
    # Said once per reactor; later connections there are counted, not logged again.
    more = [admin_session(port, NQN, hostnqn=OTHER_HOST) for _ in range(2)]
    assert wait_until(lambda: transport(d)["num_qpairs"] == 4, what="four queue pairs")
    t = transport(d)
    assert t["num_uring_qpairs"] + t["num_uring_fallback_qpairs"] == 4
    assert d.output().count("no io_uring for NVMe/TCP") == 1
    for h in [admin, io] + more:
        h.close()
    assert wait_until(lambda: transport(d)["num_qpairs"] == 0, what="the queue pairs to go")


def test_receive_buffer_registration_fails_all_connections_use_epoll(daemons):
    """One reactor; registering its ring's provided receive buffers fails (ENOMEM, after the
    probe's own registration succeeded): the ring is given up, every connection is epoll's,
    each one counted, and I/O works."""
    d = daemons("-m", "0x1", prefix=(sys.executable, RING_FAILS, "--pbuf-allow", "1"))
    assert d.result("sock_set_default_impl", {"impl_name": "uring"}) is True
    port = free_port()
    serve(d, port)
    hosts = io_round_trip(port)
    assert [q["sock_impl"] for q in qpairs(d)] == ["posix", "posix"]
    t = transport(d)
    assert t["num_uring_qpairs"] == 0 and t["num_uring_fallback_qpairs"] == 2
    assert "registering the receive buffers: Cannot allocate memory" in d.output()
    assert not has_ring_fd(d)
    for h in hosts:
        h.close()


def test_sock_impl_of_each_queue_pair(daemons, tmp_path):
    """Without a failure each queue pair shows the layer its listener chose: posix, uring,
    ssl (a secure listener's); none counted as a fallback."""
    d = daemons("-m", "0x1")
    p_posix, p_uring = two_ports()
    serve(d, p_posix, sock_impl="posix")
    serve(d, p_uring, NQN + "u", sock_impl="uring", bdev="M1")
    hosts = io_round_trip(p_posix) + io_round_trip(p_uring, NQN + "u")
    assert {q["sock_impl"] for q in qpairs(d)} == {"posix"}
    assert {q["sock_impl"] for q in qpairs(d, NQN + "u")} == {"uring"}
    assert transport(d)["num_uring_fallback_qpairs"] == 0
    for h in hosts:
        h.close()


# --- 2. a TLS host flooding its connection -----------------------------------------------------

def tls_flood_target(daemons, tmp_path):
    """One reactor: a secure listener for the flooding host, a plain one for the steady."""
    d = daemons("-m", "0x1")
    tls_port, plain_port = two_ports()
    psk = make_tls_psk(hh=1)
    d.result("keyring_file_add_key", {"name": "psk", "path": key_file(tmp_path, "psk", psk)})
    d.result("nvmf_create_transport", {"trtype": "TCP"})
    for nqn, bdev, port, secure in ((TLS_NQN, "M0", tls_port, True),
                                    (PLAIN_NQN, "M1", plain_port, False)):
        d.result("bdev_malloc_create", {"name": bdev, "num_blocks": 65536, "block_size": 512})
        d.result("nvmf_create_subsystem", {"nqn": nqn, "allow_any_host": not secure})
        d.result("nvmf_subsystem_add_ns", {"nqn": nqn, "namespace": {"bdev_name": bdev}})
        params = {"nqn": nqn, "listen_address": {"trtype": "TCP", "adrfam": "IPv4",
                                                 "traddr": "127.0.0.1", "trsvcid": str(port)}}
        if secure:
            params["secure_channel"] = True
        d.result("nvmf_subsystem_add_listener", params)
    d.result("nvmf_subsystem_add_host", {"nqn": TLS_NQN, "host": HOSTNQN, "psk": "psk"})
    return d, tls_port, plain_port, psk


def test_tls_flood_gets_one_read_a_turn_and_another_host_is_served(daemons, tmp_path):
    """mimo_perf floods a TLS connection with 128 KiB writes (each H2CData PDU many records)
    while a plain host on the same reactor reads one block at a time. Each TLS read that
    filled the connection's buffers with more left in OpenSSL stops there and goes on the
    next turn (counted: num_tls_reads_held); the steady host is answered every time while the
    flood goes on, and the flood's writes all succeed."""
    d, tls_port, plain_port, psk = tls_flood_target(daemons, tmp_path)
    flood = subprocess.Popen(
        [PERF, "-r", trid(tls_port, TLS_NQN), "-c", "0x1", "-q", "64", "-o", "131072",
         "-w", "write", "-t", str(30 * SLOW), "--json", "--psk", psk],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean_env())
    try:
        def held():
            return transport(d)["num_tls_reads_held"]
        assert wait_until(lambda: held() > 0, timeout=30,
                          what="a TLS read to stop at its turn's budget")
        admin = admin_session(plain_port, PLAIN_NQN, hostnqn=OTHER_HOST)
        io = io_session(plain_port, admin, PLAIN_NQN)
        reads = 0
        start = held()

        def steady_read_while_flooding():
            nonlocal reads
            cqe, _ = io.read(1, reads % 1024, 1)
            assert status_of(cqe["status"])[:2] == OK
            reads += 1
            return reads >= 50 and held() >= start + 20
        # Both make progress: the steady host's reads are answered one after another and
        # the flood's reads keep being cut (it is still running at full speed).
        assert wait_until(steady_read_while_flooding, timeout=60,
                          what="steady reads answered while the flood goes on")
        assert flood.poll() is None, "the flood ended before the steady host was done"
        admin.close()
        io.close()
    finally:
        flood.terminate()
        out, err = flood.communicate(timeout=30 * SLOW)
    assert "Sanitizer" not in err and "runtime error" not in err, err
    stats = d.result("nvmf_get_stats")["poll_groups"]
    assert len(stats) == 1 and stats[0]["completed_nvme_io"] > reads


# --- 3. sock_set_default_impl at run time ------------------------------------------------------

def test_default_impl_at_run_time_decides_for_later_listeners_only(daemons, rundir):
    """SPDK registers sock_set_default_impl for start-up only and a listener takes the default
    when it opens. mimo also takes it at run time, with the same meaning: a listener opened
    before keeps epoll, one opened after is io_uring's; save_config names the first one's
    layer (the saved default would make it io_uring otherwise), so the replay is the same."""
    d = daemons()
    # posix to start with, whatever MIMO_TEST_SOCK_IMPL made the daemon's default.
    assert d.result("sock_set_default_impl", {"impl_name": "posix"}) is True
    before, after = two_ports()
    serve(d, before)
    assert d.result("sock_set_default_impl", {"impl_name": "uring"}) is True
    serve(d, after, NQN + "2", bdev="M1")
    hosts = io_round_trip(before) + io_round_trip(after, NQN + "2")
    assert {q["sock_impl"] for q in qpairs(d)} == {"posix"}
    assert {q["sock_impl"] for q in qpairs(d, NQN + "2")} == {"uring"}
    assert uring_qpairs(d) == 2
    for h in hosts:
        h.close()
    listeners = {c["params"]["listen_address"]["trsvcid"]: c["params"].get("sock_impl")
                 for c in d.result("framework_get_config", {"name": "nvmf"})
                 if c["method"] == "nvmf_subsystem_add_listener"}
    assert listeners == {str(before): "posix", str(after): None}
    path = d.save_config(os.path.join(rundir, "config.json"))
    d.stop()
    again = daemons("-c", path, name="again")
    assert again.result("framework_wait_init") is True
    assert again.result("sock_get_default_impl") == {"impl_name": "uring"}
    hosts = io_round_trip(before) + io_round_trip(after, NQN + "2")
    assert {q["sock_impl"] for q in qpairs(again)} == {"posix"}
    assert {q["sock_impl"] for q in qpairs(again, NQN + "2")} == {"uring"}
    for h in hosts:
        h.close()
    # Back to posix at run time: the io_uring listener stays io_uring, and is saved so.
    assert again.result("sock_set_default_impl", {"impl_name": "posix"}) is True
    listeners = {c["params"]["listen_address"]["trsvcid"]: c["params"].get("sock_impl")
                 for c in again.result("framework_get_config", {"name": "nvmf"})
                 if c["method"] == "nvmf_subsystem_add_listener"}
    assert listeners == {str(before): "posix", str(after): "uring"}
