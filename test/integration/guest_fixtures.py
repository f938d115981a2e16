"""Fixtures for tests with a real kernel client in a QEMU guest (docs/guest-tests.md).

    pytestmark = pytest.mark.guest

    def test_something(guest):
        guest.export(NQN)                      # malloc bdev, TCP transport, subsystem, listener
        r = guest.run('nvme connect -t tcp -a $GUEST_tgt -s $GUEST_port -n $GUEST_nqn')
        assert r.status == 0                   # r.output: what the script printed
        guest.target.result("nvmf_subsystem_get_controllers", {"nqn": NQN})

`guest` gives each test a network namespace (or QEMU's user networking without
CAP_NET_ADMIN), mimo_tgt started in it, and a guest to boot; all of it is stopped and removed
at the end of the test, passed or failed. The image is fetched and built once per session
(test/guest/image.py); when its packages cannot be downloaded, the tests skip saying why, or
fail if MIMO_GUEST_REQUIRE=1.
"""
import os
import sys

import pytest

from conftest import REPO, free_port

sys.path.insert(0, os.path.join(REPO, "test", "guest"))
import image  # noqa: E402
import vm  # noqa: E402

_net_kind = None


def _unavailable(why):
    if os.environ.get("MIMO_GUEST_REQUIRE") == "1":
        pytest.fail(f"no guest (and MIMO_GUEST_REQUIRE=1): {why}", pytrace=False)
    pytest.skip(f"no guest: {why}")


def net_kind():
    """MIMO_GUEST_NET (netns or user), else netns where namespaces can be made."""
    global _net_kind
    if _net_kind is None:
        _net_kind = os.environ.get("MIMO_GUEST_NET") or ("netns" if vm.netns_usable() else "user")
    return _net_kind


_images = {}


def _image(kernel):
    """{kernel, initrd, manifest} of the image with `kernel` (image.KERNELS), fetched and
    built once per session (and cached under build/guest across sessions); skips (or fails,
    MIMO_GUEST_REQUIRE=1) when that cannot be done here."""
    if kernel not in _images:
        why = vm.qemu_missing()
        try:
            _images[kernel] = why or image.ensure(kernel)
        except image.Unavailable as e:
            _images[kernel] = str(e)
    if isinstance(_images[kernel], str):
        _unavailable(_images[kernel])
    return _images[kernel]


@pytest.fixture(scope="session")
def guest_image():
    """The default image (Debian 12's kernel)."""
    return _image(image.DEFAULT_KERNEL)


