"""bdev_nvme's RPCs over an attached controller: bdev_nvme_reset_controller,
_disable_controller / _enable_controller, bdev_nvme_get_controller_health_info,
bdev_nvme_get_transport_statistics and bdev_nvme_get_io_paths (SPDK's parameters, errors and
shapes; SPDK's rpc.py as the client where it fits). A backend mimo_tgt serves a malloc bdev, a
frontend attaches it and re-exports the bdev for mimo_perf."""
import base64
import json
import os
import signal
import struct
import subprocess

import pytest

from conftest import RpcFailure, clean_env, free_port, wait_until
from test_nvme import NQN, PERF, SERIAL, attach, serve
from test_nvme_reconnect import finish, ops, reexport, start_perf, state

SPDK_RPC = "/work/spdk-peer/scripts/rpc.py"

pytestmark = pytest.mark.skipif(not os.path.exists(PERF), reason="mimo_perf is not built")


def spdk_rpc(t, *args):
    p = subprocess.run(["/usr/bin/python3", SPDK_RPC, "-s", t.sock, *map(str, args)],
                       env=dict(clean_env(), PYTHONPATH="/work/spdk-peer/python"),
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout) if p.stdout.strip() else None


@pytest.fixture
def pair(daemons):
    backend, front = daemons(name="backend"), daemons(name="frontend")
    port, p2 = free_port(), free_port()
    serve(backend, port)
    assert attach(front, port) == ["Nvme0n1"]
    reexport(front, p2)
    return backend, front, port, p2


def cntlid(t):
    return t.result("bdev_nvme_get_controllers")[0]["ctrlrs"][0]["cntlid"]


def test_health_info(pair):
    _, front, port, _ = pair
    h = spdk_rpc(front, "bdev_nvme_get_controller_health_info", "-c", "Nvme0")
    assert h["serial_number"] == SERIAL and h["traddr"] == "127.0.0.1"
    assert h["model_number"] and h["firmware_revision"]
    for key in ("critical_warning", "temperature_celsius",
                "available_spare_percentage", "available_spare_threshold_percentage",
                "percentage_used", "data_units_read", "data_units_written",
                "host_read_commands", "host_write_commands", "controller_busy_time",
                "power_cycles", "power_on_hours", "unsafe_shutdowns", "media_errors",
                "num_err_log_entries", "warning_temperature_time_minutes",
                "critical_composite_temperature_time_minutes"):
        assert isinstance(h[key], int), key
    with pytest.raises(RpcFailure) as e:
        front.result("bdev_nvme_get_controller_health_info", {"name": "Nvme9"})
    assert "Device not found" in e.value.message


def test_transport_statistics_and_io_paths(pair):
    _, front, _, p2 = pair
    rc, out = finish(start_perf(p2, 1))
    assert rc == 0, out
    stats = spdk_rpc(front, "bdev_nvme_get_transport_statistics")
    groups = stats["poll_groups"]
    assert groups and all(g["thread"].startswith("reactor_") for g in groups)
    tcp = [t for g in groups for t in g["transports"]]
    assert all(t["trname"] == "TCP" for t in tcp)
    assert sum(t["submitted_requests"] for t in tcp) > 0
    assert sum(t["nvme_completions"] for t in tcp) >= sum(t["submitted_requests"] for t in tcp)
    assert sum(t["polls"] for t in tcp) >= sum(t["idle_polls"] for t in tcp)
    with pytest.raises(RpcFailure) as e:
        front.result("bdev_nvme_get_transport_statistics", {"x": 1})
    assert e.value.code == -32602

    paths = spdk_rpc(front, "bdev_nvme_get_io_paths", "-n", "Nvme0n1")["poll_groups"]
    ps = [p for g in paths for p in g["io_paths"]]
    assert ps and all(p["bdev_name"] == "Nvme0n1" for p in ps)
    p = ps[0]
    assert p["cntlid"] == cntlid(front) and p["current"] and p["connected"] and p["accessible"]
    assert p["transport"]["trtype"] == "TCP" and p["transport"]["adrfam"] == "IPv4"
    assert p["transport"]["traddr"] == "127.0.0.1"
    none = front.result("bdev_nvme_get_io_paths", {"name": "Nvme9n1"})["poll_groups"]
    assert all(g["io_paths"] == [] for g in none)


