/*
 * What a listener on a reactor does when accept() fails for want of a resource - the process
 * is out of file descriptors (EMFILE), the system is (ENFILE), or memory is short (ENOBUFS,
 * ENOMEM). The pending connection stays queued and the listening socket stays readable, so
 * retrying at once spins the reactor and floods the log while every other client starves.
 * Instead the listener's watch is paused (10 ms, doubling to 1 s while the failures go on,
 * back to 10 ms after an accept succeeds) and one line a second is logged.
 */
#ifndef MIMO_REACTOR_ACCEPT_BACKOFF_H
#define MIMO_REACTOR_ACCEPT_BACKOFF_H

#include <stdbool.h>
#include <stdint.h>

#include "log.h"
#include "mimo/reactor.h"

struct mimo_accept_backoff {
	uint32_t delay_ms; /* the next pause; 0 = the first */
	uint64_t failures; /* accept() calls that failed for want of a resource */
	struct mimo_ratelimit rl;
};

/*
 * After accept() on the socket w watches failed with err (an errno). Returns true when err is
 * a resource failure: the watch is paused and the caller stops accepting for now. False for
 * anything else (EAGAIN, a connection aborted before it was accepted...). what names the
 * listener in the log line.
 */
bool mimo_accept_backoff_failed(struct mimo_accept_backoff *b, struct mimo_fd_watch *w, int err,
				const char *what);

/* An accept() succeeded: the next resource failure pauses briefly again. */
static inline void mimo_accept_backoff_ok(struct mimo_accept_backoff *b)
{
	b->delay_ms = 0;
}

#endif