class GuestEnv:
    """A network of its own: mimo_tgt (`target`, a conftest Daemon: .result(method, params))
    and the guest (`run`, `start`). The guest sees the target's address as $GUEST_tgt."""

    def __init__(self, image_paths, workdir, daemons, tgt_args=("-m", "0x1"), vhost_dir=None):
        self.net = vm.Netns() if net_kind() == "netns" else vm.UserNet()
        try:
            self.target = daemons(*tgt_args, name="guesttgt", prefix=self.net.prefix())
            self.vm = vm.Guest(image_paths, workdir, self.net)
        except BaseException:
            self.net.delete()
            raise
        self.hostnqn = self.vm.hostnqn     # the guest's host NQN (/etc/nvme/hostnqn)
        self.hostid = self.vm.hostid
        self.addr = self.net.host_addr     # where the target listens
        self.guest_tgt = self.net.guest_tgt
        self.defaults = {}
        self.vhost_dir = vhost_dir         # where the target makes vhost-user sockets (-S)

    def port(self):
        """A port for a listener: 4420 in a namespace of its own; a free one on loopback."""
        return 4420 if self.net.kind == "netns" else free_port()

    def export(self, nqn, bdev="Malloc0", bdev_mib=64, block_size=512, port=None,
               allow_any_host=True, transport=None):
        """A malloc bdev exported as namespace 1 of subsystem nqn on a TCP listener. Later
        runs get $GUEST_nqn and $GUEST_port (unless their env says otherwise). Returns the
        port."""
        port = port or self.port()
        t = self.target
        t.result("bdev_malloc_create", {"name": bdev, "block_size": block_size,
                                        "num_blocks": bdev_mib * 1024 * 1024 // block_size})
        if not t.result("nvmf_get_transports"):
            t.result("nvmf_create_transport", dict({"trtype": "TCP"}, **(transport or {})))
        t.result("nvmf_create_subsystem", {"nqn": nqn, "allow_any_host": allow_any_host,
                                           "serial_number": "MIMO0001"})
        t.result("nvmf_subsystem_add_ns", {"nqn": nqn, "namespace": {"bdev_name": bdev}})
        self.listen(nqn, port)
        self.defaults.update(nqn=nqn, port=port)
        return port

    def listen(self, nqn, port):
        self.target.result("nvmf_subsystem_add_listener", {
            "nqn": nqn, "listen_address": {"trtype": "TCP", "adrfam": "IPv4",
                                           "traddr": self.addr, "trsvcid": str(port)}})

    def vhost_blk(self, ctrlr="vhost.0", bdev="Malloc0", bdev_mib=64, block_size=512, **params):
        """A malloc bdev (made unless it exists) behind a vhost-user-blk controller; returns
        the controller's socket path."""
        t = self.target
        if not any(b["name"] == bdev for b in t.result("bdev_get_bdevs")):
            t.result("bdev_malloc_create", {"name": bdev, "block_size": block_size,
                                            "num_blocks": bdev_mib * 1024 * 1024 // block_size})
        t.result("vhost_create_blk_controller", dict({"ctrlr": ctrlr, "dev_name": bdev}, **params))
        return os.path.join(self.vhost_dir, ctrlr)

    @staticmethod
    def vhost_blk_args(sock, num_queues=1, index=0, reconnect=False, packed=False):
        """QEMU arguments for a vhost-user-blk-pci disk on sock (run with shared_mem=True);
        packed: packed virtqueues (taken if the controller offers them)."""
        chardev = f"socket,id=vu{index},path={sock}" + (",reconnect=1" if reconnect else "")
        return ["-chardev", chardev, "-device",
                f"vhost-user-blk-pci,chardev=vu{index},num-queues={num_queues}" +
                (",packed=on" if packed else "")]

    def vhost_scsi(self, ctrlr="vhost.0", bdevs=("Malloc0",), bdev_mib=64, block_size=512):
        """Malloc bdevs (made unless they exist) as targets 0.. of a vhost-user-scsi
        controller; returns the controller's socket path."""
        t = self.target
        t.result("vhost_create_scsi_controller", {"ctrlr": ctrlr})
        for i, bdev in enumerate(bdevs):
            if not any(b["name"] == bdev for b in t.result("bdev_get_bdevs")):
                t.result("bdev_malloc_create", {"name": bdev, "block_size": block_size,
                                                "num_blocks": bdev_mib * 1024 * 1024 //
                                                block_size})
            t.result("vhost_scsi_controller_add_target",
                     {"ctrlr": ctrlr, "scsi_target_num": i, "bdev_name": bdev})
        return os.path.join(self.vhost_dir, ctrlr)

    @staticmethod
    def vhost_scsi_args(sock, num_queues=1, index=0):
        """QEMU arguments for a vhost-user-scsi-pci adapter on sock (run with shared_mem)."""
        return ["-chardev", f"socket,id=vus{index},path={sock}", "-device",
                f"vhost-user-scsi-pci,chardev=vus{index},num_queues={num_queues}"]

    def start(self, script, env=None, files=None, timeout=vm.TIMEOUT, **qemu):
        """Boot the guest running script; a vm.Run (wait_for(mark), send(line), wait()).
        qemu: vm.Guest.start's qemu_args, shared_mem, reboot."""
        return self.vm.start(script, dict(self.defaults, **(env or {})), files, timeout, **qemu)

    def run(self, script, env=None, files=None, timeout=vm.TIMEOUT, check=True, **qemu):
        """Boot the guest, run script, power off: a vm.Result (status, output, console,
        seconds). check: raise (with output and console) unless the script exits 0."""
        return self.start(script, env, files, timeout, **qemu).wait(check)

    def close(self):
        """The guest first, then the target (the daemons fixture still checks its exit and
        its sanitizer output), then anything left in the namespace, then the namespace."""
        try:
            self.vm.close()
            if self.target.proc.poll() is None:
                self.target.stop()
        finally:
            self.net.delete()


@pytest.fixture
def guest(request, daemons, tmp_path, rundir):
    """A GuestEnv. The guest runs Debian 12's kernel, or the one a test names with
    @pytest.mark.guest_kernel("bookworm-backports") (6.12: NVMe in-band authentication)."""
    m = request.node.get_closest_marker("guest_kernel")
    kernel = m.args[0] if m else image.DEFAULT_KERNEL
    env = GuestEnv(_image(kernel), str(tmp_path), daemons, ("-m", "0x1", "-S", rundir), rundir)
    yield env
    env.close()
    # Nothing left behind: the namespace is gone, and with it everything that ran in it.
    if env.net.kind == "netns":
        assert env.net.name not in vm.netns_names(), f"{env.net.name} is still there"
