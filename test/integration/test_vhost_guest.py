"""vhost-user-blk with its real client: QEMU's vhost-user-blk-pci and Debian 12's virtio-blk
driver in a guest under TCG, against mimo_tgt (docs/vhost.md, docs/guest-tests.md). Data
written and read back, a filesystem, discard, two queues, QEMU killed and started again, a
guest reboot, the controller deleted under the running guest, mimo_tgt restarted under it."""
import hashlib
import json
import os
import signal

import pytest

from conftest import wait_until

pytestmark = pytest.mark.guest

# The disk's driver, and the disk itself once the driver has probed it.
SETUP = """
modprobe virtio_blk
wait_for 30 test -b /dev/vda
"""


def sessions(guest, ctrlr="vhost.0"):
    return guest.target.result("vhost_get_controllers", {"name": ctrlr})[0]["sessions"]


def test_write_read_mkfs_discard_two_queues(guest):
    sock = guest.vhost_blk(bdev_mib=64)
    r = guest.run(SETUP + """
echo "queues: $(ls /sys/block/vda/mq | wc -l)"
echo "sectors: $(cat /sys/block/vda/size)"
# Patterns from each vCPU (blk-mq maps a CPU to a queue), read back and compared.
for cpu in 0 1; do
    dd if=/dev/urandom of=/tmp/p$cpu bs=64k count=16 2>/dev/null
    taskset -c $cpu dd if=/tmp/p$cpu of=/dev/vda bs=64k count=16 seek=$((cpu * 16)) \
        oflag=direct 2>/dev/null
done
for cpu in 0 1; do
    taskset -c $((1 - cpu)) dd if=/dev/vda of=/tmp/q$cpu bs=64k count=16 skip=$((cpu * 16)) \
        iflag=direct 2>/dev/null
    cmp /tmp/p$cpu /tmp/q$cpu
done
echo patterns-ok
# Discard: the malloc bdev reads zeroes where it was discarded.
blkdiscard -o 0 -l 1048576 /dev/vda
dd if=/dev/vda bs=64k count=16 iflag=direct 2>/dev/null | cmp - /dev/zero 2>&1 | grep -q EOF
dd if=/dev/vda of=/tmp/q1 bs=64k count=16 skip=16 iflag=direct 2>/dev/null
cmp /tmp/p1 /tmp/q1
echo discard-ok
# A filesystem, files, unmounted and mounted again.
mkfs.ext4 -q -F /dev/vda
mkdir -p /mnt/d
mount -t ext4 /dev/vda /mnt/d
dd if=/dev/urandom of=/mnt/d/big bs=64k count=64 2>/dev/null
for i in 1 2 3 4 5; do echo "file $i" > /mnt/d/f$i; done
md5sum /mnt/d/big > /tmp/sum
umount /mnt/d
echo 3 > /proc/sys/vm/drop_caches
mount -t ext4 /dev/vda /mnt/d
md5sum -c /tmp/sum
cat /mnt/d/f3
umount /mnt/d
echo fs-ok
""", shared_mem=True, qemu_args=guest.vhost_blk_args(sock, num_queues=2))
    assert "queues: 2" in r.output and "sectors: 131072" in r.output
    for step in ("patterns-ok", "discard-ok", "file 3", "fs-ok"):
        assert step in r.output, r.output
    # Once the guest is gone its session is; while it ran, both queues served requests.
    wait_until(lambda: sessions(guest) == [], what="the session to end")
    out = guest.target.output()
    assert "Sanitizer" not in out


def test_both_queues_serve(guest):
    sock = guest.vhost_blk()
    run = guest.start(SETUP + """
taskset -c 0 dd if=/dev/vda of=/dev/null bs=4k count=100 iflag=direct 2>/dev/null
taskset -c 1 dd if=/dev/vda of=/dev/null bs=4k count=100 iflag=direct 2>/dev/null
mark done
wait_host
""", shared_mem=True, qemu_args=guest.vhost_blk_args(sock, num_queues=2))
    run.wait_for("done")
    s, = sessions(guest)
    served = [q["requests"] for q in s["queues"] if q["started"]]
    assert len(served) == 2 and all(n >= 100 for n in served), s
    run.send("go")
    run.wait()


def qemu_killed_and_started_again(guest, packed=False):
    """Data written, QEMU killed with the device running, a new QEMU reads it back (split
    rings, or packed ones: test_vhost_packed_guest.py)."""
    sock = guest.vhost_blk(**({"packed_ring": True} if packed else {}))
    data = os.urandom(1 << 20)
    run = guest.start(SETUP + """
dd if=/test/data of=/dev/vda bs=64k oflag=direct 2>/dev/null
mark written
wait_host
""", files={"test/data": data}, shared_mem=True,
        qemu_args=guest.vhost_blk_args(sock, packed=packed))
    run.wait_for("written")
    assert len(sessions(guest)) == 1
    run.kill()                               # QEMU dies with the device running
    wait_until(lambda: sessions(guest) == [], what="the dead QEMU's session to end")
    r = guest.run(SETUP + """
dd if=/dev/vda bs=64k count=16 iflag=direct 2>/dev/null | md5sum
""", shared_mem=True, qemu_args=guest.vhost_blk_args(sock, packed=packed))
    assert hashlib.md5(data).hexdigest() in r.output


