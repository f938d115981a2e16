/*
 * Socket options of the NVMe/TCP connections mimo makes and accepts, process-wide: what
 * SPDK's sock_impl_set_options sets for its "posix" (plain TCP) and "ssl" (TLS) socket
 * implementations, for the options that mean something on a kernel TCP socket. The target's
 * listeners (and the connections they accept) and the initiator's connections apply them
 * when the socket is made; changing them affects sockets made afterwards.
 *
 * Any thread: the values are read and written atomically, one at a time.
 */
#ifndef MIMO_NVME_TCP_SOCK_OPTS_H
#define MIMO_NVME_TCP_SOCK_OPTS_H

#include <stdbool.h>
#include <stdint.h>

enum mimo_sock_impl {
	MIMO_SOCK_IMPL_POSIX, /* plain NVMe/TCP */
	MIMO_SOCK_IMPL_SSL,   /* NVMe/TCP in TLS (secure listeners, connections with a PSK) */
	MIMO_SOCK_IMPL_URING, /* plain NVMe/TCP whose target connections move bytes by io_uring */
	MIMO_SOCK_IMPL_COUNT,
};

struct mimo_sock_opts {
	/* The least SO_RCVBUF / SO_SNDBUF the socket gets, in bytes: raised to it when the
	 * kernel's default is smaller, left alone otherwise (so the kernel's autotuning keeps
	 * working). 0 (the default): the kernel's default. */
	uint32_t recv_buf_size;
	uint32_t send_buf_size;
	bool enable_quickack; /* TCP_QUICKACK once the connection is made (default false) */
};

/* "posix", "ssl" or "uring" (any case) into *impl: 0, or -ENOENT for any other name. */
int mimo_sock_impl_from_name(const char *name, enum mimo_sock_impl *impl);
const char *mimo_sock_impl_name(enum mimo_sock_impl impl);

void mimo_sock_get_opts(enum mimo_sock_impl impl, struct mimo_sock_opts *opts);
void mimo_sock_set_opts(enum mimo_sock_impl impl, const struct mimo_sock_opts *opts);
/* Whether impl's options differ from the defaults (what a saved configuration must say). */
bool mimo_sock_opts_changed(enum mimo_sock_impl impl);

/* A socket about to listen or connect: its buffer sizes. Errors are ignored, as the kernel
 * may cap a size (net.core.rmem_max): the socket works either way. */
void mimo_sock_apply_buffers(int fd, enum mimo_sock_impl impl);
/* A connected socket (accepted, or once connect() was issued): TCP_QUICKACK if asked. */
void mimo_sock_apply_connected(int fd, enum mimo_sock_impl impl);

/*
 * The implementation plain listeners take when they name none (sock_set_default_impl):
 * MIMO_SOCK_IMPL_POSIX (epoll) or MIMO_SOCK_IMPL_URING. Listeners opened afterwards follow it.
 */
enum mimo_sock_impl mimo_sock_get_default_impl(void);
void mimo_sock_set_default_impl(enum mimo_sock_impl impl);

/*
 * Whether this process may move socket bytes through io_uring the way the NVMe/TCP target
 * does (a ring, multishot receive into a registered buffer ring, sendmsg): 0, or a negative
 * errno with why[] saying what failed (io_uring_setup refused: kernel.io_uring_disabled,
 * seccomp, a kernel without io_uring; or a kernel older than 6.0). Probed once, then cached.
 */
int mimo_sock_uring_probe(char *why, size_t len);

#endif
