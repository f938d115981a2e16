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
                  hdgst=False, ddgst=False, kato=0, dhchap=None):
    """Connected and enabled admin queue. Returns (host, cntlid). dhchap: authenticate()'s
    keyword arguments (key, ctrl_key, hashes, groups) when the target requires it; what
    was agreed lands in host.auth."""
    h = Host(port)
    h.icreq(hdgst, ddgst)
    cqe = h.connect(subnqn, hostnqn, kato=kato)
    assert status_of(cqe["status"])[:2] == (0, 0), f"connect failed: {cqe}"
    h.hostnqn = hostnqn
    h.cntlid = cqe["cdw0"] & 0xFFFF
    h.authreq = cqe["cdw0"] >> 16
    h.auth = h.authenticate(subnqn, hostnqn, **dhchap) if dhchap else None
    if subnqn != DISCOVERY_NQN:
        h.enable()
    return h


def io_session(port, admin, subnqn, qid=1, sqsize=127, hdgst=False, ddgst=False, cattr=0,
               dhchap=None):
    h = Host(port)
    h.icreq(hdgst, ddgst)
    cqe = h.connect(subnqn, admin.hostnqn, qid=qid, sqsize=sqsize, cntlid=admin.cntlid,
                    hostid=admin.hostid, cattr=cattr)
    assert status_of(cqe["status"])[:2] == (0, 0), f"I/O connect failed: {cqe}"
    h.hostnqn = admin.hostnqn
    h.authreq = cqe["cdw0"] >> 16
    h.auth = h.authenticate(subnqn, admin.hostnqn, **dhchap) if dhchap else None
    return h


# --- in-band authentication: DH-HMAC-CHAP ------------------------------------------------------
#
# Written from NVMe Base 2.0, 8.13 (and RFC 7919 for the groups), with the standard library
# only - hashlib/hmac for SHA-2 and HMAC, pow() for Diffie-Hellman - and nothing from mimo's C
# code, so that the two check each other.

import base64  # noqa: E402
import hashlib  # noqa: E402
import hmac as _hmac  # noqa: E402
import secrets  # noqa: E402
import zlib  # noqa: E402

AUTH_SEND, AUTH_RECV = 0x05, 0x06
SECP = 0xE9
COMMON, DHCHAP = 0x00, 0x01
NEGOTIATE, CHALLENGE, REPLY, SUCCESS1, SUCCESS2, FAILURE2, FAILURE1 = 0, 1, 2, 3, 4, 0xF0, 0xF1
SC_AUTH_REQUIRED = 0x91
ATR, ASCR = 1 << 17, 1 << 18
HASHES = {1: "sha256", 2: "sha384", 3: "sha512"}
HASH_LEN = {1: 32, 2: 48, 3: 64}
GROUPS = {0: "null", 1: "ffdhe2048", 2: "ffdhe3072", 3: "ffdhe4096", 4: "ffdhe6144",
          5: "ffdhe8192"}
GROUP_BITS = {1: 2048, 2: 3072, 3: 4096, 4: 6144, 5: 8192}
# Failure reason code explanations.
FAILED, PROTOCOL_UNUSABLE, SCC_MISMATCH, HASH_UNUSABLE, DHGROUP_UNUSABLE, INCORRECT_PAYLOAD, \
    INCORRECT_PROTOCOL_MESSAGE = 1, 2, 3, 4, 5, 6, 7


def _e_fixed(bits):
    """floor(e * 2^bits): e from its series, in integers."""
    guard = 64
    total, term, k = 0, 1 << (bits + guard), 0
    while term:
        total += term
        k += 1
        term //= k
    return total >> guard


# RFC 7919: p = 2^b - 2^{b-64} + {[2^{b-130} e] + X} * 2^64 - 1, g = 2.
_FFDHE_X = {2048: 560316, 3072: 2625351, 4096: 5736041, 6144: 15705020, 8192: 10965728}
_PRIMES = {}


def ffdhe_prime(group_id):
    b = GROUP_BITS[group_id]
    if b not in _PRIMES:
        _PRIMES[b] = 2 ** b - 2 ** (b - 64) + (_e_fixed(b - 130) + _FFDHE_X[b]) * 2 ** 64 - 1
    return _PRIMES[b]


def make_dhchap_key(secret=None, hh=0, length=32):
    """A secret in nvme-cli's interchange form: DHHC-1:<hh>:<base64(secret || crc32)>:."""
    secret = secret if secret is not None else secrets.token_bytes(length)
    blob = secret + struct.pack("<I", zlib.crc32(secret))
    return f"DHHC-1:{hh:02x}:{base64.b64encode(blob).decode()}:"


