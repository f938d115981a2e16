"""The NVMe-oF/TCP initiator against mimo_tgt: mimo_identify (controller, namespaces, discovery
log), mimo_perf (every workload, --verify with and without digests and with several queue
pairs, its JSON and latency reports, its exit codes), and bdev_nvme (a second mimo_tgt that
attaches the first's subsystem, re-exports it, follows namespace changes, saves and replays
its configuration, detaches)."""
import json
import os
import signal
import subprocess
import time

import pytest

from conftest import BIN, RpcFailure, clean_env, closed_port, free_port, wait_until

IDENTIFY = os.path.join(BIN, "mimo_identify")
PERF = os.path.join(BIN, "mimo_perf")
NQN = "nqn.2016-06.io.spdk:cnode1"
DISCOVERY_NQN = "nqn.2014-08.org.nvmexpress.discovery"
UUID = "6a3b2f1e-1c2d-4e5f-8a9b-0c1d2e3f4a5b"
SERIAL = "MIMO0000000000000001"

pytestmark = pytest.mark.skipif(not os.path.exists(PERF) or not os.path.exists(IDENTIFY),
                                reason="mimo_perf / mimo_identify are not built")

# The target's reactor runs on core 0; the load, where there is one, on another core.
PERF_CORES = "0x2" if (os.cpu_count() or 1) >= 2 else "0x1"
# Sanitizer builds are several times slower: give them room.
SLOW = 4 if "asan" in BIN else 1


def trid(port, nqn=NQN, extra=""):
    return f"trtype:tcp adrfam:IPv4 traddr:127.0.0.1 trsvcid:{port} subnqn:{nqn} {extra}".strip()


def serve(t, port, nqn=NQN, bdev="Malloc0", num_blocks=131072, block_size=512, uuid=UUID,
          transport=True):
    """Export a new malloc bdev through a new subsystem listening on port."""
    if transport:
        t.result("nvmf_create_transport", {"trtype": "tcp"})
    params = {"name": bdev, "num_blocks": num_blocks, "block_size": block_size}
    if uuid:
        params["uuid"] = uuid
    t.result("bdev_malloc_create", params)
    t.result("nvmf_create_subsystem", {"nqn": nqn, "allow_any_host": True,
                                       "serial_number": SERIAL})
    assert t.result("nvmf_subsystem_add_ns", {"nqn": nqn, "namespace": {"bdev_name": bdev}}) >= 1
    t.result("nvmf_subsystem_add_listener", {"nqn": nqn, "listen_address": {
        "trtype": "tcp", "adrfam": "IPv4", "traddr": "127.0.0.1", "trsvcid": str(port)}})


def run(prog, *args, timeout=60):
    p = subprocess.run([prog, *map(str, args)], capture_output=True, text=True,
                       timeout=timeout * SLOW, env=clean_env())
    # Whatever the exit status, a sanitizer build must have nothing to report.
    assert "Sanitizer" not in p.stderr and "runtime error" not in p.stderr, p.stderr
    return p


def perf(port, *args, nqn=NQN, timeout=60):
    return run(PERF, "-r", trid(port, nqn), "-c", PERF_CORES, *args, timeout=timeout)


def wait_for(fn, timeout=10.0):
    return wait_until(fn, timeout)


@pytest.fixture
def served(daemons):
    """mimo_tgt serving a 64 MiB malloc bdev as NQN's namespace 1; yields (daemon, port)."""
    t = daemons()
    port = free_port()
    serve(t, port)
    return t, port


# --- mimo_identify -----------------------------------------------------------------------------

def test_identify_controller_and_namespace(served):
    t, port = served
    p = run(IDENTIFY, "-r", trid(port), "--json")
    assert p.returncode == 0, p.stderr
    j = json.loads(p.stdout)
    c = j["controller"]
    assert c["sn"] == SERIAL and c["subnqn"] == NQN and c["mn"]
    assert c["cntlid"] > 0 and c["ver"].startswith("1.") and c["discovery"] is False
    assert c["cntrltype"] == 1 and c["kas"] > 0 and c["ioccsz"] >= 4
    assert c["max_xfer_size"] > 0 and c["oncs"] & 1  # compare
    assert c["trid"] == trid(port).replace("tcp", "TCP")
    assert j["namespaces"] == [{
        "nsid": 1, "size": 64 << 20, "capacity": 64 << 20, "nsze": 131072, "ncap": 131072,
        "block_size": 512, "nlbaf": 1, "flbas": 0, "uuid": UUID,
        "nguid": UUID.replace("-", "")}]
    # The text report, in spdk_nvme_identify's words.
    p = run(IDENTIFY, "-r", trid(port), "-H", "-I")
    assert p.returncode == 0, p.stderr
    for line in (f"NVMe over Fabrics controller at 127.0.0.1:{port}: {NQN}",
                 f"Serial Number:                         {SERIAL}",
                 f"Subsystem NQN:                         {NQN}", "Namespace ID:1",
                 "Size (in LBAs):                        131072 (0GiB)",
                 f"UUID:                                  {UUID}",
                 "LBA Format #00: Data Size:   512  Metadata Size:     0"):
        assert line in p.stdout, line


