"""NVMe/TCP through io_uring (sock_impl "uring"): chosen at run time by sock_set_default_impl or
a listener's sock_impl, really served by the reactors' rings (a counter and the ring's fd show
it), saved and replayed, and refused with the reason where io_uring cannot be used. The rest of
the NVMe/TCP tests run on it with MIMO_TEST_SOCK_IMPL=uring (conftest)."""
import os
import sys

import pytest

from bdev_helpers import SPDK_RPC, rpc_py
from conftest import REPO, RpcFailure, free_port, wait_until
from nvme_tcp_host import admin_session, io_session, status_of

NQN = "nqn.2016-06.io.mimo:uring"
EOPNOTSUPP = -95
NO_IO_URING = os.path.join(REPO, "test", "integration", "no_io_uring.py")


def serve(d, port, nqn=NQN, sock_impl=None, bdev="M0"):
    if not any(b["name"] == bdev for b in d.result("bdev_get_bdevs")):
        d.result("bdev_malloc_create", {"name": bdev, "num_blocks": 8192, "block_size": 512})
    if not d.result("nvmf_get_transports"):
        d.result("nvmf_create_transport", {"trtype": "TCP"})
    d.result("nvmf_create_subsystem", {"nqn": nqn, "allow_any_host": True})
    d.result("nvmf_subsystem_add_ns", {"nqn": nqn, "namespace": {"bdev_name": bdev}})
    params = {"nqn": nqn, "listen_address": {"trtype": "TCP", "adrfam": "IPv4",
                                             "traddr": "127.0.0.1", "trsvcid": str(port)}}
    if sock_impl:
        params["sock_impl"] = sock_impl
    d.result("nvmf_subsystem_add_listener", params)


def two_ports():
    """Two free ports, distinct (free_port may hand back the same one twice)."""
    a = free_port()
    b = free_port()
    while b == a:
        b = free_port()
    return a, b


def uring_qpairs(d):
    return d.result("nvmf_get_transports")[0]["num_uring_qpairs"]


def has_ring_fd(d):
    fds = f"/proc/{d.proc.pid}/fd"
    for fd in os.listdir(fds):
        try:
            if os.readlink(os.path.join(fds, fd)) == "anon_inode:[io_uring]":
                return True
        except OSError:
            pass
    return False


