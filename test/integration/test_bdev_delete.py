"""Deleting bdevs while they are in use on two reactors (-m 0x3), in a real mimo_tgt: null and
malloc bdevs and each stacked module (passthru, split, delay, raid0, raid1) exported over NVMe/TCP,
mimo_perf keeping I/O outstanding on queue pairs of both reactors, and the base or the stacked
bdev deleted with SPDK's rpc.py meanwhile. Each time the RPC answers, the bdevs go, the I/O
ends (with errors where the namespace went, none where a raid1 keeps serving) instead of
hanging, and the daemon stops cleanly (the fixture fails on a sanitizer report; run under ASan
and TSan as docs/ARCHITECTURE.md's locking rules say).

And the deadlock a delete could once walk into: the layer told each descriptor's reactor of
the removal by spinning until that reactor's message ring had room, while it held the
registry's and the bdev's locks. A reactor whose ring was full and which was itself waiting
for those locks - or the deleting reactor itself, the owner of most descriptors - never made
room. MIMO_TGT_MSG_RING_SIZE shrinks the rings so that a delete meets a full one for sure."""
import http.client
import os
import signal
import subprocess
import threading

import pytest

from conftest import BIN, SLOW, TGT, clean_env, free_port, wait_until
from test_bdev_modules import rpc_py

NQN = "nqn.2016-06.io.mimo:deletes"
PG = ["nvmf_tgt_poll_group_000", "nvmf_tgt_poll_group_001"]


def names(d):
    return {b["name"] for b in d.result("bdev_get_bdevs")}


def completed(d):
    """Each reactor's poll group: the NVMe I/O commands it completed."""
    groups = {g["name"]: g["completed_nvme_io"] for g in d.result("nvmf_get_stats")["poll_groups"]}
    return [groups.get(pg, 0) for pg in PG]


def export(d, bdevs):
    """Serve bdevs as namespaces 1..n of NQN; the port."""
    port = free_port()
    d.result("nvmf_create_transport", {"trtype": "TCP"})
    d.result("nvmf_create_subsystem", {"nqn": NQN, "allow_any_host": True})
    for b in bdevs:
        d.result("nvmf_subsystem_add_ns", {"nqn": NQN, "namespace": {"bdev_name": b}})
    d.result("nvmf_subsystem_add_listener", {
        "nqn": NQN, "listen_address": {"trtype": "TCP", "adrfam": "IPv4",
                                       "traddr": "127.0.0.1", "trsvcid": str(port)}})
    return port


class Load:
    """mimo_perf on the target: four I/O queue pairs per namespace, which the target spreads
    over its two reactors; running until stopped."""

    def __init__(self, procs, d, port, tmp_path, workload):
        self.d = d
        self.err = open(tmp_path / "perf.err", "w+")
        trid = f"trtype:tcp adrfam:IPv4 traddr:127.0.0.1 trsvcid:{port} subnqn:{NQN}"
        self.p = procs([os.path.join(BIN, "mimo_perf"), "-r", trid, "-q", "8", "-o", "4096",
                        "-w", workload, "-t", "600", "-P", "4", "-k", "0", "--json"],
                       env=clean_env(), stdout=subprocess.PIPE, stderr=self.err, text=True)
        # Both reactors serve some of it, and it flows, before anything is deleted.
        base = completed(d)
        wait_until(lambda: all(n - b > 200 for n, b in zip(completed(d), base)), 30,
                   "I/O to run on both reactors")

    def stop(self):
        """Stop it; its report. It must end: I/O that never completes would keep it draining
        (and it says so)."""
        self.p.send_signal(signal.SIGINT)
        out, _ = self.p.communicate(timeout=60 * SLOW)
        self.err.seek(0)
        err = self.err.read()
        assert "still outstanding" not in err, err
        assert self.p.returncode in (0, 2), err  # 2: some I/O failed
        return out, err


