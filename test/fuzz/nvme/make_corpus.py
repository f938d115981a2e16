#!/usr/bin/python3
"""Write fuzz_nvme_host's seed inputs to test/fuzz/corpus/nvme_host: a flags byte (bit 0
header digest, bit 1 data digest, bits 2-3 MAXH2CDATA choice, bit 4 CPDA 3, bit 7 leave the
Connect unanswered) and then what a controller would send to the harness's commands (cid 0:
read 4 KiB, 1: read 64 KiB, 2: in-capsule write, 3: 32 KiB write by R2T, 4: flush, 5: DSM)."""
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "integration"))
from nvme_tcp_host import crc32c  # noqa: E402

OUT = os.path.join(HERE, "..", "corpus", "nvme_host")
RSP, C2H, R2T, C2H_TERM = 5, 7, 9, 3
F_HD, F_DD, F_LAST, F_SUCCESS = 1, 2, 4, 8


def pdu(type_, specific, hd, data=b"", dd=False, flags=0):
    hlen = 8 + len(specific)
    hdg = 4 if hd else 0
    pdo = hlen + hdg if data else 0
    ddg = 4 if (dd and data) else 0
    plen = hlen + hdg + len(data) + ddg
    fl = flags | (F_HD if hd else 0) | (F_DD if ddg else 0)
    h = struct.pack("<BBBBI", type_, fl, hlen, pdo, plen) + specific
    out = h + (struct.pack("<I", crc32c(h)) if hd else b"")
    if data:
        out += data + (struct.pack("<I", crc32c(data)) if ddg else b"")
    return out


def rsp(cid, hd, status=0, sqhd=1):
    return pdu(RSP, struct.pack("<IIHHHH", 0, 0, sqhd, 1, cid, status), hd)


def c2h(cid, off, data, hd, dd, flags=F_LAST):
    return pdu(C2H, struct.pack("<HHII4x", cid, 0, off, len(data)), hd, data, dd, flags)


def r2t(cid, off, length, hd, ttag=1):
    return pdu(R2T, struct.pack("<HHII4x", cid, ttag, off, length), hd)


def seeds():
    for flags in (0, 1, 2, 3, 0x10, 0x07):
        hd, dd = bool(flags & 1), bool(flags & 2)
        body = c2h(0, 0, bytes(range(256)) * 16, hd, dd) + rsp(0, hd)
        body += c2h(1, 0, b"\xab" * 32768, hd, dd, 0) + c2h(1, 32768, b"\xcd" * 32768, hd, dd)
        body += rsp(1, hd)
        body += rsp(2, hd) + r2t(3, 0, 16384, hd) + r2t(3, 16384, 16384, hd) + rsp(3, hd)
        body += rsp(4, hd) + rsp(5, hd, status=0x4004)
        yield f"all_{flags:02x}", bytes([flags]) + body
    yield "success", bytes([0]) + c2h(0, 0, b"\x11" * 4096, False, False, F_LAST | F_SUCCESS)
    yield "term", bytes([0]) + pdu(C2H_TERM, struct.pack("<HI10x", 2, 0), False,
                                   b"\x05" * 24)
    yield "connect_late", bytes([0x80]) + rsp(0, False, sqhd=0xffff) + rsp(1, False)
    yield "bad_cid", bytes([0]) + rsp(9, False)


os.makedirs(OUT, exist_ok=True)
for name, data in seeds():
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)
print(f"wrote {len(list(seeds()))} seeds to {os.path.relpath(OUT)}")
