"""A small NVMe/TCP host written from the transport specification, for tests: it speaks the
protocol PDU by PDU, so a test can also send what a correct host never would (truncated
headers, wrong lengths, bad digests, commands before Connect) and see what the target answers.
Standard library only."""
import os
import socket
import struct

# PDU types
IC_REQ, IC_RESP, H2C_TERM, C2H_TERM, CMD, RSP, H2C_DATA, C2H_DATA, R2T = 0, 1, 2, 3, 4, 5, 6, 7, 9
F_HDGST, F_DDGST, F_LAST, F_SUCCESS = 1, 2, 4, 8
HLEN = {IC_REQ: 128, IC_RESP: 128, H2C_TERM: 24, C2H_TERM: 24, CMD: 72, RSP: 24, H2C_DATA: 24,
        C2H_DATA: 24, R2T: 24}
DISCOVERY_NQN = "nqn.2014-08.org.nvmexpress.discovery"

# SGL identifiers NVMe/TCP uses
SGL_ICD = 0x01        # data block, offset: data in the capsule
SGL_TRANSPORT = 0x5a  # transport data block: R2T/H2CData or C2HData

_CRC_TABLE = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1
    _CRC_TABLE.append(_c)


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc = _CRC_TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def status_of(cqe_status):
    """(sct, sc, dnr) of a completion's status field."""
    return (cqe_status >> 9) & 7, (cqe_status >> 1) & 0xFF, bool(cqe_status & 0x8000)


class Closed(Exception):
    pass


class Pdu:
    def __init__(self, type_, flags, hlen, pdo, plen, header, data):
        self.type, self.flags, self.hlen, self.pdo, self.plen = type_, flags, hlen, pdo, plen
        self.header = header  # the whole header, common part included
        self.data = data

    def cqe(self):
        """For a CapsuleResp: dict of the completion."""
        dw0, dw1, sqhd, sqid, cid, status = struct.unpack_from("<IIHHHH", self.header, 8)
        return {"cdw0": dw0, "cdw1": dw1, "sqhd": sqhd, "sqid": sqid, "cid": cid,
                "status": status}


