"""The FUSE export against real mounts: bdev files read and written through the kernel,
kept coherent (or knowingly not) when an NVMe/TCP host writes the same bdev, RETRIEVE read-back,
bdevs appearing and vanishing, poll() on the events file, dd, fio, ext4 on a loop device, bad
input, unmount at SIGTERM and after a crash. As root; skipped where /dev/fuse cannot be opened."""
import errno
import hashlib
import json
import os
import random
import select
import shutil
import signal
import struct
import subprocess
import tempfile
import threading

import pytest

from conftest import BIN, SLOW, TGT, RpcFailure, clean_env, free_port, wait_until
from nvme_tcp_host import admin_session, io_session, status_of

NQN = "nqn.2016-06.io.spdk:fuse"
SIZE = 64 << 20


def _fuse_usable():
    try:
        os.close(os.open("/dev/fuse", os.O_RDWR))
        return None
    except OSError as e:
        return f"/dev/fuse cannot be opened ({e.strerror}): FUSE tests need root and /dev/fuse"


pytestmark = pytest.mark.skipif(_fuse_usable() is not None, reason=str(_fuse_usable()))


def mounted(path):
    with open("/proc/mounts") as f:
        return any(line.split()[1] == path for line in f)


@pytest.fixture
def mnt(tmp_path):
    """A mountpoint; whatever happens, nothing stays mounted on it after the test."""
    d = tmp_path / "mnt"
    d.mkdir()
    path = str(d)
    yield path
    for _ in range(3):
        if not mounted(path):
            break
        subprocess.run(["fusermount3", "-u", "-z", path], capture_output=True)
        subprocess.run(["umount", "-l", path], capture_output=True)
    assert not mounted(path), f"{path} left mounted"


def export(t, mnt, **params):
    t.result("fuse_export_create", {"mountpoint": mnt, **params})
    assert mounted(mnt)
    return os.path.join(mnt, "bdevs")


def close_quietly(fd):
    """close() of a file whose connection was aborted fails (flush: ENOTCONN)."""
    try:
        os.close(fd)
    except OSError as e:
        assert e.errno == errno.ENOTCONN


def pread(path, off, n):
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.pread(fd, n, off)
    finally:
        os.close(fd)


def entries(t, export=0):
    """How many entry notifications (INVAL_ENTRY, DELETE) an export has sent."""
    return t.result("fuse_get_exports")[export]["notifications"]["entry"]


def notifier_passed(t, bdev, export=0):
    """Delete bdev, whose file the kernel knows (looked up) and that existed before the export
    (so no notification of its creation can be counted instead), and return once the export's
    notifier has sent its deletion. The notifier works through its queue in order: whatever
    was queued before - a write's STORE or INVAL - has been sent by then."""
    before = entries(t, export)
    t.result("bdev_null_delete", {"name": bdev})
    wait_until(lambda: entries(t, export) > before, what=f"the deletion of {bdev} to be notified")


def serve_nvmf(t, bdev, port):
    t.result("nvmf_create_transport", {"trtype": "tcp"})
    t.result("nvmf_create_subsystem", {"nqn": NQN, "allow_any_host": True})
    t.result("nvmf_subsystem_add_ns", {"nqn": NQN, "namespace": {"bdev_name": bdev}})
    t.result("nvmf_subsystem_add_listener", {"nqn": NQN, "listen_address": {
        "trtype": "tcp", "adrfam": "IPv4", "traddr": "127.0.0.1", "trsvcid": str(port)}})
    a = admin_session(port, NQN)
    return a, io_session(port, a, NQN)


# --- coherence ---------------------------------------------------------------------------------