class Readers:
    """While the delete runs, what else reads the layer's state under its locks: bdev_get_iostat
    over RPC (on the RPC reactor, as the delete) and /metrics scrapes (the metrics endpoint's
    own thread, reading every bdev's counters under the registry's and each bdev's lock)."""

    def __init__(self, d, metrics_port):
        self.d, self.port = d, metrics_port
        self.done = threading.Event()
        self.counts = [0, 0]
        self.errors = []
        self.threads = [threading.Thread(target=self.loop, args=(i, f))
                        for i, f in enumerate((self.iostat, self.scrape))]
        for t in self.threads:
            t.start()

    def iostat(self):
        assert isinstance(self.d.result("bdev_get_iostat"), dict)

    def scrape(self):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10 * SLOW)
        try:
            c.request("GET", "/metrics")
            r = c.getresponse()
            assert r.status == 200 and r.read()
        finally:
            c.close()

    def loop(self, i, fn):
        while not self.done.is_set():
            try:
                fn()
                self.counts[i] += 1
            except Exception as e:  # reported by stop()
                self.errors.append(repr(e))
                return

    def running(self):
        """Each has read again since now."""
        base = list(self.counts)
        wait_until(lambda: self.errors or all(n > b for n, b in zip(self.counts, base)), 20,
                   "the readers to go on")
        assert not self.errors, self.errors

    def stop(self):
        self.done.set()
        for t in self.threads:
            t.join(timeout=30 * SLOW)
        assert not self.errors, self.errors


def closed_where_opened(d):
    """Every descriptor was closed on the reactor that opened it (the layer logs one that
    was not: its REMOVE notice could free it under the close), and no channel went while
    I/O on it was still outstanding (whose completion would find it freed)."""
    out = d.output()
    assert "is closed on reactor" not in out, out[-4000:]
    assert "channel destroyed with" not in out, out[-4000:]


def run_delete(daemons, procs, tmp_path, setup, exported, delete, gone, errors_expected=True,
               env=None, workload="randrw"):
    """A target on two reactors with setup's bdevs, exported under load; delete while the
    load runs; the target afterwards (the load stopped, the subsystem gone)."""
    mport = free_port()
    d = daemons("-m", "0x3", "--metrics", f"127.0.0.1:{mport}", env=env)
    setup(d)
    load = Load(procs, d, export(d, exported), tmp_path, workload)
    readers = Readers(d, mport)
    readers.running()
    delete(d)  # rpc_py asserts that the RPC answered, with success
    wait_until(lambda: not (set(gone) & names(d)), 20, f"{gone} to be deleted")
    # The target still serves RPCs and scrapes, and the I/O left (if any) still ends.
    readers.running()
    readers.stop()
    _, err = load.stop()
    if errors_expected:
        assert load.p.returncode == 2, err
    else:
        assert load.p.returncode == 0, err
    d.result("nvmf_delete_subsystem", {"nqn": NQN})
    return d


def malloc(d, *names_):
    for n in names_:
        rpc_py(d, "bdev_malloc_create", "-b", n, 16, 512)


def null(d, *names_):
    """Bases of null bdevs: the tests that write do so from both reactors to the same blocks,
    which on a malloc bdev is a data race by design (two reactors copy in and out of its
    memory at once: docs/nvmf.md, "What a reader sees"), and TSan would report that."""
    for n in names_:
        rpc_py(d, "bdev_null_create", n, 16, 512)


def released(d, name):
    """name (a null bdev) is left unclaimed (its stacked bdev let it go), and can be deleted."""
    wait_until(lambda: d.result("bdev_get_bdevs", {"name": name})[0]["claimed"] is False, 10,
               f"{name} to be released")
    rpc_py(d, "bdev_null_delete", name)


# --- the generic path ---------------------------------------------------------------------


def test_null_deleted_under_io_on_both_reactors(daemons, procs, tmp_path):
    d = run_delete(daemons, procs, tmp_path, lambda d: null(d, "N0"), ["N0"],
                   lambda d: rpc_py(d, "bdev_null_delete", "N0"), ["N0"])
    closed_where_opened(d)


