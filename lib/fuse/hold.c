/*
 * Held writes, and the watchdog that keeps a hold from becoming a hang.
 *
 * The write hook holds a write's completion until every export whose kernel knows the file
 * has applied the STORE or INVAL of its range (notifier.c). A notification blocks in the
 * kernel on a locked page: a page being read (its READ is answered by the reactor, which
 * never waits for a hold: fine), or the partial, not up-to-date folio that a buffered write
 * through the export keeps locked until the write is answered. If that write is itself held
 * for another export whose notifier waits, the same way, for a page this write's...: two
 * exports of one bdev, buffered partial-page writes into the same page through both at once,
 * and each waits for the other - a cycle. Nothing in the kernel's API avoids it (STORE and
 * INVAL lock every folio of the range; there is no try-lock form).
 *
 * So a watchdog looks at every export each FUSE_WATCHDOG_PERIOD_MS: a notifier inside one
 * kernel notification for FUSE_HOLD_CYCLE_MS is taken to wait for such a page, and the
 * writes that came through its export (the only ones whose requests can keep its pages
 * locked) are answered now, wherever they are held; their pages unlock and the cycle is gone.
 * A notifier on one item for FUSE_HOLD_STUCK_MS (a read of the bdev that does not end...)
 * has all its export's writes answered. Both are counted (held_early) and logged: those
 * writes were answered before every cache showed them.
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fuse_internal.h"
#include "log.h"

#define FUSE_WATCHDOG_PERIOD_MS 5

int fuse_thread_create(pthread_t *t, void *(*fn)(void *), void *arg)
{
	pthread_attr_t a;
	cpu_set_t set;
	int rc;

	pthread_attr_init(&a);
	/* The process's CPUs (its main thread's), not the creator's: an export made by RPC is
	 * made on a thread that inherited a reactor's pinning, and a notifier on a reactor's
	 * core waits for the reactor to stop spinning before a held write can be answered. */
	if (sched_getaffinity(getpid(), sizeof(set), &set) == 0)
		pthread_attr_setaffinity_np(&a, sizeof(set), &set);
	rc = pthread_create(t, &a, fn, arg);
	pthread_attr_destroy(&a);
	return rc;
}

uint64_t fuse_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void fuse_holds_release(struct fuse_hold *list)
{
	while (list != NULL) {
		struct fuse_hold *h = list;

		list = h->next;
		mimo_bdev_io_release(h->io);
		free(h);
	}
}

static void take_from(struct nitem *it, const struct fuse_export *src, bool all,
		      struct fuse_hold **out)
{
	struct fuse_hold **pp = &it->holds;

	while (*pp != NULL) {
		struct fuse_hold *h = *pp;

		if (all || h->src == src) {
			*pp = h->next;
			h->next = *out;
			*out = h;
		} else {
			pp = &h->next;
		}
	}
}

struct fuse_hold *fuse_holds_take_locked(struct fuse_export *exp, const struct fuse_export *src,
					 bool all)
{
	struct fuse_hold *out = NULL;
	struct nitem *it;

	TAILQ_FOREACH(it, &exp->queue, link)
	take_from(it, src, all, &out);
	TAILQ_FOREACH(it, &exp->work, link)
	take_from(it, src, all, &out);
	if (exp->cur != NULL)
		take_from(exp->cur, src, all, &out);
	return out;
}

/* --- the watchdog -------------------------------------------------------------------------- */

static pthread_t g_wd;
static bool g_wd_running;
static pthread_mutex_t g_wd_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_wd_cond;
static bool g_wd_stop;

static uint64_t count(const struct fuse_hold *h)
{
	uint64_t n = 0;

	for (; h != NULL; h = h->next)
		n++;
	return n;
}