def test_identify_discovery_log(served):
    t, port = served
    # Without subnqn the discovery controller answers.
    p = run(IDENTIFY, "-r", f"trtype:tcp traddr:127.0.0.1 trsvcid:{port}", "--json")
    assert p.returncode == 0, p.stderr
    j = json.loads(p.stdout)
    assert j["controller"]["discovery"] is True and "namespaces" not in j
    log = j["discovery_log"]
    assert log["numrec"] == len(log["entries"]) >= 1
    mine = [e for e in log["entries"] if e["subnqn"] == NQN]
    assert len(mine) == 1
    assert mine[0]["trtype"] == "TCP" and mine[0]["adrfam"] == "IPv4"
    assert mine[0]["traddr"] == "127.0.0.1" and mine[0]["trsvcid"] == str(port)
    assert mine[0]["subtype"] == 2
    p = run(IDENTIFY, "-r", f"traddr:127.0.0.1 trsvcid:{port} subnqn:{DISCOVERY_NQN}")
    assert p.returncode == 0 and "Discovery Log Entry 0" in p.stdout
    assert f"NVM Subsystem Qualified Name:          {NQN}" in p.stdout


def test_identify_failures(served):
    t, port = served
    p = run(IDENTIFY, "-r", trid(closed_port()))
    assert p.returncode == 1 and "Connection refused" in p.stderr
    p = run(IDENTIFY, "-r", trid(port, "nqn.2016-06.io.spdk:nobody"))
    assert p.returncode == 1 and "No such file or directory" in p.stderr
    p = run(IDENTIFY, "-r", "trtype:rdma traddr:1.2.3.4")
    assert p.returncode == 1 and "invalid transport ID" in p.stderr
    assert run(IDENTIFY).returncode == 1


def test_identify_refused_host(daemons):
    t = daemons()
    port = free_port()
    serve(t, port)
    t.result("nvmf_subsystem_allow_any_host", {"nqn": NQN, "allow_any_host": False})
    p = run(IDENTIFY, "-r", trid(port))
    assert p.returncode == 1 and "Permission denied" in p.stderr
    host = "nqn.2014-08.org.nvmexpress:uuid:0f0e0d0c-0b0a-0908-0706-050403020100"
    t.result("nvmf_subsystem_add_host", {"nqn": NQN, "host": host})
    p = run(IDENTIFY, "-r", trid(port, extra=f"hostnqn:{host}"), "--json")
    assert p.returncode == 0, p.stderr


# --- mimo_perf ---------------------------------------------------------------------------------

@pytest.mark.parametrize("digests", [[], ["-H", "-I"]], ids=["plain", "digests"])
@pytest.mark.parametrize("qpairs", [1, 2])
def test_perf_verify(served, digests, qpairs):
    t, port = served
    # 4 KiB in-capsule writes and 16 KiB ones through R2T and H2CData.
    for size in (4096, 16384):
        p = perf(port, "-q", 16, "-o", size, "-w", "randrw", "-t", 1, "-P", qpairs, "--verify",
                 *digests)
        assert p.returncode == 0, p.stdout + p.stderr
        assert "Total" in p.stdout and "mismatch" not in p.stderr


def test_perf_verify_sequential_and_without_sq_flow_control(served):
    t, port = served
    p = perf(port, "-q", 8, "-o", 8192, "-w", "write", "-t", 1, "--verify",
             "--disable-sq-flow-control")
    assert p.returncode == 0, p.stdout + p.stderr


