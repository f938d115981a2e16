"""bdev_nvme multipath mode: bdev_nvme_attach_controller -x multipath adds a second controller
of the same subsystem (another listener) to a name; its namespaces become further paths of
the name's bdevs. bdev_nvme_set_multipath_policy (active_active round robin spreads the I/O,
active_passive keeps it on the preferred path), bdev_nvme_set_preferred_path, a path's
listener removed under I/O (no error), get_io_paths and get_path_iostat over both paths,
save_config and replay, detaching one controller and the whole name."""
import json
import os
import subprocess

import pytest

from conftest import RpcFailure, clean_env, free_port, wait_until
from test_nvme import NQN, PERF, attach, serve
from test_nvme_reconnect import finish, ops, reexport, start_perf

SPDK_RPC = "/work/spdk-peer/scripts/rpc.py"

pytestmark = pytest.mark.skipif(not os.path.exists(PERF), reason="mimo_perf is not built")


def spdk_rpc(t, *args):
    subprocess.run(["/usr/bin/python3", SPDK_RPC, "-s", t.sock, *map(str, args)], check=True,
                   capture_output=True, env=dict(clean_env(), PYTHONPATH="/work/spdk-peer/python"))


def listener(t, port, method="nvmf_subsystem_add_listener"):
    t.result(method, {"nqn": NQN, "listen_address": {
        "trtype": "tcp", "adrfam": "IPv4", "traddr": "127.0.0.1", "trsvcid": str(port)}})


def ctrlrs(t):
    c = t.result("bdev_nvme_get_controllers")
    return c[0]["ctrlrs"] if c else []


def path_ops(t):
    """Operations per path (trsvcid) of Nvme0n1."""
    stats = t.result("bdev_nvme_get_path_iostat", {"name": "Nvme0n1"})["stats"]
    return {s["trid"]["trsvcid"]: s["stat"]["num_read_ops"] + s["stat"]["num_write_ops"]
            for s in stats}


def test_multipath(daemons, tmp_path):
    backend, front = daemons(name="backend"), daemons(name="frontend")
    p1, p2, p_re = free_port(), free_port(), free_port()
    serve(backend, p1)
    listener(backend, p2)
    assert front.result("bdev_nvme_set_options", {"io_path_stat": True}) is True
    assert attach(front, p1) == ["Nvme0n1"]
    # SPDK's rpc.py adds the second controller; the bdev gets a second path.
    spdk_rpc(front, "bdev_nvme_attach_controller", "-b", "Nvme0", "-t", "tcp", "-a",
             "127.0.0.1", "-s", p2, "-f", "ipv4", "-n", NQN, "-x", "multipath")
    c = ctrlrs(front)
    assert [x["trid"]["trsvcid"] for x in c] == [str(p1), str(p2)]
    assert all(x["state"] == "enabled" for x in c) and c[0]["cntlid"] != c[1]["cntlid"]
    assert [b["name"] for b in front.result("bdev_get_bdevs")] == ["Nvme0n1"]
    with pytest.raises(RpcFailure) as e:
        attach(front, p2, multipath="multipath")
    assert e.value.code == -114

    # active_active, round robin: both paths carry I/O.
    reexport(front, p_re)
    spdk_rpc(front, "bdev_nvme_set_multipath_policy", "-b", "Nvme0n1", "-p", "active_active",
             "-s", "round_robin", "-r", 1)
    rc, out = finish(start_perf(p_re, 1))
    assert rc == 0, out
    per = path_ops(front)
    assert per[str(p1)] > 0 and per[str(p2)] > 0, per
    paths = [p for g in front.result("bdev_nvme_get_io_paths", {"name": "Nvme0n1"})["poll_groups"]
             for p in g["io_paths"]]
    assert sorted(p["transport"]["trsvcid"] for p in paths if p["current"]) == \
        sorted([str(p1), str(p2)])

    # active_passive with the second controller preferred: only it carries I/O.
    front.result("bdev_nvme_set_multipath_policy", {"name": "Nvme0n1",
                                                    "policy": "active_passive"})
    spdk_rpc(front, "bdev_nvme_set_preferred_path", "-b", "Nvme0n1", "-c", c[1]["cntlid"])
    before = path_ops(front)
    rc, out = finish(start_perf(p_re, 1))
    assert rc == 0, out
    after = path_ops(front)
    assert after[str(p1)] == before[str(p1)] and after[str(p2)] > before[str(p2)]

    # save_config: the second controller's attach in multipath mode; a new target replays it.
    cfg = front.result("framework_get_config", {"name": "bdev"})
    att = [m["params"] for m in cfg if m["method"] == "bdev_nvme_attach_controller"]
    assert [(a["trsvcid"], a.get("multipath")) for a in att] == \
        [(str(p1), None), (str(p2), "multipath")]
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"subsystems": [{"subsystem": "bdev", "config": cfg}]}))
    t3 = daemons("-c", path, name="replayed")
    assert t3.result("framework_wait_init") is True
    wait_until(lambda: len(ctrlrs(t3)) == 2, what="both controllers replayed")
    t3.stop()

    # The preferred path's listener goes under I/O: the I/O moves to the other, no error.
    perf = start_perf(p_re, 3)
    wait_until(lambda: ops(backend) > 0 and path_ops(front)[str(p2)] > after[str(p2)],
               timeout=30, what="I/O on the preferred path")
    listener(backend, p2, "nvmf_subsystem_remove_listener")
    rc, out = finish(perf)
    assert rc == 0, out
    assert path_ops(front)[str(p1)] > after[str(p1)]

    # Refusals.
    for params, code in (({"policy": "active_active", "selector": "queue_depth"}, -95),
                         ({"policy": "active_passive", "selector": "round_robin"}, -22),
                         ({"policy": "sideways"}, -22)):
        with pytest.raises(RpcFailure) as e:
            front.result("bdev_nvme_set_multipath_policy", dict(name="Nvme0n1", **params))
        assert e.value.code == code, params
    with pytest.raises(RpcFailure) as e:
        front.result("bdev_nvme_set_preferred_path", {"name": "Nvme0n1", "cntlid": 999})
    assert e.value.code == -19

    # Detach the second controller alone, add it back, then the whole name.
    listener(backend, p2)
    assert front.result("bdev_nvme_detach_controller",
                        {"name": "Nvme0", "traddr": "127.0.0.1", "trsvcid": str(p2)}) is True
    assert [x["trid"]["trsvcid"] for x in ctrlrs(front)] == [str(p1)]
    assert attach(front, p2, multipath="multipath") == ["Nvme0n1"]
    rc, out = finish(start_perf(p_re, 1))
    assert rc == 0, out
    front.result("nvmf_delete_subsystem", {"nqn": NQN + "-re"})
    assert front.result("bdev_nvme_detach_controller", {"name": "Nvme0"}) is True
    assert front.result("bdev_nvme_get_controllers") == []
    assert front.result("bdev_get_bdevs") == []


def test_multipath_to_other_namespaces_is_refused(daemons):
    a, b, front = daemons(name="a"), daemons(name="b"), daemons(name="frontend")
    pa, pb = free_port(), free_port()
    serve(a, pa)
    serve(b, pb, uuid="11111111-2222-4333-8444-555555555555")
    assert attach(front, pa) == ["Nvme0n1"]
    with pytest.raises(RpcFailure) as e:
        attach(front, pb, multipath="multipath")
    assert e.value.code == -22
    assert len(ctrlrs(front)) == 1