def make_tls_psk(secret=None, hh=1):
    secret = secret if secret is not None else secrets.token_bytes(32 if hh != 2 else 48)
    blob = secret + struct.pack("<I", zlib.crc32(secret))
    return f"NVMeTLSkey-1:{hh:02x}:{base64.b64encode(blob).decode()}:"


def parse_dhchap_key(text):
    prefix, hh, b64, tail = text.strip().split(":")
    assert prefix == "DHHC-1" and tail == ""
    blob = base64.b64decode(b64)
    secret, crc = blob[:-4], struct.unpack("<I", blob[-4:])[0]
    assert zlib.crc32(secret) == crc, "bad CRC-32"
    return int(hh, 16), secret


def transform_key(key_text, nqn):
    hh, secret = parse_dhchap_key(key_text)
    if hh == 0:
        return secret
    return _hmac.new(secret, nqn.encode() + b"NVMe-over-Fabrics", HASHES[hh]).digest()


def dhchap_response(hash_id, key_text, role, owner, other, seq, tid, chal, dh=None):
    """R = HMAC(Kt, Ca || seq || tid || 0 || role || owner NQN || 0 || other NQN)."""
    name = HASHES[hash_id]
    if dh:
        chal = _hmac.new(hashlib.new(name, dh).digest(), chal, name).digest()
    kt = transform_key(key_text, owner)
    msg = chal + struct.pack("<IHB", seq, tid, 0) + role.encode() + owner.encode() + b"\0" + \
        other.encode()
    return _hmac.new(kt, msg, name).digest()


class DhKey:
    """x and g^x mod p of a group; the shared value of a peer's."""

    def __init__(self, group_id):
        self.p = ffdhe_prime(group_id)
        self.len = GROUP_BITS[group_id] // 8
        self.x = secrets.randbits(512) | (1 << 511)
        self.pub = pow(2, self.x, self.p).to_bytes(self.len, "big")

    def shared(self, peer):
        y = int.from_bytes(peer, "big")
        assert 1 < y < self.p - 1, "invalid peer value"
        return pow(y, self.x, self.p).to_bytes(self.len, "big")


def negotiate_msg(tid, hashes=(1, 2, 3), groups=(0, 1, 2, 3, 4, 5), sc_c=0, napd=1,
                  protocol=DHCHAP):
    desc = struct.pack("<BBBB", protocol, 0, len(hashes), len(groups)) + \
        bytes(hashes).ljust(30, b"\0") + bytes(groups).ljust(30, b"\0")
    return struct.pack("<BBxxHBB", COMMON, NEGOTIATE, tid, sc_c, napd) + desc * napd


def parse_auth(data):
    """The fields of a message from the controller, by its type."""
    auth_type, auth_id, tid = struct.unpack_from("<BBxxH", data, 0)
    m = {"type": auth_type, "id": auth_id, "tid": tid}
    if (auth_type, auth_id) == (COMMON, FAILURE1):
        m["rescode"], m["rescode_exp"] = data[6], data[7]
    elif (auth_type, auth_id) == (DHCHAP, CHALLENGE):
        hl, _, hash_id, dhg, dhvlen, seq = struct.unpack_from("<BBBBHI", data, 6)
        m.update(hl=hl, hash=hash_id, group=dhg, dhvlen=dhvlen, seq=seq,
                 c1=data[16:16 + hl], dhv=data[16 + hl:16 + hl + dhvlen])
    elif (auth_type, auth_id) == (DHCHAP, SUCCESS1):
        hl, _, rvalid = struct.unpack_from("<BBB", data, 6)
        m.update(hl=hl, rvalid=rvalid, rval=data[16:16 + hl] if rvalid else b"")
    return m


class AuthOutcome(Exception):
    """The exchange ended before success: how (a Failure1 from the controller, or a status)."""

    def __init__(self, what, **kw):
        super().__init__(f"{what} {kw}")
        self.what = what
        self.__dict__.update(kw)


def _auth_sqe(cid, fctype, length, sgl_id, secp=SECP, spsp0=1, spsp1=1):
    return struct.pack("<BBHB19x", 0x7F, 0, cid, fctype) + \
        struct.pack("<QI3xB", 0, length, sgl_id) + \
        struct.pack("<BBBBI16x", 0, spsp0, spsp1, secp, length)


def _host_auth_send(self, msg, tl=None, **kw):
    """Authentication Send with msg in the capsule (tl: what the command says, default the
    message's length). Returns the CQE."""
    cid = self.next_cid()
    sqe = bytearray(_auth_sqe(cid, AUTH_SEND, len(msg), SGL_ICD, **kw))
    if tl is not None:
        struct.pack_into("<I", sqe, 44, tl)
    self.send_raw(self.pdu_bytes(CMD, bytes(sqe), msg))
    return self.finish(cid)[0]


