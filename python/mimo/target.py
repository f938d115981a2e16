"""Start, watch and stop a mimo_tgt process: py-spdk's ``pyspdk`` class for mimo.

Liveness is decided from the daemon's own PID file plus a check that the pid still belongs to
mimo_tgt, never by searching process names, so two targets on different sockets (or a reused
pid) are never confused.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time

from typing import Any, Mapping, Optional, Sequence

from .client import DEFAULT_SOCKET, Client, RpcConnectionError, RpcError

PROGRAM = "mimo_tgt"
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _default_binary():
    local = os.path.join(REPO, os.environ.get("MIMO_BUILD", "build"), "bin", PROGRAM)
    if os.access(local, os.X_OK):
        return local
    return shutil.which(PROGRAM)


class Target:
    """One mimo_tgt daemon, identified by its RPC socket and PID file."""

    def __init__(self, binary: Optional[str] = None, rpc_socket: str = DEFAULT_SOCKET,
                 pid_file: Optional[str] = None) -> None:
        self.binary = binary or _default_binary()
        self.rpc_socket = rpc_socket
        self.pid_file = pid_file or rpc_socket + ".pid"
        self._proc = None  # the child we started, so it can be reaped
        self._client = None

    # --- process control ----------------------------------------------------------------

    def start_server(self, cpumask: str = "0x1", config: Optional[str] = None,
                     wait_for_rpc: bool = False, extra_args: Sequence[str] = (),
                     timeout: float = 10.0, env: Optional[Mapping[str, str]] = None,
                     stdout: Any = None, stderr: Any = None) -> int:
        """Start the daemon and return its pid once it answers ``rpc_get_methods``."""
        if not self.binary:
            raise FileNotFoundError(f"{PROGRAM} not found in {REPO}/build/bin or on PATH")
        if self.is_alive():
            raise RuntimeError(f"{PROGRAM} already runs as pid {self.get_process_id()}")
        if self._answers(keep=False):
            raise RuntimeError(f"something already answers on {self.rpc_socket}")
        args = [self.binary, "-m", cpumask, "-r", self.rpc_socket, "--pid-file", self.pid_file]
        if config:
            args += ["-c", config]
        if wait_for_rpc:
            args.append("--wait-for-rpc")
        args += list(extra_args)
        proc = subprocess.Popen(args, env=env, stdout=stdout, stderr=stderr)
        self._proc = proc
        deadline = time.monotonic() + timeout
        while True:
            status = proc.poll()
            if status is not None:
                self._proc = None
                raise RuntimeError(f"{PROGRAM} exited with status {status} during start-up: "
                                   f"{' '.join(args)}")
            if self._answers(max(deadline - time.monotonic(), 0.05)):
                return proc.pid
            if time.monotonic() >= deadline:
                proc.kill()
                proc.wait()
                self._proc = None
                raise TimeoutError(f"{PROGRAM} did not answer on {self.rpc_socket} "
                                   f"within {timeout} s")
            time.sleep(0.01)

    def _answers(self, timeout=1.0, keep=True):
        """True if a daemon replies on the socket; with ``keep`` the connection is kept for
        exec_rpc, so start-up costs no second connection."""
        try:
            client = Client(self.rpc_socket, timeout=timeout)
        except RpcConnectionError:
            return False
        try:
            client.call("rpc_get_methods")
        except RpcError:
            pass  # an error reply is still a reply
        except (RpcConnectionError, TimeoutError):
            client.close()
            return False
        if keep:
            client.timeout = 60.0
            self._replace_client(client)
        else:
            client.close()
        return True

    def close_server(self, timeout: float = 10.0) -> Optional[int]:
        """SIGTERM, then SIGKILL after ``timeout``. Returns the exit status (negative signal
        number as in subprocess), or None if nothing was running. A daemon we did not start
        cannot be reaped by us: its status is reported as 0, or -SIGKILL if it had to be killed.
        """
        self._replace_client(None)
        if self._proc is not None and self._proc.poll() is None:
            proc, self._proc = self._proc, None
            proc.terminate()
            try:
                return proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                return proc.wait()
        self._proc = None
        if not self.is_alive():
            return None
        pid = self.get_process_id()
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self._pid_is_target(pid):
                return 0
            time.sleep(0.01)
        os.kill(pid, signal.SIGKILL)
        return -signal.SIGKILL

    def get_process_id(self) -> Optional[int]:
        """The pid of the daemon this object started, else the pid recorded in the PID file,
        or None if there is neither."""
        if self._proc is not None and self._proc.poll() is None:
            return self._proc.pid
        try:
            with open(self.pid_file) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def is_alive(self) -> bool:
        """True if the PID file names a live (not zombie) mimo_tgt process."""
        if self._proc is not None:
            return self._proc.poll() is None  # our own child: no file needed (poll reaps)
        pid = self.get_process_id()
        return pid is not None and self._pid_is_target(pid)

    def _pid_is_target(self, pid):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass  # exists, owned by someone else
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rpartition(")")[2].split()[0] == "Z":
                    return False
            with open(f"/proc/{pid}/comm") as f:
                comm = f.read().strip()
        except (OSError, IndexError):
            return False
        names = {PROGRAM, os.path.basename(self.binary or PROGRAM)[:15]}
        return comm in names

    # --- py-spdk helpers ----------------------------------------------------------------

    def init_hugepages(self):
        """py-spdk reserved hugepages here; mimo_tgt uses ordinary memory."""
        return {"required": False, "reason": "mimo needs no hugepages"}

    @staticmethod
    def search_file(root, name):
        """The first file called ``name`` under ``root`` (sorted walk), or None."""
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            if name in filenames:
                return os.path.join(dirpath, name)
        return None

    # --- RPC ----------------------------------------------------------------------------

    def client(self) -> Client:
        """The persistent Client on ``rpc_socket``, reconnected if the daemon dropped it."""
        if self._client is None or not self._client.is_connected():
            self._replace_client(Client(self.rpc_socket))
        return self._client

    def exec_rpc(self, method: str, params: Any = None) -> Any:
        """One call through the persistent client; raises RpcError on an error reply."""
        return self.client().call(method, params)

    def _replace_client(self, client):
        if self._client is not None:
            self._client.close()
        self._client = client
