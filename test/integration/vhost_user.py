"""A small vhost-user front-end for tests: what QEMU does with a vhost-user-blk-pci device,
without a guest. It speaks the protocol on a controller's socket, keeps "guest memory" in a
sealed memfd it shares with the back-end, lays out split rings in it and makes virtio-blk
requests, so that tests can check I/O, refusals and hostile messages exactly.

    c = Client(sock_path)
    c.negotiate()                  # features, protocol features, owner, memory table
    q = c.queue(0)                 # rings, eventfds, enable
    st, data = q.blk_read(sector, nbytes)
    st = q.blk_write(sector, data)

and virtio-scsi (vhost-user-scsi-pci) on the same rings: queue 0 control, 1 events, 2.. requests.

    r = c.queue(2).scsi(cdb, target=0, in_len=36)   # r.response, r.status, r.sense, r.data
    c.queue(0).tmf(TMF_LOGICAL_UNIT_RESET, target=0)
    ev = c.queue(1); heads = ev.event_bufs(4); ev.events()
"""
import fcntl
import mmap
import os
import select
import socket
import struct
import time

GET_FEATURES, SET_FEATURES, SET_OWNER, RESET_OWNER, SET_MEM_TABLE = 1, 2, 3, 4, 5
SET_LOG_BASE, SET_VRING_NUM, SET_VRING_ADDR, SET_VRING_BASE, GET_VRING_BASE = 6, 8, 9, 10, 11
SET_VRING_KICK, SET_VRING_CALL, SET_VRING_ERR = 12, 13, 14
GET_PROTOCOL_FEATURES, SET_PROTOCOL_FEATURES, GET_QUEUE_NUM, SET_VRING_ENABLE = 15, 16, 17, 18
GET_CONFIG, SET_CONFIG = 24, 25

F_PROTOCOL_FEATURES, F_INDIRECT, F_EVENT_IDX, F_VERSION_1 = 30, 28, 29, 32
F_RING_PACKED = 34
PF_MQ, PF_REPLY_ACK, PF_BACKEND_REQ, PF_CONFIG = 0, 3, 5, 9
SET_BACKEND_REQ_FD = 21
GET_INFLIGHT_FD, SET_INFLIGHT_FD = 31, 32
PF_INFLIGHT_SHMFD = 12
BACKEND_CONFIG_CHANGE_MSG = 2
NEED_REPLY = 1 << 3

DESC_NEXT, DESC_WRITE, DESC_INDIRECT = 1, 2, 4
DESC_AVAIL, DESC_USED = 1 << 7, 1 << 15            # packed rings
EVENT_ENABLE, EVENT_DISABLE, EVENT_DESC = 0, 1, 2  # packed rings' event structures
T_IN, T_OUT, T_FLUSH, T_GET_ID, T_DISCARD, T_WRITE_ZEROES = 0, 1, 4, 8, 11, 13
S_OK, S_IOERR, S_UNSUPP = 0, 1, 2

# virtio-scsi
SCSI_F_HOTPLUG, SCSI_F_CHANGE = 1, 2
VS_OK, VS_OVERRUN, VS_ABORTED, VS_BAD_TARGET, VS_FAILURE = 0, 1, 2, 3, 9
VS_FUNCTION_SUCCEEDED, VS_FUNCTION_REJECTED, VS_INCORRECT_LUN = 10, 11, 12
TMF_ABORT_TASK, TMF_ABORT_TASK_SET, TMF_CLEAR_ACA, TMF_CLEAR_TASK_SET = 0, 1, 2, 3
TMF_I_T_NEXUS_RESET, TMF_LOGICAL_UNIT_RESET, TMF_QUERY_TASK, TMF_QUERY_TASK_SET = 4, 5, 6, 7
EV_NO_EVENT, EV_TRANSPORT_RESET, EV_PARAM_CHANGE, EV_MISSED = 0, 1, 3, 0x80000000
EV_RESCAN, EV_REMOVED = 1, 2
SCSI_REQ, SCSI_RESP = 51, 108     # struct virtio_scsi_cmd_req / _resp (cdb 32, sense 96)


class ScsiResult:
    def __init__(self, response, status, sense, resid, data, used):
        self.response, self.status, self.sense = response, status, sense
        self.resid, self.data, self.used = resid, data, used

    def __repr__(self):
        return (f"ScsiResult(response={self.response}, status={self.status:#x}, "
                f"sense={self.sense.hex()}, resid={self.resid}, used={self.used})")

    @property
    def key_asc(self):
        """(sense key, ASC, ASCQ) of fixed-format sense."""
        s = self.sense
        return (s[2] & 0xf, s[12], s[13]) if len(s) >= 14 else None


