"""The SCSI layer's RPCs in mimo_tgt: scsi_get_devices (SPDK's) and py-spdk's legacy names.
No front-end creates SCSI devices yet (vhost-user-scsi will), so the lists are empty; the
devices' own behaviour is tested in C (test/unit/scsi)."""
import os
import subprocess
import sys

import pytest

from conftest import BIN, REPO, TGT

pytestmark = pytest.mark.skipif(not os.path.exists(TGT), reason="mimo_tgt is not built")

sys.path.insert(0, os.path.join(REPO, "python"))

from mimo import Client, RpcError  # noqa: E402


def test_scsi_get_devices_and_legacy_names(tgt):
    c = Client(tgt.sock)
    assert c.scsi_get_devices() == []
    assert c.call("get_scsi_devices") == []
    assert c.call("get_luns") == []
    methods = c.call("rpc_get_methods")
    assert "scsi_get_devices" in methods
    assert "get_scsi_devices" not in methods and "get_luns" not in methods
    aliases = c.call("rpc_get_methods", {"include_aliases": True})
    assert {"get_scsi_devices", "get_luns"} <= set(aliases)
    # SPDK's method takes no parameters.
    with pytest.raises(RpcError) as e:
        c.call("scsi_get_devices", {"name": "x"})
    assert e.value.code == -32602
    c.close()


def test_mimo_rpc_scsi_get_devices(tgt):
    p = subprocess.run([os.path.join(BIN, "mimo-rpc"), "-s", tgt.sock, "scsi_get_devices"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "[]"
