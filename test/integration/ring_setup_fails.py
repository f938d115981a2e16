"""Run a program whose later io_uring rings cannot be set up, as when the kernel runs out of
memory for them: the first rings work, the next ones fail with ENOMEM. Usage:
python3 ring_setup_fails.py [--setup-allow N] [--pbuf-allow N] PROGRAM ARGS...

--setup-allow N: io_uring_setup calls for a ring of 512 entries (mimo's NVMe/TCP reactor ring;
  the one-off probe asks for 8 and is left alone) after the first N fail with ENOMEM.
--pbuf-allow N: registering a provided-buffer ring (io_uring_register
  IORING_REGISTER_PBUF_RING; the probe registers one too) fails with ENOMEM after the first N.

A seccomp filter hands those calls to a supervisor process (SECCOMP_RET_USER_NOTIF), which
counts them and lets each one run in the kernel or answers ENOMEM itself: the program sees
exactly what a kernel short of memory would tell it, and nothing else changes. It execs
PROGRAM, keeping its own pid; the supervisor ends when PROGRAM does. Linux 5.5 or later,
x86-64 and arm64."""
import ctypes
import errno
import os
import platform
import select
import socket
import struct
import sys

PR_SET_NO_NEW_PRIVS = 38
SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER = 1, 1 << 3
SECCOMP_RET_ALLOW, SECCOMP_RET_USER_NOTIF = 0x7FFF0000, 0x7FC00000
SECCOMP_USER_NOTIF_FLAG_CONTINUE = 1
BPF_LD_W_ABS, BPF_JEQ_K, BPF_RET_K = 0x20, 0x15, 0x06
NR_SECCOMP = {"x86_64": 317, "aarch64": 277}[platform.machine()]
NR_IO_URING_SETUP, NR_IO_URING_REGISTER = 425, 427
IORING_REGISTER_PBUF_RING = 22
REACTOR_RING_ENTRIES = 512  # lib/nvmf/tcp_uring.c RING_ENTRIES
# struct seccomp_notif (80 bytes): id, pid, flags, then seccomp_data: nr, arch, ip, args[6].
NOTIF = struct.Struct("=QIIiIQ6Q")
# struct seccomp_notif_resp (24 bytes): id, val, error, flags.
RESP = struct.Struct("=QqiI")
IOCTL_NOTIF_RECV = 0xC0000000 | (NOTIF.size << 16) | (ord("!") << 8) | 0
IOCTL_NOTIF_SEND = 0xC0000000 | (RESP.size << 16) | (ord("!") << 8) | 1


def insn(code, jt, jf, k):
    return struct.pack("=HBBI", code, jt, jf, k)


def filter_prog():
    """io_uring_setup and io_uring_register(PBUF_RING) to the supervisor; the rest runs."""
    return b"".join([
        insn(BPF_LD_W_ABS, 0, 0, 0),                          # the syscall number
        insn(BPF_JEQ_K, 4, 0, NR_IO_URING_SETUP),             # -> notify
        insn(BPF_JEQ_K, 0, 2, NR_IO_URING_REGISTER),          # else -> allow
        insn(BPF_LD_W_ABS, 0, 0, 24),                         # args[1] (low half): opcode
        insn(BPF_JEQ_K, 1, 0, IORING_REGISTER_PBUF_RING),     # -> notify
        insn(BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW),
        insn(BPF_RET_K, 0, 0, SECCOMP_RET_USER_NOTIF),
    ])


def install(libc):
    """The filter on this process (inherited across exec): returns its listener fd."""
    prog = filter_prog()
    buf = ctypes.create_string_buffer(prog, len(prog))

    class Fprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    fprog = Fprog(len(prog) // 8, ctypes.addressof(buf))
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        sys.exit(f"ring_setup_fails: prctl: {os.strerror(ctypes.get_errno())}")
    fd = libc.syscall(NR_SECCOMP, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER,
                      ctypes.byref(fprog))
    if fd < 0:
        sys.exit(f"ring_setup_fails: seccomp: {os.strerror(ctypes.get_errno())}")
    return fd


def supervise(libc, fd, setup_allow, pbuf_allow):
    """Answer each call the filter hands over until the program is gone."""
    seen = {"setup": 0, "pbuf": 0}
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    while True:
        events = sum(ev for _, ev in poller.poll())
        if not events & select.POLLIN and events & (select.POLLHUP | select.POLLERR):
            return  # no process is left under the filter
        buf = ctypes.create_string_buffer(NOTIF.size)  # zeroed, as the kernel requires
        if libc.ioctl(fd, IOCTL_NOTIF_RECV, buf) != 0:
            if ctypes.get_errno() in (errno.EINTR, errno.ENOENT):
                continue
            return
        nid, _pid, _flags, nr, _arch, _ip, *args = NOTIF.unpack(buf.raw)
        fail = False
        if nr == NR_IO_URING_SETUP and args[0] == REACTOR_RING_ENTRIES:
            seen["setup"] += 1
            fail = setup_allow is not None and seen["setup"] > setup_allow
        elif nr == NR_IO_URING_REGISTER:
            seen["pbuf"] += 1
            fail = pbuf_allow is not None and seen["pbuf"] > pbuf_allow
        if fail:
            resp = RESP.pack(nid, 0, -errno.ENOMEM, 0)
        else:
            resp = RESP.pack(nid, 0, 0, SECCOMP_USER_NOTIF_FLAG_CONTINUE)
        rbuf = ctypes.create_string_buffer(resp, RESP.size)
        # ENOENT: the caller went away (its thread ended) meanwhile; nothing to answer.
        libc.ioctl(fd, IOCTL_NOTIF_SEND, rbuf)


def main():
    args = sys.argv[1:]
    setup_allow = pbuf_allow = None
    while args and args[0].startswith("--"):
        opt, val = args[0], int(args[1])
        if opt == "--setup-allow":
            setup_allow = val
        elif opt == "--pbuf-allow":
            pbuf_allow = val
        else:
            sys.exit(f"ring_setup_fails: unknown option {opt}")
        args = args[2:]
    libc = ctypes.CDLL(None, use_errno=True)
    here, there = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    pid = os.fork()
    if pid == 0:
        # The supervisor, reparented away from the program (a second fork) so that nobody
        # has to reap it; it keeps none of the program's descriptors but the listener.
        here.close()
        if os.fork() != 0:
            os._exit(0)
        os.setsid()
        _, fds, _, _ = socket.recv_fds(there, 1, 1)
        there.close()
        null = os.open(os.devnull, os.O_RDWR)
        for std in (0, 1, 2):
            os.dup2(null, std)
        supervise(libc, fds[0], setup_allow, pbuf_allow)
        os._exit(0)
    there.close()
    os.waitpid(pid, 0)
    fd = install(libc)
    socket.send_fds(here, [b"x"], [fd])
    os.close(fd)
    here.close()
    os.execv(args[0], args)


if __name__ == "__main__":
    main()
