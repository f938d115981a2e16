/* The event-loop thread of mimo's libmicrohttpd servers (see mhd_loop.h). */
#include "mhd_loop.h"

#include <errno.h>
#include <microhttpd.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "clock.h"
#include "compiler.h"
#include "http_guard.h"
#include "log.h"

#define COMP "http"

void fab_mhd_loop_init(struct fab_mhd_loop *l)
{
	memset(l, 0, sizeof(*l));
	l->epfd = l->stopfd = l->wakefd = -1;
}

/* Wait on libmicrohttpd's epoll descriptor (connections, the listening socket), the stop
 * signal and the wake-up; run libmicrohttpd without blocking; sweep the deadlines on time. */
static void *loop_main(void *arg)
{
	struct fab_mhd_loop *l = arg;
	int64_t period = fab_guard_period_ns(l->guard), next_sweep = mimo_now_ns() + period;
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	for (;;) {
		struct epoll_event ev[4];
		MHD_UNSIGNED_LONG_LONG mhd_ms = 0;
		int64_t now = mimo_now_ns(), wait_ms = (next_sweep - now + 999999) / 1000000;
		bool stop = false;
		int n;

		if (MHD_get_timeout(l->d, &mhd_ms) == MHD_YES)
			wait_ms = MIMO_MIN(
				wait_ms,
				(int64_t)MIMO_MIN(mhd_ms, (MHD_UNSIGNED_LONG_LONG)INT32_MAX));
		n = epoll_wait(l->epfd, ev, (int)MIMO_ARRAY_SIZE(ev), (int)MIMO_MAX(wait_ms, 0));
		for (int i = 0; i < n; i++) {
			uint64_t count;

			stop |= ev[i].data.fd == l->stopfd;
			if (ev[i].data.fd == l->wakefd &&
			    read(l->wakefd, &count, sizeof(count)) < 0)
				MIMO_DEBUG(COMP, "wake-up: %s", strerror(errno));
		}
		if (stop)
			break;
		MHD_run(l->d);
		now = mimo_now_ns();
		if (now >= next_sweep) {
			fab_guard_sweep(l->guard, now);
			next_sweep = now + period;
		}
	}
	return NULL;
}

static int watch(int epfd, int fd)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };

	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) == 0 ? 0 : -errno;
}

int fab_mhd_loop_start(struct fab_mhd_loop *l, struct MHD_Daemon *d, struct fab_guard *guard)
{
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_EPOLL_FD);
	int rc;

	l->d = d;
	l->guard = guard;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	l->stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	l->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (info == NULL || l->epfd < 0 || l->stopfd < 0 || l->wakefd < 0)
		return -EMFILE;
	rc = watch(l->epfd, info->epoll_fd);
	if (rc == 0)
		rc = watch(l->epfd, l->stopfd);
	if (rc == 0)
		rc = watch(l->epfd, l->wakefd);
	if (rc != 0)
		return rc;
	rc = pthread_create(&l->thread, NULL, loop_main, l);
	if (rc != 0)
		return -rc;
	l->started = true;
	return 0;
}

void fab_mhd_loop_wake(struct fab_mhd_loop *l)
{
	uint64_t one = 1;

	/* An eventfd's counter cannot overflow from these, so the write cannot fail short. */
	if (write(l->wakefd, &one, sizeof(one)) < 0)
		MIMO_DEBUG(COMP, "wake-up: %s", strerror(errno));
}

void fab_mhd_loop_stop(struct fab_mhd_loop *l)
{
	if (l->started) {
		uint64_t one = 1;

		if (write(l->stopfd, &one, sizeof(one)) != sizeof(one))
			MIMO_ERR(COMP, "cannot stop the HTTP loop: %s", strerror(errno));
		pthread_join(l->thread, NULL);
		l->started = false;
	}
	if (l->epfd >= 0)
		close(l->epfd);
	if (l->stopfd >= 0)
		close(l->stopfd);
	if (l->wakefd >= 0)
		close(l->wakefd);
	l->epfd = l->stopfd = l->wakefd = -1;
}
