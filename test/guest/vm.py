#!/usr/bin/python3
"""Run shell scripts in a QEMU guest with Debian 12's kernel, against mimo_tgt on the host side.
See docs/guest-tests.md.

    net = Netns()                        # a network namespace with tap0 = 10.0.0.1/24
    tgt = ...                            # mimo_tgt started with net.prefix() + [mimo_tgt, ...]
    g = Guest(image.ensure(), workdir, net)
    r = g.run("nvme discover -t tcp -a $GUEST_tgt -s 4420")
    r.status, r.output                   # the script's exit status and what it printed

The guest boots the kernel directly (PVH, -kernel vmlinux) with the base initramfs and a small
cpio holding /test/script.sh appended. Its second serial port is the result port, a Unix
socket here: the script's output arrives there line by line (Run.wait_for waits on markers the
script prints with `mark NAME`, Run.send writes a line the script reads with `wait_host`),
followed by "@@mimo:exit=N@@", then the guest powers off and QEMU exits.

Without CAP_NET_ADMIN (no network namespace), Netns is replaced by UserNet: QEMU's user
networking, where the guest reaches the host's 127.0.0.1 as 10.0.2.2 (MIMO_GUEST_NET=user
forces it).

Run as a script, `vm.py shell [KERNEL]` boots the guest with an interactive shell on the
terminal (in a network namespace with mimo_tgt's address at 10.0.0.1; start a target there with
`ip netns exec` as printed), for debugging.
"""
import glob
import itertools
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import image  # noqa: E402

QEMU = "qemu-system-x86_64"
# TCG unless told otherwise: on this machine kind /dev/kvm opens and creates a VM, but a guest
# never runs (QEMU aborts on an MSR or hangs), so "try KVM first" would not fall back.
ACCEL = os.environ.get("MIMO_GUEST_ACCEL", "tcg")
VCPUS = int(os.environ.get("MIMO_GUEST_VCPUS", "2"))
MEM_MIB = 512
# Deadline of one guest run, boot to power-off. It only bounds a failure (a boot takes 3-5 s
# under TCG here); tests never assert on timings.
TIMEOUT = float(os.environ.get("MIMO_GUEST_TIMEOUT", "300"))
NS_PREFIX = "mimo-guest-"
HOST_ADDR, GUEST_ADDR, PREFIX_LEN = "10.0.0.1", "10.0.0.2", 24
EXIT_RE = re.compile(rb"@@mimo:exit=([^@]*)@@")
MARK_RE = re.compile(rb"@@mimo:mark=([^@]*)@@")
NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# x86's COMMAND_LINE_SIZE.
CMDLINE_MAX = 2047


class GuestError(AssertionError):
    """A guest that did not finish as asked: the message has its output and console's tail."""


# Before every program started for a guest: SIGKILL it if the test process dies (pytest
# killed), so no QEMU or mimo_tgt outlives it. setpriv (util-linux) execs the program: its PID
# is the program's.
PDEATHSIG = ["setpriv", "--pdeathsig", "KILL", "--"]


def _ip(*args, check=True):
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


def _kill(pid):
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def qemu_missing():
    """Why QEMU cannot run here, or None."""
    if not shutil.which(QEMU):
        return f"{QEMU} is not installed (scripts/deps.sh installs qemu-system-x86)"
    return None


# --- networks ---------------------------------------------------------------------------------

def netns_usable():
    """True when network namespaces can be made here (root or CAP_NET_ADMIN, iproute2)."""
    if not shutil.which("ip") or not os.path.exists("/dev/net/tun"):
        return False
    name = f"{NS_PREFIX}{os.getpid()}-probe"
    if _ip("netns", "add", name, check=False).returncode != 0:
        return False
    _ip("netns", "delete", name, check=False)
    return True


def netns_names():
    return [line.split()[0] for line in _ip("netns", "list", check=False).stdout.splitlines()
            if line.split()]


