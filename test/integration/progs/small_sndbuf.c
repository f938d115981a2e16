/*
 * LD_PRELOAD shim: every TCP socket a program connects gets a 4 KiB send buffer first, as
 * SPDK's ssl socket layer has by default. It makes mimo_perf the kind of peer that waits for
 * ACKs in the middle of a PDU (test_tls.py: the target must not delay them).
 */
#include <dlfcn.h>
#include <stddef.h>
#include <sys/socket.h>

/* Exported over -fvisibility=hidden: the dynamic linker must find it before libc's. */
__attribute__((visibility("default"))) int connect(int fd, const struct sockaddr *addr,
						   socklen_t len)
{
	static int (*real_connect)(int, const struct sockaddr *, socklen_t);
	int size = 4096;

	if (real_connect == NULL)
		real_connect = (int (*)(int, const struct sockaddr *, socklen_t))dlsym(RTLD_NEXT,
										       "connect");
	if (addr != NULL && (addr->sa_family == AF_INET || addr->sa_family == AF_INET6))
		(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	return real_connect(fd, addr, len);
}