@pytest.mark.parametrize("workload", ["read", "write", "randread", "randwrite", "rw", "randrw"])
def test_perf_workloads_json(served, workload):
    t, port = served
    before = t.result("bdev_get_iostat", {"name": "Malloc0"})["bdevs"][0]
    p = perf(port, "-q", 32, "-o", 4096, "-w", workload, "-M", 70, "-t", 1, "--json")
    assert p.returncode == 0, p.stderr
    j = json.loads(p.stdout)  # nothing else on stdout
    assert j["workload"] == workload and j["io_size"] == 4096 and j["queue_depth"] == 32
    assert j["time_s"] == 1 and j["qpairs_per_ns"] == 1
    figures = {"io_completed", "iops", "mibps", "avg_lat_us", "min_lat_us", "max_lat_us",
               "p50_lat_us", "p99_lat_us", "p999_lat_us", "io_errors", "verify_errors"}
    assert len(j["namespaces"]) == 1
    ns = j["namespaces"][0]
    assert figures | {"name", "core", "nsid", "subnqn"} == set(ns)
    assert ns["nsid"] == 1 and ns["subnqn"] == NQN
    assert ns["name"] == f"TCP (addr:127.0.0.1 subnqn:{NQN}) NSID 1"
    assert figures == set(j["total"])
    tot = j["total"]
    assert tot["io_completed"] > 0 and tot["iops"] > 0 and tot["io_errors"] == 0
    assert tot["mibps"] == pytest.approx(tot["iops"] * 4096 / 2**20, rel=1e-6)
    assert 0 < tot["min_lat_us"] <= tot["p50_lat_us"] <= tot["p99_lat_us"] \
        <= tot["p999_lat_us"] <= tot["max_lat_us"]
    after = t.result("bdev_get_iostat", {"name": "Malloc0"})["bdevs"][0]
    reads = after["num_read_ops"] - before["num_read_ops"]
    writes = after["num_write_ops"] - before["num_write_ops"]
    assert reads + writes == tot["io_completed"]
    if workload in ("read", "randread"):
        assert writes == 0
    elif workload in ("write", "randwrite"):
        assert reads == 0
    else:
        assert reads > writes > 0  # 70% reads


def test_perf_text_report_and_latency(served):
    t, port = served
    p = perf(port, "-q", 4, "-o", 4096, "-w", "randread", "-t", 1, "-LL")
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert "Initializing NVMe Controllers" in out
    assert f"Attached to NVMe over Fabrics controller at 127.0.0.1:{port}: {NQN}" in out
    assert f"Associating TCP (addr:127.0.0.1 subnqn:{NQN}) NSID 1 with lcore" in out
    head = [line for line in out.splitlines() if line.startswith("Device Information")][0]
    assert head.split(":")[1].split() == ["IOPS", "MiB/s", "Average", "min", "max", "p50",
                                          "p99", "p99.9"]
    total = [line for line in out.splitlines() if line.startswith("Total")][0]
    assert len(total.split(":")[1].split()) == 8
    assert "Summary latency data for" in out and " 99.90000% :" in out
    assert "Latency histogram for" in out and "Range in us     Cumulative    IO count" in out


def test_perf_several_targets_and_cores(daemons):
    t1, t2 = daemons(), daemons()
    p1, p2 = free_port(), free_port()
    serve(t1, p1)
    serve(t2, p2, nqn=NQN + "b", uuid=None)
    p = run(PERF, "-r", trid(p1), "-r", trid(p2, NQN + "b", "ns:1"), "-q", 8, "-o", 4096,
            "-w", "randrw", "-t", 1, "-c", "0x3", "--verify", "--json")
    assert p.returncode == 0, p.stderr
    j = json.loads(p.stdout)
    assert sorted(n["subnqn"] for n in j["namespaces"]) == [NQN, NQN + "b"]
    assert sorted(n["core"] for n in j["namespaces"]) == [0, 1]


def test_perf_verify_one_namespace_reached_twice(served):
    # Two controllers to one subsystem: the same namespace twice, on two cores. --verify's
    # slots must not overlap across them.
    t, port = served
    p = run(PERF, "-r", trid(port), "-r", trid(port), "-q", 8, "-o", 4096, "-w", "randrw",
            "-t", 1, "-c", "0x3", "-P", 2, "--verify", "--json")
    assert p.returncode == 0, p.stderr
    assert len(json.loads(p.stdout)["namespaces"]) == 2


