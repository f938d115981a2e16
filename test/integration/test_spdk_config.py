"""Configurations and start-up recipes written for SPDK's nvmf_tgt, run against mimo_tgt.

A configuration saved by a real SPDK nvmf_tgt (fixtures/spdk_nvmf_tgt_saved_config.json, made
as fixtures/README.md says) loads with -c, with load_config (mimo-rpc's and, when SPDK_RPC_PY
names SPDK's scripts/rpc.py, SPDK's), and the hosts it lists connect: any host to cnode1, host1
with its DH-HMAC-CHAP key to cnode2 (whose namespace 1 only host1 sees), host2 over TLS with
its PSK to cnode3. The --wait-for-rpc recipe (sock_impl_set_options before
framework_start_init) sets the sockets' buffers; every SPDK option either does what it says,
has no meaning here, or is refused naming itself - the refusals are checked one by one."""
import json
import os
import re
import struct
import subprocess

import pytest

from conftest import BIN, SLOW, RpcFailure, clean_env, free_port, wait_until
from nvme_tcp_host import (Host, admin_session, io_session, make_dhchap_key, make_tls_psk,
                           status_of)

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "spdk_nvmf_tgt_saved_config.json")
IDENTIFY = os.path.join(BIN, "mimo_identify")
PERF = os.path.join(BIN, "mimo_perf")
MIMO_RPC = os.path.join(BIN, "mimo-rpc")
SPDK_RPC = os.environ.get("SPDK_RPC_PY")
CNODE1, CNODE2, CNODE3 = (f"nqn.2016-06.io.spdk:cnode{i}" for i in (1, 2, 3))
HOST1 = "nqn.2014-08.org.nvmexpress:uuid:11111111-2222-3333-4444-555555555501"
HOST2 = "nqn.2014-08.org.nvmexpress:uuid:11111111-2222-3333-4444-555555555502"
OTHER = "nqn.2014-08.org.nvmexpress:uuid:11111111-2222-3333-4444-555555555599"
MALLOC0_UUID = "a8429bb1-0dc0-423c-909b-3655ae0fa9f5"
INVALID_PARAMS, WRONG_STATE = -32602, -1

pytestmark = pytest.mark.skipif(not os.path.exists(IDENTIFY), reason="mimo_identify is not built")


def distinct_ports(n):
    ports = set()
    while len(ports) < n:
        ports.add(free_port())
    return sorted(ports)


class SpdkConfig:
    """The fixture, with what belonged to the machine that saved it made here: key files
    (0600, new keys of the same kinds), the aio file, free ports instead of 4420-4422."""

    def __init__(self, tmp_path):
        self.dhchap = make_dhchap_key(hh=1)
        self.psk = make_tls_psk(hh=1)
        keys = tmp_path / "keys"
        keys.mkdir()
        files = {}
        for name, text in (("host1", self.dhchap), ("psk1", self.psk)):
            files[name] = keys / name
            files[name].write_text(text + "\n")
            os.chmod(files[name], 0o600)
        aio = tmp_path / "aio.img"
        with open(aio, "wb") as f:
            f.truncate(16 << 20)
        ports = dict(zip(("4420", "4421", "4422"), map(str, distinct_ports(3))))
        with open(FIXTURE) as f:
            self.config = json.load(f)
        for sub in self.config["subsystems"]:
            for call in sub["config"]:
                p = call.get("params", {})
                if call["method"] == "keyring_file_add_key":
                    p["path"] = str(files[p["name"]])
                elif call["method"] == "bdev_aio_create":
                    p["filename"] = str(aio)
                elif call["method"] == "nvmf_subsystem_add_listener":
                    a = p["listen_address"]
                    a["trsvcid"] = ports[a["trsvcid"]]
        self.port = {CNODE1: ports["4420"], CNODE2: ports["4421"], CNODE3: ports["4422"]}
        self.path = tmp_path / "spdk_nvmf_tgt_saved_config.json"
        self.path.write_text(json.dumps(self.config, indent=2))

    def methods(self):
        return [c["method"] for s in self.config["subsystems"] for c in s["config"]]


@pytest.fixture
def spdk_config(tmp_path):
    return SpdkConfig(tmp_path)


def tool(prog, *args, timeout=60):
    p = subprocess.run([prog, *map(str, args)], capture_output=True, text=True,
                       timeout=timeout * SLOW, env=clean_env())
    assert "Sanitizer" not in p.stderr and "runtime error" not in p.stderr, p.stderr
    return p