def clean_stale():
    """Delete the namespaces of earlier test processes that are gone (killed before their
    teardown), kill the processes still inside them (their mimo_tgt and QEMU), and remove
    their result ports' folders."""
    for d in glob.glob(os.path.join(tempfile.gettempdir(), f"{NS_PREFIX}*-*")):
        m = re.match(re.escape(NS_PREFIX) + r"(\d+)-", os.path.basename(d))
        if m and not os.path.exists(f"/proc/{m.group(1)}"):
            shutil.rmtree(d, ignore_errors=True)
    if not shutil.which("ip"):
        return
    for name in netns_names():
        m = re.match(re.escape(NS_PREFIX) + r"(\d+)-", name)
        if not m or os.path.exists(f"/proc/{m.group(1)}"):
            continue
        for pid in _ip("netns", "pids", name, check=False).stdout.split():
            _kill(int(pid))
        _ip("netns", "delete", name, check=False)


class Netns:
    """A network namespace of its own with tap0 (HOST_ADDR/24) for the guest's NIC. Processes
    started with popen() or prefix() run inside it; delete() kills every one, by PID, and
    removes the namespace (and so tap0)."""

    _seq = itertools.count()
    kind = "netns"
    host_addr = HOST_ADDR     # where the target listens
    guest_tgt = HOST_ADDR     # the same address, as the guest reaches it
    guest_ip = f"{GUEST_ADDR}/{PREFIX_LEN}"

    def __init__(self):
        clean_stale()
        self.name = f"{NS_PREFIX}{os.getpid()}-{next(self._seq)}"
        self.procs = []
        _ip("netns", "add", self.name)
        try:
            for args in (("link", "set", "lo", "up"),
                         ("tuntap", "add", "dev", "tap0", "mode", "tap"),
                         ("addr", "add", f"{HOST_ADDR}/{PREFIX_LEN}", "dev", "tap0"),
                         ("link", "set", "tap0", "up")):
                _ip("-n", self.name, *args)
        except BaseException:
            self.delete()
            raise

    def prefix(self):
        """What runs a command inside the namespace, killed if the test process dies (ip netns
        exec and setpriv exec it: the PID is the command's)."""
        return ["ip", "netns", "exec", self.name, *PDEATHSIG]

    def popen(self, args, **kw):
        p = subprocess.Popen(self.prefix() + list(args), **kw)
        self.procs.append(p)
        return p

    def run(self, args, **kw):
        """A command inside the namespace, waited for (ip, ss...)."""
        return subprocess.run(self.prefix() + list(args), **kw)

    def qemu_netdev(self):
        return ["-netdev", "tap,id=n0,ifname=tap0,script=no,downscript=no"]

    def delete(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait()
        # Anything else a test started in here (nothing else can enter it).
        for pid in _ip("netns", "pids", self.name, check=False).stdout.split():
            _kill(int(pid))
        _ip("netns", "delete", self.name, check=False)


class UserNet:
    """The fallback without CAP_NET_ADMIN: QEMU's user networking, the target on the host's
    loopback, which the guest reaches as 10.0.2.2; so addresses the target reports (discovery
    log entries) are not ones the guest can use. Not restrict=on: libslirp then refuses the
    guest's connections to 10.0.2.2 too (ECONNREFUSED), except through guestfwd, which carries
    one connection, and NVMe/TCP needs one per queue. The guest runs nothing but the test's
    script, so it reaches no further than the test asks."""

    kind = "user"
    host_addr = "127.0.0.1"
    guest_tgt = "10.0.2.2"
    guest_ip = "10.0.2.15/24"

    def __init__(self):
        clean_stale()
        self.procs = []

    def prefix(self):
        return list(PDEATHSIG)

    def popen(self, args, **kw):
        p = subprocess.Popen(self.prefix() + list(args), **kw)
        self.procs.append(p)
        return p

    def run(self, args, **kw):
        return subprocess.run(self.prefix() + list(args), **kw)

    def qemu_netdev(self):
        return ["-netdev", "user,id=n0,restrict=off"]

    def delete(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait()


# --- the guest --------------------------------------------------------------------------------

class Result:
    def __init__(self, status, output, console, seconds):
        self.status = status      # the script's exit status (int)
        self.output = output      # what it printed (stdout and stderr), markers removed
        self.console = console    # the console's text (kernel messages, init's)
        self.seconds = seconds    # boot to power-off

    def __repr__(self):
        return f"Result(status={self.status}, {len(self.output)} chars, {self.seconds:.1f} s)"


class Run:
    """One guest boot running one script. Made by Guest.start()."""

    def __init__(self, guest, script, env, files, timeout, qemu_args=(), shared_mem=False,
                 reboot=False):
        cmdline = ["console=ttyS0", "quiet", "panic=-1"]
        params = {"ip": guest.net.guest_ip, "tgt": guest.net.guest_tgt,
                  "hostnqn": guest.hostnqn, "hostid": guest.hostid}
        params.update(env or {})
        for k, v in params.items():
            v = str(v)
            if not NAME_RE.match(k) or not v or re.search(r"[\s\"'\\]", v):
                raise ValueError(f"guest parameter {k}={v!r}: a name of letters, digits and _, "
                                 "a non-empty value without blanks, quotes or backslashes "
                                 "(pass anything else as a file)")
            cmdline.append(f"mimo.{k}={v}")
        cmdline = " ".join(cmdline)
        if len(cmdline) > CMDLINE_MAX:
            raise ValueError(f"kernel command line too long ({len(cmdline)} bytes): "
                             "pass large values as files")

        self.guest = guest
        self.timeout = timeout
        self.dir = tempfile.mkdtemp(prefix=f"run{guest.runs}-", dir=guest.workdir)
        self.console_path = os.path.join(self.dir, "console.log")
        self.output_path = os.path.join(self.dir, "output.log")
        self.qemu_log_path = os.path.join(self.dir, "qemu.log")
        self.buf = b""
        self.cond = threading.Condition()
        self.eof = False
        self.sock = None

        # The test's own cpio is kept (test.cpio); the whole initrd, base image first, only
        # while QEMU runs.
        test_cpio = os.path.join(self.dir, "test.cpio")
        with open(test_cpio, "wb") as f:
            c = image.Cpio(f)
            c.file("test/script.sh", script.encode(), 0o755)
            for path, data in (files or {}).items():
                if isinstance(data, str):
                    data = data.encode()
                mode = 0o755 if data.startswith(b"\x7fELF") or data.startswith(b"#!") else 0o644
                c.file(path, data, mode)
            c.close()
        self.initrd = initrd = os.path.join(self.dir, "initrd.cpio")
        shutil.copyfile(guest.image["initrd"], initrd)
        with open(initrd, "ab") as f, open(test_cpio, "rb") as t:
            shutil.copyfileobj(t, f)
        # Short (sun_path holds 108 bytes), and named after this process for clean_stale.
        self.sockdir = tempfile.mkdtemp(prefix=f"{NS_PREFIX}{os.getpid()}-")
        sock_path = os.path.join(self.sockdir, "result.sock")
        accel = ["-accel", "kvm", "-cpu", "host"] if ACCEL == "kvm" else \
            ["-accel", "tcg", "-cpu", "max"]
        # vhost-user back-ends map the guest's memory: it must be a shared memfd.
        mem = ["-object", f"memory-backend-memfd,id=mem,size={MEM_MIB}M,share=on",
               "-numa", "node,memdev=mem"] if shared_mem else []
        args = [QEMU, *accel, "-smp", str(VCPUS), "-m", str(MEM_MIB), "-M", "pc", *mem,
                "-nodefaults", "-no-user-config", "-display", "none",
                *([] if reboot else ["-no-reboot"]),
                "-kernel", guest.image["kernel"], "-initrd", initrd, "-append", cmdline,
                "-chardev", f"file,id=con,path={self.console_path}",
                "-device", "isa-serial,chardev=con,index=0",
                "-chardev", f"socket,id=res,path={sock_path},server=on,wait=on",
                "-device", "isa-serial,chardev=res,index=1",
                *guest.net.qemu_netdev(),
                "-device", f"virtio-net-pci,netdev=n0,romfile=,mac={guest.mac}",
                *qemu_args]
        with open(os.path.join(self.dir, "qemu.cmd"), "w") as f:
            f.write(" ".join(shlex.quote(a) for a in args) + "\n")
        self.started = time.monotonic()
        self.qemu_log = open(self.qemu_log_path, "w")
        self.proc = guest.net.popen(args, stdin=subprocess.DEVNULL, stdout=self.qemu_log,
                                    stderr=subprocess.STDOUT)
        # QEMU waits for us on the result port before it starts the guest.
        while self.sock is None:
            if self.proc.poll() is not None:
                self.close()
                raise GuestError(f"QEMU exited with {self.proc.returncode} before the guest "
                                 f"started:\n{self._read(self.qemu_log_path)}")
            if time.monotonic() - self.started > 30:
                self.kill()
                raise GuestError("QEMU did not open its result port in 30 s")
            try:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(sock_path)
                self.sock = s
            except OSError:
                s.close()
                time.sleep(0.01)
        self.out = open(self.output_path, "wb")
        self.reader = threading.Thread(target=self._read_port, daemon=True)
        self.reader.start()

    @staticmethod
    def _read(path, tail=None):
        try:
            with open(path, errors="replace") as f:
                text = f.read()
        except OSError:
            return ""
        return text[-tail:] if tail else text

    def _read_port(self):
        while True:
            try:
                chunk = self.sock.recv(65536)
            except OSError:
                chunk = b""
            with self.cond:
                if not chunk:
                    self.eof = True
                    self.cond.notify_all()
                    return
                self.buf += chunk
                self.out.write(chunk)
                self.out.flush()
                self.cond.notify_all()

    def _problem(self, what):
        self.kill()
        return GuestError(f"{what}\n--- guest output ({self.output_path}):\n"
                          f"{self.buf.decode(errors='replace')[-3000:]}\n"
                          f"--- console ({self.console_path}), last lines:\n"
                          f"{self._read(self.console_path, 3000)}\n"
                          f"--- qemu:\n{self._read(self.qemu_log_path, 1000)}")

    def _wait(self, pred, what, timeout):
        """pred() under the lock until it returns something true, then that. The guest
        ending first, or the deadline, raises GuestError (outside the lock: raising kills
        QEMU and joins the reader, which takes the lock)."""
        deadline = min(self.started + self.timeout,
                       time.monotonic() + (timeout if timeout is not None else self.timeout))
        with self.cond:
            while True:
                v = pred()
                if v:
                    return v
                if EXIT_RE.search(self.buf) or self.eof or self.proc.poll() is not None:
                    problem = f"the guest ended before {what}"
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    problem = f"timed out waiting for {what}"
                    break
                self.cond.wait(min(left, 0.5))
        raise self._problem(problem)

    def wait_for(self, name, timeout=None):
        """Wait until the script has run `mark NAME`; returns its output up to there."""
        key = f"@@mimo:mark={name}@@".encode()

        def seen():
            i = self.buf.find(key)
            return [self._clean(self.buf[:i])] if i >= 0 else None

        return self._wait(seen, f"mark {name}", timeout)[0]

    def send(self, line):
        """A line for the script's `wait_host` (its standard input)."""
        self.sock.sendall(line.encode() + b"\n")

    @staticmethod
    def _clean(raw):
        text = raw.decode(errors="replace").replace("\r\n", "\n")
        return re.sub(r"@@mimo:mark=[^@]*@@\n?", "", text)

    def wait(self, check=True):
        """Wait for the script's end and QEMU's exit: a Result. check: raise GuestError
        (with the output and the console) if the script's status is not 0."""
        m = self._wait(lambda: EXIT_RE.search(self.buf), "the script's end", None)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            raise self._problem("QEMU did not exit after the guest powered off")
        seconds = time.monotonic() - self.started
        self.close()
        code = m.group(1).decode()
        if not code.isdigit():
            raise self._problem(f"the guest's init failed: {code}")
        r = Result(int(code), self._clean(self.buf[:m.start()]),
                   self._read(self.console_path), seconds)
        if check and r.status != 0:
            raise self._problem(f"the guest script exited with {r.status}")
        return r

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.close()

    def close(self):
        if self.sock:
            self.sock.close()
        self.reader.join(timeout=5) if hasattr(self, "reader") else None
        if hasattr(self, "out") and not self.out.closed:
            self.out.close()
        self.qemu_log.close()
        shutil.rmtree(self.sockdir, ignore_errors=True)
        if self.proc.poll() is not None and os.path.exists(self.initrd):
            os.unlink(self.initrd)


class Guest:
    """Boots guests on `net` (Netns or UserNet) from image.ensure()'s files; one at a time.
    Logs of run N stay in workdir/runN-*/ (console.log, output.log, qemu.log, qemu.cmd)."""

    def __init__(self, image_paths, workdir, net):
        self.image = image_paths
        self.workdir = workdir
        self.net = net
        self.runs = 0
        self.current = None
        u = uuid.uuid4()
        self.hostid = str(u)
        self.hostnqn = f"nqn.2014-08.org.nvmexpress:uuid:{u}"
        self.mac = "52:54:00:6d:69:6f"

    def start(self, script, env=None, files=None, timeout=TIMEOUT, **qemu):
        """Boot a guest that runs `script` (busybox sh, `set -e`, helpers of guest.sh) and
        return its Run. env: {NAME: value}, the script's $GUEST_NAME (on the kernel command
        line: no blanks or quotes). files: {path in the guest: bytes or str}. qemu:
        qemu_args (more devices), shared_mem (guest memory as a shared memfd, for vhost-user
        back-ends), reboot (a reboot restarts the guest instead of ending QEMU)."""
        if self.current and self.current.proc.poll() is None:
            raise RuntimeError("one guest at a time: wait() for the previous run first")
        self.runs += 1
        self.current = Run(self, script, env, files, timeout, **qemu)
        return self.current

    def run(self, script, env=None, files=None, timeout=TIMEOUT, check=True, **qemu):
        """start(...).wait(check): the script's Result."""
        return self.start(script, env, files, timeout, **qemu).wait(check)

    def close(self):
        if self.current:
            self.current.kill()


def shell(kernel=image.DEFAULT_KERNEL):
    """An interactive guest on this terminal, in a network namespace of its own."""
    paths = image.ensure(kernel)
    net = Netns()
    try:
        print(f"namespace {net.name}: start a target there with\n"
              f"  ip netns exec {net.name} build/bin/mimo_tgt -r /tmp/guest-tgt.sock\n"
              f"and listen on {HOST_ADDR}; in the guest: $GUEST_tgt. Quit: poweroff -f",
              file=sys.stderr)
        u = uuid.uuid4()
        args = [QEMU, "-accel", ACCEL, "-cpu", "max" if ACCEL == "tcg" else "host",
                "-smp", str(VCPUS), "-m", str(MEM_MIB), "-M", "pc", "-nodefaults",
                "-no-user-config", "-display", "none", "-no-reboot",
                "-kernel", paths["kernel"], "-initrd", paths["initrd"], "-append",
                f"console=ttyS0 quiet panic=-1 mimo.shell=1 mimo.ip={net.guest_ip} "
                f"mimo.tgt={net.guest_tgt} mimo.hostnqn=nqn.2014-08.org.nvmexpress:uuid:{u}",
                "-serial", "mon:stdio", *net.qemu_netdev(),
                "-device", "virtio-net-pci,netdev=n0,romfile="]
        subprocess.run(net.prefix() + args)
    finally:
        net.delete()


if __name__ == "__main__":
    if sys.argv[1:2] == ["shell"] and len(sys.argv) <= 3:
        shell(*sys.argv[2:])
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