def scsi_lun(target, lun=0):
    """virtio-scsi's 8-byte LUN field, as Linux's driver fills it."""
    return bytes([1, target, 0x40 | (lun >> 8) if lun else 0, lun & 0xff]) + bytes(4)


GPA = 0x4000_0000          # where the "guest" sees its memory
UVA = 0x7f00_0000_0000     # where the "front-end" says it has it
MEM = 16 << 20
RING_AREA = 1 << 20        # rings of queue i at i * 32 KiB; data buffers above 1 MiB


class Closed(Exception):
    """The back-end closed the connection."""


def memfd(size, seal=True):
    fd = os.memfd_create("guest", os.MFD_ALLOW_SEALING | os.MFD_CLOEXEC)
    os.ftruncate(fd, size)
    if seal:
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW)
    return fd


class Client:
    def __init__(self, path, timeout=10.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.fd = memfd(MEM)
        self.mem = mmap.mmap(self.fd, MEM)
        self.next_buf = RING_AREA
        self.features = 0
        self.protocol_features = 0
        self.queues = {}

    def close(self):
        for q in self.queues.values():
            q.close()
        self.sock.close()
        self.mem.close()
        os.close(self.fd)

    # --- messages ------------------------------------------------------------------------

    def send(self, request, payload=b"", fds=(), flags=0x1, size=None):
        hdr = struct.pack("<III", request, flags, len(payload) if size is None else size)
        if fds:
            socket.send_fds(self.sock, [hdr + payload], list(fds))
        else:
            self.sock.sendall(hdr + payload)

    def recv_exact(self, n):
        b = b""
        while len(b) < n:
            chunk = self.sock.recv(n - len(b))
            if not chunk:
                raise Closed(f"connection closed after {len(b)} of {n} bytes")
            b += chunk
        return b

    def reply(self, request):
        req, flags, size = struct.unpack("<III", self.recv_exact(12))
        assert req == request and flags == 0x5, (req, flags)
        return self.recv_exact(size)

    def call(self, request, payload=b"", fds=(), ack=False):
        """Send; return the reply's payload for requests that have one, the REPLY_ACK u64
        when ack, else None."""
        self.send(request, payload, fds, 0x1 | (NEED_REPLY if ack else 0))
        if request in (GET_FEATURES, GET_PROTOCOL_FEATURES, GET_VRING_BASE, GET_QUEUE_NUM,
                       GET_CONFIG):
            return self.reply(request)
        if ack:
            return struct.unpack("<Q", self.reply(request))[0]
        return None

    def u64(self, request):
        return struct.unpack("<Q", self.call(request))[0]

    def closed(self, timeout=10.0):
        """True once the back-end has closed the connection (what it sent before is
        skipped)."""
        self.sock.settimeout(timeout)
        try:
            while True:
                if not self.sock.recv(4096):
                    return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False

    # --- set-up as QEMU does it -------------------------------------------------------------

    def negotiate(self, features=None, protocol=None, mem=True):
        offered = self.u64(GET_FEATURES)
        want = offered & ~(1 << F_EVENT_IDX) if features is None else features
        pf = self.u64(GET_PROTOCOL_FEATURES)
        self.protocol_features = pf if protocol is None else protocol
        self.call(SET_PROTOCOL_FEATURES, struct.pack("<Q", self.protocol_features))
        self.call(SET_OWNER)
        self.features = want
        self.call(SET_FEATURES, struct.pack("<Q", want))
        if mem:
            self.set_mem_table()
        return offered, pf

    def mem_table(self, regions):
        """SET_MEM_TABLE payload for [(gpa, size, uva, offset)]."""
        p = struct.pack("<II", len(regions), 0)
        for r in regions:
            p += struct.pack("<QQQQ", *r)
        return p

    def set_mem_table(self, fd=None, ack=False):
        return self.call(SET_MEM_TABLE, self.mem_table([(GPA, MEM, UVA, 0)]),
                         [self.fd if fd is None else fd], ack=ack)

    def backend_channel(self):
        """SET_BACKEND_REQ_FD as QEMU sends it: our end of a socket pair, on which the back-end
        sends its own requests (configuration changes)."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self.call(SET_BACKEND_REQ_FD, b"", [theirs.fileno()], ack=True)
        theirs.close()
        return ours

    def get_inflight(self, num_queues, queue_size):
        """GET_INFLIGHT_FD as QEMU sends it: (mmap_size, mmap_offset, fd of the region)."""
        self.send(GET_INFLIGHT_FD, struct.pack("<QQHH4x", 0, 0, num_queues, queue_size))
        hdr, fds, _, _ = socket.recv_fds(self.sock, 12 + 24, 1)
        while len(hdr) < 12 + 24:
            hdr += self.recv_exact(12 + 24 - len(hdr))
        req, flags, size = struct.unpack_from("<III", hdr)
        assert req == GET_INFLIGHT_FD and flags == 0x5 and size == 24, (req, flags, size)
        mmap_size, mmap_offset, _, _ = struct.unpack_from("<QQHH", hdr, 12)
        assert len(fds) == 1
        return mmap_size, mmap_offset, fds[0]

    def set_inflight(self, fd, mmap_size, mmap_offset, num_queues, queue_size, ack=False):
        return self.call(SET_INFLIGHT_FD, struct.pack("<QQHH4x", mmap_size, mmap_offset,
                                                      num_queues, queue_size), [fd], ack=ack)

    def get_config(self, offset=0, size=60):
        r = self.call(GET_CONFIG, struct.pack("<III", offset, size, 0) + bytes(size))
        return r[12:]

    def queue(self, index, size=64, enable=True):
        """A queue in the layout negotiated: packed rings (PackedQueue) once F_RING_PACKED
        was, split ones otherwise."""
        q = (PackedQueue if self.features & (1 << F_RING_PACKED) else Queue)(self, index, size)
        self.queues[index] = q
        q.setup(enable)
        return q

    def alloc(self, n, align=4096):
        self.next_buf = (self.next_buf + align - 1) & ~(align - 1)
        off = self.next_buf
        self.next_buf += n
        assert self.next_buf <= MEM, "out of test memory"
        return off


class Queue:
    def __init__(self, client, index, size):
        self.c = client
        self.index = index
        self.size = size
        base = index * 32768
        assert base + 32768 <= RING_AREA
        self.desc = base
        self.avail = base + 16 * size
        self.used = (self.avail + 4 + 2 * size + 2 + 4095) & ~4095
        self.kick = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self.callfd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self.avail_idx = 0
        self.last_used = 0
        self.free = list(range(size))

    def close(self):
        for fd in (self.kick, self.callfd):
            try:
                os.close(fd)
            except OSError:
                pass

    def setup(self, enable=True, base=0):
        m = self.c.mem
        m[self.desc:self.used + 4 + 8 * self.size + 2] = bytes(
            self.used + 4 + 8 * self.size + 2 - self.desc)
        self.configure(base, enable)

    def areas(self):
        """The addresses SET_VRING_ADDR carries: (descriptors, "used", "avail")."""
        return self.desc, self.used, self.avail

    def configure(self, base, enable=True):
        """The messages that set the ring up on the memory it lies in, as QEMU sends them at
        every start."""
        c = self.c
        desc, used, avail = self.areas()
        c.call(SET_VRING_NUM, struct.pack("<II", self.index, self.size))
        c.call(SET_VRING_BASE, struct.pack("<II", self.index, base))
        c.call(SET_VRING_ADDR, struct.pack("<IIQQQQ", self.index, 0, UVA + desc,
                                           UVA + used, UVA + avail, 0))
        c.call(SET_VRING_CALL, struct.pack("<Q", self.index), [self.callfd])
        c.call(SET_VRING_KICK, struct.pack("<Q", self.index), [self.kick])
        if enable:
            c.call(SET_VRING_ENABLE, struct.pack("<II", self.index, 1))

    def used_idx(self):
        return struct.unpack_from("<H", self.c.mem, self.used + 2)[0]

    def put_desc(self, i, addr, length, flags, nxt=0, table=None):
        struct.pack_into("<QIHH", self.c.mem, (self.desc if table is None else table) + 16 * i,
                         addr, length, flags, nxt)

    def submit(self, chain, indirect=False, kick=True):
        """chain: [(offset in memory, length, writable)]. Returns the head."""
        if indirect:
            table = self.c.alloc(16 * len(chain), 16)
            for i, (off, n, w) in enumerate(chain):
                flags = (DESC_WRITE if w else 0) | (DESC_NEXT if i + 1 < len(chain) else 0)
                self.put_desc(i, GPA + off, n, flags, i + 1, table=table)
            head = self.free.pop(0)
            self.put_desc(head, GPA + table, 16 * len(chain), DESC_INDIRECT)
        else:
            ids = [self.free.pop(0) for _ in chain]
            for k, (off, n, w) in enumerate(chain):
                flags = (DESC_WRITE if w else 0) | (DESC_NEXT if k + 1 < len(chain) else 0)
                self.put_desc(ids[k], GPA + off, n, flags, ids[k + 1] if k + 1 < len(chain) else 0)
            head = ids[0]
        self.post(head, kick)
        return head

    def post(self, head, kick=True):
        struct.pack_into("<H", self.c.mem, self.avail + 4 + 2 * (self.avail_idx % self.size), head)
        self.avail_idx = (self.avail_idx + 1) & 0xffff
        struct.pack_into("<H", self.c.mem, self.avail + 2, self.avail_idx)
        if kick:
            os.eventfd_write(self.kick, 1)

    def wait(self, n=1, timeout=10.0):
        """The next n used entries [(id, len)], waiting for them (polling the used index)."""
        deadline = time.monotonic() + timeout
        while ((self.used_idx() - self.last_used) & 0xffff) < n:
            if time.monotonic() > deadline:
                raise TimeoutError(f"queue {self.index}: {n} completion(s) not there in "
                                   f"{timeout} s (used {self.used_idx()}, seen {self.last_used})")
            select.select([self.callfd], [], [], 0.01)
        out = []
        for _ in range(n):
            e = self.used + 4 + 8 * (self.last_used % self.size)
            out.append(struct.unpack_from("<II", self.c.mem, e))
            self.last_used = (self.last_used + 1) & 0xffff
        return out

    def recycle(self, head, count):
        """Give descriptors back (count of them starting at head, linked by next)."""
        i = head
        for _ in range(count):
            self.free.append(i)
            i = struct.unpack_from("<H", self.c.mem, self.desc + 16 * i + 14)[0]

    # --- virtio-blk ---------------------------------------------------------------------------

    def blk(self, type_, sector=0, out=b"", in_len=0, indirect=False):
        """One request: header, out data, in_len writable bytes, status. Returns (status,
        data read, used length)."""
        m = self.c.mem
        hdr = self.c.alloc(16, 16)
        struct.pack_into("<IIQ", m, hdr, type_, 0, sector)
        chain = [(hdr, 16, False)]
        if out:
            o = self.c.alloc(len(out))
            m[o:o + len(out)] = out
            chain.append((o, len(out), False))
        if in_len:
            i = self.c.alloc(in_len)
            m[i:i + in_len] = b"\xee" * in_len
            chain.append((i, in_len, True))
        st = self.c.alloc(1, 1)
        m[st] = 0xff
        chain.append((st, 1, True))
        head = self.submit(chain, indirect=indirect)
        (hid, used_len), = self.wait()
        assert hid == head, (hid, head)
        if not indirect:
            self.recycle(head, len(chain))
        else:
            self.free.append(head)
        data = bytes(m[i:i + in_len]) if in_len else b""
        return m[st], data, used_len

    def blk_read(self, sector, n, **kw):
        st, data, _ = self.blk(T_IN, sector, in_len=n, **kw)
        return st, data

    def blk_write(self, sector, data, **kw):
        return self.blk(T_OUT, sector, out=data, **kw)[0]

    def blk_ranges(self, type_, ranges):
        return self.blk(type_, 0, out=b"".join(struct.pack("<QII", *r) for r in ranges))[0]

    # --- virtio-scsi ----------------------------------------------------------------------------

    def scsi_post(self, cdb, target=0, lun=0, out=b"", in_len=0, tag=0, lun_bytes=None,
                  split=0, kick=True):
        """Queue one command; returns a handle for scsi_reap(). split > 0 cuts the data into
        pieces of that size (one descriptor each)."""
        m = self.c.mem
        hdr = self.c.alloc(SCSI_REQ, 16)
        req = (lun_bytes if lun_bytes is not None else scsi_lun(target, lun)) + \
            struct.pack("<QBBB", tag, 0, 0, 0) + bytes(cdb).ljust(32, b"\0")
        m[hdr:hdr + SCSI_REQ] = req
        chain = [(hdr, SCSI_REQ, False)]

        def pieces(off, n, w):
            step = split or n
            return [(off + k, min(step, n - k), w) for k in range(0, n, step)]
        if out:
            o = self.c.alloc(len(out))
            m[o:o + len(out)] = out
            chain += pieces(o, len(out), False)
        resp = self.c.alloc(SCSI_RESP, 16)
        m[resp:resp + SCSI_RESP] = b"\xee" * SCSI_RESP
        chain.append((resp, SCSI_RESP, True))
        i = 0
        if in_len:
            i = self.c.alloc(in_len)
            m[i:i + in_len] = b"\xee" * in_len
            chain += pieces(i, in_len, True)
        head = self.submit(chain, kick=kick)
        return (head, len(chain), resp, i, in_len)

    def scsi_result(self, handle, used_len):
        head, n, resp, i, in_len = handle
        self.recycle(head, n)
        m = self.c.mem
        sense_len, resid, _, status, response = struct.unpack_from("<IIHBB", m, resp)
        sense = bytes(m[resp + 12:resp + 12 + min(sense_len, 96)])
        data = bytes(m[i:i + in_len]) if in_len else b""
        return ScsiResult(response, status, sense, resid, data, used_len)

    def scsi(self, cdb, **kw):
        h = self.scsi_post(cdb, **kw)
        (hid, used), = self.wait()
        assert hid == h[0], (hid, h[0])
        return self.scsi_result(h, used)

    def _ctrl(self, req, resp_len):
        m = self.c.mem
        o = self.c.alloc(len(req), 16)
        m[o:o + len(req)] = req
        r = self.c.alloc(resp_len, 16)
        m[r:r + resp_len] = b"\xee" * resp_len
        head = self.submit([(o, len(req), False), (r, resp_len, True)])
        (hid, used), = self.wait()
        assert hid == head
        self.recycle(head, 2)
        return bytes(m[r:r + resp_len]), used

    def tmf(self, subtype, target=0, lun=0, tag=0, lun_bytes=None):
        """A task management function on the control queue: its response code."""
        lb = lun_bytes if lun_bytes is not None else scsi_lun(target, lun)
        resp, used = self._ctrl(struct.pack("<II", 0, subtype) + lb + struct.pack("<Q", tag), 1)
        assert used == 1
        return resp[0]

    def an_query(self, target=0, events=0xff):
        """An asynchronous notification query: (event_actual, response)."""
        resp, used = self._ctrl(struct.pack("<I", 1) + scsi_lun(target) +
                                struct.pack("<I", events), 5)
        assert used == 5
        return struct.unpack("<IB", resp)

    def event_bufs(self, n, size=16):
        """Give the device n event buffers; they come back with events."""
        self.ev_bufs = getattr(self, "ev_bufs", {})
        for _ in range(n):
            o = self.c.alloc(size, 16)
            self.c.mem[o:o + size] = b"\xee" * size
            head = self.submit([(o, size, True)])
            self.ev_bufs[head] = o

    def events(self, n=1, timeout=10.0, repost=True):
        """The next n events [(event, target, lun, reason, used_len)]; their buffers go back."""
        out = []
        for hid, used in self.wait(n, timeout):
            o = self.ev_bufs[hid]
            ev, lun, reason = struct.unpack_from("<I8sI", self.c.mem, o)
            out.append((ev, lun[1], (lun[2] << 8 | lun[3]) & 0x3fff, reason, used))
            self.free.append(hid)
            del self.ev_bufs[hid]
            if repost:
                self.event_bufs(1)
        return out


class PackedQueue(Queue):
    """A packed ring (virtio 1.1 2.7) as Linux's driver fills it: buffers take consecutive
    descriptors (or one pointing to an indirect table), the head's flags written last, the
    id in every descriptor of the chain; used buffers come back in any order, each in the
    next slot of the device's position. The vhost-user addresses: desc = the ring,
    avail = the driver area (our event structure), used = the device area (the back-end's).
    Same methods as Queue, so blk()/scsi() work on either."""

    def __init__(self, client, index, size):
        super().__init__(client, index, size)
        self.driver = self.desc + 16 * size          # struct pvirtq_event_suppress (ours)
        self.device = self.driver + 4                # the device's
        self.avail_pos, self.avail_wrap = 0, 1
        self.used_pos, self.used_wrap = 0, 1
        self.ndescs = {}                             # id -> descriptors it took

    def setup(self, enable=True, base=None):
        """base: the vhost-user ring base; QEMU's at a start: both halves, wrap bits set."""
        m = self.c.mem
        m[self.desc:self.device + 4] = bytes(self.device + 4 - self.desc)
        self.configure(self.base() if base is None else base, enable)

    def areas(self):
        return self.desc, self.device, self.driver

    def base(self):
        """Our positions as a vhost-user ring base (avail low, used high, wrap in bit 15)."""
        return (self.avail_pos | self.avail_wrap << 15 |
                (self.used_pos | self.used_wrap << 15) << 16)

    def restart(self, base=None):
        """Set the ring up again on the same memory (after GET_VRING_BASE), as QEMU does on
        a VM's stop and cont."""
        self.configure(self.base() if base is None else base, enable=False)

    def event(self, flags, off_wrap=0):
        """Our event structure: when the device should call (EVENT_* and a position)."""
        struct.pack_into("<HH", self.c.mem, self.driver, off_wrap, flags)

    def device_event(self):
        """The device's event structure: (off_wrap, flags)."""
        return struct.unpack_from("<HH", self.c.mem, self.device)

    def used_idx(self):
        return self.used_pos

    def _avail_bits(self, wrap):
        return DESC_AVAIL if wrap else DESC_USED

    def raw(self, descs, kick=True):
        """Make descriptors [(addr, len, id, flags)] available at the next positions
        as given (flags without the AVAIL/USED bits), the first one last. Returns the
        positions they took."""
        m = self.c.mem
        heads = []
        pos, wrap = self.avail_pos, self.avail_wrap
        for k, (addr, n, id_, flags) in enumerate(descs):
            off = self.desc + 16 * pos
            struct.pack_into("<QIH", m, off, addr, n, id_)
            heads.append((off, flags | self._avail_bits(wrap)))
            if k > 0:
                struct.pack_into("<H", m, off + 14, flags | self._avail_bits(wrap))
            pos += 1
            if pos == self.size:
                pos, wrap = 0, wrap ^ 1
        struct.pack_into("<H", m, heads[0][0] + 14, heads[0][1])
        self.avail_pos, self.avail_wrap = pos, wrap
        if kick:
            os.eventfd_write(self.kick, 1)
        return heads

    def submit(self, chain, indirect=False, kick=True):
        """chain: [(offset in memory, length, writable)]. Returns the buffer's id."""
        id_ = self.free.pop(0)
        if indirect:
            table = self.c.alloc(16 * len(chain), 16)
            for i, (off, n, w) in enumerate(chain):
                struct.pack_into("<QIHH", self.c.mem, table + 16 * i, GPA + off, n, 0,
                                 DESC_WRITE if w else 0)
            descs = [(GPA + table, 16 * len(chain), id_, DESC_INDIRECT)]
        else:
            descs = [(GPA + off, n, id_, (DESC_WRITE if w else 0) |
                      (DESC_NEXT if k + 1 < len(chain) else 0))
                     for k, (off, n, w) in enumerate(chain)]
        self.ndescs[id_] = len(descs)
        self.raw(descs, kick)
        return id_

    def _used(self):
        flags, = struct.unpack_from("<H", self.c.mem, self.desc + 16 * self.used_pos + 14)
        return bool(flags & DESC_AVAIL) == bool(self.used_wrap) and \
            bool(flags & DESC_USED) == bool(self.used_wrap)

    def wait(self, n=1, timeout=10.0):
        """The next n used buffers [(id, len)], waiting for them."""
        deadline = time.monotonic() + timeout
        out = []
        while len(out) < n:
            if not self._used():
                if time.monotonic() > deadline:
                    raise TimeoutError(f"queue {self.index}: {n} used buffer(s) not there in "
                                       f"{timeout} s (got {len(out)}, at {self.used_pos})")
                select.select([self.callfd], [], [], 0.01)
                continue
            _, length, id_ = struct.unpack_from("<QIH", self.c.mem, self.desc + 16 * self.used_pos)
            out.append((id_, length))
            self.used_pos += self.ndescs.pop(id_, 1)
            if self.used_pos >= self.size:
                self.used_pos -= self.size
                self.used_wrap ^= 1
        return out

    def recycle(self, head, count):
        """The buffer's id is free again (its descriptors went back with it)."""
        self.free.append(head)
