"""bdev_nvme failover paths: bdev_nvme_attach_controller -x failover adds another listener of
the same subsystem to an attached controller; when the connected path goes (the target
removes its listener under I/O), the controller connects through the next one and the I/O
goes on without an error. SPDK's checks, bdev_nvme_get_controllers' alternate_trids,
save_config and replay, and bdev_nvme_detach_controller removing one path."""
import json
import os
import subprocess

import pytest

from conftest import RpcFailure, clean_env, free_port, wait_until
from test_nvme import NQN, PERF, attach, serve
from test_nvme_reconnect import finish, ops, reexport, start_perf, state

SPDK_RPC = "/work/spdk-peer/scripts/rpc.py"

pytestmark = pytest.mark.skipif(not os.path.exists(PERF), reason="mimo_perf is not built")


def listen(t, port, method="nvmf_subsystem_add_listener"):
    t.result(method, {"nqn": NQN, "listen_address": {
        "trtype": "tcp", "adrfam": "IPv4", "traddr": "127.0.0.1", "trsvcid": str(port)}})


def ctrlr(t):
    return t.result("bdev_nvme_get_controllers")[0]["ctrlrs"][0]


def ports(c):
    return [c["trid"]["trsvcid"]] + [a["trsvcid"] for a in c.get("alternate_trids", [])]


def test_failover_to_the_other_listener_under_io(daemons, tmp_path):
    backend, front = daemons(name="backend"), daemons(name="frontend")
    p1, p2, p_re = free_port(), free_port(), free_port()
    serve(backend, p1)
    listen(backend, p2)
    assert attach(front, p1) == ["Nvme0n1"]
    # SPDK's rpc.py adds the second path.
    subprocess.run(["/usr/bin/python3", SPDK_RPC, "-s", front.sock, "bdev_nvme_attach_controller",
                    "-b", "Nvme0", "-t", "tcp", "-a", "127.0.0.1", "-s", str(p2), "-f", "ipv4",
                    "-n", NQN, "-x", "failover"], check=True, capture_output=True,
                   env=dict(clean_env(), PYTHONPATH="/work/spdk-peer/python"))
    assert ports(ctrlr(front)) == [str(p1), str(p2)]
    assert [b["name"] for b in front.result("bdev_get_bdevs")] == ["Nvme0n1"]

    # SPDK's refusals.
    with pytest.raises(RpcFailure) as e:
        attach(front, p2, multipath="failover")
    assert e.value.code == -114 and "with the specified network path" in e.value.message
    with pytest.raises(RpcFailure) as e:
        attach(front, free_port(), nqn=NQN + "-other", multipath="failover")
    assert e.value.code == -22 and "different subnqn" in e.value.message
    with pytest.raises(RpcFailure) as e:
        attach(front, free_port(), multipath="failover")  # nobody listens there
    assert e.value.code == -111
    assert ports(ctrlr(front)) == [str(p1), str(p2)]

    reexport(front, p_re)
    perf = start_perf(p_re, 3)
    wait_until(lambda: ops(backend) > 100, timeout=30, what="I/O reaching the backend")
    before = ctrlr(front)["cntlid"]
    # The connected path goes: the target drops its connections on that listener.
    listen(backend, p1, "nvmf_subsystem_remove_listener")
    wait_until(lambda: ctrlr(front)["trid"]["trsvcid"] == str(p2) and
               state(front) == "enabled", what="the failover")
    rc, out = finish(perf)
    assert rc == 0, out  # no I/O error across the failover
    c = ctrlr(front)
    assert c["cntlid"] != before and ports(c) == [str(p2), str(p1)]

    # save_config: one attach per path, the connected one first; a new target replays them.
    cfg = front.result("framework_get_config", {"name": "bdev"})
    att = [m["params"] for m in cfg if m["method"] == "bdev_nvme_attach_controller"]
    assert [a["trsvcid"] for a in att] == [str(p2), str(p1)]
    assert "multipath" not in att[0] and att[1]["multipath"] == "failover"
    listen(backend, p1)  # the replayed target proves both paths
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"subsystems": [{"subsystem": "bdev", "config": cfg}]}))
    t3 = daemons("-c", path, name="replayed")
    assert t3.result("framework_wait_init") is True
    wait_until(lambda: t3.result("bdev_nvme_get_controllers") and
               len(ports(ctrlr(t3))) == 2, what="both paths replayed")
    assert ports(ctrlr(t3)) == [str(p2), str(p1)]
    t3.stop()

    # Detaching with a transport ID removes that path only: first the other one, then,
    # re-added, the connected one (the controller fails over to what is left).
    with pytest.raises(RpcFailure) as e:
        front.result("bdev_nvme_detach_controller", {"name": "Nvme0", "trsvcid": "1"})
    assert e.value.code == -19
    assert front.result("bdev_nvme_detach_controller",
                        {"name": "Nvme0", "traddr": "127.0.0.1", "trsvcid": str(p1)}) is True
    assert ports(ctrlr(front)) == [str(p2)]
    assert attach(front, p1, multipath="failover") == []
    assert front.result("bdev_nvme_detach_controller",
                        {"name": "Nvme0", "traddr": "127.0.0.1", "trsvcid": str(p2)}) is True
    wait_until(lambda: ports(ctrlr(front)) == [str(p1)] and state(front) == "enabled",
               what="the failover to the path left")
    rc, out = finish(start_perf(p_re, 1))
    assert rc == 0, out
    assert [b["name"] for b in front.result("bdev_get_bdevs")] == ["Nvme0n1"]


def test_a_path_to_other_namespaces_is_refused(daemons):
    # Same subsystem NQN, but another target whose namespace has another identity: not a
    # path to the same storage.
    a, b, front = daemons(name="a"), daemons(name="b"), daemons(name="frontend")
    pa, pb = free_port(), free_port()
    serve(a, pa)
    serve(b, pb, uuid="11111111-2222-4333-8444-555555555555")
    assert attach(front, pa) == ["Nvme0n1"]
    with pytest.raises(RpcFailure) as e:
        attach(front, pb, multipath="failover")
    assert e.value.code == -22
    assert ports(ctrlr(front)) == [str(pa)]