def test_perf_failures(served):
    t, port = served
    p = perf(closed_port(), "-q", 1, "-o", 4096, "-w", "read", "-t", 1)
    assert p.returncode != 0 and "Connection refused" in p.stderr
    p = perf(port, "-q", 1, "-o", 4096, "-w", "read", "-t", 1, nqn=NQN + "x")
    assert p.returncode != 0
    assert perf(port, "-q", 1, "-o", 4096, "-w", "sideways", "-t", 1).returncode != 0
    assert perf(port, "-o", 4096, "-w", "read", "-t", 1).returncode != 0  # no -q
    # An I/O size that is not a whole number of blocks leaves nothing to test.
    p = perf(port, "-q", 1, "-o", 1000, "-w", "read", "-t", 1)
    assert p.returncode != 0 and "Removing this ns" in p.stdout
    # --verify needs an I/O unit of its own for every I/O in flight.
    p = perf(port, "-q", 2048, "-o", 65536, "-w", "write", "-t", 1, "--verify")
    assert p.returncode == 1 and "that --verify keeps in flight" in p.stderr
    # The namespace goes away under load: the I/O errors make the exit code non-zero.
    proc = subprocess.Popen([PERF, "-r", trid(port), "-c", PERF_CORES, "-q", "8", "-o", "4096",
                             "-w", "randread", "-t", str(3 * SLOW)], env=clean_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # Under load: reads have reached the target before the namespace goes.
    wait_for(lambda: t.result("bdev_get_iostat", {"name": "Malloc0"})["bdevs"][0][
        "num_read_ops"] > 100)
    t.result("nvmf_subsystem_remove_ns", {"nqn": NQN, "nsid": 1})
    out, err = proc.communicate(timeout=60 * SLOW)
    assert proc.returncode != 0 and "I/O error" in err, (out, err)
    assert "Sanitizer" not in err and "runtime error" not in err, err


# --- bdev_nvme -------------------------------------------------------------------------------

def attach(t, port, name="Nvme0", nqn=NQN, **extra):
    params = {"name": name, "trtype": "tcp", "traddr": "127.0.0.1", "adrfam": "ipv4",
              "trsvcid": str(port), "subnqn": nqn}
    params.update(extra)
    return t.result("bdev_nvme_attach_controller", params)


def test_bdev_nvme_attach_reexport_detach(daemons, tmp_path):
    t1, t2 = daemons(name="backend"), daemons(name="frontend")
    p1, p2 = free_port(), free_port()
    serve(t1, p1)
    # rpc.py sends its unset flags as false: they are accepted.
    names = attach(t2, p1, prchk_reftag=False, prchk_guard=False, hdgst=True, ddgst=True,
                   allow_unrecognized_csi=False, multipath="disable")
    assert names == ["Nvme0n1"]
    bdev = t2.result("bdev_get_bdevs", {"name": "Nvme0n1"})[0]
    assert bdev["product_name"] == "NVMe disk"
    assert (bdev["block_size"], bdev["num_blocks"], bdev["uuid"]) == (512, 131072, UUID)
    assert bdev["supported_io_types"]["read"] and bdev["supported_io_types"]["write"]
    assert bdev["supported_io_types"]["unmap"] and bdev["supported_io_types"]["write_zeroes"]
    nvme = bdev["driver_specific"]["nvme"][0]
    assert nvme["trid"] == {"trtype": "TCP", "adrfam": "IPv4", "traddr": "127.0.0.1",
                            "trsvcid": str(p1), "subnqn": NQN}
    assert nvme["ctrlr_data"]["serial_number"] == SERIAL and nvme["ns_data"]["id"] == 1
    ctrlrs = t2.result("bdev_nvme_get_controllers")
    assert len(ctrlrs) == 1 and ctrlrs[0]["name"] == "Nvme0"
    c = ctrlrs[0]["ctrlrs"][0]
    assert c["state"] == "enabled" and c["cntlid"] > 0 and c["trid"] == nvme["trid"]
    assert c["host"]["nqn"].startswith("nqn.2014-08.org.nvmexpress:uuid:")
    assert t2.result("bdev_nvme_get_controllers", {"name": "Nvme0"}) == ctrlrs
    with pytest.raises(RpcFailure):
        t2.result("bdev_nvme_get_controllers", {"name": "Nvme9"})

    # Re-exported by the second target; I/O through it reaches the first's malloc bdev.
    t2.result("nvmf_create_transport", {"trtype": "tcp"})
    t2.result("nvmf_create_subsystem", {"nqn": NQN + "-re", "allow_any_host": True})
    t2.result("nvmf_subsystem_add_ns", {"nqn": NQN + "-re", "namespace": {"bdev_name": "Nvme0n1"}})
    t2.result("nvmf_subsystem_add_listener", {"nqn": NQN + "-re", "listen_address": {
        "trtype": "tcp", "traddr": "127.0.0.1", "trsvcid": str(p2)}})
    before = t1.result("bdev_get_iostat", {"name": "Malloc0"})["bdevs"][0]
    for size in (4096, 65536):
        p = perf(p2, "-q", 8, "-o", size, "-w", "randrw", "-t", 1, "--verify", nqn=NQN + "-re")
        assert p.returncode == 0, p.stdout + p.stderr
    after = t1.result("bdev_get_iostat", {"name": "Malloc0"})["bdevs"][0]
    assert after["num_write_ops"] > before["num_write_ops"]
    assert after["num_read_ops"] > before["num_read_ops"]
    # The backend's own namespace identity shows through both hops.
    p = run(IDENTIFY, "-r", trid(p2, NQN + "-re"), "--json")
    assert json.loads(p.stdout)["namespaces"][0]["uuid"] == UUID

    # save_config: one attach per controller, which a new target replays.
    cfg = t2.result("framework_get_config", {"name": "bdev"})
    attaches = [m for m in cfg if m["method"] == "bdev_nvme_attach_controller"]
    assert len(attaches) == 1
    assert attaches[0]["params"]["name"] == "Nvme0" and attaches[0]["params"]["hdgst"] is True
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"subsystems": [{"subsystem": "bdev", "config": cfg}]}))
    t3 = daemons("-c", path, name="replayed")
    assert t3.result("framework_wait_init") is True  # the replay attaches in the background
    again = t3.result("bdev_get_bdevs", {"name": "Nvme0n1"})[0]
    assert (again["uuid"], again["num_blocks"]) == (UUID, 131072)
    t3.stop()

    # Detach: the bdev goes (and its namespace with it), the controller list is empty.
    assert t2.result("bdev_nvme_detach_controller", {"name": "Nvme0"}) is True
    assert t2.result("bdev_get_bdevs") == []
    assert t2.result("bdev_nvme_get_controllers") == []
    with pytest.raises(RpcFailure) as e:
        t2.result("bdev_nvme_detach_controller", {"name": "Nvme0"})
    assert e.value.code == -19