def test_qemu_killed_and_started_again(guest):
    qemu_killed_and_started_again(guest)


def guest_reboot(guest, packed=False, laps=0):
    """The guest writes (laps times, to go round a ring) and reboots: QEMU resets the device
    and the new kernel's driver starts it again, on the same connection, and reads back."""
    sock = guest.vhost_blk(**({"packed_ring": True} if packed else {}))
    r = guest.run(SETUP + f"""
if dd if=/dev/vda bs=512 count=1 iflag=direct 2>/dev/null | grep -q second-boot; then
    dd if=/dev/vda bs=64k count=16 skip=1 iflag=direct 2>/dev/null | md5sum
    echo after-reboot
else
    echo second-boot | dd of=/dev/vda conv=sync bs=512 count=1 oflag=direct 2>/dev/null
    dd if=/dev/urandom of=/tmp/d bs=64k count=16 2>/dev/null
    for i in $(seq {laps}); do
        dd if=/tmp/d of=/dev/vda bs=4k seek=16 oflag=direct 2>/dev/null
    done
    dd if=/tmp/d of=/dev/vda bs=64k seek=1 oflag=direct 2>/dev/null
    md5sum /tmp/d
    echo rebooting
    reboot -f
fi
""", shared_mem=True, reboot=True, qemu_args=guest.vhost_blk_args(sock, packed=packed))
    assert "rebooting" in r.output and "after-reboot" in r.output, r.output
    sums = [ln.split()[0] for ln in r.output.splitlines() if "  " in ln and len(ln) > 32]
    assert len(sums) == 2 and sums[0] == sums[1], r.output


def test_guest_reboot(guest):
    guest_reboot(guest)


def test_resize_reaches_the_guest(guest):
    """bdev_null_resize under a running guest: the back-end's CONFIG_CHANGE makes QEMU read
    the new capacity and tell the driver, which resizes the disk; the new blocks serve."""
    guest.target.result("bdev_null_create", {"name": "N0", "block_size": 512,
                                             "num_blocks": 16384})
    sock = guest.vhost_blk(bdev="N0")
    run = guest.start(SETUP + """
echo "size $(cat /sys/block/vda/size)"
mark sized
wait_host
wait_for 30 grep -qx 32768 /sys/block/vda/size
echo "size $(cat /sys/block/vda/size)"
dd if=/dev/vda of=/dev/null bs=4k count=1 skip=4000 iflag=direct 2>/dev/null && echo read-new-blocks
""", shared_mem=True, qemu_args=guest.vhost_blk_args(sock))
    run.wait_for("sized")
    assert guest.target.result("bdev_null_resize", {"name": "N0", "new_size": 16}) is True
    run.send("go")
    r = run.wait()
    assert "size 16384" in r.output and "size 32768" in r.output, r.output
    assert "read-new-blocks" in r.output, r.output


def test_controller_deleted_while_the_guest_runs(guest):
    sock = guest.vhost_blk()
    run = guest.start(SETUP + """
dd if=/dev/urandom of=/dev/vda bs=4k count=16 oflag=direct 2>/dev/null
mark written
wait_host
if dd if=/dev/vda of=/dev/null bs=4k count=1 skip=100 iflag=direct 2>/dev/null; then
    echo read-succeeded
else
    echo read-failed
fi
dmesg | grep -c "I/O error" || true
""", shared_mem=True, qemu_args=guest.vhost_blk_args(sock))
    run.wait_for("written")
    assert guest.target.result("vhost_delete_controller", {"ctrlr": "vhost.0"}) is True
    assert not os.path.exists(sock)
    run.send("go")
    r = run.wait()
    assert "read-failed" in r.output, r.output
    # The daemon serves on; the bdev the controller had is free again.
    assert guest.target.result("vhost_get_controllers") == []
    wait_until(lambda: guest.target.result("bdev_malloc_delete", {"name": "Malloc0"}),
               what="Malloc0 deleted")