def io_round_trip(port, nqn=NQN):
    """Admin and I/O queue; writes in the capsule and by R2T, reads back. Returns the hosts."""
    admin = admin_session(port, nqn)
    io = io_session(port, admin, nqn)
    small, large = os.urandom(4096), os.urandom(65536)
    for lba, data in ((0, small), (64, large)):
        cqe, _ = io.write(1, lba, data)
        assert status_of(cqe["status"])[:2] == (0, 0)
    for lba, data in ((0, small), (64, large)):
        cqe, got = io.read(1, lba, len(data) // 512)
        assert got == data
    return admin, io


def test_default_impl_uring_serves_io(tgt):
    assert tgt.result("sock_get_default_impl") == {"impl_name": "posix"}
    assert tgt.result("sock_set_default_impl", {"impl_name": "uring"}) is True
    assert tgt.result("sock_get_default_impl") == {"impl_name": "uring"}
    port = free_port()
    serve(tgt, port)
    admin, io = io_round_trip(port)
    # Both connections went through a ring, and the daemon holds one.
    assert wait_until(lambda: uring_qpairs(tgt) == 2, what="two io_uring queue pairs")
    assert has_ring_fd(tgt)
    # Idle connections on a ring still let the reactors sleep (nothing busy-polls), and a
    # receive completing on the ring wakes a sleeping one: the ring's fd is in its epoll.
    def sleeps():
        return sum(r["sleeps"] for r in tgt.result("framework_get_reactors")["reactors"])
    s0 = sleeps()
    wait_until(lambda: sleeps() > s0 + 2, what="the reactors to sleep")
    cqe, _ = io.read(1, 0, 8)
    assert status_of(cqe["status"])[:2] == (0, 0)
    admin.close()
    io.close()
    assert wait_until(lambda: uring_qpairs(tgt) == 0, what="the queue pairs to go")
    assert tgt.result("nvmf_get_transports")[0]["num_qpairs"] == 0
    sock = next(s for s in tgt.result("framework_get_config", {"name": "sock"}))
    assert sock == {"method": "sock_set_default_impl", "params": {"impl_name": "uring"}}


def test_listener_sock_impl(daemons, rundir):
    d = daemons()
    p_uring, p_posix = two_ports()
    serve(d, p_uring, NQN, "uring")
    serve(d, p_posix, NQN + "2", "posix", bdev="M1")
    hosts = io_round_trip(p_posix, NQN + "2")
    assert uring_qpairs(d) == 0 and not has_ring_fd(d)
    hosts += io_round_trip(p_uring)
    assert wait_until(lambda: uring_qpairs(d) == 2, what="the uring listener's queue pairs")
    # One socket layer per port: naming another for the same address is refused.
    with pytest.raises(RpcFailure) as e:
        d.result("nvmf_subsystem_add_listener", {
            "nqn": NQN + "2", "sock_impl": "posix", "listen_address": {
                "trtype": "TCP", "traddr": "127.0.0.1", "trsvcid": str(p_uring)}})
    assert "sock_impl" in e.value.message
    for h in hosts:
        h.close()
    # Saved as asked, and replayed so.
    calls = [c for c in d.result("framework_get_config", {"name": "nvmf"})
             if c["method"] == "nvmf_subsystem_add_listener"]
    impls = {c["params"]["listen_address"]["trsvcid"]: c["params"].get("sock_impl")
             for c in calls}
    assert impls == {str(p_uring): "uring", str(p_posix): "posix"}
    path = d.save_config(os.path.join(rundir, "config.json"))
    d.stop()
    again = daemons("-c", path, name="again")
    assert again.result("framework_wait_init") is True
    hosts = io_round_trip(p_uring)
    assert wait_until(lambda: uring_qpairs(again) == 2, what="io_uring after the replay")
    for h in hosts:
        h.close()


def test_refused_where_io_uring_is_unusable(daemons):
    """Under a seccomp filter that makes io_uring_setup fail (as container runtimes do):
    "uring" is refused with the reason, never accepted and served by epoll; plain TCP works."""
    d = daemons(prefix=(sys.executable, NO_IO_URING))
    with pytest.raises(RpcFailure) as e:
        d.result("sock_set_default_impl", {"impl_name": "uring"})
    assert e.value.code == EOPNOTSUPP and "io_uring_setup" in e.value.message
    assert d.result("sock_get_default_impl") == {"impl_name": "posix"}
    port = free_port()
    with pytest.raises(RpcFailure) as e:
        serve(d, port, sock_impl="uring")
    assert e.value.code == EOPNOTSUPP and "io_uring" in e.value.message
    d.result("nvmf_subsystem_add_listener", {"nqn": NQN, "listen_address": {
        "trtype": "TCP", "traddr": "127.0.0.1", "trsvcid": str(port)}})
    for h in io_round_trip(port):
        h.close()
    assert uring_qpairs(d) == 0 and not has_ring_fd(d)


def test_uring_options_and_names(tgt):
    """sock_impl_set_options / get_options know "uring" (its buffer sizes apply to its
    listeners); an implementation mimo lacks is refused by name."""
    assert tgt.result("sock_impl_get_options", {"impl_name": "uring"})["tls_version"] == 0
    with pytest.raises(RpcFailure) as e:
        tgt.result("sock_set_default_impl", {"impl_name": "vpp"})
    assert "uring" in e.value.message
    with pytest.raises(RpcFailure) as e:
        tgt.result("sock_set_default_impl", {"impl_name": "ssl"})
    assert e.value.code == -32602


@pytest.mark.skipif(not SPDK_RPC, reason="SPDK's rpc.py not found (SPDK_RPC_PY)")
def test_spdk_rpc_py_recipe(daemons):
    """SPDK's own client, SPDK's recipe: sock_set_default_impl -i uring before
    framework_start_init, and a listener's --sock-impl."""
    d = daemons("--wait-for-rpc")
    rpc_py(d, "sock_impl_set_options", "-i", "uring", "--recv-buf-size", 1 << 20)
    rpc_py(d, "sock_set_default_impl", "-i", "uring")
    rpc_py(d, "framework_start_init")
    assert rpc_py(d, "sock_get_default_impl") == {"impl_name": "uring"}
    port, other = two_ports()
    serve(d, port)
    rpc_py(d, "nvmf_subsystem_add_listener", NQN, "-t", "tcp", "-a", "127.0.0.1", "-s", other,
           "--sock-impl", "posix")
    for h in io_round_trip(port) + io_round_trip(other):
        h.close()
    sock = d.result("framework_get_config", {"name": "sock"})
    assert sock[0] == {"method": "sock_set_default_impl", "params": {"impl_name": "uring"}}
    assert any(c["method"] == "sock_impl_set_options" and c["params"]["impl_name"] == "uring"
               for c in sock)