class Host:
    """One NVMe/TCP connection (one queue)."""

    def __init__(self, port, addr="127.0.0.1", timeout=10.0):
        self.sock = socket.create_connection((addr, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.hdgst = self.ddgst = False
        self.buf = b""
        self.cid = 0
        self.maxh2cdata = 0
        self.cpda = 0

    # --- raw bytes and PDUs -------------------------------------------------------------------

    def send_raw(self, data):
        self.sock.sendall(data)

    def _recv_exact(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise Closed(f"connection closed with {len(self.buf)} of {n} bytes read")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def closed(self, timeout=5.0):
        """True when the target closes the connection within timeout (data is discarded)."""
        self.sock.settimeout(timeout)
        try:
            while True:
                if not self.sock.recv(65536):
                    return True
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True

    def recv_pdu(self):
        ch = self._recv_exact(8)
        type_, flags, hlen, pdo, plen = struct.unpack("<BBBBI", ch)
        rest = self._recv_exact(plen - 8)
        raw = ch + rest
        header = raw[:hlen]
        data = b""
        if flags & F_HDGST and type_ not in (IC_RESP, C2H_TERM):
            got, = struct.unpack_from("<I", raw, hlen)
            assert got == crc32c(header), "bad header digest from the target"
        if type_ in (C2H_TERM,) and plen > hlen:
            data = raw[hlen:plen]
        elif pdo and plen > pdo:
            end = plen - (4 if flags & F_DDGST else 0)
            data = raw[pdo:end]
            if flags & F_DDGST:
                got, = struct.unpack_from("<I", raw, end)
                assert got == crc32c(data), "bad data digest from the target"
        return Pdu(type_, flags, hlen, pdo, plen, header, data)

    def pdu_bytes(self, type_, specific, data=b"", flags=0, hdgst=None, ddgst=None,
                  pad=0):
        """A whole PDU: common header (computed), specific header bytes, digests, data."""
        hdgst = self.hdgst if hdgst is None else hdgst
        ddgst = self.ddgst if ddgst is None else ddgst
        hlen = 8 + len(specific)
        hd = 4 if hdgst else 0
        if hdgst:
            flags |= F_HDGST
        if data and ddgst:
            flags |= F_DDGST
        pdo = hlen + hd + pad if data else 0
        plen = (pdo + len(data) + (4 if data and ddgst else 0)) if data else hlen + hd
        head = struct.pack("<BBBBI", type_, flags, hlen, pdo, plen) + specific
        out = head
        if hdgst:
            out += struct.pack("<I", crc32c(head))
        if data:
            out += b"\0" * pad + data
            if ddgst:
                out += struct.pack("<I", crc32c(data))
        return out

    # --- connection set-up --------------------------------------------------------------------

    def icreq(self, hdgst=False, ddgst=False, pfv=0, hpda=0):
        body = struct.pack("<HBBI", pfv, hpda, (1 if hdgst else 0) | (2 if ddgst else 0), 0)
        self.send_raw(self.pdu_bytes(IC_REQ, body + b"\0" * 112, hdgst=False, ddgst=False))
        resp = self.recv_pdu()
        if resp.type != IC_RESP:
            return resp
        pfv_, cpda, dgst, maxh2c = struct.unpack_from("<HBBI", resp.header, 8)
        self.hdgst, self.ddgst = bool(dgst & 1), bool(dgst & 2)
        self.maxh2cdata, self.cpda = maxh2c, cpda
        return resp

    @staticmethod
    def sqe(opc, cid, nsid=0, cdw10=0, cdw11=0, cdw12=0, cdw13=0, cdw14=0, cdw15=0,
            sgl=(0, 0, SGL_TRANSPORT), fuse_psdt=0x40):
        addr, length, sgl_id = sgl
        sgl_bytes = struct.pack("<QI3xB", addr, length, sgl_id)
        return struct.pack("<BBHIQQ", opc, fuse_psdt, cid, nsid, 0, 0) + sgl_bytes + \
            struct.pack("<6I", cdw10, cdw11, cdw12, cdw13, cdw14, cdw15)

    def next_cid(self):
        self.cid = (self.cid + 1) & 0xFFFF
        return self.cid

    def connect(self, subnqn, hostnqn, qid=0, sqsize=31, cntlid=0xFFFF, kato=0, hostid=None,
                cattr=0, recfmt=0):
        """Fabrics Connect with its 1024 bytes of data in the capsule. Returns the CQE."""
        hostid = hostid or os.urandom(16)
        data = hostid + struct.pack("<H", cntlid) + b"\0" * 238
        data += subnqn.encode().ljust(256, b"\0") + hostnqn.encode().ljust(256, b"\0")
        data += b"\0" * 256
        cid = self.next_cid()
        sqe = struct.pack("<BBHB19x", 0x7F, 0, cid, 0x01) + \
            struct.pack("<QI3xB", 0, len(data), SGL_ICD) + \
            struct.pack("<HHHBBI12x", recfmt, qid, sqsize, cattr, 0, kato)
        self.send_raw(self.pdu_bytes(CMD, sqe, data))
        self.hostid = hostid
        return self.recv_pdu().cqe()

    def prop_get(self, ofst, size8=False):
        cid = self.next_cid()
        sqe = struct.pack("<BBHB35xB3xI16x", 0x7F, 0, cid, 0x04, 1 if size8 else 0, ofst)
        self.send_raw(self.pdu_bytes(CMD, sqe))
        return self.recv_pdu().cqe()

    def prop_set(self, ofst, value):
        cid = self.next_cid()
        sqe = struct.pack("<BBHB35xB3xIQ8x", 0x7F, 0, cid, 0x00, 0, ofst, value)
        self.send_raw(self.pdu_bytes(CMD, sqe))
        return self.recv_pdu().cqe()

    def disconnect(self):
        """Fabrics Disconnect (this queue). Returns the CQE."""
        cid = self.next_cid()
        sqe = struct.pack("<BBHB59x", 0x7F, 0, cid, 0x08)
        self.send_raw(self.pdu_bytes(CMD, sqe))
        return self.recv_pdu().cqe()

    def enable(self):
        cqe = self.prop_set(0x14, 0x00460001)  # CC: EN, IOSQES 6, IOCQES 4
        assert status_of(cqe["status"])[:2] == (0, 0)
        cqe = self.prop_get(0x1C)
        assert cqe["cdw0"] & 1, "CSTS.RDY not set"

    # --- commands -----------------------------------------------------------------------------

    def command(self, opc, nsid=0, data_in=0, data_out=b"", icd=True, cdws=(), cid=None):
        """Run one command. data_in: bytes the target should send; data_out: bytes to write
        (in the capsule when icd, else after R2T). Returns (cqe, data)."""
        cid = self.next_cid() if cid is None else cid
        kw = dict(zip(("cdw10", "cdw11", "cdw12", "cdw13", "cdw14", "cdw15"), cdws))
        if data_out and icd:
            sgl = (0, len(data_out), SGL_ICD)
        else:
            sgl = (0, data_in or len(data_out), SGL_TRANSPORT)
        sqe = self.sqe(opc, cid, nsid, sgl=sgl, **kw)
        self.send_raw(self.pdu_bytes(CMD, sqe, data_out if icd else b""))
        return self.finish(cid, data_out if not icd else b"")

    def finish(self, cid, pending_out=b""):
        """Read PDUs for command cid until it completes; answer R2Ts from pending_out."""
        data = bytearray()
        while True:
            pdu = self.recv_pdu()
            if pdu.type == R2T:
                cccid, ttag, r2to, r2tl = struct.unpack_from("<HHII", pdu.header, 8)
                assert cccid == cid
                self.h2c_data(cid, ttag, r2to, pending_out[r2to:r2to + r2tl])
                continue
            if pdu.type == C2H_DATA:
                cccid, _, datao, datal = struct.unpack_from("<HHII", pdu.header, 8)
                assert cccid == cid and datal == len(pdu.data)
                if len(data) < datao + datal:
                    data.extend(b"\0" * (datao + datal - len(data)))
                data[datao:datao + datal] = pdu.data
                if pdu.flags & F_SUCCESS:
                    return {"cid": cid, "status": 0, "cdw0": 0, "success_flag": True}, bytes(data)
                continue
            if pdu.type == RSP:
                cqe = pdu.cqe()
                assert cqe["cid"] == cid, f"completion for cid {cqe['cid']}, expected {cid}"
                return cqe, bytes(data)
            if pdu.type == C2H_TERM:
                raise Closed(f"C2HTermReq fes={struct.unpack_from('<H', pdu.header, 8)[0]}")
            raise AssertionError(f"unexpected PDU type {pdu.type}")

    def h2c_data(self, cid, ttag, offset, chunk, last=True):
        maxd = self.maxh2cdata or len(chunk)
        pos = 0
        while pos < len(chunk):
            part = chunk[pos:pos + maxd]
            final = pos + len(part) == len(chunk)
            spec = struct.pack("<HHII4x", cid, ttag, offset + pos, len(part))
            self.send_raw(self.pdu_bytes(H2C_DATA, spec, part,
                                         flags=F_LAST if (final and last) else 0))
            pos += len(part)

    def identify(self, cns, nsid=0):
        return self.command(0x06, nsid=nsid, data_in=4096, cdws=(cns,))

    def get_log_page(self, lid, length, offset=0, nsid=0xFFFFFFFF, rae=False):
        numd = length // 4 - 1
        cdw10 = lid | (0x8000 if rae else 0) | ((numd & 0xFFFF) << 16)
        return self.command(0x02, nsid=nsid, data_in=length,
                            cdws=(cdw10, numd >> 16, offset & 0xFFFFFFFF, offset >> 32))

    def read(self, nsid, lba, nblocks, block_size=512):
        return self.command(0x02, nsid=nsid, data_in=nblocks * block_size,
                            cdws=(lba & 0xFFFFFFFF, lba >> 32, nblocks - 1))

    def write(self, nsid, lba, data, block_size=512, icd=None):
        icd = len(data) <= 4096 if icd is None else icd
        return self.command(0x01, nsid=nsid, data_out=data, icd=icd,
                            cdws=(lba & 0xFFFFFFFF, lba >> 32, len(data) // block_size - 1))

    def close(self):
        self.sock.close()


def admin_session(port, subnqn, hostnqn="nqn.2014-08.org.nvmexpress:uuid:11111111-2222-3333-4444-555555555555",
                  hdgst=False, ddgst=False, kato=0):
    """Connected and enabled admin queue. Returns (host, cntlid)."""
    h = Host(port)
    h.icreq(hdgst, ddgst)
    cqe = h.connect(subnqn, hostnqn, kato=kato)
    assert status_of(cqe["status"])[:2] == (0, 0), f"connect failed: {cqe}"
    h.hostnqn = hostnqn
    h.cntlid = cqe["cdw0"] & 0xFFFF
    if subnqn != DISCOVERY_NQN:
        h.enable()
    return h


def io_session(port, admin, subnqn, qid=1, sqsize=127, hdgst=False, ddgst=False, cattr=0):
    h = Host(port)
    h.icreq(hdgst, ddgst)
    cqe = h.connect(subnqn, admin.hostnqn, qid=qid, sqsize=sqsize, cntlid=admin.cntlid,
                    hostid=admin.hostid, cattr=cattr)
    assert status_of(cqe["status"])[:2] == (0, 0), f"I/O connect failed: {cqe}"
    return h
