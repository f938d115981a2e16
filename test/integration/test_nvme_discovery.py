"""bdev_nvme_start_discovery / _stop_discovery / _get_discovery_info: a frontend mimo_tgt
attaches every subsystem a backend's discovery log lists (a second listener of a subsystem
as its failover path), follows the log's changes (a subsystem added, one deleted), saves the
discovery (not its controllers) and replays it, and stops it."""
import json
import os
import subprocess

import pytest

from conftest import RpcFailure, clean_env, free_port, wait_until
from test_nvme import IDENTIFY, NQN

SPDK_RPC = "/work/spdk-peer/scripts/rpc.py"

pytestmark = pytest.mark.skipif(not os.path.exists(IDENTIFY), reason="mimo_identify not built")


def subsystem(t, nqn, bdev, *ports):
    t.result("bdev_malloc_create", {"name": bdev, "num_blocks": 2048, "block_size": 512})
    t.result("nvmf_create_subsystem", {"nqn": nqn, "allow_any_host": True})
    t.result("nvmf_subsystem_add_ns", {"nqn": nqn, "namespace": {"bdev_name": bdev}})
    for port in ports:
        t.result("nvmf_subsystem_add_listener", {"nqn": nqn, "listen_address": {
            "trtype": "tcp", "adrfam": "IPv4", "traddr": "127.0.0.1", "trsvcid": str(port)}})


def bdevs(t):
    return sorted(b["name"] for b in t.result("bdev_get_bdevs"))


def controllers(t):
    return {c["name"]: c["ctrlrs"][0] for c in t.result("bdev_nvme_get_controllers")}


def test_discovery_attaches_and_follows_the_log(daemons, tmp_path):
    backend, front = daemons(name="backend"), daemons(name="frontend")
    p1, p2 = free_port(), free_port()
    backend.result("nvmf_create_transport", {"trtype": "tcp"})
    subsystem(backend, NQN, "M1", p1, p2)
    subsystem(backend, NQN + "-two", "M2", p1)
    # SPDK's rpc.py starts it and waits for the attaches.
    subprocess.run(["/usr/bin/python3", SPDK_RPC, "-s", front.sock, "bdev_nvme_start_discovery",
                    "-b", "nvme", "-t", "tcp", "-a", "127.0.0.1", "-s", str(p1), "-f", "ipv4",
                    "-w"], check=True, capture_output=True,
                   env=dict(clean_env(), PYTHONPATH="/work/spdk-peer/python"))
    wait_until(lambda: bdevs(front) == ["nvme0n1", "nvme1n1"] and
               len(controllers(front).get("nvme0", {}).get("alternate_trids", [])) == 1,
               what="both subsystems attached, the first with its second listener")
    c = controllers(front)
    assert c["nvme0"]["trid"]["subnqn"] == NQN and c["nvme1"]["trid"]["subnqn"] == NQN + "-two"
    info = front.result("bdev_nvme_get_discovery_info")
    assert len(info) == 1 and info[0]["name"] == "nvme"
    assert info[0]["trid"]["traddr"] == "127.0.0.1" and info[0]["trid"]["trsvcid"] == str(p1)
    assert isinstance(info[0]["referrals"], list)

    # The log changes: a subsystem added is attached, one deleted is detached.
    subsystem(backend, NQN + "-three", "M3", p1)
    wait_until(lambda: "nvme2n1" in bdevs(front), what="the new subsystem attached")
    backend.result("nvmf_delete_subsystem", {"nqn": NQN + "-two"})
    wait_until(lambda: "nvme1" not in controllers(front), what="the deleted one detached")
    assert bdevs(front) == ["nvme0n1", "nvme2n1"]

    # save_config: the discovery, not the controllers it attached; a new target replays it.
    cfg = front.result("framework_get_config", {"name": "bdev"})
    assert [m["method"] for m in cfg if m["method"].startswith("bdev_nvme_")] == \
        ["bdev_nvme_start_discovery"]
    d = [m["params"] for m in cfg if m["method"] == "bdev_nvme_start_discovery"][0]
    assert d["name"] == "nvme" and d["trsvcid"] == str(p1) and d["wait_for_attach"] is True
    assert "subnqn" not in d and d["ctrlr_loss_timeout_sec"] == 0
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"subsystems": [{"subsystem": "bdev", "config": cfg}]}))
    t3 = daemons("-c", path, name="replayed")
    assert t3.result("framework_wait_init") is True
    wait_until(lambda: bdevs(t3) == ["nvme0n1", "nvme1n1"], what="the replay's attaches")
    t3.stop()

    # Refusals, then the stop: the controllers go with it.
    with pytest.raises(RpcFailure) as e:
        front.result("bdev_nvme_start_discovery", {"name": "nvme", "trtype": "tcp",
                                                   "traddr": "127.0.0.1", "trsvcid": str(p2)})
    assert e.value.code == -17
    with pytest.raises(RpcFailure) as e:
        front.result("bdev_nvme_start_discovery", {"name": "x", "trtype": "tcp",
                                                   "traddr": "127.0.0.1", "trsvcid": str(p1),
                                                   "attach_timeout_ms": 100})
    assert e.value.code == -95
    assert front.result("bdev_nvme_stop_discovery", {"name": "nvme"}) is True
    wait_until(lambda: bdevs(front) == [] and controllers(front) == {},
               what="the discovered controllers detached")
    assert front.result("bdev_nvme_get_discovery_info") == []
    with pytest.raises(RpcFailure) as e:
        front.result("bdev_nvme_stop_discovery", {"name": "nvme"})
    assert e.value.code == -2


def test_discovery_of_nothing_listening(daemons):
    front = daemons()
    with pytest.raises(RpcFailure) as e:
        front.result("bdev_nvme_start_discovery", {"name": "nvme", "trtype": "tcp",
                                                   "traddr": "127.0.0.1",
                                                   "trsvcid": str(free_port())})
    assert e.value.code == -111
    assert front.result("bdev_nvme_get_discovery_info") == []