def test_reset_under_io(pair):
    backend, front, _, p2 = pair
    before = cntlid(front)
    perf = start_perf(p2, 3)
    wait_until(lambda: ops(backend) > 100, timeout=30, what="I/O reaching the backend")
    spdk_rpc(front, "bdev_nvme_reset_controller", "Nvme0")  # exits 0 (prints nothing)
    after = cntlid(front)
    assert after != before and state(front) == "enabled"  # a new controller of the target
    rc, out = finish(perf)
    assert rc == 0, out  # I/O waited through the reset
    with pytest.raises(RpcFailure) as e:
        front.result("bdev_nvme_reset_controller", {"name": "Nvme0", "cntlid": after + 1})
    assert e.value.code == -19
    with pytest.raises(RpcFailure) as e:
        front.result("bdev_nvme_reset_controller", {"name": "Nvme9"})
    assert e.value.code == -19
    assert front.result("bdev_nvme_reset_controller", {"name": "Nvme0", "cntlid": after})


def test_disable_and_enable(pair):
    _, front, _, p2 = pair
    spdk_rpc(front, "bdev_nvme_disable_controller", "Nvme0")  # exits 0 (prints nothing)
    assert state(front) == "disabled"
    # Nothing to do is success, as SPDK: disable twice, reset a disabled one.
    assert front.result("bdev_nvme_disable_controller", {"name": "Nvme0"}) is True
    assert front.result("bdev_nvme_reset_controller", {"name": "Nvme0"}) is True
    rc, out = finish(start_perf(p2, 1))
    assert rc == 2, out  # I/O fails while disabled
    assert [b["name"] for b in front.result("bdev_get_bdevs")] == ["Nvme0n1"]
    spdk_rpc(front, "bdev_nvme_enable_controller", "Nvme0")  # exits 0 (prints nothing)
    assert state(front) == "enabled"
    assert front.result("bdev_nvme_enable_controller", {"name": "Nvme0"}) is True
    rc, out = finish(start_perf(p2, 1))
    assert rc == 0, out
    # Detach works from either state.
    assert front.result("bdev_nvme_disable_controller", {"name": "Nvme0"}) is True
    front.result("nvmf_delete_subsystem", {"nqn": NQN + "-re"})
    assert front.result("bdev_nvme_detach_controller", {"name": "Nvme0"}) is True
    assert front.result("bdev_nvme_get_controllers") == []


def test_reset_recovers_a_failed_controller(daemons):
    # Without reconnect options a lost controller stays failed; a reset is one attempt,
    # which fails while the target is down and brings it back once it is up.
    backend, front = daemons(name="backend"), daemons(name="frontend")
    port = free_port()
    serve(backend, port)
    assert attach(front, port) == ["Nvme0n1"]
    backend.stop(signal.SIGKILL)
    wait_until(lambda: state(front) == "failed", what="the loss noticed")
    with pytest.raises(RpcFailure) as e:
        front.result("bdev_nvme_reset_controller", {"name": "Nvme0"})
    assert e.value.code == -5
    assert state(front) == "failed"
    again = daemons(name="backend-again")
    serve(again, port)
    assert front.result("bdev_nvme_reset_controller", {"name": "Nvme0"}) is True
    assert state(front) == "enabled"
    assert front.result("bdev_nvme_get_controller_health_info", {"name": "Nvme0"})[
        "serial_number"] == SERIAL


def perf_json(port, workload):
    p = subprocess.run([PERF, "-r", f"trtype:tcp adrfam:IPv4 traddr:127.0.0.1 trsvcid:{port} "
                        f"subnqn:{NQN}-re", "-q", "8", "-o", "4096", "-w", workload, "-t", "1",
                        "--json"], capture_output=True, text=True, timeout=60, env=clean_env())
    assert "Sanitizer" not in p.stderr and "runtime error" not in p.stderr, p.stderr
    return p.returncode, json.loads(p.stdout)["total"]


