"""The subprocess helper of the NVMe-oF tests (the seed's NvmfTarget, in Python): start mimo_tgt
as an NVMe/TCP target on a port, configure it by RPC, wait until it takes connections, and stop
only that process. A PID file per port lets a later run clean up what a crashed one left,
without touching anything else on the machine."""
import os
import signal
import tempfile

from conftest import wait_port, wait_until

NQN = "nqn.2016-06.io.mimo:cnode1"
STATE_DIR = os.path.join(tempfile.gettempdir(), "mimo-nvmf-test")


def _pid_file(port):
    return os.path.join(STATE_DIR, f"tgt-{port}.pid")


def _is_mimo_tgt(pid):
    try:
        return os.path.basename(os.readlink(f"/proc/{pid}/exe")).startswith("mimo_tgt")
    except OSError:
        return False


def cleanup_stale(port):
    """Kill the mimo_tgt a previous run started for port, if it is still there."""
    path = _pid_file(port)
    try:
        with open(path) as f:
            pid = int(f.read().strip() or 0)
    except (OSError, ValueError):
        return False
    killed = False
    if pid > 0 and _is_mimo_tgt(pid):
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not _is_mimo_tgt(pid), 10, f"stale mimo_tgt {pid} to die")
        killed = True
    os.unlink(path)
    return killed


def wait_listening(port, timeout=10.0):
    return wait_port(port, timeout)


class NvmfTarget:
    """mimo_tgt serving one subsystem (a malloc bdev as namespace 1) on 127.0.0.1:port."""

    def __init__(self, daemon, port, nqn):
        self.daemon = daemon
        self.port = port
        self.nqn = nqn

    @classmethod
    def start(cls, daemons, port, nqn=NQN, cores="0x3", bdev_mib=64, block_size=512,
              transport=None, allow_any_host=True, env=None):
        """daemons: the conftest fixture that starts (and checks the exit of) mimo_tgt."""
        cleanup_stale(port)
        os.makedirs(STATE_DIR, exist_ok=True)
        d = daemons("-m", cores, env=env, name=f"nvmf{port}")
        with open(_pid_file(port), "w") as f:
            f.write(str(d.proc.pid))
        d.result("bdev_malloc_create", {"name": "Malloc0", "block_size": block_size,
                                        "num_blocks": bdev_mib * 1024 * 1024 // block_size})
        d.result("nvmf_create_transport", dict({"trtype": "TCP"}, **(transport or {})))
        d.result("nvmf_create_subsystem", {"nqn": nqn, "allow_any_host": allow_any_host,
                                           "serial_number": "MIMO0001"})
        d.result("nvmf_subsystem_add_ns", {"nqn": nqn, "namespace": {"bdev_name": "Malloc0"}})
        d.result("nvmf_subsystem_add_listener", {
            "nqn": nqn, "listen_address": {"trtype": "TCP", "adrfam": "IPv4",
                                           "traddr": "127.0.0.1", "trsvcid": str(port)}})
        if not wait_listening(port):
            raise TimeoutError(f"mimo_tgt does not listen on {port}")
        return cls(d, port, nqn)

    def trid(self):
        return f"trtype:TCP adrfam:IPv4 traddr:127.0.0.1 trsvcid:{self.port} subnqn:{self.nqn}"

    def stop(self):
        rc = self.daemon.stop()
        try:
            os.unlink(_pid_file(self.port))
        except OSError:
            pass
        return rc