def trid(port, nqn, host=None):
    t = f"trtype:tcp adrfam:IPv4 traddr:127.0.0.1 trsvcid:{port} subnqn:{nqn}"
    return t + (f" hostnqn:{host}" if host else "")


def identify(port, nqn, host=None, *args):
    p = tool(IDENTIFY, "-r", trid(port, nqn, host), "--json", *args)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def nvm_identify(port, nqn):
    """Identify CNS 06h, CSI 0 (the NVM command set's controller data), from the Python host:
    (WZSL, DMRL, DMRSL, DMSL)."""
    h = admin_session(port, nqn)
    try:
        cqe, data = h.command(0x06, data_in=4096, cdws=(0x06, 0x00 << 24))
        assert status_of(cqe["status"])[:2] == (0, 0), cqe
        _, wzsl, _, dmrl, dmrsl, dmsl = struct.unpack_from("<BBBBIQ", data)
        return wzsl, dmrl, dmrsl, dmsl
    finally:
        h.close()


def rpc_cli(prog, sock, *args):
    """mimo-rpc, or SPDK's rpc.py run by the system interpreter."""
    cmd = [prog] if prog == MIMO_RPC else ["/usr/bin/python3", prog]
    return subprocess.run([*cmd, "-s", sock, *map(str, args)], capture_output=True, text=True,
                          timeout=60 * SLOW)


def clients():
    """mimo-rpc always; SPDK's rpc.py when SPDK_RPC_PY names it."""
    return [MIMO_RPC] + ([SPDK_RPC] if SPDK_RPC else [])


