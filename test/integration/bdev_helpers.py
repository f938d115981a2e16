"""What the bdev-layer tests share: SPDK's rpc.py as a client, and a bdev exported over
NVMe/TCP to a raw host (nvme_tcp_host.py) so that a test drives the bdev's I/O itself."""
import json
import os
import subprocess

from conftest import wait_port

# SPDK's own client: SPDK_RPC_PY, else the peer checkout this project is developed against.
_PEER = "/work/spdk-peer/scripts/rpc.py"
SPDK_RPC = os.environ.get("SPDK_RPC_PY") or (_PEER if os.path.exists(_PEER) else None)
HISTOGRAM_PY = os.path.join(os.path.dirname(SPDK_RPC), "histogram.py") if SPDK_RPC else None
NQN = "nqn.2016-06.io.mimo:bdevtest"


class RpcPyError(Exception):
    pass


def rpc_py(daemon, *args):
    """Run SPDK's rpc.py against daemon; its output as JSON (or text when not JSON)."""
    p = subprocess.run(["/usr/bin/python3", SPDK_RPC, "-s", daemon.sock, *map(str, args)],
                       capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        raise RpcPyError(p.stdout + p.stderr)
    try:
        return json.loads(p.stdout)
    except ValueError:
        return p.stdout.strip()


def export(d, port, bdev, nqn=NQN):
    """Serve bdev as namespace 1 of nqn on 127.0.0.1:port."""
    d.result("nvmf_create_transport", {"trtype": "TCP"})
    d.result("nvmf_create_subsystem", {"nqn": nqn, "allow_any_host": True,
                                       "serial_number": "MIMOBDEV0001"})
    d.result("nvmf_subsystem_add_ns", {"nqn": nqn, "namespace": {"bdev_name": bdev}})
    d.result("nvmf_subsystem_add_listener", {"nqn": nqn, "listen_address": {
        "trtype": "TCP", "adrfam": "IPv4", "traddr": "127.0.0.1", "trsvcid": str(port)}})
    assert wait_port(port), f"mimo_tgt does not listen on {port}"