def test_error_injection(pair):
    backend, front, _, p2 = pair
    # Reads: three fail without reaching the controller (SPDK's rpc.py adds it).
    spdk_rpc(front, "bdev_nvme_add_error_injection", "-n", "Nvme0", "-t", "io", "-o", 2, "-s",
             "-w", 1000, "-e", 3, "-u", 0, "-c", 6)
    before = backend.result("bdev_get_iostat", {"name": "Malloc0"})["bdevs"][0]
    rc, tot = perf_json(p2, "randread")
    assert rc == 2 and tot["io_errors"] == 3, tot
    after = backend.result("bdev_get_iostat", {"name": "Malloc0"})["bdevs"][0]
    assert after["num_read_ops"] - before["num_read_ops"] == tot["io_completed"] - 3
    rc, tot = perf_json(p2, "randread")  # used up
    assert rc == 0 and tot["io_errors"] == 0, tot
    # Writes: sent, and two turned into errors on their completion.
    assert front.result("bdev_nvme_add_error_injection", {
        "name": "Nvme0", "cmd_type": "io", "opc": 1, "err_count": 2, "sct": 0, "sc": 4})
    before = backend.result("bdev_get_iostat", {"name": "Malloc0"})["bdevs"][0]
    rc, tot = perf_json(p2, "randwrite")
    assert rc == 2 and tot["io_errors"] == 2, tot
    after = backend.result("bdev_get_iostat", {"name": "Malloc0"})["bdevs"][0]
    assert after["num_write_ops"] - before["num_write_ops"] == tot["io_completed"]
    # Removed: nothing more fails.
    assert front.result("bdev_nvme_add_error_injection", {
        "name": "Nvme0", "cmd_type": "io", "opc": 2, "err_count": 1000000, "sc": 6})
    assert front.result("bdev_nvme_remove_error_injection",
                        {"name": "Nvme0", "cmd_type": "io", "opc": 2}) is True
    rc, tot = perf_json(p2, "randread")
    assert rc == 0 and tot["io_errors"] == 0, tot
    # Refusals.
    with pytest.raises(RpcFailure) as e:
        front.result("bdev_nvme_add_error_injection",
                     {"name": "Nvme0", "cmd_type": "admin", "opc": 6})
    assert e.value.code == -95 and "I/O commands only" in e.value.message
    with pytest.raises(RpcFailure) as e:
        front.result("bdev_nvme_add_error_injection", {"name": "Nvme9", "cmd_type": "io", "opc": 2})
    assert e.value.code == -19
    with pytest.raises(RpcFailure) as e:
        front.result("bdev_nvme_add_error_injection", {"name": "Nvme0", "cmd_type": "x", "opc": 2})
    assert e.value.code == -22


def b64(data):
    return base64.urlsafe_b64encode(data).decode()


def command(opc, nsid=0, cdw10=0, cdw11=0, cdw12=0):
    return b64(struct.pack("<BBHI8x8x16xIIIIII", opc, 0, 0, nsid, cdw10, cdw11, cdw12, 0, 0, 0))


def test_send_cmd(pair):
    backend, front, _, _ = pair
    # Admin: Identify Controller through SPDK's rpc.py; the serial number is the target's.
    r = spdk_rpc(front, "bdev_nvme_send_cmd", "-n", "Nvme0", "-t", "admin", "-r", "c2h",
                 "-c", command(0x06, cdw10=1), "-D", 4096)
    cpl = base64.urlsafe_b64decode(r["cpl"])
    assert len(cpl) == 16 and struct.unpack_from("<H", cpl, 14)[0] >> 1 == 0
    data = base64.urlsafe_b64decode(r["data"])
    assert len(data) == 4096 and data[4:24].decode().strip() == SERIAL
    # I/O: a block written, read back, on the namespace the backend serves.
    block = bytes(range(256)) * 2
    before = backend.result("bdev_get_iostat", {"name": "Malloc0"})["bdevs"][0]
    r = front.result("bdev_nvme_send_cmd", {
        "name": "Nvme0", "cmd_type": "io", "data_direction": "h2c",
        "cmdbuf": command(0x01, nsid=1, cdw10=7), "data": b64(block)})
    assert "data" not in r
    r = front.result("bdev_nvme_send_cmd", {
        "name": "Nvme0", "cmd_type": "io", "data_direction": "c2h",
        "cmdbuf": command(0x02, nsid=1, cdw10=7), "data_len": 512})
    assert base64.urlsafe_b64decode(r["data"]) == block
    after = backend.result("bdev_get_iostat", {"name": "Malloc0"})["bdevs"][0]
    assert after["num_write_ops"] > before["num_write_ops"]
    # A command the controller fails comes back with its status, not as an RPC error.
    r = front.result("bdev_nvme_send_cmd", {
        "name": "Nvme0", "cmd_type": "io", "data_direction": "c2h",
        "cmdbuf": command(0x02, nsid=1, cdw10=1 << 30), "data_len": 512})
    status = struct.unpack_from("<H", base64.urlsafe_b64decode(r["cpl"]), 14)[0]
    assert (status >> 1) & 0xff != 0
    for bad, code in (({"cmdbuf": b64(b"short")}, -22), ({"metadata_len": 8}, -95),
                      ({"name": "Nvme9"}, -19), ({"cmd_type": "x"}, -22)):
        params = {"name": "Nvme0", "cmd_type": "admin", "data_direction": "c2h",
                  "cmdbuf": command(0x06, cdw10=1), "data_len": 4096}
        params.update(bad)
        with pytest.raises(RpcFailure) as e:
            front.result("bdev_nvme_send_cmd", params)
        assert e.value.code == code, bad