def test_bdev_nvme_errors_and_legacy(daemons):
    t1, t2 = daemons(), daemons()
    port = free_port()
    serve(t1, port)
    with pytest.raises(RpcFailure) as e:
        attach(t2, closed_port())
    assert e.value.code == -111 and "refused" in e.value.message
    with pytest.raises(RpcFailure) as e:
        attach(t2, port, nqn=NQN + "-none")
    assert e.value.code == -2
    with pytest.raises(RpcFailure) as e:
        attach(t2, port, trtype="rdma")
    assert e.value.code == -22
    # The loop transport is in-process, through the C API only: refused with the reason.
    with pytest.raises(RpcFailure) as e:
        attach(t2, port, trtype="loop")
    assert e.value.code == -22 and "not attachable over RPC" in e.value.message
    with pytest.raises(RpcFailure) as e:
        attach(t2, port, prchk_guard=True)
    assert e.value.code == -22
    with pytest.raises(RpcFailure) as e:
        t2.result("bdev_nvme_attach_controller", {"name": "X", "trtype": "tcp"})
    assert e.value.code == -32602
    assert attach(t2, port) == ["Nvme0n1"]
    with pytest.raises(RpcFailure) as e:
        attach(t2, port)
    assert e.value.code == -114 and "already exists" in e.value.message
    assert t2.result("bdev_get_bdevs", {"name": "Nvme0n1"})[0]["num_blocks"] == 131072
    # py-spdk's names.
    assert t2.result("construct_nvme_bdev", {"name": "Old", "trtype": "TCP",
                                             "traddr": "127.0.0.1", "adrfam": "IPv4",
                                             "trsvcid": str(port), "subnqn": NQN}) == ["Oldn1"]
    assert t2.result("delete_nvme_controller", {"name": "Old"}) is True
    assert t2.result("bdev_nvme_detach_controller", {"name": "Nvme0", "traddr": "127.0.0.1",
                                                     "trsvcid": str(port)}) is True
    assert t2.result("bdev_get_bdevs") == []


