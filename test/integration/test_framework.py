"""The framework, thread and log methods in SPDK's shapes (framework_get_reactors,
thread_get_*, log_*, framework_get_scheduler, the CPU core locks, SPDK 19's legacy names) and
mimo_top, driven live under tmux."""
import json
import os
import re
import shutil
import socket
import subprocess
import uuid

import pytest

from conftest import BIN, REPO, TGT, RpcFailure, free_port, wait_until

pytestmark = pytest.mark.skipif(not os.path.exists(TGT), reason="mimo_tgt is not built")

SPDK_RPC = os.environ.get("SPDK_RPC_PY")
NQN = "nqn.2016-06.io.spdk:cnode1"


def failure(d, method, params=None):
    with pytest.raises(RpcFailure) as e:
        d.result(method, params)
    return e.value


def nvmf_target(d, port):
    """A malloc namespace behind an NVMe/TCP listener on 127.0.0.1:port."""
    d.result("bdev_malloc_create", {"num_blocks": 2048, "block_size": 512, "name": "M0"})
    d.result("nvmf_create_transport", {"trtype": "TCP"})
    d.result("nvmf_create_subsystem", {"nqn": NQN, "allow_any_host": True})
    d.result("nvmf_subsystem_add_ns", {"nqn": NQN, "namespace": {"bdev_name": "M0"}})
    d.result("nvmf_subsystem_add_listener", {"nqn": NQN, "listen_address": {
        "trtype": "tcp", "adrfam": "ipv4", "traddr": "127.0.0.1", "trsvcid": str(port)}})


# --- reactors and threads ------------------------------------------------------------------

def test_reactors_in_spdk_shape(daemons):
    d = daemons("-m", "0x3")
    res = d.result("framework_get_reactors")
    assert res["pid"] == d.proc.pid and res["tick_rate"] > 0
    assert [r["lcore"] for r in res["reactors"]] == [0, 1]
    for i, r in enumerate(res["reactors"]):
        # SPDK's fields, and mimo's msgs and sleeps beside them.
        assert {"lcore", "numa_id", "tid", "busy", "idle", "in_interrupt", "irq", "sys", "usr",
                "lw_threads", "msgs", "sleeps"} <= set(r)
        assert r["in_interrupt"] is True  # not --poll: idle reactors wait in epoll
        # tid is the reactor's own thread, named as its lightweight thread is.
        with open(f"/proc/{d.proc.pid}/task/{r['tid']}/comm") as f:
            assert f.read().strip() == f"reactor_{i}"
        [t] = r["lw_threads"]
        assert t["name"] == f"reactor_{i}" and t["id"] == i + 1
        assert t["cpumask"] == format(1 << r["lcore"], "x") and t["elapsed"] > 0
    first = res["reactors"][0]["lw_threads"][0]["elapsed"]
    wait_until(lambda: d.result("framework_get_reactors")["reactors"][0]["lw_threads"][0]
               ["elapsed"] > first, what="a thread's elapsed ticks to grow")
    assert failure(d, "framework_get_reactors", {"x": 1}).code == -32602


