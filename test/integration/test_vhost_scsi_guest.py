"""vhost-user-scsi with its real client: QEMU's vhost-user-scsi-pci and Debian 12's virtio_scsi
and sd drivers in a guest under TCG, against mimo_tgt (docs/vhost.md). Patterns written and
read back on /dev/sda; a target added while the guest runs appears (the driver rescans on the
transport reset event) and one removed disappears. With MIMO_GUEST_CONFORMANCE=1, libiscsi's
iscsi-test-cu runs its SCSI tests through SG_IO on the disk's /dev/sgN."""
import os

import pytest

pytestmark = pytest.mark.guest

SETUP = """
modprobe -a virtio_scsi sd_mod sg
wait_for 30 test -b /dev/sda
"""


def test_patterns_hot_add_and_remove(guest):
    sock = guest.vhost_scsi()
    guest.target.result("bdev_malloc_create", {"name": "Malloc1", "block_size": 4096,
                                               "num_blocks": 8192})
    run = guest.start(SETUP + """
echo "sectors: $(cat /sys/block/sda/size)"
echo "model: $(cat /sys/block/sda/device/model)"
dd if=/dev/urandom of=/tmp/p bs=64k count=32 2>/dev/null
dd if=/tmp/p of=/dev/sda bs=64k seek=3 oflag=direct 2>/dev/null
dd if=/dev/sda of=/tmp/q bs=64k count=32 skip=3 iflag=direct 2>/dev/null
cmp /tmp/p /tmp/q && echo patterns-ok
# Small and unaligned-to-the-request sizes, through the page cache.
dd if=/tmp/p of=/dev/sda bs=4k count=7 seek=1001 2>/dev/null
sync
echo 3 > /proc/sys/vm/drop_caches
dd if=/dev/sda bs=4k count=7 skip=1001 2>/dev/null | cmp - /tmp/p 2>&1 | grep -q EOF && echo small-ok
mark first
wait_host
wait_for 30 test -b /dev/sdb || { dmesg | tail -15; exit 1; }
echo "sdb: $(cat /sys/block/sdb/queue/logical_block_size) $(cat /sys/block/sdb/size)"
dd if=/tmp/p of=/dev/sdb bs=64k count=4 oflag=direct 2>/dev/null
dd if=/dev/sdb bs=64k count=4 iflag=direct 2>/dev/null | cmp - /tmp/p 2>&1 | grep -q EOF && echo sdb-ok
mark added
wait_host
wait_for 30 sh -c '! test -b /dev/sdb'
echo sdb-gone
test -b /dev/sda && echo sda-stays
""", shared_mem=True, qemu_args=guest.vhost_scsi_args(sock))
    run.wait_for("first")
    assert guest.target.result("vhost_scsi_controller_add_target",
                               {"ctrlr": "vhost.0", "scsi_target_num": -1,
                                "bdev_name": "Malloc1"}) == 1
    run.send("go")
    run.wait_for("added")
    assert guest.target.result("vhost_scsi_controller_remove_target",
                               {"ctrlr": "vhost.0", "scsi_target_num": 1}) is True
    run.send("go")
    r = run.wait()
    assert "sectors: 131072" in r.output and "model: " in r.output
    for step in ("patterns-ok", "small-ok", "sdb: 4096 65536", "sdb-ok", "sdb-gone",
                 "sda-stays"):
        assert step in r.output, r.output
    # The bdev of the removed target is free again.
    assert guest.target.result("bdev_malloc_delete", {"name": "Malloc1"}) is True
    assert "Sanitizer" not in guest.target.output()


@pytest.mark.skipif(os.environ.get("MIMO_GUEST_CONFORMANCE") != "1",
                    reason="libiscsi's conformance run takes long under TCG: "
                           "MIMO_GUEST_CONFORMANCE=1 runs it")
def test_iscsi_test_cu_over_sg(guest):
    sock = guest.vhost_scsi(bdev_mib=64)
    r = guest.run(SETUP + """
sg=$(ls /sys/block/sda/device/scsi_generic)
echo "sg: $sg"
iscsi-test-cu -d -V -t SCSI /dev/$sg 2>&1 || true
echo conformance-done
""", shared_mem=True, timeout=3600, qemu_args=guest.vhost_scsi_args(sock))
    assert "conformance-done" in r.output
    print(r.output)