def test_bdev_nvme_follows_namespaces(daemons):
    t1, t2 = daemons(), daemons()
    port = free_port()
    serve(t1, port)
    assert attach(t2, port) == ["Nvme0n1"]
    t1.result("bdev_malloc_create", {"name": "Malloc1", "num_blocks": 2048, "block_size": 4096})
    assert t1.result("nvmf_subsystem_add_ns",
                     {"nqn": NQN, "namespace": {"bdev_name": "Malloc1"}}) == 2

    def bdevs():
        return {b["name"]: b for b in t2.result("bdev_get_bdevs")}
    b = wait_for(lambda: bdevs().get("Nvme0n2"))
    assert (b["block_size"], b["num_blocks"]) == (4096, 2048)
    t1.result("nvmf_subsystem_remove_ns", {"nqn": NQN, "nsid": 1})
    wait_for(lambda: "Nvme0n1" not in bdevs())
    assert set(bdevs()) == {"Nvme0n2"}
    # One attach per controller in save_config, now written for namespace 2.
    cfg = t2.result("framework_get_config", {"name": "bdev"})
    assert [m["method"] for m in cfg] == ["bdev_nvme_attach_controller"]
    assert t2.result("bdev_nvme_detach_controller", {"name": "Nvme0"}) is True
    assert bdevs() == {}


def test_bdev_nvme_attaches_to_its_own_target(daemons):
    # mimo_tgt attaching a subsystem it serves itself: nothing may wait on its own reactor.
    t = daemons()
    port = free_port()
    serve(t, port)
    assert attach(t, port, name="Self") == ["Selfn1"]
    assert t.result("bdev_get_bdevs", {"name": "Selfn1"})[0]["uuid"] == UUID
    t.result("nvmf_create_subsystem", {"nqn": NQN + "-loop", "allow_any_host": True})
    t.result("nvmf_subsystem_add_ns", {"nqn": NQN + "-loop", "namespace": {"bdev_name": "Selfn1"}})
    port2 = free_port()
    t.result("nvmf_subsystem_add_listener", {"nqn": NQN + "-loop", "listen_address": {
        "trtype": "tcp", "traddr": "127.0.0.1", "trsvcid": str(port2)}})
    p = perf(port2, "-q", 4, "-o", 4096, "-w", "randrw", "-t", 1, "--verify", nqn=NQN + "-loop")
    assert p.returncode == 0, p.stdout + p.stderr
    assert t.result("bdev_nvme_detach_controller", {"name": "Self"}) is True
    assert [b["name"] for b in t.result("bdev_get_bdevs")] == ["Malloc0"]


def test_bdev_nvme_stays_up_at_shutdown_with_a_controller(daemons):
    # Stopping a target with a controller attached is clean (the daemons fixture checks the
    # exit status and sanitizer reports).
    t1, t2 = daemons(), daemons()
    port = free_port()
    serve(t1, port)
    assert attach(t2, port) == ["Nvme0n1"]
    assert t2.stop() == 0