static void watch_once(void)
{
	uint64_t now = fuse_now_ns();
	struct fuse_export *exp, *blocked;
	struct fuse_hold *answer = NULL;

	pthread_rwlock_rdlock(&g_fuse_exports_lock);
	TAILQ_FOREACH(blocked, &g_fuse_exports, link)
	{
		uint64_t kc = atomic_load_explicit(&blocked->kcall_since, memory_order_relaxed);
		uint64_t is = atomic_load_explicit(&blocked->item_since, memory_order_relaxed);
		/* A stamp taken after `now` (the notifier moved on meanwhile) has no age yet:
		 * unsigned, it would wrap to a huge one (seen under TSan: a whole export answered
		 * early). */
		bool cycle = kc != 0 && kc < now && now - kc >= FUSE_HOLD_CYCLE_MS * 1000000ull;
		bool stuck = is != 0 && is < now && now - is >= FUSE_HOLD_STUCK_MS * 1000000ull;

		if (!cycle && !stuck)
			continue;
		TAILQ_FOREACH(exp, &g_fuse_exports, link)
		{
			struct fuse_hold *got = NULL;
			uint64_t n;

			pthread_mutex_lock(&exp->lock);
			/* Stuck: everything it holds. A cycle: the writes through it, held by
			 * any export (itself included: a zeroed edge of a fallocate). */
			if (stuck && exp == blocked)
				got = fuse_holds_take_locked(exp, NULL, true);
			else if (cycle)
				got = fuse_holds_take_locked(exp, blocked, false);
			pthread_mutex_unlock(&exp->lock);
			if ((n = count(got)) == 0)
				continue;
			atomic_fetch_add(&exp->n_held_early, n);
			/* A line a second per export at most: the counter has them all. */
			exp->wd_quiet += n;
			if (now - exp->wd_logged >= 1000000000ull) {
				n = exp->wd_quiet;
				exp->wd_quiet = 0;
				exp->wd_logged = now;
				if (stuck && exp == blocked)
					MIMO_ERR(COMP,
						 "%s: answered %llu held write(s) (since the last "
						 "such line) before its cache showed them: its "
						 "notifier has been on one item for %d ms",
						 exp->mountpoint, (unsigned long long)n,
						 FUSE_HOLD_STUCK_MS);
				else
					MIMO_WARN(
						COMP,
						"%s: answered %llu held write(s) (since the last "
						"such line) through %s before it showed them: that "
						"export's notifier waits in the kernel (for a page "
						"one of them keeps locked?)",
						exp->mountpoint, (unsigned long long)n,
						blocked->mountpoint);
			}
			while (got != NULL) {
				struct fuse_hold *h = got;

				got = h->next;
				h->next = answer;
				answer = h;
			}
		}
	}
	pthread_rwlock_unlock(&g_fuse_exports_lock);
	fuse_holds_release(answer);
}

static void *watchdog_main(void *arg)
{
	struct timespec ts;

	(void)arg;
	pthread_setname_np(pthread_self(), "fuse_watchdog");
	pthread_mutex_lock(&g_wd_lock);
	while (!g_wd_stop) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += FUSE_WATCHDOG_PERIOD_MS * 1000000l;
		if (ts.tv_nsec >= 1000000000l) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000l;
		}
		pthread_cond_timedwait(&g_wd_cond, &g_wd_lock, &ts);
		if (g_wd_stop)
			break;
		pthread_mutex_unlock(&g_wd_lock);
		watch_once();
		pthread_mutex_lock(&g_wd_lock);
	}
	pthread_mutex_unlock(&g_wd_lock);
	return NULL;
}

int fuse_watchdog_start(void)
{
	pthread_condattr_t ca;
	int rc;

	if (g_wd_running)
		return 0;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&g_wd_cond, &ca);
	pthread_condattr_destroy(&ca);
	g_wd_stop = false;
	rc = fuse_thread_create(&g_wd, watchdog_main, NULL);
	if (rc != 0) {
		pthread_cond_destroy(&g_wd_cond);
		return -rc;
	}
	g_wd_running = true;
	return 0;
}

void fuse_watchdog_stop(void)
{
	if (!g_wd_running)
		return;
	pthread_mutex_lock(&g_wd_lock);
	g_wd_stop = true;
	pthread_cond_signal(&g_wd_cond);
	pthread_mutex_unlock(&g_wd_lock);
	pthread_join(g_wd, NULL);
	pthread_cond_destroy(&g_wd_cond);
	g_wd_running = false;
}
