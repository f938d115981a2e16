#!/usr/bin/python3
"""Write fuzz_scsi_cdb's seed inputs to test/fuzz/corpus/scsi_cdb: one per command family,
in the harness's format - flags (bits 0-1 LUN, bit 2 reactor 1, bit 4 ABORT TASK, bit 5
LOGICAL UNIT RESET), direction (0 none, 1 data-in, 2 data-out), transfer length (16-bit
little-endian), iovec count - 1, 3 unused bytes, a 16-byte CDB, then the data-out bytes."""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "corpus", "scsi_cdb")
NONE, IN, OUT_ = 0, 1, 2


def seed(name, cdb, direction=IN, length=512, flags=0, niov=1, data=b""):
    cdb = bytes(cdb).ljust(16, b"\0")
    hdr = struct.pack("<BBHB3x", flags, direction, length, niov - 1)
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(hdr + cdb + data)


def be(n, v):
    return v.to_bytes(n, "big")


def main():
    os.makedirs(OUT, exist_ok=True)
    seed("tur", [0x00], NONE, 0)
    seed("inquiry", [0x12, 0, 0, 0, 96], IN, 96)
    seed("inquiry_vpd83", [0x12, 1, 0x83, 0, 255], IN, 255, niov=3)
    seed("request_sense_desc", [0x03, 1, 0, 0, 252], IN, 252)
    seed("report_luns", [0xa0, 0, 0, 0, 0, 0] + list(be(4, 4096)), IN, 4096)
    seed("read_capacity16", [0x9e, 0x10] + [0] * 8 + list(be(4, 32)), IN, 32)
    seed("read6", [0x08, 0, 0, 1, 2], IN, 1024)
    seed("read10_lun1", [0x28, 0, 0, 0, 0, 3, 0, 0, 2], IN, 8192, flags=1, niov=4)
    seed("read16_overflow", [0x88, 0] + list(be(8, 7)) + list(be(4, 4)), IN, 700, niov=2)
    seed("write10", [0x2a, 0x08, 0, 0, 0, 9, 0, 0, 1], OUT_, 512, data=b"w" * 512)
    seed("write16_short", [0x8a, 0] + list(be(8, 1)) + list(be(4, 2)), OUT_, 600,
         data=b"x" * 600)
    seed("write12_abort", [0xaa, 0, 0, 0, 0, 5, 0, 0, 0, 1], OUT_, 512, flags=0x10,
         data=b"a" * 512)
    seed("write16_reset", [0x8a, 0] + list(be(8, 5)) + list(be(4, 1)), OUT_, 512, flags=0x24,
         data=b"r" * 512)
    seed("verify10_bytchk", [0x2f, 0x02, 0, 0, 0, 0, 0, 0, 1], OUT_, 512, data=b"\0" * 512)
    seed("verify16_bytchk3", [0x8f, 0x06] + list(be(8, 0)) + list(be(4, 64)), OUT_, 512)
    seed("write_verify16", [0x8e, 0x02] + list(be(8, 3)) + list(be(4, 1)), OUT_, 512,
         data=b"v" * 512)
    seed("sync16", [0x91, 0] + list(be(8, 0)) + list(be(4, 0)), NONE, 0)
    seed("write_same10_unmap", [0x41, 0x08, 0, 0, 0, 10, 0, 0, 8], OUT_, 512)
    seed("write_same16_pattern", [0x93, 0] + list(be(8, 0)) + list(be(4, 0)), OUT_, 4096,
         flags=1, data=b"p" * 4096)
    seed("write_same16_ndob", [0x93, 0x09] + list(be(8, 2)) + list(be(4, 3)), NONE, 0)
    unmap = struct.pack(">HH4x", 6 + 32, 32) + struct.pack(">QI4x", 1, 4) + \
        struct.pack(">QI4x", 200, 50)
    seed("unmap", [0x42, 0, 0, 0, 0, 0, 0, 0, len(unmap)], OUT_, len(unmap), data=unmap)
    seed("get_lba_status", [0x9e, 0x12] + list(be(8, 100)) + list(be(4, 24)), IN, 24)
    caw = b"\0" * 512 + b"c" * 512
    seed("compare_and_write", [0x89, 0] + list(be(8, 20)) + [0, 0, 0, 1], OUT_, 1024,
         niov=2, data=caw)
    seed("mode_sense6_all", [0x1a, 0, 0x3f, 0, 255], IN, 255)
    seed("mode_sense10_llbaa", [0x5a, 0x10, 0x08, 0, 0, 0, 0, 0, 255], IN, 255)
    control = bytes([0, 0, 0, 0, 0x0a, 0x0a, 0x06, 0x10, 0x08, 0, 0, 0, 0xff, 0xff, 0, 0])
    seed("mode_select6_control", [0x15, 0x10, 0, 0, len(control)], OUT_, len(control),
         data=control)
    seed("start_stop", [0x1b, 0, 0, 0, 0], NONE, 0)
    seed("rsoc_all", [0xa3, 0x0c, 0x80, 0, 0, 0] + list(be(4, 4096)), IN, 4096)
    seed("rsoc_one", [0xa3, 0x0c, 0x02, 0x9e, 0, 0x10] + list(be(4, 64)), IN, 64)
    seed("no_lun", [0x28, 0, 0, 0, 0, 0, 0, 0, 1], IN, 512, flags=2)


if __name__ == "__main__":
    main()
