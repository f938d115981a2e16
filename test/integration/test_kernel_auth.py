"""DH-HMAC-CHAP with the Linux kernel's NVMe/TCP host (bookworm-backports' 6.12, whose
nvme-core has CONFIG_NVME_HOST_AUTH; Debian 12's 6.1 is built without it) and nvme-cli's
--dhchap-secret / --dhchap-ctrl-secret, against mimo_tgt's keyring keys: the right key connects
and does I/O; a wrong key, a missing key and a wrong controller key are refused; after the
target rotates the host's keys, new connections need the new ones. docs/security.md."""
import os

import pytest

from conftest import wait_until
from nvme_tcp_host import make_dhchap_key

pytestmark = [pytest.mark.guest, pytest.mark.guest_kernel("bookworm-backports")]

NQN = "nqn.2016-06.io.mimo:auth1"

# Each case: an attempt to connect with the secrets in /keys/<host> (and /keys/<ctrl>), the
# exit status of `nvme connect` and, when connected, data written and read back.
SCRIPT = r"""
attempt() {  # name host-secret-file [ctrl-secret-file]
    set +e
    if [ -n "$3" ]; then
        nvme connect -t tcp -a "$GUEST_tgt" -s "$GUEST_port" -n "$GUEST_nqn" \
            --dhchap-secret="$(cat /keys/$2)" --dhchap-ctrl-secret="$(cat /keys/$3)" >/dev/null 2>&1
    elif [ -n "$2" ]; then
        nvme connect -t tcp -a "$GUEST_tgt" -s "$GUEST_port" -n "$GUEST_nqn" \
            --dhchap-secret="$(cat /keys/$2)" >/dev/null 2>&1
    else
        nvme connect -t tcp -a "$GUEST_tgt" -s "$GUEST_port" -n "$GUEST_nqn" >/dev/null 2>&1
    fi
    rc=$?
    set -e
    io=none
    if [ $rc -eq 0 ]; then
        dev=$(nvme_ns "$GUEST_nqn")
        dd if=/dev/urandom of=/tmp/d bs=4k count=16 2>/dev/null
        dd if=/tmp/d of="$dev" bs=4k oflag=direct conv=fsync 2>/dev/null
        dd if="$dev" of=/tmp/b bs=4k count=16 iflag=direct 2>/dev/null
        cmp /tmp/d /tmp/b && io=ok || io=bad
        nvme disconnect -n "$GUEST_nqn" >/dev/null
        wait_for 10 sh -c '! ls /dev/nvme*n* >/dev/null 2>&1'
    fi
    echo "case=$1 rc=$rc io=$io"
}
attempt right host1
attempt wrong other
attempt missing
attempt bidirectional host1 ctrl1
attempt wrong_ctrl host1 other
mark rotate
wait_host
attempt old_after_rotation host1
attempt new_after_rotation host2 ctrl2
"""


def test_kernel_host_authenticates(guest, tmp_path):
    t = guest.target
    secrets = {"host1": make_dhchap_key(hh=1), "host2": make_dhchap_key(hh=2),
               "ctrl1": make_dhchap_key(hh=3), "ctrl2": make_dhchap_key(hh=0),
               "other": make_dhchap_key(hh=1)}
    for name in ("host1", "host2", "ctrl1", "ctrl2"):
        path = tmp_path / name
        path.write_text(secrets[name] + "\n")
        os.chmod(path, 0o600)
        t.result("keyring_file_add_key", {"name": name, "path": str(path)})
    # Under TCG the guest's FFDHE-8192 takes seconds per queue: a smaller group (the
    # in-process tests cover every group), and room beyond the 10 s connect timeout.
    t.result("nvmf_set_config", {"dhchap_dhgroups": ["null", "ffdhe2048"]})
    guest.export(NQN, allow_any_host=False, transport={"connect_timeout_ms": 120000})
    t.result("nvmf_subsystem_add_host", {"nqn": NQN, "host": guest.hostnqn,
                                         "dhchap_key": "host1", "dhchap_ctrlr_key": "ctrl1"})
    run = guest.start(SCRIPT, files={f"keys/{n}": s for n, s in secrets.items()})
    run.wait_for("rotate")
    assert t.result("nvmf_subsystem_set_keys", {"nqn": NQN, "host": guest.hostnqn,
                                                "dhchap_key": "host2",
                                                "dhchap_ctrlr_key": "ctrl2"}) is True
    run.send("rotated")
    r = run.wait()
    got = {}
    for line in r.output.splitlines():
        if line.startswith("case="):
            f = dict(w.split("=", 1) for w in line.split())
            got[f["case"]] = (f["rc"] == "0", f["io"])
    assert got == {
        "right": (True, "ok"),               # the right key: connected, data intact
        "wrong": (False, "none"),            # the target refuses a wrong key
        "missing": (False, "none"),          # and a host that offers none where one is required
        "bidirectional": (True, "ok"),       # the host also proved the controller
        "wrong_ctrl": (False, "none"),       # the host refuses a controller it cannot verify
        "old_after_rotation": (False, "none"),
        "new_after_rotation": (True, "ok"),
    }, r.output
    # The refusals were counted for this host, and nothing is left connected.
    host = [h for h in t.result("nvmf_get_subsystems", {"nqn": NQN})[0]["hosts"]
            if h["nqn"] == guest.hostnqn][0]
    assert host.get("auth_failures", 0) >= 3, host
    wait_until(lambda: t.result("nvmf_subsystem_get_controllers", {"nqn": NQN}) == [], 10,
               "every controller to be gone")
