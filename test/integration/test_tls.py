"""NVMe/TCP's secure channel: TLS 1.3 with PSKs between mimo_tgt and mimo's initiator tools
(mimo_identify, mimo_perf) and an independent TLS client (`openssl s_client` with the TLS PSK
this file derives by itself from the specification: HKDF written with Python's hmac), carrying
the Python NVMe/TCP host (nvme_tcp_host.py). Every success and every refusal."""
import hashlib
import hmac
import json
import os
import select
import socket
import struct
import subprocess

import pytest

from conftest import BIN, LIB, SANITIZE, SLOW, RpcFailure, clean_env, free_port, wait_until
from nvme_tcp_host import Closed, Host, make_dhchap_key, make_tls_psk, status_of

NQN = "nqn.2016-06.io.mimo:tls"
NQN2 = "nqn.2016-06.io.mimo:tls2"
HOSTNQN = "nqn.2014-08.org.nvmexpress:uuid:11111111-2222-3333-4444-555555555555"
OTHER_HOST = "nqn.2014-08.org.nvmexpress:uuid:66666666-7777-8888-9999-000000000000"
IDENTIFY = os.path.join(BIN, "mimo_identify")
PERF = os.path.join(BIN, "mimo_perf")
OK = (0, 0)
INVALID_HOST = (1, 0x84)
INVALID_PARAMS = (1, 0x82)


# --- the specification's derivation, written independently of lib/nvme_tcp/tls.c -------------

def hkdf_expand_label(hash_name, secret, label, context, length):
    """HKDF-Expand-Label(HKDF-Extract(0, secret), label, context, length), RFC 8446/5869."""
    h = getattr(hashlib, hash_name)
    prk = hmac.new(b"\0" * h().digest_size, secret, h).digest()
    full = b"tls13 " + label
    info = struct.pack(">H", length) + bytes([len(full)]) + full + bytes([len(context)]) + context
    out, t, i = b"", b"", 1
    while len(out) < length:
        t = hmac.new(prk, t + info + bytes([i]), h).digest()
        out += t
        i += 1
    return out[:length]


def tls_psk(interchange, hostnqn, subnqn):
    """(identity, TLS PSK) of a configured PSK in nvme-cli's form, for a version 0 identity."""
    import base64
    _, hh, b64, _ = interchange.split(":")
    configured = base64.b64decode(b64)[:-4]
    hh = int(hh, 16)
    if hh:
        retained = hkdf_expand_label(["", "sha256", "sha384"][hh], configured, b"HostNQN",
                                     hostnqn.encode(), len(configured))
    else:
        retained = configured
    cipher = 1 if len(configured) == 32 else 2
    identity = f"NVMe0R{cipher:02d} {hostnqn} {subnqn}"
    return identity, hkdf_expand_label(["", "sha256", "sha384"][cipher], retained,
                                       b"nvme-tls-psk", identity.encode(), len(configured))


# --- an independent TLS client: openssl s_client, with the Python host over it ------------------