def check_hosts(d, sc):
    """The hosts of the saved configuration connect to what it made, as they did to SPDK."""
    # cnode1: any host; its two namespaces, the identity Malloc0 was saved with; the options
    # of nvmf_create_subsystem in Identify (NN = max_namespaces, the NVM limits of dmrsl/wzsl)
    # and nvmf_set_crdt's times.
    out = identify(sc.port[CNODE1], CNODE1)
    c = out["controller"]
    assert (c["sn"], c["mn"], c["nn"], c["crdt"]) == ("SPDK00000000000001", "SPDK_Controller1",
                                                     32, [0, 0, 0])
    assert [n["nsid"] for n in out["namespaces"]] == [1, 2]
    assert out["namespaces"][0]["uuid"] == MALLOC0_UUID
    assert nvm_identify(sc.port[CNODE1], CNODE1) == (12, 0, 2097152, 0)
    # I/O on Malloc0 (namespace 2, Null0, reads zeroes whatever was written).
    p = tool(PERF, "-r", trid(sc.port[CNODE1], CNODE1) + " ns:1", "-q", 4, "-o", 4096, "-w",
             "randrw", "-t", 1, "--verify", "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["total"]["verify_errors"] == 0
    # cnode2: host1, which must authenticate with its DH-HMAC-CHAP key, sees both namespaces
    # (Malloc1 of 4 KiB blocks only because nvmf_ns_add_host named it); another host allowed
    # later sees only the second; a host without the key gets nothing.
    out = identify(sc.port[CNODE2], CNODE2, HOST1, "--dhchap-key", sc.dhchap)
    assert [(n["nsid"], n["block_size"]) for n in out["namespaces"]] == [(1, 4096), (2, 512)]
    p = tool(IDENTIFY, "-r", trid(sc.port[CNODE2], CNODE2, HOST1), "--json")
    assert p.returncode != 0, p.stdout
    assert d.result("nvmf_subsystem_add_host", {"nqn": CNODE2, "host": OTHER}) is True
    out = identify(sc.port[CNODE2], CNODE2, OTHER)
    assert [n["nsid"] for n in out["namespaces"]] == [2]
    assert d.result("nvmf_subsystem_remove_host", {"nqn": CNODE2, "host": OTHER}) is True
    # cnode3: host2 over TLS with its PSK; the listener takes nothing else. (It has no
    # namespace: the file has none for it - SPDK would not put Malloc0, claimed by cnode1, in
    # a second subsystem.)
    out = identify(sc.port[CNODE3], CNODE3, HOST2, "--psk", sc.psk)
    assert out["controller"]["tls"] == "TLS_AES_128_GCM_SHA256"
    assert out["controller"]["subnqn"] == CNODE3 and out["namespaces"] == []
    p = tool(IDENTIFY, "-r", trid(sc.port[CNODE3], CNODE3, HOST2), "--json")
    assert p.returncode != 0, p.stdout


def check_start_up_options(d):
    """What the saved start-up methods set, where mimo has it."""
    posix = d.result("sock_impl_get_options", {"impl_name": "posix"})
    assert (posix["recv_buf_size"], posix["send_buf_size"]) == (2097152, 2097152)
    ssl = d.result("sock_impl_get_options", {"impl_name": "ssl"})
    assert (ssl["recv_buf_size"], ssl["tls_version"], ssl["enable_ktls"]) == (4096, 13, False)
    bdev = d.result("framework_get_config", {"name": "bdev"})
    assert bdev[0]["method"] == "bdev_nvme_set_options"
    o = bdev[0]["params"]
    assert (o["bdev_retry_count"], o["enable_flush"], o["keep_alive_timeout_ms"]) == \
        (3, False, 10000)


# --- the saved configuration -------------------------------------------------------------------

def test_spdk_saved_config_loads_with_c(daemons, spdk_config):
    d = daemons("-c", spdk_config.path)
    assert {b["name"] for b in d.result("bdev_get_bdevs")} == {"Malloc0", "Malloc1", "Null0",
                                                               "AIO0"}
    assert {s["nqn"] for s in d.result("nvmf_get_subsystems")} >= {CNODE1, CNODE2, CNODE3}
    check_start_up_options(d)
    check_hosts(d, spdk_config)


@pytest.mark.parametrize("client", clients(), ids=lambda c: os.path.basename(c))
def test_spdk_saved_config_loads_with_load_config(daemons, spdk_config, client):
    """With --wait-for-rpc, load_config runs the start-up methods, then framework_start_init,
    then the rest - every method of the file is called."""
    d = daemons("--wait-for-rpc")
    assert "sock_impl_set_options" in d.result("rpc_get_methods", {"current": True})
    p = rpc_cli(client, d.sock, "load_config", "-j", spdk_config.path)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "skipped" not in p.stdout + p.stderr
    assert d.result("framework_wait_init") is True
    check_start_up_options(d)
    check_hosts(d, spdk_config)


@pytest.mark.parametrize("client", clients(), ids=lambda c: os.path.basename(c))
def test_spdk_saved_config_into_a_running_daemon(daemons, spdk_config, client):
    """Without --wait-for-rpc the start-up methods cannot run any more: rpc.py says it
    skipped them, mimo-rpc names them and fails; everything else is made and the hosts
    connect (as with SPDK's nvmf_tgt)."""
    d = daemons()
    p = rpc_cli(client, d.sock, "load_config", "-j", spdk_config.path)
    if client == MIMO_RPC:
        assert p.returncode == 1 and "sock_impl_set_options" in p.stderr, p.stderr
        assert "--wait-for-rpc" in p.stderr
    else:
        assert p.returncode == 0 and "skipped" in p.stdout, p.stdout + p.stderr
    assert d.result("sock_impl_get_options", {"impl_name": "posix"})["recv_buf_size"] == 0
    check_hosts(d, spdk_config)


def test_saved_config_round_trips(daemons, spdk_config, tmp_path):
    """mimo's own save_config of what the SPDK file made holds the start-up options mimo
    implements, and a daemon started with it saves the same again."""
    d = daemons("-c", spdk_config.path)
    p = rpc_cli(MIMO_RPC, d.sock, "save_config")
    assert p.returncode == 0, p.stderr
    saved = json.loads(p.stdout)
    by_sub = {s["subsystem"]: s["config"] for s in saved["subsystems"]}
    assert [c["params"]["impl_name"] for c in by_sub["sock"]] == ["posix", "ssl"]
    assert by_sub["bdev"][0]["method"] == "bdev_nvme_set_options"
    subsystems = [c["params"] for c in by_sub["nvmf"] if c["method"] == "nvmf_create_subsystem"]
    assert [(s["dmrsl"], s["wzsl"]) for s in subsystems] == [(2097152, 12)] * 3
    path = tmp_path / "mimo_saved.json"
    path.write_text(p.stdout)
    d.stop()
    again = daemons("-c", path, name="again")
    p2 = rpc_cli(MIMO_RPC, again.sock, "save_config")
    assert json.loads(p2.stdout) == saved
    check_hosts(again, spdk_config)


# --- the --wait-for-rpc recipe -----------------------------------------------------------------

def skmem(port):
    """(rb, tb) of the target's side of established connections on port (ss -m: the socket's
    receive and send buffer sizes in the kernel)."""
    out = subprocess.run(["ss", "-tmnH", "state", "established", f"( sport = :{port} )"],
                         capture_output=True, text=True, timeout=10).stdout
    return [tuple(map(int, m)) for m in re.findall(r"rb(\d+),t\d+,tb(\d+)", out)]


def kernel_buffer(asked, max_path):
    """What Linux gives a socket asked for `asked` bytes: twice, capped at twice the maximum."""
    with open(max_path) as f:
        return 2 * min(asked, int(f.read()))


@pytest.mark.parametrize("client", clients(), ids=lambda c: os.path.basename(c))
def test_wait_for_rpc_socket_recipe(daemons, client):
    """SPDK's start-up recipe: sock_impl_set_options and sock_set_default_impl before
    framework_start_init. The buffer sizes are those of the target's connections."""
    with open("/proc/sys/net/ipv4/tcp_rmem") as f:
        rmem_default = int(f.read().split()[1])
    recv, send = rmem_default + 70000, 300000
    d = daemons("--wait-for-rpc")
    for args in (("sock_impl_set_options", "-i", "posix", "--recv-buf-size", recv,
                  "--send-buf-size", send, "--quickack"),
                 ("sock_set_default_impl", "-i", "posix"),
                 ("framework_start_init",)):
        p = rpc_cli(client, d.sock, *args)
        assert p.returncode == 0, p.stdout + p.stderr
    assert d.result("framework_wait_init") is True
    assert d.result("sock_impl_get_options", {"impl_name": "posix"})["recv_buf_size"] == recv
    # Only before framework_start_init, as in SPDK.
    with pytest.raises(RpcFailure) as e:
        d.result("sock_impl_set_options", {"impl_name": "posix", "recv_buf_size": 1})
    assert e.value.code == WRONG_STATE
    port = free_port()
    d.result("bdev_malloc_create", {"name": "M0", "num_blocks": 2048, "block_size": 512})
    d.result("nvmf_create_transport", {"trtype": "TCP"})
    d.result("nvmf_create_subsystem", {"nqn": CNODE1, "allow_any_host": True})
    d.result("nvmf_subsystem_add_ns", {"nqn": CNODE1, "namespace": {"bdev_name": "M0"}})
    d.result("nvmf_subsystem_add_listener", {"nqn": CNODE1, "listen_address": {
        "trtype": "TCP", "traddr": "127.0.0.1", "trsvcid": str(port)}})
    h = Host(port)
    try:
        h.icreq()
        want = (kernel_buffer(recv, "/proc/sys/net/core/rmem_max"),
                kernel_buffer(send, "/proc/sys/net/core/wmem_max"))
        assert wait_until(lambda: skmem(port), what="the connection in ss") == [want]
    finally:
        h.close()
    # The same connection to a daemon started without the recipe: the kernel's default size
    # (which its autotuning may grow later), not the one the recipe asked for.
    plain = daemons(name="plain")
    port = free_port()
    plain.result("nvmf_create_transport", {"trtype": "TCP"})
    plain.result("nvmf_create_subsystem", {"nqn": CNODE1, "allow_any_host": True})
    plain.result("nvmf_subsystem_add_listener", {"nqn": CNODE1, "listen_address": {
        "trtype": "TCP", "traddr": "127.0.0.1", "trsvcid": str(port)}})
    h = Host(port)
    try:
        h.icreq()
        [(rb, _)] = wait_until(lambda: skmem(port), what="the connection in ss")
        assert rb == rmem_default
    finally:
        h.close()


# --- refusals ------------------------------------------------------------------------------------

START_UP_REFUSALS = [
    ("sock_impl_set_options", {"impl_name": "ssl", "enable_ktls": True}, "enable_ktls"),
    ("sock_impl_set_options", {"impl_name": "ssl", "tls_version": 12}, "tls_version"),
    ("sock_impl_set_options", {"impl_name": "posix", "tls_version": 11}, "tls_version"),
    ("sock_impl_set_options", {"impl_name": "ssl", "psk_key": "0011223344556677"}, "psk_key"),
    ("sock_impl_set_options", {"impl_name": "ssl", "psk_identity": "NVMe0R01 h s"},
     "psk_identity"),
    ("sock_impl_set_options", {"impl_name": "posix", "enable_placement_id": 1},
     "enable_placement_id"),
    ("sock_impl_set_options", {"impl_name": "vpp", "recv_buf_size": 1}, "vpp"),
    ("sock_impl_set_options", {"impl_name": "posix", "recv_buf_size": "big"}, "recv_buf_size"),
    ("sock_impl_set_options", {"impl_name": "posix", "bogus": 1}, "bogus"),
    ("sock_set_default_impl", {"impl_name": "ssl"}, "impl_name"),
    ("iobuf_set_options", {"small_pool_count": -1}, "small_pool_count"),
    ("accel_set_options", {"task_count": "many"}, "task_count"),
    ("bdev_set_options", {"bdev_auto_examine": 1}, "bdev_auto_examine"),
    ("framework_set_scheduler", {"name": "dynamic"}, "dynamic"),
    ("framework_set_scheduler", {"name": "static", "mappings": "0x1:0"}, "mappings"),
    ("framework_set_scheduler", {"name": "static", "load_limit": 20}, "load_limit"),
    ("bdev_nvme_set_options", {"timeout_us": 1000000}, "timeout_us"),
    ("bdev_nvme_set_options", {"delay_cmd_submit": False}, "delay_cmd_submit"),
    ("bdev_nvme_set_options", {"ctrlr_loss_timeout_sec": -2, "reconnect_delay_sec": 1},
     "ctrlr_loss_timeout_sec"),
    ("bdev_nvme_set_options", {"transport_ack_timeout": 4}, "transport_ack_timeout"),
    ("bdev_nvme_set_options", {"arbitration_burst": 3}, "arbitration_burst"),
    ("bdev_nvme_set_options", {"generate_uuids": True}, "generate_uuids"),
    ("bdev_nvme_set_options", {"nvme_error_stat": True}, "nvme_error_stat"),
    ("bdev_nvme_set_options", {"tcp_connect_timeout_ms": 500}, "tcp_connect_timeout_ms"),
    ("bdev_nvme_set_options", {"multipath_opts": {"policy": "active_active"}}, "multipath_opts"),
    ("bdev_nvme_set_options", {"dhchap_digests": ["md5"]}, "md5"),
    ("bdev_nvme_set_options", {"bdev_retry_count": -2}, "bdev_retry_count"),
    ("nvmf_set_config", {"admin_cmd_passthru": {"identify_ctrlr": True}}, "admin_cmd_passthru"),
    ("nvmf_set_config", {"discovery_filters": ["transport"]}, "discovery_filters"),
    ("nvmf_set_config", {"poll_groups_mask": "0x1"}, "poll_groups_mask"),
    ("nvmf_set_crdt", {"crdt1": 65536}, "crdt1"),
    ("nvmf_set_max_subsystems", {}, "max_subsystems"),
]

RUNTIME_REFUSALS = [
    ("bdev_nvme_set_hotplug", {"enable": True}, "enable"),
    ("bdev_null_create", {"name": "N", "num_blocks": 8, "block_size": 512,
                          "preferred_write_granularity": 8}, "preferred_write_granularity"),
    ("nvmf_create_subsystem", {"nqn": CNODE1, "wzsl": 256}, "wzsl"),
    ("nvmf_create_subsystem", {"nqn": CNODE1, "passthrough": True}, "passthrough"),
]


def test_what_mimo_does_not_do_is_refused_naming_the_option(daemons):
    d = daemons("--wait-for-rpc")
    for method, params, says in START_UP_REFUSALS:
        with pytest.raises(RpcFailure) as e:
            d.result(method, params)
        assert e.value.code == INVALID_PARAMS and says in e.value.message, \
            (method, params, e.value.code, e.value.message)
    # What SPDK saves by default, and the off values of what is refused, are accepted.
    assert d.result("sock_impl_set_options", {"impl_name": "ssl", "tls_version": 13,
                                              "enable_ktls": False,
                                              "enable_placement_id": 0}) is True
    assert d.result("framework_set_scheduler", {"name": "static", "period": 5000}) is True
    assert d.result("framework_start_init") is True
    for method, params, says in RUNTIME_REFUSALS:
        with pytest.raises(RpcFailure) as e:
            d.result(method, params)
        assert e.value.code == INVALID_PARAMS and says in e.value.message, \
            (method, params, e.value.code, e.value.message)
    assert d.result("bdev_nvme_set_hotplug", {"enable": False, "period_us": 5}) is True
    assert d.result("bdev_wait_for_examine") is True
    # Start-up methods after initialisation: SPDK's state error.
    for method, params in (("iobuf_set_options", {}), ("sock_impl_set_options",
                                                       {"impl_name": "posix"}),
                           ("nvmf_set_crdt", {}), ("bdev_set_options", {})):
        with pytest.raises(RpcFailure) as e:
            d.result(method, params)
        assert e.value.code == WRONG_STATE, (method, e.value.message)


@pytest.mark.parametrize("client", clients(), ids=lambda c: os.path.basename(c))
def test_refusals_through_the_command_lines(daemons, client):
    d = daemons("--wait-for-rpc")
    for args, says in ((("sock_impl_set_options", "-i", "ssl", "--ktls"), "enable_ktls"),
                       (("sock_impl_set_options", "-i", "ssl", "--tls-version", "12"),
                        "tls_version"),
                       (("nvmf_set_config", "-p", "identify_ctrlr"), "admin_cmd_passthru"),
                       (("framework_set_scheduler", "dynamic"), "dynamic")):
        p = rpc_cli(client, d.sock, *args)
        assert p.returncode != 0, (args, p.stdout)
        # Both print the request, then the error response: the refusal is in the latter.
        error = json.loads((p.stdout + p.stderr).split("response:", 1)[1])
        assert error["code"] == INVALID_PARAMS and says in error["message"], (args, error)


# --- the nvmf options, end to end ---------------------------------------------------------------

def test_nvmf_start_up_options_and_subsystem_limits(daemons, tmp_path):
    """nvmf_set_max_subsystems limits the subsystems (the discovery one counted, as SPDK);
    nvmf_set_crdt shows in Identify; max_namespaces is NN and bounds nsids; min/max_cntlid
    bound controller IDs; dmrsl and wzsl are the NVM command set's limits in Identify. All of
    it is saved and replayed."""
    d = daemons("--wait-for-rpc")
    for args in (("nvmf_set_max_subsystems", "-x", 3),
                 ("nvmf_set_crdt", "-t1", 5, "-t2", 10, "-t3", 15),
                 ("framework_start_init",)):
        p = rpc_cli(MIMO_RPC, d.sock, *args)
        assert p.returncode == 0, p.stderr
    port = free_port()
    d.result("bdev_malloc_create", {"name": "M0", "num_blocks": 2048, "block_size": 512})
    d.result("nvmf_create_transport", {"trtype": "TCP"})
    p = rpc_cli(MIMO_RPC, d.sock, "nvmf_create_subsystem", CNODE1, "-a", "-m", 4, "-i", 100,
                "-I", 101, "--dmrsl", 1024, "--wzsl", 5)
    assert p.returncode == 0, p.stderr
    d.result("nvmf_create_subsystem", {"nqn": CNODE2})
    with pytest.raises(RpcFailure) as e:
        d.result("nvmf_create_subsystem", {"nqn": CNODE3})
    assert "at most 3" in e.value.message
    with pytest.raises(RpcFailure):
        d.result("nvmf_subsystem_add_ns", {"nqn": CNODE1, "namespace": {"bdev_name": "M0",
                                                                         "nsid": 5}})
    d.result("nvmf_subsystem_add_ns", {"nqn": CNODE1, "namespace": {"bdev_name": "M0",
                                                                     "nsid": 4}})
    d.result("nvmf_subsystem_add_listener", {"nqn": CNODE1, "listen_address": {
        "trtype": "TCP", "traddr": "127.0.0.1", "trsvcid": str(port)}})

    def check(daemon):
        out = identify(port, CNODE1)
        assert (out["controller"]["nn"], out["controller"]["crdt"]) == (4, [5, 10, 15])
        assert out["controller"]["cntlid"] in (100, 101)
        assert [n["nsid"] for n in out["namespaces"]] == [4]
        assert nvm_identify(port, CNODE1) == (5, 0, 1024, 0)
        # Two controllers at once: IDs 100 and 101; a third is refused (Controller Busy).
        a, b = admin_session(port, CNODE1), admin_session(port, CNODE1)
        try:
            assert {a.cntlid, b.cntlid} == {100, 101}
            h = Host(port)
            h.icreq()
            assert status_of(h.connect(CNODE1, OTHER)["status"])[:2] == (1, 0x81)
            h.close()
        finally:
            a.close()
            b.close()

    check(d)
    nvmf = d.result("framework_get_config", {"name": "nvmf"})
    assert [c["method"] for c in nvmf[:2]] == ["nvmf_set_max_subsystems", "nvmf_set_crdt"]
    assert nvmf[0]["params"] == {"max_subsystems": 3}
    assert nvmf[1]["params"] == {"crdt1": 5, "crdt2": 10, "crdt3": 15}
    saved = d.saved_config()
    path = tmp_path / "saved.json"
    path.write_text(json.dumps(saved))
    d.stop()
    check(daemons("-c", path, name="replayed"))


# --- bdev_nvme_set_options, end to end ----------------------------------------------------------

def test_bdev_nvme_options_reach_the_initiator(daemons):
    """A backend exports an error-injection bdev; a frontend attaches it with
    bdev_nvme_set_options' bdev_retry_count, enable_flush and keep_alive_timeout_ms, and
    re-exports it to the Python host: failed reads the backend marks retryable are retried
    up to the count, a Flush never reaches the backend, the backend sees the keep-alive."""
    backend = daemons(name="backend", env={"MIMO_LOG": "info"})
    frontend = daemons(name="frontend")
    p1, p2 = free_port(), free_port()
    backend.result("bdev_malloc_create", {"name": "M0", "num_blocks": 2048, "block_size": 512})
    backend.result("bdev_error_create", {"base_name": "M0"})
    for t, nqn, bdev, port in ((backend, CNODE1, "EE_M0", p1), (frontend, CNODE2, "Nvme0n1",
                                                                   p2)):
        if t is frontend:
            assert t.result("bdev_nvme_set_options", {
                "bdev_retry_count": 2, "enable_flush": False, "keep_alive_timeout_ms": 5000,
                "transport_retry_count": 4, "io_queue_requests": 0,
                "multipath_opts": {"policy": "active_passive"}}) is True
            assert t.result("bdev_nvme_attach_controller", {
                "name": "Nvme0", "trtype": "tcp", "traddr": "127.0.0.1", "trsvcid": str(p1),
                "subnqn": CNODE1}) == ["Nvme0n1"]
        t.result("nvmf_create_transport", {"trtype": "TCP"})
        t.result("nvmf_create_subsystem", {"nqn": nqn, "allow_any_host": True})
        t.result("nvmf_subsystem_add_ns", {"nqn": nqn, "namespace": {"bdev_name": bdev}})
        t.result("nvmf_subsystem_add_listener", {"nqn": nqn, "listen_address": {
            "trtype": "TCP", "traddr": "127.0.0.1", "trsvcid": str(port)}})
    # The options apply to controllers attached afterwards: with one attached, SPDK's refusal.
    with pytest.raises(RpcFailure) as e:
        frontend.result("bdev_nvme_set_options", {"bdev_retry_count": 1})
    assert e.value.code == -1 and "already attached" in e.value.message
    wait_until(lambda: "(KATO 5000 ms)" in backend.output(), what="the backend's log line")

    admin = admin_session(p2, CNODE2)
    io = io_session(p2, admin, CNODE2)
    try:
        def inject(io_type, num):
            backend.result("bdev_error_inject_error", {"name": "EE_M0", "io_type": io_type,
                                                       "error_type": "failure", "num": num})

        def read():
            return status_of(io.read(1, 0, 1)[0]["status"])[:2]

        inject("read", 2)
        assert read() == (0, 0)  # two failures, two retries
        inject("read", 3)
        assert read() != (0, 0)  # the third failure ends the I/O
        backend.result("bdev_error_inject_error", {"name": "EE_M0", "io_type": "clear",
                                                   "error_type": "failure"})
        inject("flush", 5)
        cqe, _ = io.command(0x00, nsid=1)
        assert status_of(cqe["status"])[:2] == (0, 0)  # never sent to the backend
        assert read() == (0, 0)
    finally:
        io.close()
        admin.close()
    cfg = frontend.result("framework_get_config", {"name": "bdev"})
    assert [c["method"] for c in cfg] == ["bdev_nvme_set_options",
                                          "bdev_nvme_attach_controller"]
    assert cfg[0]["params"]["bdev_retry_count"] == 2