def test_bdev_nvme_namespace_replaced_under_its_id(daemons):
    # The target swaps namespace 1 for another bdev (another block size, another UUID) under
    # the same NSID. The initiator must drop the old namespace object and bdev and bring up
    # the new one, never keep 512-byte blocks for a 4 KiB namespace.
    t1, t2 = daemons(), daemons()
    port = free_port()
    serve(t1, port)
    assert attach(t2, port) == ["Nvme0n1"]
    other = "0f1e2d3c-4b5a-4697-8877-665544332211"
    t1.result("bdev_malloc_create", {"name": "Malloc1", "num_blocks": 2048, "block_size": 4096,
                                     "uuid": other})
    # The frontend sleeps through the swap: it sees one notice and one rescan that finds
    # namespace 1 changed in place (not gone and back).
    os.kill(t2.proc.pid, signal.SIGSTOP)
    try:
        t1.result("nvmf_subsystem_remove_ns", {"nqn": NQN, "nsid": 1})
        assert t1.result("nvmf_subsystem_add_ns", {"nqn": NQN, "namespace": {
            "bdev_name": "Malloc1", "nsid": 1}}) == 1
    finally:
        os.kill(t2.proc.pid, signal.SIGCONT)

    def replaced():
        b = t2.result("bdev_get_bdevs")
        return b if [(x["name"], x["block_size"]) for x in b] == [("Nvme0n1", 4096)] else None
    b = wait_for(replaced)[0]
    assert (b["num_blocks"], b["uuid"]) == (2048, other)
    # I/O through the new bdev reaches the new namespace: re-export it and verify.
    p2 = free_port()
    t2.result("nvmf_create_transport", {"trtype": "tcp"})
    t2.result("nvmf_create_subsystem", {"nqn": NQN + "-re", "allow_any_host": True})
    t2.result("nvmf_subsystem_add_ns", {"nqn": NQN + "-re", "namespace": {"bdev_name": "Nvme0n1"}})
    t2.result("nvmf_subsystem_add_listener", {"nqn": NQN + "-re", "listen_address": {
        "trtype": "tcp", "traddr": "127.0.0.1", "trsvcid": str(p2)}})
    before = t1.result("bdev_get_iostat", {"name": "Malloc1"})["bdevs"][0]
    p = perf(p2, "-q", 4, "-o", 4096, "-w", "randrw", "-t", 1, "--verify", nqn=NQN + "-re")
    assert p.returncode == 0, p.stdout + p.stderr
    after = t1.result("bdev_get_iostat", {"name": "Malloc1"})["bdevs"][0]
    assert after["num_write_ops"] > before["num_write_ops"]
    t2.result("nvmf_delete_subsystem", {"nqn": NQN + "-re"})
    assert t2.result("bdev_nvme_detach_controller", {"name": "Nvme0"}) is True


def test_bdev_nvme_detach_while_a_gone_namespace_stays_claimed(daemons):
    # Namespace 1 goes away while its bdev is claimed: the deletion is refused and retried,
    # and a detach meanwhile answers -EBUSY instead of waiting for a destruct that never
    # comes. Once the claim is released, the bdev goes and detach succeeds.
    t1, t2 = daemons(), daemons()
    port = free_port()
    serve(t1, port)
    assert attach(t2, port) == ["Nvme0n1"]
    assert t2.result("bdev_error_create", {"base_name": "Nvme0n1"}) is True
    t1.result("nvmf_subsystem_remove_ns", {"nqn": NQN, "nsid": 1})
    wait_for(lambda: "cannot be deleted now" in t2.output())
    with pytest.raises(RpcFailure) as e:
        t2.result("bdev_nvme_detach_controller", {"name": "Nvme0"})
    assert e.value.code == -16
    assert [c["name"] for c in t2.result("bdev_nvme_get_controllers")] == ["Nvme0"]
    t2.result("bdev_error_delete", {"name": "EE_Nvme0n1"})
    wait_for(lambda: t2.result("bdev_get_bdevs") == [])
    assert t2.result("bdev_nvme_detach_controller", {"name": "Nvme0"}) is True
    assert t2.result("bdev_nvme_get_controllers") == []


