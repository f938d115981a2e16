"""Wire conformance: a capture of a test session, decoded by Wireshark's NVMe/TCP dissector
with digest checking on, has every PDU type the session used, no malformed packet, and no
header or data digest the dissector disagrees with."""
import os
import shutil
import signal
import socket
import subprocess
import time

import pytest

from conftest import free_port, wait_until
from nvme_tcp_host import CMD, Host, admin_session, io_session
from nvmf_target import NQN, NvmfTarget

TSHARK = shutil.which("tshark")


def capture_allowed():
    if TSHARK is None:
        return False
    p = subprocess.run([TSHARK, "-D"], capture_output=True, text=True)
    return p.returncode == 0 and "lo" in p.stdout


pytestmark = pytest.mark.skipif(not capture_allowed(),
                                reason="tshark missing or may not capture on lo here")


def session(port):
    """Every PDU type a target sends or receives, with and without digests."""
    for hd, dd in ((False, False), (True, True)):
        a = admin_session(port, NQN, hdgst=hd, ddgst=dd)
        a.identify(1)
        a.get_log_page(0x02, 512)
        q = io_session(port, a, NQN, hdgst=hd, ddgst=dd)
        q.write(1, 0, os.urandom(4096))                  # CapsuleCmd with data
        q.write(1, 64, os.urandom(64 * 1024), icd=False)  # R2T, H2CData
        q.read(1, 64, 128)                               # C2HData, CapsuleResp
        q.close()
        q = io_session(port, a, NQN, qid=2, hdgst=hd, ddgst=dd, cattr=1 << 2)
        q.read(1, 0, 8)                                  # C2HData with SUCCESS
        q.close()
        a.close()
    # A C2HTermReq: a header with a length no PDU type has.
    h = Host(port)
    h.icreq()
    raw = bytearray(h.pdu_bytes(CMD, h.sqe(0x06, 1, cdw10=1)))
    raw[2] = 24
    h.send_raw(bytes(raw))
    h.closed()


def test_wireshark_decodes_every_pdu(daemons, tmp_path):
    port = free_port()
    t = NvmfTarget.start(daemons, port)
    pcap = tmp_path / "session.pcapng"
    cap = subprocess.Popen([TSHARK, "-i", "lo", "-f", f"tcp port {port}", "-w", str(pcap)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    # tshark says "Capturing on" once the filter is installed.
    deadline = time.monotonic() + 20
    line = ""
    while time.monotonic() < deadline and "Capturing on" not in line:
        line = cap.stderr.readline()
    assert "Capturing on" in line, "tshark did not start capturing"
    # The filter may be in place a little after the message: knock until a packet shows.
    def knocked():
        socket.create_connection(("127.0.0.1", port)).close()
        return pcap.exists() and subprocess.run([TSHARK, "-r", str(pcap), "-c", "1"],
                                                capture_output=True).stdout
    wait_until(knocked, 20, "the capture to see a packet", step=0.1)
    session(port)
    # The session's last PDU, the C2HTermReq, is in the file before the capture stops.
    wait_until(lambda: subprocess.run([TSHARK, "-r", str(pcap), "-d",
                                       f"tcp.port=={port},nvme-tcp", "-Y", "nvme-tcp.type == 3"],
                                      capture_output=True, text=True).stdout.strip(),
               20, "the C2HTermReq in the capture", step=0.1)
    cap.send_signal(signal.SIGINT)
    cap.wait(timeout=20)
    t.stop()

    def fields(*names, filt=None):
        args = [TSHARK, "-r", str(pcap), "-d", f"tcp.port=={port},nvme-tcp",
                "-o", "nvme-tcp.check_hdgst:TRUE", "-o", "nvme-tcp.check_ddgst:TRUE",
                "-T", "fields", "-E", "occurrence=a", "-E", "aggregator=,"]
        for n in names:
            args += ["-e", n]
        if filt:
            args += ["-Y", filt]
        p = subprocess.run(args, capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, p.stderr
        return [ln.split("\t") for ln in p.stdout.splitlines()]

    types = set()
    for (t_,) in fields("nvme-tcp.type"):
        types.update(int(x, 0) for x in t_.split(",") if x)
    # ICReq ICResp C2HTermReq CapsuleCmd CapsuleResp H2CData C2HData R2T
    assert types >= {0, 1, 3, 4, 5, 6, 7, 9}, f"PDU types seen: {sorted(types)}"
    # Nothing malformed, except the bad header the last connection sent on purpose.
    last = max(int(s) for (s,) in fields("tcp.stream"))
    bad = fields("frame.number", "tcp.stream", "tcp.srcport", filt="_ws.malformed")
    assert all(int(st) == last and int(sp) != port for _, st, sp in bad), bad
    # Every digest the dissector checked is "Good" (status 1 in Wireshark 4.0).
    for name in ("nvme-tcp.hdgst.status", "nvme-tcp.ddgst.status"):
        vals = [v for (row,) in fields(name) for v in row.split(",") if v]
        assert len(vals) >= 8, f"too few {name} in the capture: {vals}"
        assert all(int(v, 0) == 1 for v in vals), f"{name}: {vals}"
