"""The Linux kernel's NVMe/TCP host (Debian 12's 6.1, and bookworm-backports' 6.12, in a QEMU
guest) against mimo_tgt: connect, the namespace as a block device, data written and read back,
disconnect; and discovery. See docs/guest-tests.md."""
import re

import pytest

from conftest import wait_until

pytestmark = pytest.mark.guest

NQN = "nqn.2016-06.io.mimo:guest1"
DISCOVERY_NQN = "nqn.2014-08.org.nvmexpress.discovery"


KERNELS = {"bookworm": "6.1.0-", "bookworm-backports": "6.12."}


@pytest.mark.parametrize("kernel", [pytest.param(k, marks=pytest.mark.guest_kernel(k), id=k)
                                    for k in KERNELS])
def test_connect_write_read_disconnect(guest, kernel):
    guest.export(NQN, bdev_mib=64, block_size=512)
    run = guest.start(r"""
echo "kernel=$(uname -r)"
nvme connect -t tcp -a "$GUEST_tgt" -s "$GUEST_port" -n "$GUEST_nqn"
dev=$(nvme_ns "$GUEST_nqn")
echo "dev=$dev size=$(blockdev --getsize64 "$dev") lbs=$(blockdev --getss "$dev")"
nvme list-subsys "$dev"
mark connected
# 4 MiB of random data at an offset of 1 MiB, bypassing the page cache both ways.
dd if=/dev/urandom of=/tmp/data bs=1M count=4 2>/dev/null
dd if=/tmp/data of="$dev" bs=1M seek=1 oflag=direct conv=fsync 2>/dev/null
dd if="$dev" of=/tmp/back bs=1M skip=1 count=4 iflag=direct 2>/dev/null
cmp /tmp/data /tmp/back
echo "sum=$(md5sum </tmp/data | cut -d' ' -f1)"
# The same blocks through a new controller, with header and data digests: what the target
# stored, not what this one cached.
nvme disconnect -n "$GUEST_nqn"
wait_for 10 sh -c '! ls /dev/nvme*n* >/dev/null 2>&1'
nvme connect -t tcp -a "$GUEST_tgt" -s "$GUEST_port" -n "$GUEST_nqn" --hdr-digest --data-digest
dev=$(nvme_ns "$GUEST_nqn")
dd if="$dev" of=/tmp/again bs=1M skip=1 count=4 iflag=direct 2>/dev/null
cmp /tmp/data /tmp/again
echo "reread=$(md5sum </tmp/again | cut -d' ' -f1)"
nvme disconnect -n "$GUEST_nqn"
# What the kernel said about the target, with each line's level (<3> error, <4> warning).
dmesg -r | grep -i nvme | sed 's/^/klog:/'
mark disconnected
wait_host
""")
    run.wait_for("connected")
    # The target sees the guest's host NQN with an admin queue and I/O queues (one per vCPU).
    ctrls = guest.target.result("nvmf_subsystem_get_controllers", {"nqn": NQN})
    assert len(ctrls) == 1 and ctrls[0]["hostnqn"] == guest.hostnqn, ctrls
    assert ctrls[0]["num_io_qpairs"] >= 1, ctrls
    run.wait_for("disconnected")
    wait_until(lambda: guest.target.result("nvmf_subsystem_get_controllers",
                                           {"nqn": NQN}) == [], 10, "the controller to go")
    run.send("done")
    r = run.wait()
    fields = dict(w.split("=", 1) for line in r.output.splitlines() for w in line.split()
                  if "=" in w and w.split("=", 1)[0] in ("kernel", "dev", "size", "lbs", "sum",
                                                         "reread"))
    assert fields["kernel"].startswith(KERNELS[kernel]), r.output
    assert fields["size"] == str(64 << 20) and fields["lbs"] == "512", r.output
    assert fields["sum"] == fields["reread"], r.output
    assert NQN in r.output   # nvme list-subsys names the subsystem
    klog = [ln[len("klog:"):] for ln in r.output.splitlines() if ln.startswith("klog:")]
    assert any("new ctrl" in ln for ln in klog), r.output
    # No emergency, alert, critical, error or warning from the NVMe host about mimo.
    assert not [ln for ln in klog if re.match(r"<[0-4]>", ln)], klog


def test_discover(guest):
    guest.export(NQN)
    r = guest.run(r"""
nvme discover -t tcp -a "$GUEST_tgt" -s "$GUEST_port" -o json
""")
    import json
    log = json.loads(r.output)
    entries = {e["subnqn"]: e for e in log["records"]}
    assert NQN in entries, r.output
    e = entries[NQN]
    assert (e["trtype"], e["adrfam"], e["traddr"], e["trsvcid"]) == \
        ("tcp", "ipv4", guest.addr, str(guest.defaults["port"])), e
    assert e["subtype"] == "nvme subsystem", e
    # The discovery controller is gone once nvme discover has its log.
    wait_until(lambda: guest.target.result("nvmf_subsystem_get_controllers",
                                           {"nqn": DISCOVERY_NQN}) == [], 10,
               "the discovery controller to go")


def test_discover_lists_referrals(guest):
    """Referrals (nvmf_discovery_add_referral) are entries of the log the kernel's host reads:
    one to a discovery service (this target's, on the same port), one to a subsystem
    elsewhere."""
    port = guest.export(NQN)
    t = guest.target
    t.result("nvmf_discovery_add_referral", {"address": {
        "trtype": "TCP", "adrfam": "IPv4", "traddr": guest.addr, "trsvcid": str(port)}})
    t.result("nvmf_discovery_add_referral", {
        "address": {"trtype": "TCP", "adrfam": "IPv4", "traddr": "192.0.2.9", "trsvcid": "4421"},
        "subnqn": "nqn.2016-06.io.mimo:elsewhere", "secure_channel": True})
    r = guest.run(r"""
nvme discover -t tcp -a "$GUEST_tgt" -s "$GUEST_port" -o json
""")
    import json
    records = json.loads(r.output)["records"]
    seen = [(e["subtype"], e["traddr"], e["trsvcid"], e["subnqn"]) for e in records]
    assert ("discovery subsystem referral", guest.addr, str(port), DISCOVERY_NQN) in seen, seen
    assert ("nvme subsystem", "192.0.2.9", "4421", "nqn.2016-06.io.mimo:elsewhere") in seen, seen
    ref = [e for e in records if e["traddr"] == "192.0.2.9"][0]
    assert ref["treq"].startswith("required"), ref