@pytest.mark.parametrize("coherence", ["store", "inval", "none"])
def test_nvmf_write_seen_through_file(mnt, daemons, coherence):
    t = daemons()
    t.result("bdev_malloc_create", {"name": "M0", "num_blocks": SIZE // 512, "block_size": 512})
    t.result("bdev_null_create", {"name": "Marker", "num_blocks": 8, "block_size": 512})
    bdevs = export(t, mnt, coherence=coherence)
    f = os.path.join(bdevs, "M0")
    # The kernel knows it, and the open fd keeps its entry from being reclaimed.
    marker = os.open(os.path.join(bdevs, "Marker"), os.O_RDONLY)
    port = free_port()
    admin, q = serve_nvmf(t, "M0", port)

    fd = os.open(f, os.O_RDONLY)
    try:
        before = os.pread(fd, 64 << 10, 1 << 20)            # now in the page cache
        assert before == bytes(64 << 10)
        new = os.urandom(64 << 10)
        cqe, _ = q.write(1, (1 << 20) // 512, new, icd=False)
        assert status_of(cqe["status"])[:2] == (0, 0)
        if coherence == "none":
            # The libfuse test method: without notify the cache keeps serving the old bytes -
            # checked once any notification of the write would have been sent.
            notifier_passed(t, "Marker")
            assert os.pread(fd, 64 << 10, 1 << 20) == before
        else:
            wait_until(lambda: os.pread(fd, 64 << 10, 1 << 20) == new, what="the new bytes")
        v = t.result("fuse_export_verify_cache", {"mountpoint": mnt, "bdev": "M0"})
        assert v["pages_checked"] >= 16
        if coherence == "none":
            assert v["pages_mismatched"] == 16
        else:
            assert v["pages_mismatched"] == 0
        n = t.result("fuse_get_exports")[0]["notifications"]
        if coherence == "store":
            assert n["store"] >= 1 and n["store_bytes"] >= len(new)
        elif coherence == "inval":
            assert n["inval_inode"] >= 1 and n["store"] == 0
        else:
            assert n["store"] == 0 and n["inval_inode"] == 0
    finally:
        os.close(fd)
        os.close(marker)
        q.close()
        admin.close()


def notifications(t, export=0):
    return t.result("fuse_get_exports")[export]["notifications"]


def _stamp(tag, i, size):
    """size bytes that no earlier write of a test left anywhere: tag and i, repeated."""
    return struct.pack("<QQ", tag, i) * (size // 16) + bytes(size % 16)


class _Churn:
    """A thread that keeps dropping the file's first `span` bytes from the page cache and
    reading them back, so that READ requests are in flight when writes land."""

    def __init__(self, path, span):
        self.fd = os.open(path, os.O_RDONLY)
        self.span = span
        self.stop = threading.Event()
        self.reads = 0
        self.th = threading.Thread(target=self.run)
        self.th.start()

    def run(self):
        while not self.stop.is_set():
            os.posix_fadvise(self.fd, 0, self.span, os.POSIX_FADV_DONTNEED)
            os.pread(self.fd, self.span, 0)
            self.reads += 1

    def close(self):
        self.stop.set()
        self.th.join()
        os.close(self.fd)


RAW_PAGES = 64          # the pages written and read back (256 KiB, all cached)
RAW_ROUNDS = 3
RAW_PAIRS = 1000        # per round


@pytest.mark.parametrize("coherence", ["store", "inval"])
def test_read_after_nvmf_write_is_never_stale(mnt, daemons, coherence):
    """Read-after-write across paths (issue 10): once an NVMe/TCP write has completed to the
    host, a read of those bytes through the file returns them - never the older bytes the page
    cache held before the write. Thousands of write-then-read pairs in rounds, each page cached
    just before its write, whole pages and 512-byte pieces of them, while another reader keeps
    evicting and re-reading the same pages so that reads are in flight as writes land. A write
    to a bdev whose file the kernel has not looked up is not held at all; deleting the export
    while writes are held answers them."""
    t = daemons()
    t.result("bdev_malloc_create", {"name": "M0", "num_blocks": 8192, "block_size": 512})
    bdevs = export(t, mnt, coherence=coherence)
    admin, q = serve_nvmf(t, "M0", free_port())
    f = os.path.join(bdevs, "M0")
    rng = random.Random(10)
    stale, pairs = [], 0
    try:
        # No kernel knows the file yet: nothing to update, nothing held.
        cqe, _ = q.write(1, 0, os.urandom(4096))
        assert status_of(cqe["status"])[:2] == (0, 0)
        assert notifications(t).get("held_writes", 0) == 0
        fd = os.open(f, os.O_RDONLY)
        churn = _Churn(f, RAW_PAGES * 4096)
        try:
            for rnd in range(RAW_ROUNDS):
                for i in range(RAW_PAIRS):
                    page = rng.randrange(RAW_PAGES)
                    if i % 2:
                        off, size = page * 4096, 4096
                    else:
                        off, size = page * 4096 + 512 * rng.randrange(8), 512
                    os.pread(fd, 4096, page * 4096)            # the old bytes, cached
                    data = _stamp(rnd + 1, i, size)
                    cqe, _ = q.write(1, off // 512, data)
                    assert status_of(cqe["status"])[:2] == (0, 0)
                    got = os.pread(fd, size, off)             # the write has completed
                    pairs += 1
                    if got != data:
                        stale.append((rnd, i, off, size))
        finally:
            churn.close()
        assert not stale, (f"{len(stale)} of {pairs} reads right after a completed NVMe "
                           f"write returned older data, e.g. (round, i, off, size) {stale[:5]}")
        assert churn.reads > 0
        n = notifications(t)
        assert n["held_writes"] >= pairs and n["held_answered_early"] == 0
        key = "store" if coherence == "store" else "inval_inode"
        assert n[key] >= pairs
        v = t.result("fuse_export_verify_cache", {"mountpoint": mnt, "bdev": "M0"})
        assert v["pages_checked"] >= 1 and v["pages_mismatched"] == 0

        # Deleted while writes are held: they are answered, and writes go on.
        done = [0]
        stop = threading.Event()
        errors = []

        def hammer():
            k = 0
            while not stop.is_set():
                cqe, _ = q.write(1, 8 * (k % RAW_PAGES), _stamp(9, k, 4096))
                if status_of(cqe["status"])[:2] != (0, 0):
                    errors.append(cqe)
                done[0] += 1
                k += 1
        th = threading.Thread(target=hammer)
        th.start()
        try:
            wait_until(lambda: done[0] > 50, what="writes to flow")
            reads = os.pread(fd, RAW_PAGES * 4096, 0)          # and be held
            assert len(reads) == RAW_PAGES * 4096
            t.result("fuse_export_delete", {"mountpoint": mnt})
            after = done[0]
            wait_until(lambda: done[0] > after + 50, what="NVMe writes to go on after the delete")
        finally:
            stop.set()
            th.join()
            close_quietly(fd)
        assert not errors
    finally:
        q.close()
        admin.close()


def test_read_after_write_through_another_export(mnt, tmp_path, daemons):
    """Read-after-write between exports of one bdev: once write() through one mount has
    returned, a read through another returns the new bytes - whole pages, 512-byte pieces and
    unaligned bytes (read-modify-written), between three exports (store, inval, read-only).
    Then both writable mounts write partial pages into the same pages at once, with the pages
    evicted so that the kernel keeps each partly written page locked while its write is
    answered - each write waits for the other mount's cache, which waits for that page: every
    write must still return. SIGTERM while writes are held ends the daemon cleanly."""
    t = daemons()
    t.result("bdev_malloc_create", {"name": "M0", "num_blocks": 8192, "block_size": 512})
    mounts = [mnt, str(tmp_path / "mnt2"), str(tmp_path / "mnt3")]
    os.mkdir(mounts[1])
    os.mkdir(mounts[2])
    export(t, mounts[0], coherence="store")
    export(t, mounts[1], coherence="inval", bdevs=["M0"])
    export(t, mounts[2], coherence="store", bdevs=["M0"], writable=False)
    files = [os.path.join(m, "bdevs", "M0") for m in mounts]
    fds = [os.open(files[0], os.O_RDWR), os.open(files[1], os.O_RDWR),
           os.open(files[2], os.O_RDONLY)]
    rng = random.Random(11)
    stale, pairs = [], 0
    try:
        for i in range(1500):
            src = i % 2
            page = rng.randrange(RAW_PAGES)
            kind = i % 3
            if kind == 0:
                off, size = page * 4096, 4096
            elif kind == 1:
                off, size = page * 4096 + 512 * rng.randrange(8), 512
            else:
                off, size = page * 4096 + rng.randrange(4000), 1 + rng.randrange(96)
            readers = [k for k in range(3) if k != src]
            for k in readers:
                os.pread(fds[k], 4096, page * 4096)           # the old bytes, cached
            data = _stamp(3, i, size) if size >= 16 else bytes([i % 251 + 1]) * size
            assert os.pwrite(fds[src], data, off) == size
            for k in readers:
                pairs += 1
                if os.pread(fds[k], size, off) != data:
                    stale.append((i, src, k, off, size))
        assert not stale, (f"{len(stale)} of {pairs} reads through another export right after "
                           f"write() returned older data, e.g. (i, from, to, off, size) "
                           f"{stale[:5]}")
        for k in range(3):
            n = notifications(t, k)
            assert n["held_writes"] > 0

        # Partial pages into the same pages through both writable mounts at once.
        progress = [0, 0]
        failures = []

        def writer(k):
            try:
                for j in range(200):
                    page = j % 4
                    os.posix_fadvise(fds[k], page * 4096, 4096, os.POSIX_FADV_DONTNEED)
                    os.pwrite(fds[k], bytes([k + 1]) * 100, page * 4096 + 1000 * k + 7)
                    progress[k] += 1
            except OSError as e:                               # pragma: no cover
                failures.append(e)
        ths = [threading.Thread(target=writer, args=(k,)) for k in (0, 1)]
        for th in ths:
            th.start()
        wait_until(lambda: not any(th.is_alive() for th in ths), timeout=120,
                   what=f"both mounts' writers to finish (done {progress})")
        assert not failures and progress == [200, 200]
        for k, m in enumerate(mounts):
            v = t.result("fuse_export_verify_cache", {"mountpoint": m, "bdev": "M0"})
            assert v["pages_mismatched"] == 0, (m, v)

        # SIGTERM while NVMe writes to cached pages are being held.
        admin, q = serve_nvmf(t, "M0", free_port())
        stop = threading.Event()
        done = [0]

        def hammer():
            k = 0
            try:
                while not stop.is_set():
                    q.write(1, 8 * (k % RAW_PAGES), _stamp(4, k, 4096))
                    done[0] += 1
                    k += 1
            except Exception:                                  # the daemon went
                pass
        th = threading.Thread(target=hammer)
        th.start()
        try:
            wait_until(lambda: done[0] > 20, what="NVMe writes to flow")
            for k in range(3):
                os.pread(fds[k], RAW_PAGES * 4096, 0)
            before = notifications(t)["held_writes"]
            wait_until(lambda: notifications(t)["held_writes"] > before + 10,
                       what="NVMe writes to be held")
            assert t.stop(signal.SIGTERM) == 0
        finally:
            stop.set()
            q.close()
            admin.close()
            th.join()
        assert not any(mounted(m) for m in mounts)
    finally:
        for fd in fds:
            close_quietly(fd)


def test_own_writes_and_second_export(mnt, tmp_path, daemons):
    """Writes through the file are the bdev's; a second export of the same bdev sees them."""
    t = daemons()
    t.result("bdev_malloc_create", {"name": "M0", "num_blocks": 8192, "block_size": 512})
    b1 = export(t, mnt)
    m2 = tmp_path / "mnt2"
    m2.mkdir()
    b2 = export(t, str(m2), bdevs=["M0"])
    try:
        f1, f2 = os.path.join(b1, "M0"), os.path.join(b2, "M0")
        assert pread(f2, 0, 4096) == bytes(4096)              # cached in export 2
        data = os.urandom(5000)                               # unaligned: read-modify-write
        fd = os.open(f1, os.O_RDWR)
        assert os.pwrite(fd, data, 100) == len(data)
        os.fsync(fd)
        os.close(fd)
        assert pread(f1, 100, len(data)) == data
        wait_until(lambda: pread(f2, 100, len(data)) == data, what="export 2 to see the write")
        v = t.result("fuse_export_verify_cache", {"mountpoint": str(m2), "bdev": "M0"})
        assert v["pages_checked"] >= 1 and v["pages_mismatched"] == 0
    finally:
        t.result("fuse_export_delete", {"mountpoint": str(m2)})
    assert not mounted(str(m2))


# --- bdevs and events ----------------------------------------------------------------------

def test_bdevs_come_and_go_and_events_poll(mnt, daemons):
    t = daemons()
    t.result("bdev_malloc_create", {"name": "A", "num_blocks": 2048, "block_size": 512})
    bdevs = export(t, mnt)
    assert sorted(os.listdir(mnt)) == ["bdevs", "events", "names"]
    assert os.listdir(bdevs) == ["A"]
    assert os.stat(os.path.join(bdevs, "A")).st_size == 2048 * 512
    with pytest.raises(FileNotFoundError):
        os.stat(os.path.join(bdevs, "B"))                      # and now a negative lookup

    ev = os.open(os.path.join(mnt, "events"), os.O_RDONLY | os.O_NONBLOCK)
    try:
        with pytest.raises(BlockingIOError):
            os.read(ev, 4096)
        p = select.poll()
        p.register(ev, select.POLLIN)
        assert p.poll(0) == []
        # A thread blocks in poll() first; only then is the bdev created (by this thread), so
        # the wakeup must come through FUSE_NOTIFY_POLL, not from a poll that starts late.
        got = {}

        def poller():
            got["tid"] = threading.get_native_id()
            got["r"] = p.poll(10000 * SLOW)
        th = threading.Thread(target=poller)
        th.start()
        wait_until(lambda: "tid" in got and _in_syscall(os.getpid(), got["tid"], 7, ev),
                   what="the poller to block in poll()")
        polls = t.result("fuse_get_exports")[0]["notifications"]["poll"]
        t.result("bdev_malloc_create", {"name": "B", "num_blocks": 4096, "block_size": 4096})
        th.join(15 * SLOW)
        assert not th.is_alive()
        r = got["r"]
        assert r and r[0][1] & select.POLLIN                    # woken, not timed out
        assert t.result("fuse_get_exports")[0]["notifications"]["poll"] > polls
        lines = wait_until(lambda: _read_nb(ev), what="the bdev_created line")
        assert b'"type":"bdev_created","ctx":"B"' in lines
        # bdev B shows up at once (its negative dentry was invalidated)
        assert sorted(os.listdir(bdevs)) == ["A", "B"]
        assert os.stat(os.path.join(bdevs, "B")).st_size == 4096 * 4096
        assert pread(os.path.join(bdevs, "B"), 0, 4096) == bytes(4096)

        t.result("bdev_malloc_delete", {"name": "B"})
        assert os.listdir(bdevs) == ["A"]
        wait_until(lambda: not os.path.exists(os.path.join(bdevs, "B")), what="B to vanish")
        assert b'"bdev_deleted"' in wait_until(lambda: _read_nb(ev), what="the bdev_deleted line")
    finally:
        os.close(ev)


def _in_syscall(pid, tid, nr, fd):
    """Whether thread tid of pid is inside syscall nr (x86-64 numbers: read 0, poll 7) whose
    first argument is fd (for poll: whose pollfd array holds it - not checked, nr is enough
    when only one poll runs)."""
    try:
        with open(f"/proc/{pid}/task/{tid}/syscall") as f:
            fields = f.read().split()
    except OSError:
        return False
    if not fields or fields[0] != str(nr):
        return False
    return nr != 0 or int(fields[1], 16) == fd


def _blocked_reading(pid, path):
    """Whether process pid (one thread) is inside read() of its open file path."""
    try:
        fds = {int(fd) for fd in os.listdir(f"/proc/{pid}/fd")
               if os.readlink(f"/proc/{pid}/fd/{fd}") == path}
    except OSError:
        return False
    return any(_in_syscall(pid, pid, 0, fd) for fd in fds)


def _read_nb(fd):
    try:
        return os.read(fd, 65536)
    except BlockingIOError:
        return b""


def test_listing_of_many_bdevs_is_whole(mnt, daemons):
    """A listing that takes many READDIR calls (300 names) has every bdev once, and a rewound
    directory sees a bdev created meanwhile."""
    t = daemons()
    names = [f"Many{i:03d}_{'x' * 40}" for i in range(300)]
    for n in names:
        t.result("bdev_null_create", {"name": n, "num_blocks": 8, "block_size": 512})
    bdevs = export(t, mnt)
    assert sorted(os.listdir(bdevs)) == names
    fd = os.open(bdevs, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with os.scandir(fd) as it:
            assert len([e.name for e in it]) == 300
        t.result("bdev_null_create", {"name": "Late", "num_blocks": 8, "block_size": 512})
        os.lseek(fd, 0, os.SEEK_SET)                               # rewinddir
        with os.scandir(fd) as it:
            assert "Late" in [e.name for e in it]
    finally:
        os.close(fd)


def test_events_blocking_read(mnt, daemons):
    t = daemons()
    export(t, mnt)
    events = os.path.join(mnt, "events")
    p = subprocess.Popen(["head", "-c", "1", events], stdout=subprocess.PIPE)
    # parked: blocked in read() of the events file, no event yet
    wait_until(lambda: _blocked_reading(p.pid, events), what="head to block in read()")
    assert p.poll() is None
    t.result("bdev_null_create", {"name": "N0", "num_blocks": 1024, "block_size": 512})
    assert p.communicate(timeout=5 * SLOW)[0] == b"{"
    # A blocked reader that is killed does not hang: its request is interrupted. Ctrl-C's
    # SIGINT, at its default action in the child whatever this run inherited: a background
    # job (`setsid make test &`, a CI runner) starts with SIGINT ignored, and an ignored
    # signal never reaches the reader at all.
    p = subprocess.Popen(["cat", events], stdout=subprocess.DEVNULL,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    wait_until(lambda: _blocked_reading(p.pid, events), what="cat to block in read()")
    p.send_signal(signal.SIGINT)
    assert p.wait(timeout=5 * SLOW) == -signal.SIGINT


def test_bdev_subset_and_read_only(mnt, daemons):
    t = daemons()
    for n in ("A", "B"):
        t.result("bdev_malloc_create", {"name": n, "num_blocks": 1024, "block_size": 512})
    bdevs = export(t, mnt, bdevs=["B", "C"], writable=False)
    assert os.listdir(bdevs) == ["B"]
    assert not os.path.exists(os.path.join(bdevs, "A"))
    with pytest.raises(OSError) as e:
        os.open(os.path.join(bdevs, "B"), os.O_RDWR)
    assert e.value.errno == errno.EROFS
    t.result("bdev_malloc_create", {"name": "C", "num_blocks": 1024, "block_size": 512})
    assert sorted(os.listdir(bdevs)) == ["B", "C"]
    e = t.result("fuse_get_exports")
    assert e[0]["mountpoint"] == mnt and e[0]["bdevs"] == ["B", "C"] and not e[0]["writable"]


def _as_nobody(*cmd):
    return subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *cmd],
                          capture_output=True, text=True, timeout=30)


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="setpriv is not installed")
@pytest.mark.parametrize("allow_other", [False, True])
def test_other_users_cannot_read(daemons, allow_other):
    """Files are the daemon's user's alone (as qemu-storage-daemon's): 0600, dirs 0700,
    checked by the kernel (default_permissions); allow_other only lets others reach the mount."""
    if os.getuid() != 0:
        pytest.skip("needs root to switch to another user")
    # Not under pytest's tmp_path (0700 for root): every user must reach the mountpoint, so
    # only the mount decides.
    mnt = tempfile.mkdtemp(prefix="mimo-fuse-perm-", dir="/tmp")
    os.chmod(mnt, 0o755)
    try:
        _check_other_users(daemons, mnt, allow_other)
    finally:
        if mounted(mnt):
            subprocess.run(["umount", "-l", mnt], capture_output=True)
        assert not mounted(mnt)
        os.rmdir(mnt)


def _check_other_users(daemons, mnt, allow_other):
    t = daemons()
    t.result("bdev_malloc_create", {"name": "M0", "num_blocks": 2048, "block_size": 512})
    bdevs = export(t, mnt, allow_other=allow_other)
    f = os.path.join(bdevs, "M0")
    st = os.stat(f)
    assert (st.st_mode & 0o777, st.st_uid, st.st_gid) == (0o600, os.getuid(), os.getgid())
    assert os.stat(bdevs).st_mode & 0o777 == 0o700
    assert os.stat(os.path.join(mnt, "events")).st_mode & 0o777 == 0o400
    assert pread(f, 0, 512) == bytes(512)                      # the daemon's user can
    for path in (f, os.path.join(mnt, "events")):
        p = _as_nobody("cat", path)
        assert p.returncode != 0 and "denied" in p.stderr, p.stderr
    assert t.result("fuse_get_exports")[0]["allow_other"] is allow_other


# --- file names ------------------------------------------------------------------------------

def _escape_tokens(name):
    dots = name in (".", "..")
    for ch in name:
        yield f"\\x{ord(ch):02x}" if ch in "/\\~" or (dots and ch == ".") else ch


def file_name(name, taken=()):
    """docs/fuse.md "File names", written again in Python: the file name of bdev name when the
    export shows bdevs named `taken`."""
    if 0 < len(name.encode()) <= 255 and "/" not in name and name not in (".", ".."):
        return name
    esc = "".join(_escape_tokens(name))
    if len(esc.encode()) <= 255 and esc not in taken:
        return esc
    prefix = ""
    for tok in _escape_tokens(name):                     # cut between characters and escapes
        if len((prefix + tok).encode()) > 222:
            break
        prefix += tok
    digest = hashlib.sha256(name.encode()).digest()
    k = 0
    while True:
        d = digest if k == 0 else hashlib.sha256(digest + k.to_bytes(4, "big")).digest()
        if prefix + "~" + d.hex()[:32] not in taken:
            return prefix + "~" + d.hex()[:32]
        k += 1


def names_file(mnt):
    with open(os.path.join(mnt, "names"), encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def test_every_bdev_name_is_reachable(mnt, daemons):
    """Names no file can have - an lvol alias with '/', "." and "..", names over 255 bytes (also
    of several thousand: SPDK and mimo set no limit) - are listed and reachable under mapped
    names; a bdev named as an escaped name would be keeps it, and the other moves to a hashed
    name, as does one whose hashed name a bdev has taken. One name never fails the listing."""
    long_slash = "lvs/" + "v" * 300
    names = [
        "M0", "lvs/lvol0", "lvs\\x2flvol0", ".", "..", "e" * 255, "f" * 256,
        "a" * 220 + "/b" * 40,                 # the cut falls inside an escape: before it
        "x" + "\u00e9" * 150,                     # ...inside a 2-byte character: before it
        "~/" + "w" * 5000,
        long_slash, file_name(long_slash),     # a bdev named as another's hashed name
    ]
    t = daemons()
    for i, n in enumerate(names):
        t.result("bdev_malloc_create", {"name": n, "num_blocks": 8 + i, "block_size": 512})
    bdevs = export(t, mnt)
    want = {n: file_name(n, names) for n in names}
    assert want["lvs/lvol0"] != "lvs\\x2flvol0" and want["lvs\\x2flvol0"] == "lvs\\x2flvol0"
    assert want["e" * 255] == "e" * 255 and want[".."] == "\\x2e\\x2e"
    assert want[long_slash] != file_name(long_slash)   # moved on to its second hashed name
    assert sorted(os.listdir(bdevs)) == sorted(want.values())
    for i, n in enumerate(names):
        path = os.path.join(bdevs, want[n])
        assert os.stat(path).st_size == (8 + i) * 512, n      # this very bdev
        data = hashlib.sha256(n.encode()).digest() * 16
        fd = os.open(path, os.O_RDWR)
        try:
            assert os.pwrite(fd, data, 512) == len(data)
            os.fsync(fd)
        finally:
            os.close(fd)
        assert pread(path, 512, len(data)) == data
        v = t.result("fuse_export_verify_cache", {"mountpoint": mnt, "bdev": n})
        assert v["pages_checked"] >= 1 and v["pages_mismatched"] == 0
    # The names file says which bdev each file is.
    uuids = {b["name"]: b["uuid"] for b in t.result("bdev_get_bdevs")}
    assert sorted((e["file"], e["bdev"], e["uuid"]) for e in names_file(mnt)) == \
        sorted((want[n], n, uuids[n]) for n in names)
    # No other name finds anything: not a name that decodes to a bdev shown under another.
    h = want[long_slash]                               # a hashed name one digit off
    for absent in ("lvs\\x2flvol1", "\\x4d0", "lvs\\x2Flvol0", h[:-1] + "01"[h[-1] == "0"]):
        assert not os.path.exists(os.path.join(bdevs, absent)), absent
    # The rest of the export is as before.
    assert sorted(os.listdir(mnt)) == ["bdevs", "events", "names"]
    ev = os.open(os.path.join(mnt, "events"), os.O_RDONLY | os.O_NONBLOCK)
    try:
        t.result("bdev_null_create", {"name": "late/one", "num_blocks": 8, "block_size": 512})
        assert b'"ctx":"late/one"' in wait_until(lambda: _read_nb(ev), what="bdev_created")
        assert file_name("late/one") in os.listdir(bdevs)
    finally:
        os.close(ev)


def test_mapped_names_follow_bdevs_that_come_and_go(mnt, daemons):
    """The kernel caches names for an hour: every notification uses the file name. A bdev
    created under the escaped name of another takes the name over (the other moves to its
    hashed name, its open file unharmed) and gives it back when deleted; a deleted bdev's
    mapped name is gone at once."""
    t = daemons()
    lvol, look = "lvs/lvol0", "lvs\\x2flvol0"
    esc, hashed = file_name(lvol), file_name(lvol, [look])
    t.result("bdev_malloc_create", {"name": lvol, "num_blocks": 64, "block_size": 512})
    bdevs = export(t, mnt)

    def size(f):
        return os.stat(os.path.join(bdevs, f)).st_size
    assert os.listdir(bdevs) == [esc] and size(esc) == 64 * 512
    fd = os.open(os.path.join(bdevs, esc), os.O_RDWR)
    try:
        os.pwrite(fd, b"\x5a" * 4096, 0)
        t.result("bdev_malloc_create", {"name": look, "num_blocks": 32, "block_size": 512})
        wait_until(lambda: size(esc) == 32 * 512, what=f"{esc} to be the new bdev's")
        assert sorted(os.listdir(bdevs)) == sorted([esc, hashed])
        assert size(hashed) == 64 * 512
        assert os.pread(fd, 4096, 0) == b"\x5a" * 4096      # the open file is still lvs/lvol0
        assert pread(os.path.join(bdevs, hashed), 0, 4096) == b"\x5a" * 4096
        assert pread(os.path.join(bdevs, esc), 0, 4096) == bytes(4096)

        t.result("bdev_malloc_delete", {"name": look})
        # The hashed name goes by itself (nothing looks up the escaped one before)...
        wait_until(lambda: not os.path.exists(os.path.join(bdevs, hashed)),
                   what=f"{hashed} to vanish")
        wait_until(lambda: size(esc) == 64 * 512, what=f"{lvol} back under {esc}")
        assert os.listdir(bdevs) == [esc]
        assert pread(os.path.join(bdevs, esc), 0, 4096) == b"\x5a" * 4096
    finally:
        os.close(fd)
    t.result("bdev_malloc_delete", {"name": lvol})
    wait_until(lambda: not os.path.exists(os.path.join(bdevs, esc)), what=f"{esc} to vanish")
    assert os.listdir(bdevs) == [] and names_file(mnt) == []


def test_bdev_filter_takes_bdev_names(mnt, daemons):
    """An export's `bdevs` are bdev names, '/' and all; a bdev it leaves out takes no file name
    from one it shows."""
    t = daemons()
    for n in ("lvs/lvol0", "lvs\\x2flvol0", ".."):
        t.result("bdev_malloc_create", {"name": n, "num_blocks": 8, "block_size": 512})
    bdevs = export(t, mnt, bdevs=["lvs/lvol0", ".."])
    assert sorted(os.listdir(bdevs)) == sorted(["lvs\\x2flvol0", "\\x2e\\x2e"])
    assert os.stat(os.path.join(bdevs, "lvs\\x2flvol0")).st_size == 8 * 512
    assert t.result("fuse_get_exports")[0]["bdevs"] == ["lvs/lvol0", ".."]
    assert {e["bdev"] for e in names_file(mnt)} == {"lvs/lvol0", ".."}


# --- tools ---------------------------------------------------------------------------------

def test_dd(mnt, tmp_path, daemons):
    t = daemons()
    t.result("bdev_malloc_create", {"name": "M0", "num_blocks": SIZE // 512, "block_size": 512})
    f = os.path.join(export(t, mnt), "M0")
    src = tmp_path / "src"
    src.write_bytes(os.urandom(8 << 20))
    for flags in ([], ["oflag=direct"]):
        subprocess.run(["dd", f"if={src}", f"of={f}", "bs=1M", *flags], check=True,
                       capture_output=True)
        out = subprocess.run(["dd", f"if={f}", "bs=1M", "count=8", "iflag=direct"],
                             check=True, capture_output=True).stdout
        assert hashlib.sha256(out).digest() == hashlib.sha256(src.read_bytes()).digest()
    assert os.stat(f).st_size == SIZE                           # O_TRUNC changed nothing


@pytest.mark.skipif(shutil.which("fio") is None, reason="fio is not installed")
def test_fio_verify(mnt, daemons):
    t = daemons()
    t.result("bdev_malloc_create", {"name": "M0", "num_blocks": SIZE // 512, "block_size": 512})
    f = os.path.join(export(t, mnt), "M0")
    for direct in (1, 0):
        p = subprocess.run(["fio", "--name=v", f"--filename={f}", "--rw=randwrite", "--bs=4k",
                            "--size=16M", "--ioengine=psync", f"--direct={direct}",
                            "--numjobs=1", "--verify=crc32c", "--do_verify=1", "--verify_state_save=0",
                            "--output-format=terse"], capture_output=True, text=True,
                           timeout=120 * SLOW)
        assert p.returncode == 0, p.stdout + p.stderr


def test_ext4_on_loop_device(mnt, tmp_path, daemons):
    if shutil.which("losetup") is None or shutil.which("mkfs.ext4") is None:
        pytest.skip("losetup or mkfs.ext4 missing")
    t = daemons()
    t.result("bdev_malloc_create", {"name": "M0", "num_blocks": SIZE // 4096, "block_size": 4096})
    f = os.path.join(export(t, mnt), "M0")
    p = subprocess.run(["losetup", "-f", "--show", f], capture_output=True, text=True)
    if p.returncode != 0:
        pytest.skip(f"no loop device here: {p.stderr.strip()}")
    loop = p.stdout.strip()
    fsdir = tmp_path / "ext4"
    fsdir.mkdir()
    try:
        subprocess.run(["mkfs.ext4", "-q", "-F", loop], check=True, capture_output=True)
        subprocess.run(["mount", loop, str(fsdir)], check=True, capture_output=True)
        try:
            data = os.urandom(1 << 20)
            (fsdir / "x").write_bytes(data)
            subprocess.run(["sync"], check=True)
        finally:
            subprocess.run(["umount", str(fsdir)], check=True)
        subprocess.run(["fsck.ext4", "-n", "-f", loop], check=True, capture_output=True)
        subprocess.run(["mount", "-o", "ro", loop, str(fsdir)], check=True)
        try:
            assert (fsdir / "x").read_bytes() == data
        finally:
            subprocess.run(["umount", str(fsdir)], check=True)
    finally:
        subprocess.run(["losetup", "-d", loop], capture_output=True)


# --- bad input ----------------------------------------------------------------------------

def test_writes_past_the_end(mnt, daemons):
    t = daemons()
    t.result("bdev_malloc_create", {"name": "M0", "num_blocks": 8, "block_size": 512})
    f = os.path.join(export(t, mnt), "M0")
    fd = os.open(f, os.O_RDWR)
    try:
        with pytest.raises(OSError) as e:
            os.pwrite(fd, b"x" * 512, 4096)
        assert e.value.errno == errno.ENOSPC
        assert os.pwrite(fd, b"y" * 1024, 4096 - 512) == 512   # short, as a block device
        assert os.pread(fd, 4096, 4096) == b""
        assert os.pread(fd, 1024, 4096 - 512) == b"y" * 512
        with pytest.raises(OSError) as e:
            os.posix_fallocate(fd, 0, 8192)
        assert e.value.errno in (errno.ENOSPC, errno.EOPNOTSUPP)
    finally:
        os.close(fd)
    assert os.stat(f).st_size == 4096


def test_fallocate_punch_and_zero(mnt, daemons):
    t = daemons()
    t.result("bdev_malloc_create", {"name": "M0", "num_blocks": 256, "block_size": 512})
    f = os.path.join(export(t, mnt), "M0")
    data = os.urandom(128 << 10)
    fd = os.open(f, os.O_RDWR)
    try:
        os.pwrite(fd, data, 0)
        subprocess.run(["fallocate", "-p", "-o", "1000", "-l", "10000", f], check=True)
        exp = bytearray(data)
        exp[1000:11000] = bytes(10000)
        assert os.pread(fd, len(data), 0) == bytes(exp)
        p = subprocess.run(["fallocate", "-z", "-o", "65536", "-l", "8192", f],
                           capture_output=True, text=True)
        if p.returncode == 0:
            exp[65536:65536 + 8192] = bytes(8192)
            wait_until(lambda: os.pread(fd, len(data), 0) == bytes(exp), what="the zeroed range")
        else:
            assert "not supported" in p.stderr                 # the kernel may refuse it
        v = t.result("fuse_export_verify_cache", {"mountpoint": mnt, "bdev": "M0"})
        assert v["pages_checked"] > 0 and v["pages_mismatched"] == 0
    finally:
        os.close(fd)


def test_deleted_bdev_and_unmount_under_reader(mnt, daemons):
    t = daemons()
    for n in ("M0", "M1"):
        t.result("bdev_malloc_create", {"name": n, "num_blocks": 2048, "block_size": 512})
    bdevs = export(t, mnt)
    fd0 = os.open(os.path.join(bdevs, "M0"), os.O_RDONLY)
    fd1 = os.open(os.path.join(bdevs, "M1"), os.O_RDONLY)
    try:
        assert os.pread(fd0, 4096, 0) == bytes(4096)
        t.result("bdev_malloc_delete", {"name": "M0"})         # not held up by the open file

        def fails():
            try:
                os.pread(fd0, 4096, 0)
                return False
            except OSError as e:
                return e.errno
        assert wait_until(fails, what="reads of the deleted M0 to fail") == errno.ENODEV
        assert os.listdir(bdevs) == ["M1"]

        # Unmount while a reader holds M1 open: the reader gets an error, nothing hangs.
        assert os.pread(fd1, 512, 0) == bytes(512)
        t.result("fuse_export_delete", {"mountpoint": mnt})
        assert not mounted(mnt)
        # Pages already cached may still be read; anything that reaches the daemon fails.
        with pytest.raises(OSError) as e:
            os.fsync(fd1)
        assert e.value.errno in (errno.ENOTCONN, errno.ECONNABORTED, errno.EIO)
    finally:
        close_quietly(fd0)
        close_quietly(fd1)
    assert t.result("fuse_get_exports") == []


def test_recreated_bdev_of_same_name(mnt, daemons):
    """A bdev deleted and created again under its name is another bdev: a new file with the new
    size and contents, not killed by the old one's deletion."""
    t = daemons()
    t.result("bdev_malloc_create", {"name": "M0", "num_blocks": 2048, "block_size": 512})
    bdevs = export(t, mnt)
    f = os.path.join(bdevs, "M0")
    fd = os.open(f, os.O_RDWR)
    try:
        os.pwrite(fd, b"\xaa" * 4096, 0)
        assert os.pread(fd, 4096, 0) == b"\xaa" * 4096
        before = entries(t)
        t.result("bdev_malloc_delete", {"name": "M0"})
        t.result("bdev_malloc_create", {"name": "M0", "num_blocks": 4096, "block_size": 512})
        wait_until(lambda: os.path.exists(f) and os.stat(f).st_size == 4096 * 512,
                   what="the new M0")
        fd2 = os.open(f, os.O_RDWR)
        try:
            assert os.pread(fd2, 4096, 0) == bytes(4096)       # the new bdev's (zeroed)
            os.pwrite(fd2, b"\x55" * 512, 4096 * 512 - 512)   # past the old size
            assert pread(f, 4096 * 512 - 512, 512) == b"\x55" * 512
            # The old M0's deletion is notified first (the open fd pins its entry, so it is
            # counted)...
            wait_until(lambda: entries(t) > before, what="the old M0's deletion to be notified")
            assert os.stat(f).st_size == 4096 * 512            # ...and spared the new file
            assert os.pread(fd2, 512, 4096 * 512 - 512) == b"\x55" * 512
        finally:
            os.close(fd2)
        with pytest.raises(OSError) as e:                      # the old handle: the old bdev
            os.pread(fd, 4096, 0)
        assert e.value.errno == errno.ENODEV
    finally:
        os.close(fd)


def test_claimed_bdev_is_read_only(mnt, daemons):
    """A bdev claimed by a module (here an error bdev on top of it) can still be read; only
    opens for write are refused."""
    t = daemons()
    t.result("bdev_malloc_create", {"name": "M0", "num_blocks": 2048, "block_size": 512})
    t.result("bdev_error_create", {"base_name": "M0"})
    f = os.path.join(export(t, mnt), "M0")
    assert pread(f, 0, 4096) == bytes(4096)
    with pytest.raises(OSError) as e:
        os.open(f, os.O_RDWR)
    assert e.value.errno in (errno.EPERM, errno.EACCES)


def test_rpc_errors(mnt, tmp_path, daemons):
    t = daemons()
    cases = [
        ({}, -32602),
        ({"mountpoint": mnt, "coherence": "sometimes"}, -32602),
        ({"mountpoint": mnt, "bdevs": "M0"}, -32602),
        ({"mountpoint": mnt, "bdevs": [""]}, -32602),
        ({"mountpoint": mnt, "bdevs": [7]}, -32602),
        ({"mountpoint": mnt, "writable": "yes"}, -32602),
        ({"mountpoint": str(tmp_path / "absent")}, -errno.ENOENT),
    ]
    (tmp_path / "file").write_text("")
    cases.append(({"mountpoint": str(tmp_path / "file")}, -errno.ENOTDIR))
    for params, code in cases:
        with pytest.raises(RpcFailure) as e:
            t.result("fuse_export_create", params)
        assert e.value.code == code, (params, e.value)
    export(t, mnt)
    with pytest.raises(RpcFailure) as e:
        t.result("fuse_export_create", {"mountpoint": mnt})
    assert e.value.code == -errno.EEXIST
    for method, params in (("fuse_export_delete", {"mountpoint": "/nonexistent"}),
                           ("fuse_export_verify_cache", {"mountpoint": mnt, "bdev": "nope"})):
        with pytest.raises(RpcFailure) as e:
            t.result(method, params)
        assert e.value.code == -errno.ENOENT
    events = [e["type"] for e in t.result("notify_get_notifications", {"id": 0})]
    assert "fuse_export_created" in events


# --- lifecycle ------------------------------------------------------------------------------

def _tgt_start_fails(rundir, *args):
    """Run mimo_tgt with args; it must fail its start: its exit status and output."""
    sock = os.path.join(rundir, "failing.sock")
    p = subprocess.run([TGT, "-r", sock, *args], env=clean_env(MIMO_NOTIFY_DISABLE="1"),
                       capture_output=True, text=True, timeout=30 * SLOW)
    assert p.returncode != 0, p.stdout + p.stderr
    assert not os.path.exists(sock)                             # it is not left behind
    return p.stdout + p.stderr


def test_missing_mountpoint_fails_start_and_create(mnt, tmp_path, rundir, daemons):
    """A mountpoint that does not exist fails mimo_tgt's start (exit status, a message naming
    it and what to do) and the RPC (-2, the same sentence); it is not created. A mountpoint
    that exists but cannot be mounted on fails the start too."""
    absent = str(tmp_path / "absent")
    deep = str(tmp_path / "no" / "such" / "dir")
    for path in (absent, deep):
        out = _tgt_start_fails(rundir, "--fuse-mount", path)
        assert f"--fuse-mount {path}: mountpoint {path} does not exist" in out, out
        assert f"mkdir -p {path}" in out, out
        assert not os.path.exists(path)
    (tmp_path / "file").write_text("")
    out = _tgt_start_fails(rundir, "--fuse-mount", str(tmp_path / "file"))
    assert f"mountpoint {tmp_path / 'file'} is not a directory" in out, out

    t = daemons()
    for path in (absent, deep):
        with pytest.raises(RpcFailure) as e:
            t.result("fuse_export_create", {"mountpoint": path})
        assert e.value.code == -errno.ENOENT
        assert e.value.message.startswith(f"mountpoint {path} does not exist: create the "
                                          f"directory first (mkdir -p {path})"), e.value.message
        assert not os.path.exists(path)
    with pytest.raises(RpcFailure) as e:
        t.result("fuse_export_create", {"mountpoint": str(tmp_path / "file")})
    assert e.value.code == -errno.ENOTDIR and str(tmp_path / "file") in e.value.message

    # It exists, but another mimo_tgt serves it: the mount fails after start-up, and so
    # does the start.
    export(t, mnt)
    out = _tgt_start_fails(rundir, "--fuse-mount", mnt)
    assert f"--fuse-mount {mnt}: {mnt} is already a live mimo FUSE mount" in out, out
    assert mounted(mnt) and sorted(os.listdir(mnt)) == ["bdevs", "events", "names"]


def test_sigterm_unmounts(mnt, daemons):
    t = daemons("--fuse-mount", mnt)
    t.result("bdev_malloc_create", {"name": "M0", "num_blocks": 2048, "block_size": 512})
    wait_until(lambda: mounted(mnt), what="the mount")
    fd = os.open(os.path.join(mnt, "bdevs", "M0"), os.O_RDONLY)   # held across the exit
    try:
        assert t.stop(signal.SIGTERM) == 0
        assert not mounted(mnt)
    finally:
        close_quietly(fd)


def test_stale_mount_cleaned_at_start(mnt, daemons):
    t = daemons("--fuse-mount", mnt, name="crash")
    wait_until(lambda: mounted(mnt), what="the mount")
    t.proc.kill()
    t.proc.wait()
    with pytest.raises(OSError) as e:
        os.listdir(mnt)
    assert e.value.errno == errno.ENOTCONN                     # stale
    t2 = daemons("--fuse-mount", mnt)
    t2.result("bdev_malloc_create", {"name": "M0", "num_blocks": 2048, "block_size": 512})
    wait_until(lambda: os.path.exists(os.path.join(mnt, "bdevs", "M0")), what="bdevs/M0")
    # Listed once mounted and served (--fuse-mount mounts after the RPC socket is up, and the
    # mount serves a moment before fuse_get_exports lists it).
    exports = wait_until(lambda: t2.result("fuse_get_exports"), what="the export to be listed")
    assert exports[0]["mountpoint"] == mnt
    t2.stop()
    assert not mounted(mnt)
    # The same through the RPC on a directory that has a stale mount.
    t3 = daemons("--fuse-mount", mnt, name="crash2")
    wait_until(lambda: mounted(mnt), what="the mount")
    t3.proc.kill()
    t3.proc.wait()
    t4 = daemons()
    export(t4, mnt)
    assert sorted(os.listdir(mnt)) == ["bdevs", "events", "names"]


def _foreign_stale_fuse_mount(path):
    """A FUSE mount of another type whose daemon is gone (every access: ENOTCONN)."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open("/dev/fuse", os.O_RDWR)
    try:
        opts = f"fd={fd},rootmode=40000,user_id=0,group_id=0".encode()
        if libc.mount(b"other_src", path.encode(), b"fuse.other", 0, opts) != 0:
            pytest.skip(f"cannot mount fuse: {os.strerror(ctypes.get_errno())}")
    finally:
        os.close(fd)                                           # the "daemon" is gone


def test_foreign_mount_left_alone(mnt, tmp_path, daemons):
    """Stale cleanup detaches only mimo's own mounts (fuse.mimo from mimo_tgt), looked up in
    mountinfo - even with a space in the path (mountinfo writes it as \\040)."""
    t = daemons()
    for path in (mnt, str(tmp_path / "with space")):
        os.makedirs(path, exist_ok=True)
        _foreign_stale_fuse_mount(path)
        try:
            with pytest.raises(OSError) as e:
                os.listdir(path)
            assert e.value.errno == errno.ENOTCONN
            with pytest.raises(RpcFailure):
                t.result("fuse_export_create", {"mountpoint": path})
            with open("/proc/self/mountinfo") as f:
                assert any(" fuse.other other_src " in line for line in f)
            assert mounted(path.replace(" ", "\\040"))       # still there, still theirs
        finally:
            subprocess.run(["umount", "-l", path], capture_output=True)
        assert not mounted(path.replace(" ", "\\040"))
    # Our own stale mount on a path with a space is found and cleaned.
    sp = str(tmp_path / "with space")
    t2 = daemons("--fuse-mount", sp, name="crash")
    wait_until(lambda: mounted(sp.replace(" ", "\\040")), what="the mount")
    t2.proc.kill()
    t2.proc.wait()
    try:
        t.result("fuse_export_create", {"mountpoint": sp})
        assert sorted(os.listdir(sp)) == ["bdevs", "events", "names"]
        t.result("fuse_export_delete", {"mountpoint": sp})
    finally:
        subprocess.run(["umount", "-l", sp], capture_output=True)
    assert not mounted(sp.replace(" ", "\\040"))


def test_mimo_rpc_commands(mnt, daemons):
    rpc = os.path.join(BIN, "mimo-rpc")
    t = daemons()
    t.result("bdev_malloc_create", {"name": "M0", "num_blocks": 2048, "block_size": 512})

    def run(*args):
        p = subprocess.run(["/usr/bin/python3", rpc, "-s", t.sock, *args], capture_output=True,
                           text=True, timeout=30)
        assert p.returncode == 0, p.stderr
        return json.loads(p.stdout)

    assert run("fuse_export_create", mnt, "-b", "M0", "-c", "inval", "-r") is True
    e = run("fuse_get_exports")
    assert e[0]["bdevs"] == ["M0"] and e[0]["coherence"] == "inval" and not e[0]["writable"]
    pread(os.path.join(mnt, "bdevs", "M0"), 0, 4096)
    v = run("fuse_export_verify_cache", mnt, "M0")
    assert v["pages_checked"] >= 1 and v["pages_mismatched"] == 0
    assert run("fuse_export_delete", mnt) is True
    assert not mounted(mnt)