def _host_auth_recv(self, al=4096, **kw):
    """Authentication Receive of up to al bytes. Returns (cqe, data)."""
    cid = self.next_cid()
    self.send_raw(self.pdu_bytes(CMD, _auth_sqe(cid, AUTH_RECV, al, SGL_TRANSPORT, **kw)))
    return self.finish(cid)


def _host_authenticate(self, subnqn, hostnqn, key, ctrl_key=None, hashes=(1, 2, 3),
                       groups=(0, 1, 2, 3, 4, 5), tid=None, tamper=None):
    """A whole DH-HMAC-CHAP transaction on this queue, as a host does it. Returns what was
    agreed ({hash, group, bidirectional}); raises AuthOutcome when the controller refused
    (Failure1, an error status) or failed to prove itself (after sending Failure2).
    tamper(name, bytes) -> bytes may change a message on its way (tests of refusals)."""
    tamper = tamper or (lambda name, b: b)
    tid = secrets.randbits(16) if tid is None else tid
    cqe = self.auth_send(tamper("negotiate", negotiate_msg(tid, hashes, groups)))
    if status_of(cqe["status"])[:2] != (0, 0):
        raise AuthOutcome("status", step="negotiate", status=status_of(cqe["status"]))
    cqe, data = self.auth_recv()
    if status_of(cqe["status"])[:2] != (0, 0):
        raise AuthOutcome("status", step="challenge", status=status_of(cqe["status"]))
    ch = parse_auth(data)
    if ch["id"] == FAILURE1:
        raise AuthOutcome("failure1", step="challenge", reason=ch["rescode_exp"])
    assert (ch["type"], ch["id"], ch["tid"]) == (DHCHAP, CHALLENGE, tid), ch
    assert ch["hash"] in hashes and ch["group"] in groups and ch["hl"] == HASH_LEN[ch["hash"]]
    assert ch["seq"] != 0
    hl, dh, pub = ch["hl"], None, b""
    if ch["group"] != 0:
        assert ch["dhvlen"] == GROUP_BITS[ch["group"]] // 8
        mine = DhKey(ch["group"])
        dh, pub = mine.shared(ch["dhv"]), mine.pub
    else:
        assert ch["dhvlen"] == 0
    r1 = dhchap_response(ch["hash"], key, "HostHost", hostnqn, subnqn, ch["seq"], tid, ch["c1"],
                         dh)
    c2, s2 = b"\0" * hl, 0
    if ctrl_key:
        c2, s2 = secrets.token_bytes(hl), secrets.randbits(31) | 1
    reply = struct.pack("<BBxxHBxBxHI", DHCHAP, REPLY, tid, hl, 1 if ctrl_key else 0, len(pub),
                        s2) + r1 + c2 + pub
    cqe = self.auth_send(tamper("reply", reply))
    if status_of(cqe["status"])[:2] != (0, 0):
        raise AuthOutcome("status", step="reply", status=status_of(cqe["status"]))
    cqe, data = self.auth_recv()
    if status_of(cqe["status"])[:2] != (0, 0):
        raise AuthOutcome("status", step="success1", status=status_of(cqe["status"]))
    s1 = parse_auth(data)
    if s1["id"] == FAILURE1:
        raise AuthOutcome("failure1", step="success1", reason=s1["rescode_exp"])
    assert (s1["type"], s1["id"], s1["tid"], s1["hl"]) == (DHCHAP, SUCCESS1, tid, hl), s1
    agreed = {"hash": HASHES[ch["hash"]], "group": GROUPS[ch["group"]],
              "bidirectional": bool(ctrl_key)}
    if not ctrl_key:
        return agreed
    r2 = dhchap_response(ch["hash"], ctrl_key, "Controller", subnqn, hostnqn, s2, tid, c2, dh)
    if not s1["rvalid"] or not _hmac.compare_digest(s1["rval"], r2):
        fail2 = struct.pack("<BBxxHBB", COMMON, FAILURE2, tid, 1, FAILED)
        cqe = self.auth_send(fail2)
        raise AuthOutcome("controller_failed", rvalid=s1["rvalid"],
                          failure2_status=status_of(cqe["status"]))
    cqe = self.auth_send(struct.pack("<BBxxH10x", DHCHAP, SUCCESS2, tid))
    if status_of(cqe["status"])[:2] != (0, 0):
        raise AuthOutcome("status", step="success2", status=status_of(cqe["status"]))
    return agreed


Host.auth_send = _host_auth_send
Host.auth_recv = _host_auth_recv
Host.authenticate = _host_authenticate
