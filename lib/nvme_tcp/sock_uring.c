/*
 * Can this process use io_uring for its NVMe/TCP sockets? Asked once, when "uring" is chosen
 * (sock_set_default_impl, a listener's sock_impl), so the choice is refused with the reason
 * instead of being accepted and served some other way. The target's per-reactor rings
 * (lib/nvmf/tcp_uring.c) need what is tried here: a ring, a provided-buffer ring (Linux 5.19)
 * and multishot receive (Linux 6.0).
 */
#include <errno.h>
#include <liburing.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include "sock_opts.h"

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static int g_rc;
static char g_why[160];

/* Multishot receive has no opcode of its own to probe: it is a flag of IORING_OP_RECV that
 * Linux 6.0 added. */
static bool kernel_at_least_6_0(void)
{
	struct utsname u;
	int major = 0;

	return uname(&u) == 0 && sscanf(u.release, "%d", &major) == 1 && major >= 6;
}

static void probe(void)
{
	struct io_uring ring;
	struct io_uring_probe *p;
	struct io_uring_buf_reg reg = { 0 };
	void *br = NULL;
	int rc;

	rc = io_uring_queue_init(8, &ring, 0);
	if (rc != 0) {
		g_rc = rc;
		snprintf(g_why, sizeof(g_why),
			 "io_uring_setup: %s (kernel.io_uring_disabled, a seccomp filter or a "
			 "kernel without io_uring)",
			 strerror(-rc));
		return;
	}
	p = io_uring_get_probe_ring(&ring);
	if (p == NULL || !io_uring_opcode_supported(p, IORING_OP_RECV) ||
	    !io_uring_opcode_supported(p, IORING_OP_SENDMSG) ||
	    !io_uring_opcode_supported(p, IORING_OP_ASYNC_CANCEL) || !kernel_at_least_6_0()) {
		g_rc = -EOPNOTSUPP;
		snprintf(g_why, sizeof(g_why),
			 "the kernel's io_uring lacks multishot receive or sendmsg (Linux 6.0 "
			 "or later is needed)");
		goto out;
	}
	if (posix_memalign(&br, 4096, 4096) != 0) {
		g_rc = -ENOMEM;
		snprintf(g_why, sizeof(g_why), "out of memory");
		goto out;
	}
	reg.ring_addr = (unsigned long)br;
	reg.ring_entries = 8;
	reg.bgid = 0;
	rc = io_uring_register_buf_ring(&ring, &reg, 0);
	if (rc != 0) {
		g_rc = rc;
		snprintf(g_why, sizeof(g_why), "registering a provided-buffer ring: %s",
			 strerror(-rc));
	}
out:
	if (p != NULL)
		io_uring_free_probe(p);
	io_uring_queue_exit(&ring);
	free(br);
}

int mimo_sock_uring_probe(char *why, size_t len)
{
	pthread_once(&g_once, probe);
	if (g_rc != 0 && why != NULL && len != 0)
		snprintf(why, len, "%s", g_why);
	return g_rc;
}