def test_malloc_deleted_under_zero_copy_reads(daemons, procs, tmp_path):
    """A malloc bdev's reads are sent from its own memory, each keeping its I/O (and the
    namespace's in-flight count) until the send is done: the namespace's removal waits for
    them. Reads only, so that no write races them."""
    d = run_delete(daemons, procs, tmp_path, lambda d: malloc(d, "M0"), ["M0"],
                   lambda d: rpc_py(d, "bdev_malloc_delete", "M0"), ["M0"], workload="randread")
    closed_where_opened(d)


def test_delete_with_small_rings_under_io(daemons, procs, tmp_path):
    """The same with rings of 8 messages: the delete's notices (and the channels' puts) meet
    full rings while both reactors are busy, and wait on their sender's overflow list."""
    d = run_delete(daemons, procs, tmp_path, lambda d: null(d, "N0"), ["N0"],
                   lambda d: rpc_py(d, "bdev_null_delete", "N0"), ["N0"],
                   env={"MIMO_TGT_MSG_RING_SIZE": "8"})
    closed_where_opened(d)


def test_many_deleted_at_once_with_small_rings(daemons, procs, tmp_path):
    """Eight namespaces under load on both reactors, deleted by four RPC clients at once, with
    rings of two messages: every removal's notices, the namespaces' channel puts and the I/O's
    messages compete for the rings. Before the layer stopped waiting for room under its locks,
    this deadlocked in about one run of three: the deletes never answered, and the target
    could not even stop."""
    bdevs = [f"N{i}" for i in range(8)]

    def delete_all(d):
        answers = []

        def worker(part):
            for b in part:
                try:
                    answers.append(d.result("bdev_null_delete", {"name": b}))
                except Exception as e:  # checked below
                    answers.append(repr(e))

        threads = [threading.Thread(target=worker, args=(bdevs[i::4],)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60 * SLOW)
        assert answers == [True] * len(bdevs), answers

    d = run_delete(daemons, procs, tmp_path, lambda d: null(d, *bdevs), bdevs, delete_all, bdevs,
                   env={"MIMO_TGT_MSG_RING_SIZE": "2"})
    closed_where_opened(d)


def test_delete_with_more_users_than_the_ring_holds(daemons, rundir):
    """A bdev open 12 times on the RPC reactor (12 vhost-blk controllers over it), rings of 4
    messages: the delete tells each user on that reactor - itself - while holding the layer's
    locks. Spinning for room in its own ring, which only it drains, it never answered."""
    d = daemons("-m", "0x3", "-S", rundir, env={"MIMO_TGT_MSG_RING_SIZE": "4"})
    malloc(d, "M0")
    for i in range(12):
        d.result("vhost_create_blk_controller", {"ctrlr": f"vb{i}", "dev_name": "M0"})
    assert d.result("bdev_malloc_delete", {"name": "M0"}) is True
    wait_until(lambda: "M0" not in names(d), 20, "M0 to be deleted")
    for i in range(12):
        d.result("vhost_delete_controller", {"ctrlr": f"vb{i}"})
    assert d.result("vhost_get_controllers") == []
    closed_where_opened(d)


def test_bad_ring_size_stops_the_start(rundir):
    p = subprocess.run([TGT, "-r", os.path.join(rundir, "bad.sock")], capture_output=True,
                       text=True, timeout=10 * SLOW, env=clean_env(MIMO_TGT_MSG_RING_SIZE="1"))
    assert p.returncode == 1 and "MIMO_TGT_MSG_RING_SIZE=1" in p.stderr, p.stderr


# --- stacked modules: the base deleted, or the stacked bdev ---------------------------------


@pytest.mark.parametrize("which", ["base", "stacked"])
def test_passthru_deleted_under_io(daemons, procs, tmp_path, which):
    def setup(d):
        null(d, "N0")
        rpc_py(d, "bdev_passthru_create", "-b", "N0", "-p", "PT0")

    if which == "base":
        d = run_delete(daemons, procs, tmp_path, setup, ["PT0"],
                       lambda d: rpc_py(d, "bdev_null_delete", "N0"), ["PT0", "N0"])
    else:
        d = run_delete(daemons, procs, tmp_path, setup, ["PT0"],
                       lambda d: rpc_py(d, "bdev_passthru_delete", "PT0"), ["PT0"])
        released(d, "N0")
    closed_where_opened(d)


@pytest.mark.parametrize("which", ["base", "stacked"])
def test_split_deleted_under_io(daemons, procs, tmp_path, which):
    def setup(d):
        null(d, "N0")
        rpc_py(d, "bdev_split_create", "N0", 2)

    if which == "base":
        d = run_delete(daemons, procs, tmp_path, setup, ["N0p0", "N0p1"],
                       lambda d: rpc_py(d, "bdev_null_delete", "N0"), ["N0p0", "N0p1", "N0"])
    else:
        d = run_delete(daemons, procs, tmp_path, setup, ["N0p0", "N0p1"],
                       lambda d: rpc_py(d, "bdev_split_delete", "N0"), ["N0p0", "N0p1"])
        released(d, "N0")
    closed_where_opened(d)


@pytest.mark.parametrize("which", ["base", "stacked"])
def test_delay_deleted_under_io(daemons, procs, tmp_path, which):
    def setup(d):
        null(d, "N0")
        # Completions held 100 us to 1 ms: some always wait on a reactor's timer.
        rpc_py(d, "bdev_delay_create", "-b", "N0", "-d", "D0", "-r", 100, "-t", 1000, "-w", 100,
               "-n", 1000)

    if which == "base":
        d = run_delete(daemons, procs, tmp_path, setup, ["D0"],
                       lambda d: rpc_py(d, "bdev_null_delete", "N0"), ["D0", "N0"])
    else:
        d = run_delete(daemons, procs, tmp_path, setup, ["D0"],
                       lambda d: rpc_py(d, "bdev_delay_delete", "D0"), ["D0"])
        released(d, "N0")
    closed_where_opened(d)


@pytest.mark.parametrize("which", ["member", "stacked"])
def test_raid0_deleted_under_io(daemons, procs, tmp_path, which):
    def setup(d):
        null(d, "N0", "N1")
        rpc_py(d, "bdev_raid_create", "-n", "R0", "-r", "raid0", "-z", 64, "-b", "N0 N1")

    if which == "member":
        # raid0 cannot lose a member: its bdev goes, the raid stays offline until deleted.
        d = run_delete(daemons, procs, tmp_path, setup, ["R0"],
                       lambda d: rpc_py(d, "bdev_null_delete", "N1"), ["R0", "N1"])
        rpc_py(d, "bdev_raid_delete", "R0")
        released(d, "N0")
    else:
        d = run_delete(daemons, procs, tmp_path, setup, ["R0"],
                       lambda d: rpc_py(d, "bdev_raid_delete", "R0"), ["R0"])
        released(d, "N0")
        released(d, "N1")
    assert d.result("bdev_raid_get_bdevs", {"category": "all"}) == []
    closed_where_opened(d)


def test_raid1_member_deleted_under_io(daemons, procs, tmp_path):
    """A raid1 losing a member under I/O keeps serving: each reactor's channel lets the
    member go on that reactor, and no I/O fails."""
    def setup(d):
        null(d, "N0", "N1")
        rpc_py(d, "bdev_raid_create", "-n", "R1", "-r", "raid1", "-b", "N0 N1")

    d = run_delete(daemons, procs, tmp_path, setup, ["R1"],
                   lambda d: rpc_py(d, "bdev_null_delete", "N1"), ["N1"],
                   errors_expected=False)
    [r] = d.result("bdev_raid_get_bdevs", {"category": "online"})
    assert r["num_base_bdevs_operational"] == 1
    rpc_py(d, "bdev_raid_delete", "R1")
    released(d, "N0")
    closed_where_opened(d)