def test_set_keys_reauthenticates(daemons, tmp_path):
    # The target rotates the host's key; bdev_nvme_set_keys gives the controller the new one
    # and proves it at once (by connecting again); a key the target no longer takes fails.
    from test_auth import HOSTNQN, NQN as AUTH_NQN, AuthTarget

    at = AuthTarget(daemons, tmp_path)
    at.key("key0")
    at.key("key1")
    at.add_host(key="key0")
    front = daemons(name="frontend")
    for name in ("key0", "key1"):
        front.result("keyring_file_add_key", {"name": name, "path": str(tmp_path / name)})
    assert attach(front, at.port, nqn=AUTH_NQN, hostnqn=HOSTNQN, dhchap_key="key0") == \
        ["Nvme0n1"]
    before = cntlid(front)
    at.d.result("nvmf_subsystem_set_keys", {"nqn": AUTH_NQN, "host": HOSTNQN,
                                            "dhchap_key": "key1"})
    spdk_rpc(front, "bdev_nvme_set_keys", "Nvme0", "--dhchap-key", "key1")  # exits 0
    assert state(front) == "enabled" and cntlid(front) != before
    cfg = front.result("framework_get_config", {"name": "bdev"})
    att = [m["params"] for m in cfg if m["method"] == "bdev_nvme_attach_controller"][0]
    assert att["dhchap_key"] == "key1"
    with pytest.raises(RpcFailure) as e:
        front.result("bdev_nvme_set_keys", {"name": "Nvme0", "dhchap_key": "key0"})
    assert e.value.code == -5
    assert state(front) == "failed"
    assert front.result("bdev_nvme_set_keys", {"name": "Nvme0", "dhchap_key": "key1"}) is True
    assert state(front) == "enabled"
    with pytest.raises(RpcFailure) as e:
        front.result("bdev_nvme_set_keys", {"name": "Nvme0", "dhchap_key": "nokey"})
    assert e.value.code == -126
    with pytest.raises(RpcFailure) as e:
        front.result("bdev_nvme_set_keys", {"name": "Nvme0", "dhchap_ctrlr_key": "key0"})
    assert e.value.code == -22


def test_path_iostat(daemons):
    backend, front = daemons(name="backend"), daemons(name="frontend")
    port, p2 = free_port(), free_port()
    serve(backend, port)
    with pytest.raises(RpcFailure) as e:  # SPDK's answer without the option
        front.result("bdev_nvme_get_path_iostat", {"name": "Nvme0n1"})
    assert e.value.code == -1 and "io_path_stat" in e.value.message
    assert front.result("bdev_nvme_set_options", {"io_path_stat": True}) is True
    assert attach(front, port) == ["Nvme0n1"]
    reexport(front, p2)
    rc, out = finish(start_perf(p2, 1))
    assert rc == 0, out
    r = spdk_rpc(front, "bdev_nvme_get_path_iostat", "-b", "Nvme0n1")
    assert r["name"] == "Nvme0n1" and len(r["stats"]) == 1
    s = r["stats"][0]
    assert s["trid"]["trsvcid"] == str(port) and s["trid"]["subnqn"] == NQN
    st = s["stat"]
    assert st["num_read_ops"] > 0 and st["num_write_ops"] > 0
    assert st["bytes_read"] == 4096 * st["num_read_ops"]
    assert 0 < st["min_read_latency_ticks"] <= st["max_read_latency_ticks"] <= \
        st["read_latency_ticks"]
    cfg = front.result("framework_get_config", {"name": "bdev"})
    opts = [m["params"] for m in cfg if m["method"] == "bdev_nvme_set_options"][0]
    assert opts["io_path_stat"] is True
    with pytest.raises(RpcFailure) as e:
        front.result("bdev_nvme_get_path_iostat", {"name": "Nope"})
    assert e.value.code == -19