def test_target_restarted_under_the_running_guest(guest, daemons, rundir):
    """mimo_tgt stops (its requests complete first) and starts again with the same
    configuration; QEMU, told to reconnect, connects again and the guest's I/O goes on."""
    img = os.path.join(rundir, "disk.img")
    with open(img, "wb") as f:
        f.truncate(16 << 20)
    data = os.urandom(1 << 20)

    def serve(t):
        t.result("bdev_aio_create", {"name": "A0", "filename": img, "block_size": 512})
        t.result("vhost_create_blk_controller", {"ctrlr": "vhost.0", "dev_name": "A0"})
    serve(guest.target)
    sock = os.path.join(rundir, "vhost.0")
    run = guest.start(SETUP + """
dd if=/test/data of=/dev/vda bs=64k oflag=direct 2>/dev/null
mark written
wait_host
dd if=/dev/vda bs=64k count=16 iflag=direct 2>/dev/null | md5sum
""", files={"test/data": data}, shared_mem=True,
        qemu_args=guest.vhost_blk_args(sock, reconnect=True))
    run.wait_for("written")
    assert guest.target.stop() == 0
    t2 = daemons("-m", "0x1", "-S", rundir, name="again", prefix=guest.net.prefix())
    serve(t2)
    wait_until(lambda: t2.result("vhost_get_controllers")[0]["sessions"],
               timeout=30, what="QEMU to connect again")
    run.send("go")
    r = run.wait()
    assert hashlib.md5(data).hexdigest() in r.output


def target_killed_with_a_write_in_flight(guest, daemons, rundir, tmp_path, packed=False):
    """mimo_tgt is killed (SIGKILL: nothing completes, nothing is said) while a guest write is
    held in the bdev and a second writer's requests completed after it, and is started again
    from its saved configuration. QEMU reconnects and hands the new process the inflight
    region the old one kept; the held write is submitted again and the ring goes on after the
    later ones: both writers end without an error, the data reads back, and the guest's log
    has no error (without the region the held write is never answered and a later one is
    taken again: docs/vhost.md, inflight). Split rings, or packed ones
    (test_vhost_packed_guest.py)."""
    img = os.path.join(rundir, "disk.img")
    with open(img, "wb") as f:
        f.truncate(16 << 20)
    one, two = os.urandom(1 << 20), os.urandom(1 << 20)
    t = guest.target
    t.result("bdev_aio_create", {"name": "A0", "filename": img, "block_size": 512})
    t.result("bdev_error_create", {"base_name": "A0"})
    t.result("vhost_create_blk_controller", dict({"ctrlr": "vhost.0", "dev_name": "EE_A0"},
                                                 **({"packed_ring": True} if packed else {})))
    cfg = tmp_path / "saved.json"
    cfg.write_text(json.dumps({"subsystems": [
        {"subsystem": s["subsystem"],
         "config": t.result("framework_get_config", {"name": s["subsystem"]})}
        for s in t.result("framework_get_subsystems")]}))
    sock = os.path.join(rundir, "vhost.0")
    run = guest.start(SETUP + """
mark ready
wait_host
(dd if=/test/one of=/dev/vda bs=64k oflag=direct 2>/tmp/one.err && echo ONE-OK) > /tmp/one &
wait_host
dd if=/test/two of=/dev/vda bs=64k seek=64 oflag=direct 2>/tmp/two.err && echo TWO-OK
mark second-done
wait_host
wait
cat /tmp/one /tmp/one.err /tmp/two.err
dd if=/dev/vda bs=64k count=16 iflag=direct 2>/dev/null | md5sum
dd if=/dev/vda bs=64k skip=64 count=16 iflag=direct 2>/dev/null | md5sum
dmesg | grep -i -e 'I/O error' -e 'not a head' -e broken || true
echo DMESG-END
""", files={"test/one": one, "test/two": two}, shared_mem=True,
        qemu_args=guest.vhost_blk_args(sock, reconnect=True, packed=packed))
    run.wait_for("ready")
    # The first writer's next write stays in the bdev: in flight when the target dies.
    t.result("bdev_error_inject_error", {"name": "EE_A0", "io_type": "write",
                                         "error_type": "pending", "num": 1})
    run.send("go")
    wait_until(lambda: sessions(guest)[0]["inflight_task_cnt"] >= 1, timeout=60,
               what="the first writer's write held in flight")
    # The second writer's writes complete after it (out of order).
    run.send("go")
    run.wait_for("second-done")
    assert sessions(guest)[0]["inflight_task_cnt"] >= 1
    t.stop(signal.SIGKILL)
    t2 = daemons("-m", "0x1", "-S", rundir, "-c", str(cfg), name="again",
                 prefix=guest.net.prefix())
    wait_until(lambda: t2.result("vhost_get_controllers")[0]["sessions"],
               timeout=60, what="QEMU to connect again")
    run.send("go")
    r = run.wait()
    assert "ONE-OK" in r.output and "TWO-OK" in r.output, r.output
    assert hashlib.md5(one).hexdigest() in r.output
    assert hashlib.md5(two).hexdigest() in r.output
    log = r.output.split("TWO-OK")[1].split("DMESG-END")[0]
    assert "i/o error" not in log.lower() and "not a head" not in log, r.output
    assert "submitted again" in t2.output()
    return t2


def test_target_killed_with_a_write_in_flight(guest, daemons, rundir, tmp_path):
    target_killed_with_a_write_in_flight(guest, daemons, rundir, tmp_path)
