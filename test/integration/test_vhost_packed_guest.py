"""vhost-user-blk with packed virtqueues and their real client: QEMU's vhost-user-blk-pci with
packed=on and Debian 12's virtio_blk in a guest under TCG, against a controller created with
packed_ring (docs/vhost.md). Patterns from both vCPUs read back and compared over rings gone
round many times; the VM stopped and continued (QEMU stops the rings, keeps their positions
with the wrap counters and sets them again); QEMU killed and started again; a guest reboot;
mimo_tgt killed with a write in flight and started again (inflight tracking)."""
import json
import os
import shutil
import socket
import tempfile

import pytest

from conftest import wait_until
from test_vhost_guest import (SETUP, guest_reboot, qemu_killed_and_started_again, sessions,
                              target_killed_with_a_write_in_flight)

pytestmark = pytest.mark.guest

PACKED = 1 << 34


class Qmp:
    """QEMU's monitor on a Unix socket: enough of it to stop and continue the VM."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="mimo-qmp-")
        self.path = os.path.join(self.dir, "qmp.sock")
        self.sock = None

    def args(self):
        return ["-qmp", f"unix:{self.path},server=on,wait=off"]

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(60)
        self.sock.connect(self.path)
        self.f = self.sock.makefile("rw")
        json.loads(self.f.readline())                 # the greeting
        self.execute("qmp_capabilities")

    def execute(self, cmd):
        self.f.write(json.dumps({"execute": cmd}) + "\n")
        self.f.flush()
        while True:
            r = json.loads(self.f.readline())
            if "return" in r or "error" in r:
                assert "error" not in r, r
                return r["return"]

    def close(self):
        if self.sock is not None:
            self.sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def stop_and_cont(guest, qmp):
    """QMP stop (QEMU stops the rings: GET_VRING_BASE) and cont (SET_VRING_BASE with what
    it kept), waiting for mimo to see both."""
    qmp.execute("stop")
    wait_until(lambda: not any(q["started"] for q in sessions(guest)[0]["queues"]),
               what="the rings stopped")
    qmp.execute("cont")
    wait_until(lambda: sum(q["started"] for q in sessions(guest)[0]["queues"]) == 2,
               what="the rings started again")


def test_patterns_and_stop_cont_keep_the_ring(guest):
    """Two queues of 128 descriptors; 16 MiB in 64 KiB requests and 4 KiB ones go round them
    many times. The VM is stopped and continued twice - before the first lap ends (wrap
    counters 1) and after three (0) - and the driver's rings go on where they were: QEMU
    keeps the positions and wrap counters GET_VRING_BASE gave and sets them again."""
    sock = guest.vhost_blk(bdev_mib=64, packed_ring=True)
    qmp = Qmp()
    try:
        run = guest.start(SETUP + """
mark probed
wait_host
for cpu in 0 1; do
    dd if=/dev/urandom of=/tmp/p$cpu bs=64k count=128 2>/dev/null
    taskset -c $cpu dd if=/tmp/p$cpu of=/dev/vda bs=64k count=128 seek=$((cpu * 128)) \
        oflag=direct 2>/dev/null
    taskset -c $cpu dd if=/tmp/p$cpu of=/dev/vda bs=4k count=300 seek=$((8192 + cpu * 300)) \
        oflag=direct 2>/dev/null
done
mark written
wait_host
for cpu in 0 1; do
    taskset -c $((1 - cpu)) dd if=/dev/vda of=/tmp/q$cpu bs=64k count=128 skip=$((cpu * 128)) \
        iflag=direct 2>/dev/null
    cmp /tmp/p$cpu /tmp/q$cpu
    taskset -c $cpu dd if=/dev/vda bs=4k count=300 skip=$((8192 + cpu * 300)) iflag=direct \
        2>/dev/null | cmp - /tmp/p$cpu 2>&1 | grep -q EOF
done
echo patterns-ok
""", shared_mem=True, qemu_args=qmp.args() + guest.vhost_blk_args(sock, num_queues=2,
                                                                   packed=True))
        run.wait_for("probed")
        s, = sessions(guest)
        assert int(s["features"], 16) & PACKED, s
        assert all(q["requests"] < 128 for q in s["queues"]), s
        qmp.connect()
        stop_and_cont(guest, qmp)
        run.send("go")
        run.wait_for("written")
        s, = sessions(guest)
        served = [q["requests"] for q in s["queues"] if q["started"]]
        assert len(served) == 2 and all(n > 2 * 128 for n in served), s
        stop_and_cont(guest, qmp)
        run.send("go")
        r = run.wait()
        assert "patterns-ok" in r.output, r.output
    finally:
        qmp.close()


def test_qemu_killed_and_started_again(guest):
    qemu_killed_and_started_again(guest, packed=True)


def test_guest_reboot(guest):
    """The guest reboots after going round its ring: QEMU resets the device, the new kernel's
    driver starts at the ring's beginning with both wrap counters set again."""
    guest_reboot(guest, packed=True, laps=10)


def test_target_killed_with_a_write_in_flight(guest, daemons, rundir, tmp_path):
    """The split test's SIGKILL of mimo_tgt with a write held and a later one completed, on
    packed rings: QEMU sends the stale base of the ring's first start; the new mimo_tgt finds
    the positions and the held write's descriptors in the inflight region's packed layout
    (without it the queue fails on the used descriptors at the stale base and both writers
    hang)."""
    target_killed_with_a_write_in_flight(guest, daemons, rundir, tmp_path, packed=True)
