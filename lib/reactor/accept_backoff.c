#include "accept_backoff.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

#define COMP	     "accept"
#define FIRST_MS     10
#define MAX_MS	     1000
#define LOG_INTERVAL 1000000000LL

bool mimo_accept_backoff_failed(struct mimo_accept_backoff *b, struct mimo_fd_watch *w, int err,
				const char *what)
{
	uint64_t suppressed = 0;
	int rc;

	if (err != EMFILE && err != ENFILE && err != ENOBUFS && err != ENOMEM)
		return false;
	b->failures++;
	b->delay_ms = b->delay_ms == 0 ? FIRST_MS : b->delay_ms * 2;
	if (b->delay_ms > MAX_MS)
		b->delay_ms = MAX_MS;
	rc = mimo_fd_watch_pause(w, (uint64_t)b->delay_ms * 1000);
	if (mimo_ratelimit_allow(&b->rl, LOG_INTERVAL, &suppressed))
		MIMO_WARN(COMP,
			  "%s: cannot accept a connection: %s; not accepting for %u ms "
			  "(%" PRIu64 " such failures so far)%s",
			  what, strerror(err), b->delay_ms, b->failures,
			  rc != 0 ? "; cannot pause the listener" : "");
	return true;
}