def test_poller_names_counts_and_channels(daemons, procs):
    port = free_port()
    d = daemons("-m", "0x1")
    nvmf_target(d, port)
    # bdev_nvme's controller polls its admin queue with a timer: a named, timed poller.
    d.result("bdev_nvme_attach_controller", {"name": "N0", "trtype": "tcp", "adrfam": "ipv4",
                                             "traddr": "127.0.0.1", "trsvcid": str(port),
                                             "subnqn": NQN})

    def admin_poller():
        [t] = d.result("thread_get_pollers")["threads"]
        return next((p for p in t["timed_pollers"] if p["name"] == "admin_poll"), None)
    first = wait_until(admin_poller, what="bdev_nvme's admin poller")
    assert first["state"] == "waiting" and first["period_ticks"] > 0 and first["id"] >= 1
    wait_until(lambda: admin_poller()["run_count"] > first["run_count"],
               what="the admin poller's run count to grow")

    res = d.result("thread_get_pollers")
    [t] = res["threads"]
    assert t["name"] == "reactor_0" and t["id"] == 1 and t["paused_pollers"] == []
    # The NVMe/TCP poll group's late poller runs every turn: an active one, without a period.
    pg = next(p for p in t["active_pollers"] if p["name"] == "pg_poll")
    assert "period_ticks" not in pg and pg["busy_count"] <= pg["run_count"]
    [st] = d.result("thread_get_stats")["threads"]
    assert (st["name"], st["id"], st["cpumask"]) == ("reactor_0", 1, "1")
    assert st["active_pollers_count"] >= 1 and st["timed_pollers_count"] >= 1
    assert st["paused_pollers_count"] == 0 and st["busy"] > 0

    # A host doing I/O gives the target a channel of the namespace's bdev on the reactor.
    procs([os.path.join(BIN, "mimo_perf"), "-r",
           f"trtype:tcp adrfam:IPv4 traddr:127.0.0.1 trsvcid:{port} subnqn:{NQN}",
           "-q", "4", "-o", "4096", "-w", "randread", "-t", "60"],
          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def channels():
        [t] = d.result("thread_get_io_channels")["threads"]
        return t["name"] == "reactor_0" and [c for c in t["io_channels"] if c["ref"] >= 1]
    names = {c["name"] for c in wait_until(channels, what="an io_channel under I/O")}
    assert names, names


def test_thread_set_cpumask_refuses_to_move(daemons):
    d = daemons("-m", "0x3")
    assert d.result("thread_set_cpumask", {"id": 2, "cpumask": "0x2"}) is True  # its own core
    e = failure(d, "thread_set_cpumask", {"id": 2, "cpumask": "0x1"})
    assert e.code == -95 and "cannot move" in e.message and "core 1" in e.message
    assert failure(d, "thread_set_cpumask", {"id": 9, "cpumask": "0x1"}).code == -32602
    assert failure(d, "thread_set_cpumask", {"id": 1, "cpumask": "zz"}).code == -32603
    assert failure(d, "thread_set_cpumask", {"id": 1}).code == -32602


def test_context_switch_monitor_and_pci_devices(daemons):
    d = daemons("-m", "0x1", "-L", "reactor")
    assert d.result("framework_monitor_context_switch") == {"enabled": False}  # mimo's default
    assert d.result("framework_monitor_context_switch", {"enabled": True}) == {"enabled": True}
    [t] = d.result("thread_get_pollers")["threads"]
    assert [p["name"] for p in t["timed_pollers"]] == ["csw_check"]
    # The reactor sleeps between its checks: voluntary switches, which the next check logs.
    wait_until(lambda: "voluntary context switches" in d.output(), 30,
               what="the context switch monitor's line")
    assert d.result("context_switch_monitor", {"enabled": False}) == {"enabled": False}
    [t] = d.result("thread_get_pollers")["threads"]
    assert t["timed_pollers"] == []
    assert d.result("framework_get_pci_devices") == []  # mimo attaches no PCI device


# --- logs ----------------------------------------------------------------------------------

def tree_components():
    """Every component name a log line of the tree is written under."""
    names = set()
    for top in ("lib", "module", "app"):
        for root, _, files in os.walk(os.path.join(REPO, top)):
            for f in files:
                if f.endswith((".c", ".h")):
                    with open(os.path.join(root, f), errors="replace") as fh:
                        names |= set(re.findall(r'#define\s+\w*COMP\s+"(\w+)"', fh.read()))
    return names


def test_log_levels_and_flags(tgt):
    assert tgt.result("log_get_print_level") == "WARNING"  # the tests' MIMO_LOG=warn
    assert tgt.result("log_get_level") == "NOTICE"  # syslog's, SPDK's default
    for level in ("ERROR", "WARNING", "NOTICE", "INFO", "DEBUG"):
        assert tgt.result("log_set_print_level", {"level": level}) is True
        assert tgt.result("log_get_print_level") == level
        assert tgt.result("log_set_level", {"level": level}) is True
        assert tgt.result("log_get_level") == level
    assert failure(tgt, "log_set_level", {"level": "LOUD"}).code == -32602
    assert failure(tgt, "log_set_print_level", {}).code == -32602

    flags = tgt.result("log_get_flags")
    assert list(flags) == sorted(flags) and not any(flags.values())
    assert tree_components() <= set(flags), tree_components() - set(flags)
    assert tgt.result("log_set_flag", {"flag": "nvmf*"}) is True
    on = {k for k, v in tgt.result("log_get_flags").items() if v}
    assert on == {"nvmf", "nvmf_loop", "nvmf_tcp"}
    assert tgt.result("log_clear_flag", {"flag": "all"}) is True
    assert not any(tgt.result("log_get_flags").values())
    assert tgt.result("log_set_flag", {"flag": "all"}) is True
    assert all(tgt.result("log_get_flags").values())
    e = failure(tgt, "log_set_flag", {"flag": "nosuch"})
    assert e.code == -32602 and "nosuch" in e.message
    # SPDK 19's names of the same methods.
    assert tgt.result("get_log_print_level") == "DEBUG"
    assert tgt.result("set_log_flag", {"flag": "bdev"}) is True


def connect_and_close(port):
    """Connect to the NVMe/TCP listener and close: the source port names the connection."""
    s = socket.create_connection(("127.0.0.1", port))
    src = s.getsockname()[1]
    s.close()
    return src


def test_flags_gate_debug_lines_at_run_time(daemons):
    port = free_port()
    d = daemons("-m", "0x1")
    nvmf_target(d, port)
    assert d.result("log_set_print_level", {"level": "DEBUG"}) is True
    assert d.result("log_clear_flag", {"flag": "all"}) is True
    line = "nvmf_tcp DEBUG: connection from 127.0.0.1:{}"
    # One reactor accepts in order: when a later connection's line is there, an earlier one's
    # would be too.
    quiet = connect_and_close(port)
    assert d.result("log_set_flag", {"flag": "nvmf_tcp"}) is True
    loud = connect_and_close(port)
    wait_until(lambda: line.format(loud) in d.output(), what="the flagged debug line")
    assert line.format(quiet) not in d.output()
    assert d.result("log_clear_flag", {"flag": "nvmf_tcp"}) is True
    quiet = connect_and_close(port)
    assert d.result("log_set_flag", {"flag": "NVMF_TCP"}) is True  # any case, as SPDK's
    loud = connect_and_close(port)
    wait_until(lambda: line.format(loud) in d.output(), what="the flagged debug line again")
    assert line.format(quiet) not in d.output()
    # The flag alone is not enough: the print level must let DEBUG through, as in SPDK.
    assert d.result("log_set_print_level", {"level": "INFO"}) is True
    quiet = connect_and_close(port)
    assert d.result("log_set_print_level", {"level": "DEBUG"}) is True
    loud = connect_and_close(port)
    wait_until(lambda: line.format(loud) in d.output(), what="the line at DEBUG again")
    assert line.format(quiet) not in d.output()


def test_logflag_option_and_timestamps(daemons):
    d = daemons("-L", "nvmf_tcp", "-m", "0x1")
    assert d.result("log_get_print_level") == "DEBUG"  # -L raises it, as SPDK's debug builds
    flags = d.result("log_get_flags")
    assert flags["nvmf_tcp"] and not flags["bdev"]
    # Timestamps: the line of a bdev made after turning them off starts with "mimo[".
    assert d.result("log_set_print_level", {"level": "INFO"}) is True
    assert d.result("log_enable_timestamps", {"enabled": False}) is True
    d.result("bdev_null_create", {"name": "Plain", "num_blocks": 8, "block_size": 512})
    plain = wait_until(lambda: [ln for ln in d.output().splitlines() if "Plain created" in ln])
    assert plain[0].startswith(f"mimo[{d.proc.pid}] bdev INFO: ")
    assert d.result("log_enable_timestamps", {"enabled": True}) is True
    d.result("bdev_null_create", {"name": "Stamped", "num_blocks": 8, "block_size": 512})
    stamped = wait_until(lambda: [ln for ln in d.output().splitlines()
                                  if "Stamped created" in ln])
    assert re.match(r"\d{4}-\d\d-\d\dT[\d:.]+Z mimo\[", stamped[0])
    # Log state is not configuration: save_config has none of it, as SPDK's.
    for sub in d.result("framework_get_subsystems"):
        cfg = d.result("framework_get_config", {"name": sub["subsystem"]})
        assert not [c for c in cfg if c["method"].startswith("log_")]


def test_unknown_logflag_stops_the_start(rundir):
    p = subprocess.run([TGT, "-r", os.path.join(rundir, "x.sock"), "-L", "nosuch"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 1 and "no such log flag" in p.stderr


# --- scheduler, governor, iobuf, version, legacy names --------------------------------------

def test_scheduler_governor_iobuf_version(daemons):
    d = daemons("-m", "0x3", "--wait-for-rpc")
    sched = d.result("framework_get_scheduler")
    assert sched == {"scheduler_name": "static", "scheduler_period": 0,
                     "isolated_core_mask": "0", "scheduling_core": 0}
    e = failure(d, "scheduler_set_options", {"scheduling_core": 1})
    assert e.code == -32602 and "main core (0)" in e.message
    e = failure(d, "scheduler_set_options", {"isolated_core_mask": "0x1"})
    assert "cannot be included" in e.message
    assert d.result("scheduler_set_options", {"isolated_core_mask": "0x2"}) is True
    assert d.result("framework_set_scheduler", {"name": "static"}) is True
    assert d.result("framework_get_scheduler")["scheduler_period"] == 1000000  # SPDK's 1 s
    assert d.result("framework_set_scheduler", {"name": "static", "period": 500}) is True
    sched = d.result("framework_get_scheduler")
    assert (sched["scheduler_period"], sched["isolated_core_mask"]) == (500, "2")
    assert d.result("framework_start_init") is True
    assert failure(d, "scheduler_set_options", {}).code == -1  # before init only, as SPDK
    # Saved as SPDK saves it.
    cfg = d.result("framework_get_config", {"name": "scheduler"})
    assert cfg == [{"method": "framework_set_scheduler",
                    "params": {"name": "static", "period": 500}}]
    assert d.result("framework_get_governor") == {}
    e = failure(d, "iobuf_get_stats")
    assert e.code == -95 and "no iobuf pool" in e.message
    v = d.result("spdk_get_version")
    assert v["version"].startswith("mimo v") and set(v["fields"]) == {"major", "minor",
                                                                      "patch", "suffix"}


LEGACY = {"get_spdk_version": "spdk_get_version", "start_subsystem_init": "framework_start_init",
          "wait_subsystem_init": "framework_wait_init", "get_subsystems":
          "framework_get_subsystems", "get_subsystem_config": "framework_get_config",
          "set_log_flag": "log_set_flag", "clear_log_flag": "log_clear_flag",
          "get_log_flags": "log_get_flags", "set_log_level": "log_set_level",
          "get_log_level": "log_get_level", "set_log_print_level": "log_set_print_level",
          "get_log_print_level": "log_get_print_level",
          "get_notification_types": "notify_get_types",
          "get_notifications": "notify_get_notifications",
          "context_switch_monitor": "framework_monitor_context_switch"}


def test_spdk19_names(tgt):
    plain = set(tgt.result("rpc_get_methods"))
    every = set(tgt.result("rpc_get_methods", {"include_aliases": True}))
    assert set(LEGACY) <= every and not set(LEGACY) & plain
    assert set(LEGACY.values()) <= plain
    assert tgt.result("get_spdk_version") == tgt.result("spdk_get_version")
    assert tgt.result("get_subsystems") == tgt.result("framework_get_subsystems")
    assert tgt.result("get_subsystem_config", {"name": "bdev"}) == []
    assert tgt.result("get_notification_types") == tgt.result("notify_get_types")
    assert tgt.result("wait_subsystem_init") is True


# --- CPU core locks ------------------------------------------------------------------------

LOCK = "/var/tmp/spdk_cpu_lock_001"


def lock_holder():
    with open(LOCK, "rb") as f:
        return int.from_bytes(f.read(4), "little")


def test_cpumask_locks(daemons, rundir):
    if os.path.exists(LOCK):
        pytest.skip(f"{LOCK} exists: another daemon may hold core 1")
    a = daemons("-m", "0x2", name="a")
    b = daemons("-m", "0x2", name="b")  # off by default: both run on core 1
    assert not os.path.exists(LOCK)
    assert a.result("framework_enable_cpumask_locks") is True
    assert lock_holder() == a.proc.pid
    assert a.result("framework_enable_cpumask_locks") is True  # again: nothing to do
    e = failure(b, "framework_enable_cpumask_locks")
    assert (e.code, e.message) == (-32603, "Failed to claim CPU core: 1")
    # A daemon that claims its cores at start is refused while they are held.
    p = subprocess.run([TGT, "-r", os.path.join(rundir, "c.sock"), "-m", "0x2",
                        "--cpumask-locks"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 1 and f"process {a.proc.pid} has claimed it" in p.stderr
    assert a.result("framework_disable_cpumask_locks") is True
    assert not os.path.exists(LOCK)
    assert b.result("framework_enable_cpumask_locks") is True
    assert lock_holder() == b.proc.pid
    # A clean exit gives the core back.
    assert b.stop() == 0
    assert not os.path.exists(LOCK)


# --- the command-line clients: SPDK's rpc.py and mimo-rpc ------------------------------------

CLIENTS = [pytest.param([os.path.join(BIN, "mimo-rpc")], id="mimo-rpc"),
           pytest.param(["/usr/bin/python3", SPDK_RPC or ""], id="rpc.py",
                        marks=pytest.mark.skipif(not SPDK_RPC,
                                                 reason="set SPDK_RPC_PY to SPDK's rpc.py"))]


@pytest.mark.parametrize("client", CLIENTS)
def test_command_line_clients(tgt, client):
    def rpc(*args):
        p = subprocess.run([*client, "-s", tgt.sock, *args], capture_output=True, text=True,
                           timeout=60)
        assert p.returncode == 0, p.stderr
        return p.stdout
    for m in ("framework_get_reactors", "thread_get_stats", "thread_get_pollers",
              "thread_get_io_channels", "framework_get_scheduler", "framework_get_governor",
              "log_get_flags"):
        json.loads(rpc(m))
    rpc("log_set_print_level", "NOTICE")
    assert json.loads(rpc("log_get_print_level")) == "NOTICE"
    rpc("log_set_level", "ERROR")
    assert json.loads(rpc("log_get_level")) == "ERROR"
    rpc("log_set_flag", "bdev")
    assert json.loads(rpc("log_get_flags"))["bdev"] is True
    rpc("log_clear_flag", "bdev")
    assert json.loads(rpc("log_get_flags"))["bdev"] is False
    rpc("log_enable_timestamps", "--no-timestamps")
    rpc("thread_set_cpumask", "-i", "1", "-m", "0x1")
    assert json.loads(rpc("framework_monitor_context_switch", "--monitor")) == {"enabled": True}
    assert json.loads(rpc("framework_monitor_context_switch")) == {"enabled": True}


# --- mimo_top --------------------------------------------------------------------------------

TOP = os.path.join(BIN, "mimo_top")


def test_mimo_top_batch(tgt):
    tgt.result("bdev_malloc_create", {"num_blocks": 64, "block_size": 512, "name": "TopDisk"})
    p = subprocess.run([TOP, "-r", tgt.sock, "-b", "-t", "bdevs"], capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    assert re.search(r"^TopDisk\s", p.stdout, re.M) and "1 bdevs" in p.stdout
    p = subprocess.run([TOP, "-r", tgt.sock + ".none", "-b"], capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 1 and "cannot connect" in p.stderr


@pytest.mark.skipif(not shutil.which("tmux"), reason="tmux is not installed (scripts/deps.sh)")
def test_mimo_top_live_under_tmux(tgt):
    tgt.result("bdev_malloc_create", {"num_blocks": 64, "block_size": 512, "name": "TopDisk"})
    session = f"mimo-top-{uuid.uuid4().hex[:8]}"

    def tmux(*args):
        # A tmux server of the test's own (-L): no other session's settings or environment.
        return subprocess.run(["tmux", "-L", session, *args], capture_output=True, text=True,
                              timeout=30)

    def screen():
        return tmux("capture-pane", "-p", "-t", session).stdout

    assert tmux("new-session", "-d", "-s", session, "-x", "150", "-y", "30",
                f"{TOP} -r {tgt.sock} -d 0.2").returncode == 0
    try:
        # The reactors tab first: reactor 0's row (lcore 0, its thread reactor_0).
        wait_until(lambda: re.search(r"^\s+0\s+\d+.*reactor_0", screen(), re.M),
                   what="mimo_top's reactor tab to show reactor 0")
        assert "[1 reactors]" in screen()
        tmux("send-keys", "-t", session, "4")
        wait_until(lambda: "[4 bdevs]" in screen() and re.search(r"^TopDisk\s", screen(), re.M),
                   what="the bdev tab to show TopDisk")
        tmux("send-keys", "-t", session, "Tab")  # the next tab
        wait_until(lambda: "[5 subsystems]" in screen(), what="Tab to reach the subsystems")
        tmux("send-keys", "-t", session, "2", "s")  # threads, sorted by the next column
        wait_until(lambda: "[2 threads]" in screen() and re.search(r"\bidv", screen()),
                   what="the thread tab sorted by id")
        tmux("send-keys", "-t", session, "q")
        wait_until(lambda: tmux("has-session", "-t", session).returncode != 0,
                   what="q to end mimo_top")
    finally:
        tmux("kill-server")