class SClientSock:
    """What nvme_tcp_host.Host needs of a socket, over `openssl s_client` (TLS 1.3, one PSK)."""

    def __init__(self, port, identity, psk):
        self.proc = subprocess.Popen(
            ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-tls1_3", "-quiet",
             "-nocommands", "-psk_identity", identity, "-psk", psk.hex(),
             "-ciphersuites", "TLS_AES_128_GCM_SHA256"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.timeout = 10.0 * SLOW

    def sendall(self, data):
        try:
            self.proc.stdin.write(data)
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass

    def recv(self, n):
        fd = self.proc.stdout.fileno()
        if not select.select([fd], [], [], self.timeout)[0]:
            raise socket.timeout()
        return os.read(fd, n)

    def settimeout(self, t):
        self.timeout = t

    def setsockopt(self, *args):
        pass

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            f.close()


def tls_host(port, identity, psk):
    h = Host.__new__(Host)
    h.sock = SClientSock(port, identity, psk)
    h.hdgst = h.ddgst = False
    h.buf = b""
    h.cid = 0
    h.maxh2cdata = 0
    h.cpda = 0
    return h


def st(cqe):
    return status_of(cqe["status"])[:2]


# --- the target ---------------------------------------------------------------------------------

def key_file(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text + "\n")
    os.chmod(path, 0o600)
    return str(path)


class TlsTarget:
    """mimo_tgt with NQN (a malloc namespace) on a secure listener (and a plain one for NQN2)."""

    def __init__(self, daemons, tmp_path, prefix=()):
        self.d = d = daemons("-m", "0x3", prefix=prefix)
        self.tmp = tmp_path
        self.port, self.plain = free_port(), free_port()
        d.result("bdev_malloc_create", {"name": "M0", "num_blocks": 8192, "block_size": 512})
        d.result("bdev_malloc_create", {"name": "M1", "num_blocks": 8192, "block_size": 512})
        d.result("nvmf_create_transport", {"trtype": "TCP"})
        for nqn, bdev in ((NQN, "M0"), (NQN2, "M1")):
            d.result("nvmf_create_subsystem", {"nqn": nqn})
            d.result("nvmf_subsystem_add_ns", {"nqn": nqn, "namespace": {"bdev_name": bdev}})
        d.result("nvmf_subsystem_add_listener", {"nqn": NQN, "secure_channel": True,
                                                 "listen_address": self.addr(self.port)})
        d.result("nvmf_subsystem_add_listener", {"nqn": NQN2,
                                                 "listen_address": self.addr(self.plain)})

    @staticmethod
    def addr(port):
        return {"trtype": "TCP", "adrfam": "IPv4", "traddr": "127.0.0.1", "trsvcid": str(port)}

    def key(self, name, text):
        self.d.result("keyring_file_add_key", {"name": name,
                                               "path": key_file(self.tmp, name, text)})
        return key_file(self.tmp, name, text)

    def add_host(self, nqn=NQN, host=HOSTNQN, **kw):
        return self.d.result("nvmf_subsystem_add_host", dict({"nqn": nqn, "host": host}, **kw))


@pytest.fixture
def tt(daemons, tmp_path):
    return TlsTarget(daemons, tmp_path)


def trid(port, nqn=NQN, host=HOSTNQN):
    return f"trtype:tcp adrfam:IPv4 traddr:127.0.0.1 trsvcid:{port} subnqn:{nqn} hostnqn:{host}"


def tool(prog, *args, timeout=60):
    p = subprocess.run([prog, *map(str, args)], capture_output=True, text=True,
                       timeout=timeout * SLOW, env=clean_env())
    assert "Sanitizer" not in p.stderr and "runtime error" not in p.stderr, p.stderr
    return p


def identify(port, *args, nqn=NQN, host=HOSTNQN):
    return tool(IDENTIFY, "-r", trid(port, nqn, host), "--json", *args)


# --- tests --------------------------------------------------------------------------------------

def test_right_psk_connects_and_does_io(tt):
    """Each kind of PSK (hh 00, 01, 02; 32 and 48 bytes: both cipher suites), as the key itself
    and as a key file (spdk_nvme_perf's --psk-path); mimo_perf verifies its writes over two
    queues."""
    for i, (hh, cipher) in enumerate(((0, "TLS_AES_128_GCM_SHA256"),
                                      (1, "TLS_AES_128_GCM_SHA256"),
                                      (2, "TLS_AES_256_GCM_SHA384"))):
        host = f"nqn.2014-08.io.mimo:tlshost{i}"
        psk = make_tls_psk(hh=hh)
        path = tt.key(f"psk{i}", psk)
        assert tt.add_host(host=host, psk=f"psk{i}") is True
        for args in (["--psk", psk], ["--psk-path", path], ["--psk", path, "--tls-version", "13",
                                                             "--disable-ktls"]):
            p = identify(tt.port, *args, host=host)
            assert p.returncode == 0, p.stderr
            out = json.loads(p.stdout)
            assert out["controller"]["subnqn"] == NQN
            assert out["controller"]["tls"] == cipher
        p = tool(PERF, "-r", trid(tt.port, host=host), "-c", "0x1", "-q", "8", "-o", "4096",
                 "-w", "randrw", "-t", "1", "-P", "2", "--verify", "--json", "--psk", psk)
        assert p.returncode == 0, p.stderr
        report = json.loads(p.stdout)
        assert report["total"]["io_completed"] > 0
        assert report["total"]["io_errors"] == 0 and report["total"]["verify_errors"] == 0
    hosts = tt.d.result("nvmf_get_subsystems", {"nqn": NQN})[0]
    assert hosts["listen_addresses"][0]["secure_channel"] is True
    assert [h.get("psk") for h in hosts["hosts"]] == ["psk0", "psk1", "psk2"]


def test_large_transfers_over_tls(tt):
    """128 KiB reads and writes: C2HData and H2CData of many records, R2Ts, send queues that
    fill the socket, with data digests."""
    psk = make_tls_psk(hh=1)
    tt.key("psk", psk)
    tt.add_host(psk="psk")
    p = tool(PERF, "-r", trid(tt.port), "-c", "0x1", "-q", "4", "-o", "131072", "-w", "randrw",
             "-t", "1", "--verify", "--json", "--psk", psk, "-H", "-I")
    assert p.returncode == 0, p.stderr
    report = json.loads(p.stdout)
    assert report["total"]["io_completed"] > 0
    assert report["total"]["io_errors"] == 0 and report["total"]["verify_errors"] == 0


def delayed_acks(ns):
    """TcpExt DelayedACKs of a network namespace: ACKs Linux sent only when its delayed-ACK
    timer fired."""
    lines = subprocess.run(["ip", "netns", "exec", ns, "cat", "/proc/net/netstat"],
                           capture_output=True, text=True, check=True).stdout.splitlines()
    names, values = [ln.split() for ln in lines if ln.startswith("TcpExt:")][:2]
    return int(values[names.index("DelayedACKs")])


@pytest.mark.skipif(bool(SANITIZE), reason="an LD_PRELOAD shim before the sanitizer's runtime")
def test_a_peer_with_a_small_send_buffer_is_not_held_by_delayed_acks(daemons, tmp_path, netns):
    """SPDK's initiator keeps a 4 KiB TLS send buffer: it sends the rest of a PDU only once
    what it sent is acknowledged. The target, in the middle of the PDU with nothing to send,
    must acknowledge at once rather than after Linux's delayed-ACK timer (about 40 ms a PDU:
    spdk_nvme_perf's 64 KiB writes ran at 22 IOPS). mimo_perf with the same send buffer (an
    LD_PRELOAD shim) writes 64 KiB at depth 1 in a namespace of its own; the delayed ACKs the
    namespace sent are counted, not the time: before the fix, about one per write."""
    tt = TlsTarget(daemons, tmp_path, prefix=("ip", "netns", "exec", netns))
    psk = make_tls_psk(hh=1)
    tt.key("psk", psk)
    tt.add_host(psk="psk")
    before = delayed_acks(netns)
    p = subprocess.run(["ip", "netns", "exec", netns, PERF, "-r", trid(tt.port), "-c", "0x1",
                        "-q", "1", "-o", "65536", "-w", "write", "-t", "2", "--json",
                        "--psk", psk], capture_output=True, text=True, timeout=60 * SLOW,
                       env=clean_env(LD_PRELOAD=os.path.join(LIB, "small_sndbuf.so")))
    assert p.returncode == 0, p.stderr
    writes = json.loads(p.stdout)["total"]["io_completed"]
    late = delayed_acks(netns) - before
    assert writes > 0
    assert late < max(4, writes // 4), f"{late} delayed ACKs for {writes} writes"


def test_the_identity_and_psk_are_the_specifications(tt):
    """A TLS client that is not mimo's, with the identity and TLS PSK derived here from the
    specification, gets through the handshake and does NVMe/TCP over it."""
    psk = make_tls_psk(hh=1)
    tt.key("psk", psk)
    tt.add_host(psk="psk")
    identity, key = tls_psk(psk, HOSTNQN, NQN)
    h = tls_host(tt.port, identity, key)
    try:
        assert h.icreq().type == 0x01  # ICResp
        assert st(h.connect(NQN, HOSTNQN)) == OK
    finally:
        h.sock.close()
    # One byte of the TLS PSK changed: the handshake fails (the binder does not verify).
    h = tls_host(tt.port, identity, bytes([key[0] ^ 1]) + key[1:])
    try:
        with pytest.raises((Closed, socket.timeout, OSError)):
            h.icreq()
    finally:
        h.sock.close()
    wait_until(lambda: "TLS handshake on secure listener" in tt.d.output())


def test_a_tls_identity_for_another_host_or_subsystem_is_refused(tt):
    """The PSK of (host, subsystem) opens the channel for that pair only: a Connect in it for
    another host or another subsystem is refused."""
    psk = make_tls_psk(hh=1)
    tt.key("psk", psk)
    tt.add_host(psk="psk")
    tt.add_host(host=OTHER_HOST)
    tt.d.result("nvmf_subsystem_add_listener", {"nqn": NQN2, "secure_channel": True,
                                                "listen_address": tt.addr(tt.port)})
    tt.add_host(nqn=NQN2, host=HOSTNQN)
    identity, key = tls_psk(psk, HOSTNQN, NQN)
    for subnqn, host, want in ((NQN, OTHER_HOST, INVALID_HOST),
                               (NQN2, HOSTNQN, INVALID_PARAMS)):
        h = tls_host(tt.port, identity, key)
        try:
            assert h.icreq().type == 0x01
            assert st(h.connect(subnqn, host)) == want
        finally:
            h.sock.close()
    # mimo's initiator as the other host, with this host's PSK: its identity names the other
    # host, which has no PSK: the handshake fails.
    p = identify(tt.port, "--psk", psk, host=OTHER_HOST)
    assert p.returncode != 0 and "TLS" in p.stderr, p.stderr
    wait_until(lambda: f"no PSK for host {OTHER_HOST} in subsystem {NQN}" in tt.d.output())


def test_wrong_psk_is_refused(tt):
    tt.key("psk", make_tls_psk(hh=1))
    tt.add_host(psk="psk")
    p = identify(tt.port, "--psk", make_tls_psk(hh=1))
    assert p.returncode != 0, p.stdout
    assert "PSKs do not match" in p.stderr or "refused" in p.stderr, p.stderr
    # A PSK of the other length offers the other identity (NVMe0R02), which has no PSK.
    p = identify(tt.port, "--psk", make_tls_psk(hh=2))
    assert p.returncode != 0, p.stdout


def test_plain_tcp_to_a_secure_listener_is_refused(tt):
    tt.key("psk", make_tls_psk(hh=1))
    tt.add_host(psk="psk")
    p = identify(tt.port)
    assert p.returncode != 0, p.stdout
    h = Host(tt.port)
    try:
        h.send_raw(h.pdu_bytes(0x00, struct.pack("<HBBI", 0, 0, 0, 0) + b"\0" * 112))
        assert h.closed(timeout=10 * SLOW)
    finally:
        h.sock.close()
    wait_until(lambda: "does not speak TLS" in tt.d.output()
               or "TLS handshake on secure listener" in tt.d.output())


def test_tls_to_a_plain_listener_fails_cleanly(tt):
    psk = make_tls_psk(hh=1)
    tt.key("psk", psk)
    tt.add_host(nqn=NQN2, psk="psk")
    p = identify(tt.plain, "--psk", psk, nqn=NQN2)
    assert p.returncode != 0, p.stdout
    assert "TLS" in p.stderr, p.stderr
    # The target answered the ClientHello as the bad PDU it is, and goes on.
    assert tt.d.result("nvmf_get_subsystems", {"nqn": NQN2})[0]["nqn"] == NQN2


def test_missing_psk_is_refused(tt):
    """A host without a PSK cannot come through a secure listener; a host with one cannot
    come in over plain TCP (to a plain listener of its subsystem)."""
    psk = make_tls_psk(hh=1)
    tt.key("psk", psk)
    tt.add_host(host=OTHER_HOST)  # no PSK
    p = identify(tt.port, "--psk", psk, host=OTHER_HOST)
    assert p.returncode != 0, p.stdout
    tt.add_host(nqn=NQN2, psk="psk")
    p = identify(tt.plain, nqn=NQN2)
    assert p.returncode != 0 and "not allowed" in p.stderr.lower() or "Permission" in p.stderr, \
        p.stderr
    wait_until(lambda: "has a PSK and must connect over TLS" in tt.d.output())


def test_dhchap_inside_tls(tt):
    """DH-HMAC-CHAP runs inside the channel (no secure channel concatenation)."""
    psk, dh = make_tls_psk(hh=1), make_dhchap_key(hh=1)
    tt.key("psk", psk)
    tt.key("dh", dh)
    tt.add_host(psk="psk", dhchap_key="dh")
    p = identify(tt.port, "--psk", psk, "--dhchap-key", dh)
    assert p.returncode == 0, p.stderr
    p = identify(tt.port, "--psk", psk)
    assert p.returncode != 0 and "no key was given" in p.stderr, p.stderr
    qp = tt.d.result("nvmf_get_subsystems", {"nqn": NQN})[0]["hosts"][0]
    assert qp["psk"] == "psk" and qp["dhchap_key"] == "dh"


def test_rpc_parameters_and_refusals(tt, tmp_path):
    d = tt.d
    tt.key("dh", make_dhchap_key())
    with pytest.raises(RpcFailure) as e:
        tt.add_host(host=OTHER_HOST, psk="nope")
    assert "no key of that name" in e.value.message
    with pytest.raises(RpcFailure) as e:
        tt.add_host(host=OTHER_HOST, psk="dh")
    assert "not a TLS PSK" in e.value.message
    # A port is TLS or plain for every subsystem on it.
    with pytest.raises(RpcFailure) as e:
        d.result("nvmf_subsystem_add_listener", {"nqn": NQN2, "listen_address":
                                                 tt.addr(tt.port)})
    assert "secure channel" in e.value.message
    with pytest.raises(RpcFailure) as e:
        d.result("nvmf_subsystem_add_listener", {"nqn": NQN, "secure_channel": True,
                                                 "listen_address": tt.addr(tt.plain)})
    assert "plain TCP" in e.value.message
    with pytest.raises(RpcFailure) as e:
        d.result("nvmf_subsystem_add_listener", {"nqn": NQN, "secure_channel": True,
                                                 "sock_impl": "posix",
                                                 "listen_address": tt.addr(free_port())})
    assert "secure_channel with sock_impl" in e.value.message
    with pytest.raises(RpcFailure) as e:
        d.result("nvmf_subsystem_add_listener", {"nqn": "discovery", "secure_channel": True,
                                                 "listen_address": tt.addr(free_port())})
    assert "discovery subsystem" in e.value.message
    # SPDK's other form: sock_impl "ssl" is a secure listener.
    port = free_port()
    assert d.result("nvmf_subsystem_add_listener", {"nqn": NQN2, "sock_impl": "ssl",
                                                    "listen_address": tt.addr(port)}) is True
    listeners = d.result("nvmf_get_subsystems", {"nqn": NQN2})[0]["listen_addresses"]
    assert [a.get("secure_channel", False) for a in listeners] == [False, True]


def test_discovery_log_says_a_secure_channel_is_required(tt):
    tt.d.result("nvmf_subsystem_allow_any_host", {"nqn": NQN, "allow_any_host": True})
    h = Host(tt.plain)
    try:
        h.icreq()
        assert st(h.connect("nqn.2014-08.org.nvmexpress.discovery", HOSTNQN, kato=0)) == OK
        log = h.get_log_page(0x70, 4096)[1]
    finally:
        h.sock.close()
    numrec, = struct.unpack_from("<Q", log, 8)
    entries = [log[1024 + i * 1024:2048 + i * 1024] for i in range(numrec)]
    secure = [e for e in entries if e[256:256 + len(NQN)] == NQN.encode()]
    assert len(secure) == 1
    e = secure[0]
    assert e[3] & 3 == 1          # TREQ: secure channel required
    assert e[768] == 2            # TSAS SECTYPE: TLS 1.3


def test_saved_configuration_replays(daemons, tmp_path):
    tt = TlsTarget(daemons, tmp_path)
    psk = make_tls_psk(hh=1)
    tt.key("psk", psk)
    tt.add_host(psk="psk")
    config = tt.d.saved_config()
    calls = [c for s in config["subsystems"] for c in s["config"]]
    assert any(c["method"] == "nvmf_subsystem_add_listener" and
               c["params"].get("secure_channel") is True for c in calls)
    assert any(c["method"] == "nvmf_subsystem_add_host" and c["params"].get("psk") == "psk"
               for c in calls)
    assert psk.split(":")[2] not in json.dumps(config)
    tt.d.stop()
    path = tmp_path / "c.json"
    path.write_text(json.dumps(config))
    again = daemons("-c", str(path), name="again")
    assert again.result("framework_wait_init") is True
    p = identify(tt.port, "--psk", psk)
    assert p.returncode == 0, p.stderr


def test_mimo_rpc_sets_up_both_ends_with_rpc_pys_options(daemons, tmp_path):
    """mimo-rpc takes rpc.py's TLS options: nvmf_subsystem_add_listener -k/-S,
    nvmf_subsystem_add_host --psk, bdev_nvme_attach_controller -k/--psk; a second mimo_tgt
    attaches to the first over TLS with them."""
    tgt, ini = daemons(name="tgt"), daemons(name="ini")
    psk = make_tls_psk(hh=1)
    port = free_port()

    def rpc(d, *args):
        p = subprocess.run([os.path.join(BIN, "mimo-rpc"), "-s", d.sock, *map(str, args)],
                           capture_output=True, text=True, timeout=60 * SLOW)
        assert p.returncode == 0, p.stderr
        return p.stdout.strip()

    for d in (tgt, ini):
        rpc(d, "keyring_file_add_key", "psk0", key_file(tmp_path, "psk0", psk))
    rpc(tgt, "bdev_malloc_create", "-b", "M0", 4, 512)
    rpc(tgt, "nvmf_create_transport", "-t", "tcp")
    rpc(tgt, "nvmf_create_subsystem", NQN)
    rpc(tgt, "nvmf_subsystem_add_ns", NQN, "M0")
    rpc(tgt, "nvmf_subsystem_add_listener", NQN, "-t", "tcp", "-a", "127.0.0.1", "-s", port,
        "-f", "ipv4", "-k")
    rpc(tgt, "nvmf_subsystem_add_host", NQN, HOSTNQN, "--psk", "psk0")
    assert identify(port).returncode != 0  # no PSK given: a secure listener refuses
    assert rpc(ini, "bdev_nvme_attach_controller", "-b", "T", "-t", "tcp", "-a", "127.0.0.1",
               "-s", port, "-f", "ipv4", "-n", NQN, "-q", HOSTNQN, "-k", "psk0") == "Tn1"
    got = json.loads(rpc(ini, "bdev_get_bdevs", "-b", "Tn1"))
    assert got[0]["num_blocks"] == 8192


def test_tool_options_refused(tt):
    psk = make_tls_psk(hh=1)
    for args, says in ((["--psk-identity", "psk.spdk.io"], "cannot be chosen"),
                       (["--tls-version", "12"], "only 13"),
                       (["--enable-ktls"], "kernel TLS is not used"),
                       (["--psk", make_dhchap_key()], "not a TLS PSK"),
                       (["--psk-path", str(tt.tmp / "missing")], "No such file"),
                       (["--psk", psk[:20] + ("B" if psk[20] != "B" else "C") + psk[21:]],
                        "bad CRC-32")):
        p = identify(tt.port, *args)
        assert p.returncode != 0 and says in p.stderr, (args, p.stderr)


def test_bdev_nvme_attaches_over_tls(daemons, tmp_path):
    """bdev_nvme_attach_controller --psk (a keyring name, as SPDK's rpc.py sends it): the
    controller connects over TLS and its bdev appears; the saved configuration names the key."""
    os.makedirs(tmp_path / "t")
    tt = TlsTarget(daemons, tmp_path / "t")
    psk = make_tls_psk(hh=2)
    tt.key("psk", psk)
    tt.add_host(psk="psk")
    host = daemons(name="host")
    host.result("keyring_file_add_key", {"name": "hpsk", "path": key_file(tmp_path, "hpsk", psk)})
    host.result("keyring_file_add_key", {"name": "dh",
                                         "path": key_file(tmp_path, "dh", make_dhchap_key())})
    attach = {"name": "Nvme0", "trtype": "tcp", "traddr": "127.0.0.1",
              "trsvcid": str(tt.port), "subnqn": NQN, "hostnqn": HOSTNQN}
    for psk_name, says in (("nope", "no key of that name"), ("dh", "not a TLS PSK")):
        with pytest.raises(RpcFailure) as e:
            host.result("bdev_nvme_attach_controller", dict(attach, psk=psk_name))
        assert says in e.value.message
    with pytest.raises(RpcFailure):
        host.result("bdev_nvme_attach_controller", attach)  # plain TCP to a secure listener
    assert host.result("bdev_nvme_attach_controller", dict(attach, psk="hpsk")) == ["Nvme0n1"]
    calls = [c for c in host.result("framework_get_config", {"name": "bdev"})]
    att = next(c["params"] for c in calls if c["method"] == "bdev_nvme_attach_controller")
    assert att["psk"] == "hpsk"
    assert psk.split(":")[2] not in json.dumps(calls)
    host.result("bdev_nvme_detach_controller", {"name": "Nvme0"})
