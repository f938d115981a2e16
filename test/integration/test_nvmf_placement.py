"""Which reactor of a two-reactor target (-m 0x3) serves the queue pairs of many hosts, as
nvmf_get_stats (per poll group) and nvmf_subsystem_get_qpairs (per queue, its "thread") show
it. Hosts that connect one after another, each an admin queue and then one I/O queue (as
Linux does for a host with one I/O queue), must not have every I/O queue on the same reactor -
which round robin over connections gives them, since every host opens two connections on a
target of two reactors (docs/nvmf.md, "Which reactor serves a queue pair"). And a host with
a deep queue does not keep another host on the same reactor from being served."""
import collections
import os
import subprocess

import pytest

from conftest import BIN, clean_env, free_port, wait_until
from nvme_tcp_host import admin_session, io_session, status_of
from nvmf_target import NQN, NvmfTarget

HOSTS = 16
PG = ["nvmf_tgt_poll_group_000", "nvmf_tgt_poll_group_001"]


def hostnqn(i):
    return f"nqn.2014-08.org.nvmexpress:uuid:00000000-0000-4000-8000-{i:012x}"


@pytest.fixture
def target(daemons):
    t = NvmfTarget.start(daemons, free_port(), cores="0x3")
    # The probe that saw the port listen was a connection too: let it go first.
    wait_until(lambda: sum(g["current_unassociated_qpairs"] for g in groups(t.daemon)) == 0,
               what="the listen probe to leave the counts")
    yield t
    t.stop()


def groups(d):
    return d.result("nvmf_get_stats")["poll_groups"]


def qpairs(d):
    return d.result("nvmf_subsystem_get_qpairs", {"nqn": NQN})


def connect(port, i):
    a = admin_session(port, NQN, hostnqn=hostnqn(i))
    return a, io_session(port, a, NQN)


def test_hosts_connecting_one_after_another_spread_over_both_reactors(target):
    d = target.daemon
    sessions = [connect(target.port, i) for i in range(HOSTS)]
    wait_until(lambda: sum(g["current_io_qpairs"] for g in groups(d)) == HOSTS,
               what="every host's I/O queue to be counted")
    g0, g1 = groups(d)
    assert (g0["current_io_qpairs"], g1["current_io_qpairs"]) == (HOSTS // 2, HOSTS // 2), \
        (g0, g1)
    # The admin queues are spread too (an admin queue weighs less than an I/O queue, so not
    # necessarily evenly), and none is left unassociated.
    assert g0["current_admin_qpairs"] + g1["current_admin_qpairs"] == HOSTS
    assert abs(g0["current_admin_qpairs"] - g1["current_admin_qpairs"]) <= 2, (g0, g1)
    assert g0["current_unassociated_qpairs"] == g1["current_unassociated_qpairs"] == 0
    # Each queue's thread, as SPDK reports it, agrees with the poll groups' counts.
    io = collections.Counter(q["thread"] for q in qpairs(d) if q["qid"] != 0)
    assert io == {PG[0]: HOSTS // 2, PG[1]: HOSTS // 2}
    assert {q["hostnqn"] for q in qpairs(d)} == {hostnqn(i) for i in range(HOSTS)}
    # Every host's I/O completes, and each reactor answers its half.
    for i, (a, q) in enumerate(sessions):
        cqe = q.write(1, i, bytes([i]) * 512)[0]
        assert status_of(cqe["status"])[:2] == (0, 0)
        assert q.read(1, i, 1)[1] == bytes([i]) * 512
    g0, g1 = groups(d)
    assert g0["completed_nvme_io"] == g1["completed_nvme_io"] == HOSTS, (g0, g1)
    for a, q in sessions:
        q.close()
        a.close()
    wait_until(lambda: all(g["current_io_qpairs"] == g["current_admin_qpairs"] == 0
                           for g in groups(d)), what="the closed queue pairs to leave")


def test_new_hosts_go_to_the_reactor_others_left(target):
    """Placement follows what is connected now: once the hosts whose I/O queues were on one
    reactor have gone, the next hosts' I/O queues go there."""
    d = target.daemon
    sessions = {hostnqn(i): connect(target.port, i) for i in range(4)}
    wait_until(lambda: [g["current_io_qpairs"] for g in groups(d)] == [2, 2],
               what="four I/O queues, two per reactor")
    gone = [q["hostnqn"] for q in qpairs(d) if q["qid"] != 0 and q["thread"] == PG[0]]
    assert len(gone) == 2
    for nqn in gone:
        a, q = sessions.pop(nqn)
        q.close()
        a.close()
    wait_until(lambda: groups(d)[0]["current_io_qpairs"] == 0, what="reactor 0's hosts to go")
    for i in range(4, 6):
        sessions[hostnqn(i)] = connect(target.port, i)
    wait_until(lambda: sum(g["current_io_qpairs"] for g in groups(d)) == 4,
               what="the new hosts' I/O queues to be counted")
    new_io = {q["hostnqn"]: q["thread"] for q in qpairs(d) if q["qid"] != 0}
    assert new_io[hostnqn(4)] == new_io[hostnqn(5)] == PG[0], new_io
    for a, q in sessions.values():
        q.close()
        a.close()


def test_a_greedy_host_does_not_stop_another_on_the_same_reactor(daemons, procs):
    """One reactor (-m 0x1): mimo_perf keeps 128 reads outstanding on its queue while a second
    host reads one block at a time; every read of the second host is answered while the
    greedy one's count keeps growing (each ready connection gets one read per reactor turn:
    docs/nvmf.md, "Fairness between connections on a reactor")."""
    t = NvmfTarget.start(daemons, free_port(), cores="0x1")
    d = t.daemon
    wait_until(lambda: sum(g["current_unassociated_qpairs"] for g in groups(d)) == 0,
               what="the listen probe to leave the counts")
    greedy = procs([os.path.join(BIN, "mimo_perf"), "-r", t.trid() + f" hostnqn:{hostnqn(1)}",
                    "-q", "128", "-o", "4096", "-w", "randread", "-t", "60", "-c",
                    hex(1 << (os.cpu_count() - 1))],
                   env=clean_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def served():
        return groups(d)[0]["completed_nvme_io"]

    wait_until(lambda: served() > 1000, what="the greedy host's reads to flow")
    a, q = connect(t.port, 2)
    before = served()
    for i in range(200):
        cqe, data = q.read(1, i, 1)
        assert status_of(cqe["status"])[:2] == (0, 0)
    # All of it while the greedy host ran, and it is still being served.
    assert greedy.poll() is None
    wait_until(lambda: served() - before > 200 + 1000, what="the greedy host's reads to go on")
    q.close()
    a.close()
    greedy.terminate()
    t.stop()
