/* The NVMe/TCP sockets' options (sock_opts.h). */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stddef.h>
#include <strings.h>
#include <sys/socket.h>

#include "sock_opts.h"

static _Atomic uint32_t g_recv[MIMO_SOCK_IMPL_COUNT];
static _Atomic uint32_t g_send[MIMO_SOCK_IMPL_COUNT];
static _Atomic bool g_quickack[MIMO_SOCK_IMPL_COUNT];

static _Atomic int g_default_impl = MIMO_SOCK_IMPL_POSIX;

static const char *const g_names[MIMO_SOCK_IMPL_COUNT] = { "posix", "ssl", "uring" };

int mimo_sock_impl_from_name(const char *name, enum mimo_sock_impl *impl)
{
	for (int i = 0; i < MIMO_SOCK_IMPL_COUNT; i++) {
		if (name != NULL && strcasecmp(name, g_names[i]) == 0) {
			*impl = (enum mimo_sock_impl)i;
			return 0;
		}
	}
	return -ENOENT;
}

const char *mimo_sock_impl_name(enum mimo_sock_impl impl)
{
	return (unsigned)impl < MIMO_SOCK_IMPL_COUNT ? g_names[impl] : "?";
}

enum mimo_sock_impl mimo_sock_get_default_impl(void)
{
	return (enum mimo_sock_impl)atomic_load(&g_default_impl);
}

void mimo_sock_set_default_impl(enum mimo_sock_impl impl)
{
	atomic_store(&g_default_impl, (int)impl);
}

void mimo_sock_get_opts(enum mimo_sock_impl impl, struct mimo_sock_opts *opts)
{
	opts->recv_buf_size = atomic_load(&g_recv[impl]);
	opts->send_buf_size = atomic_load(&g_send[impl]);
	opts->enable_quickack = atomic_load(&g_quickack[impl]);
}

void mimo_sock_set_opts(enum mimo_sock_impl impl, const struct mimo_sock_opts *opts)
{
	atomic_store(&g_recv[impl], opts->recv_buf_size);
	atomic_store(&g_send[impl], opts->send_buf_size);
	atomic_store(&g_quickack[impl], opts->enable_quickack);
}

bool mimo_sock_opts_changed(enum mimo_sock_impl impl)
{
	return atomic_load(&g_recv[impl]) != 0 || atomic_load(&g_send[impl]) != 0 ||
	       atomic_load(&g_quickack[impl]);
}

/*
 * SO_RCVBUF and SO_SNDBUF only ever raise the buffer: a socket whose size is set keeps it
 * (the kernel stops autotuning it), so a floor below the kernel's default would only make
 * the connection slower. That is also SPDK's meaning: its sockets get at least the size
 * asked, and more where its transport wants more.
 */
static void raise_buffer(int fd, int opt, uint32_t want)
{
	int cur = 0, val;
	socklen_t len = sizeof(cur);

	if (want == 0 || want > INT32_MAX / 2)
		return;
	/* Linux reports twice what was set (the bookkeeping overhead it adds). */
	if (getsockopt(fd, SOL_SOCKET, opt, &cur, &len) == 0 && (uint32_t)cur / 2 >= want)
		return;
	val = (int)want;
	(void)setsockopt(fd, SOL_SOCKET, opt, &val, sizeof(val));
}

void mimo_sock_apply_buffers(int fd, enum mimo_sock_impl impl)
{
	raise_buffer(fd, SO_RCVBUF, atomic_load(&g_recv[impl]));
	raise_buffer(fd, SO_SNDBUF, atomic_load(&g_send[impl]));
}

void mimo_sock_apply_connected(int fd, enum mimo_sock_impl impl)
{
	int one = 1;

	if (atomic_load(&g_quickack[impl]))
		(void)setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof(one));
}