def test_perf_target_stops_answering(served):
    # The target freezes (SIGSTOP) under load. With a 1 s keep alive timeout the Keep Alive
    # goes unanswered, the host fails the controller and its I/O queues, and mimo_perf ends
    # with I/O errors long before its 10 minutes instead of hanging.
    t, port = served
    proc = subprocess.Popen([PERF, "-r", trid(port), "-c", PERF_CORES, "-q", "4", "-o", "4096",
                             "-w", "randread", "-t", "600", "-k", "1000"], env=clean_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # Under load: reads have reached the target, so the I/O queue is up.
        wait_for(lambda: t.result("bdev_get_iostat", {"name": "Malloc0"})["bdevs"][0][
            "num_read_ops"] > 0)
        os.kill(t.proc.pid, signal.SIGSTOP)
        out, err = proc.communicate(timeout=120 * SLOW)
    finally:
        os.kill(t.proc.pid, signal.SIGCONT)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 2, (out, err)
    assert "Keep Alive not answered" in err and "lost the controller" in err, err
    assert "Sanitizer" not in err and "runtime error" not in err, err


def test_perf_verify_needs_writes(served):
    t, port = served
    before = t.result("bdev_get_iostat", {"name": "Malloc0"})["bdevs"][0]
    p = perf(port, "-q", 4, "-o", 4096, "-w", "randread", "-t", 1, "--verify", "--json")
    assert p.returncode == 0, p.stderr
    assert "--verify needs writes" in p.stderr
    assert json.loads(p.stdout)["verify"] is False
    after = t.result("bdev_get_iostat", {"name": "Malloc0"})["bdevs"][0]
    assert after["num_write_ops"] == before["num_write_ops"]  # a read-only run stays so


def test_bdev_nvme_second_path_modes_checked(daemons):
    # A second attach under a name must say how (multipath or failover: test_nvme_multipath.py,
    # test_nvme_failover.py); without a mode, or the same path again, it is refused. SPDK's
    # defaults (0, "disable") are accepted.
    t1, t2 = daemons(), daemons()
    port = free_port()
    serve(t1, port)
    assert attach(t2, port, ctrlr_loss_timeout_sec=0, reconnect_delay_sec=0,
                  fast_io_fail_timeout_sec=0, multipath="disable") == ["Nvme0n1"]
    with pytest.raises(RpcFailure) as e:
        attach(t2, port)
    assert e.value.code == -114 and "multipath is disabled" in e.value.message
    for mode in ("multipath", "failover"):
        with pytest.raises(RpcFailure) as e:
            attach(t2, port, multipath=mode)
        assert e.value.code == -114 and "specified network path" in e.value.message
    with pytest.raises(RpcFailure) as e:
        attach(t2, port, multipath="sideways")
    assert e.value.code == -22


def test_bdev_nvme_teardown_after_losing_the_target(daemons):
    # The backend dies under a re-exported namespace with I/O channels open: the controller
    # shows failed, then detach and shutdown tear everything down in order (the sanitizer
    # builds check nothing is used after it is freed).
    t1, t2 = daemons(), daemons()
    port, p2 = free_port(), free_port()
    serve(t1, port)
    assert attach(t2, port) == ["Nvme0n1"]
    t2.result("nvmf_create_transport", {"trtype": "tcp"})
    t2.result("nvmf_create_subsystem", {"nqn": NQN + "-re", "allow_any_host": True})
    t2.result("nvmf_subsystem_add_ns", {"nqn": NQN + "-re", "namespace": {"bdev_name": "Nvme0n1"}})
    t2.result("nvmf_subsystem_add_listener", {"nqn": NQN + "-re", "listen_address": {
        "trtype": "tcp", "traddr": "127.0.0.1", "trsvcid": str(p2)}})
    p = perf(p2, "-q", 4, "-o", 4096, "-w", "randrw", "-t", 1, nqn=NQN + "-re")
    assert p.returncode == 0, p.stdout + p.stderr
    t1.stop(signal.SIGKILL)
    wait_for(lambda: t2.result("bdev_nvme_get_controllers")[0]["ctrlrs"][0]["state"] == "failed")
    p = perf(p2, "-q", 4, "-o", 4096, "-w", "randread", "-t", 1, nqn=NQN + "-re")
    assert p.returncode == 2, p.stdout + p.stderr  # I/O errors, no hang
    t2.result("nvmf_delete_subsystem", {"nqn": NQN + "-re"})
    assert t2.result("bdev_nvme_detach_controller", {"name": "Nvme0"}) is True
    assert t2.result("bdev_get_bdevs") == []
    assert t2.stop() == 0


@pytest.mark.parametrize("method, params, text", [
    ("bdev_nvme_cuse_register", {"name": "Nvme0"}, "CUSE"),
    ("bdev_nvme_cuse_unregister", {"name": "Nvme0"}, "CUSE"),
    ("bdev_nvme_opal_init", {"nvme_ctrlr_name": "Nvme0", "password": "x"}, "Opal"),
    ("bdev_nvme_opal_revert", {"nvme_ctrlr_name": "Nvme0", "password": "x"}, "Opal"),
    ("bdev_nvme_apply_firmware", {"filename": "fw.bin", "bdev_name": "Nvme0n1"}, "firmware"),
    ("bdev_nvme_start_mdns_discovery", {"name": "cdc", "svcname": "_nvme-disc._tcp"}, "mDNS"),
    ("bdev_nvme_stop_mdns_discovery", {"name": "cdc"}, "mDNS"),
    ("bdev_nvme_get_mdns_discovery_info", None, "mDNS"),
])
def test_pcie_and_mdns_commands_say_why_not(tgt, method, params, text):
    """rpc.py's bdev_nvme commands for local PCIe drives and mDNS: -95 with the reason, not
    "Method not found"."""
    with pytest.raises(RpcFailure) as e:
        tgt.result(method, params)
    assert e.value.code == -95 and text in e.value.message, e.value.message
