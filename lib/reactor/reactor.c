/*
 * Reactors: threads, the event loop, messages, pollers, timers and fd watches.
 *
 * Sleeping without losing a message: a reactor with nothing to do for idle_spin_us stores
 * sleeping = 1 (seq_cst) and then reads the message ring's enqueue position (seq_cst); a
 * sender claims a cell with a seq_cst CAS and then reads sleeping. One of the two sees the
 * other's write, so either the reactor finds the message or the sender writes its eventfd.
 * Senders write the eventfd only for a sleeping reactor: a busy one costs them nothing.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "opts.h"
#include "reactor_internal.h"
#include "log.h"
#include "ticks.h"

#define COMP	     "reactor"
#define MAX_EVENTS   64
#define MSG_BATCH    128
#define MAX_REACTORS 64

static struct mimo_reactor *g_reactors[MAX_REACTORS];
static uint32_t g_count;
static __thread struct mimo_reactor *t_current;
/* A marker for the eventfd in epoll data (watches carry their own pointer). */
static char g_evfd_marker;

void mimo_reactor_opts_init(struct mimo_reactor_opts *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->opts_size = sizeof(*opts);
	opts->core_mask = 0x1;
	opts->idle_spin_us = 200;
	opts->msg_ring_size = 16384;
}

int mimo_reactor_parse_cpumask(const char *text, uint64_t *mask)
{
	uint64_t m = 0;
	char *end;

	if (text == NULL || *text == '\0')
		return -EINVAL;
	if (text[0] == '[') {
		const char *p = text + 1;

		while (*p && *p != ']') {
			unsigned long a = strtoul(p, &end, 10), b = a;

			if (end == p)
				return -EINVAL;
			p = end;
			if (*p == '-') {
				b = strtoul(p + 1, &end, 10);
				if (end == p + 1 || b < a)
					return -EINVAL;
				p = end;
			}
			if (b >= 64)
				return -EINVAL;
			for (unsigned long i = a; i <= b; i++)
				m |= 1ULL << i;
			if (*p == ',')
				p++;
			else if (*p != ']')
				return -EINVAL;
		}
		if (*p != ']' || p[1] != '\0')
			return -EINVAL;
	} else {
		errno = 0;
		m = strtoull(text, &end, 16);
		if (errno != 0 || end == text || *end != '\0')
			return -EINVAL;
	}
	if (m == 0)
		return -EINVAL;
	*mask = m;
	return 0;
}

uint32_t mimo_reactor_count(void)
{
	return g_count;
}

struct mimo_reactor *mimo_reactor_get(uint32_t index)
{
	return index < g_count ? g_reactors[index] : NULL;
}

struct mimo_reactor *mimo_reactor_current(void)
{
	return t_current;
}

uint32_t mimo_reactor_index(const struct mimo_reactor *r)
{
	return r->index;
}

uint32_t mimo_reactor_core(const struct mimo_reactor *r)
{
	return r->core;
}

static void wake(struct mimo_reactor *r)
{
	uint64_t one = 1;

	if (write(r->evfd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		MIMO_ERR(COMP, "reactor %u: eventfd write: %s", r->index, strerror(errno));
}

static int send_msg(struct mimo_reactor *r, mimo_msg_fn fn, void *arg)
{
	int rc = msg_ring_push(&r->msgs, fn, arg);

	if (mimo_unlikely(rc != 0))
		return rc;
	if (atomic_load(&r->sleeping) && atomic_exchange(&r->sleeping, 0))
		wake(r);
	return 0;
}

int mimo_reactor_send_msg(struct mimo_reactor *r, mimo_msg_fn fn, void *arg)
{
	int rc;

	/* Reactor threads are all joined before any reactor is freed: no count needed. */
	if (mimo_likely(t_current != NULL))
		return send_msg(r, fn, arg);
	atomic_fetch_add(&r->foreign_senders, 1);
	rc = send_msg(r, fn, arg);
	atomic_fetch_sub(&r->foreign_senders, 1);
	return rc;
}

int mimo_reactor_post(struct mimo_reactor *r, mimo_msg_fn fn, void *arg)
{
	struct mimo_reactor *self = t_current;
	struct overflow_msg *m;

	if (self == NULL) {
		/* No loop of ours to send it later: wait for room. */
		while (mimo_reactor_send_msg(r, fn, arg) == -EAGAIN)
			sched_yield();
		return 0;
	}
	/* Behind anything already waiting, or the order would change. */
	if (STAILQ_EMPTY(&self->overflow) && send_msg(r, fn, arg) == 0)
		return 0;
	m = malloc(sizeof(*m));
	if (m == NULL)
		return -ENOMEM;
	m->to = r;
	m->fn = fn;
	m->arg = arg;
	STAILQ_INSERT_TAIL(&self->overflow, m, link);
	return 0;
}

/* Send what this reactor posted while rings were full, oldest first, until one is full. */
static int run_overflow(struct mimo_reactor *r)
{
	struct overflow_msg *m;

	while ((m = STAILQ_FIRST(&r->overflow)) != NULL) {
		if (send_msg(m->to, m->fn, m->arg) != 0)
			return 1; /* still waiting: stay awake to try again */
		STAILQ_REMOVE_HEAD(&r->overflow, link);
		free(m);
	}
	return 0;
}

void mimo_reactor_get_stats(struct mimo_reactor *r, struct mimo_reactor_stats *st)
{
	st->busy_ticks = atomic_load_explicit(&r->busy_ticks, memory_order_relaxed);
	st->idle_ticks = atomic_load_explicit(&r->idle_ticks, memory_order_relaxed);
	st->msgs = atomic_load_explicit(&r->nmsgs, memory_order_relaxed);
	st->sleeps = atomic_load_explicit(&r->sleeps, memory_order_relaxed);
}

int mimo_reactor_tid(const struct mimo_reactor *r)
{
	return atomic_load(&((struct mimo_reactor *)r)->tid);
}

uint64_t mimo_reactor_start_ticks(const struct mimo_reactor *r)
{
	return r->start_ticks;
}

bool mimo_reactor_poll_mode(const struct mimo_reactor *r)
{
	return r->poll_mode;
}

static void poller_info(const struct mimo_poller *p, mimo_poller_info_fn fn, void *arg)
{
	struct mimo_poller_info info = {
		.name = p->name,
		.id = p->id,
		.period_ticks = p->period_ticks,
		.run_count = p->run_count,
		.busy_count = p->busy_count,
	};

	fn(&info, arg);
}

void mimo_reactor_foreach_poller(mimo_poller_info_fn fn, void *arg)
{
	struct mimo_reactor *r = t_current;
	struct mimo_poller *p;

	if (r == NULL)
		return;
	TAILQ_FOREACH(p, &r->active, link)
	{
		if (!p->dead)
			poller_info(p, fn, arg);
	}
	TAILQ_FOREACH(p, &r->timed, link)
	{
		if (!p->dead)
			poller_info(p, fn, arg);
	}
}

/* --- pollers ------------------------------------------------------------------------- */

static void timed_insert(struct mimo_reactor *r, struct mimo_poller *p)
{
	struct mimo_poller *it;

	p->in_timed = true;
	TAILQ_FOREACH(it, &r->timed, link)
	{
		if (p->next_run < it->next_run) {
			TAILQ_INSERT_BEFORE(it, p, link);
			return;
		}
	}
	TAILQ_INSERT_TAIL(&r->timed, p, link);
}

static struct mimo_poller *poller_new(mimo_poller_fn fn, void *arg, const char *name)
{
	struct mimo_reactor *r = t_current;
	struct mimo_poller *p;

	if (r == NULL) {
		MIMO_ERR(COMP, "mimo_poller_register called outside a reactor");
		return NULL;
	}
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return NULL;
	p->fn = fn;
	p->arg = arg;
	p->name = name != NULL ? name : "poller";
	p->id = ++r->next_poller_id;
	p->r = r;
	return p;
}

struct mimo_poller *mimo_poller_register_named(mimo_poller_fn fn, void *arg, uint64_t period_us,
					       const char *name)
{
	struct mimo_poller *p = poller_new(fn, arg, name);
	struct mimo_reactor *r;

	if (p == NULL)
		return NULL;
	r = p->r;
	if (period_us > 0) {
		p->period_ticks = period_us * mimo_get_ticks_hz() / 1000000;
		if (p->period_ticks == 0)
			p->period_ticks = 1;
		p->next_run = mimo_get_ticks() + p->period_ticks;
		timed_insert(r, p);
	} else if (r->first_late != NULL) {
		TAILQ_INSERT_BEFORE(r->first_late, p, link);
	} else {
		TAILQ_INSERT_TAIL(&r->active, p, link);
	}
	return p;
}

struct mimo_poller *mimo_poller_register_late_named(mimo_poller_fn fn, void *arg, const char *name)
{
	struct mimo_poller *p = poller_new(fn, arg, name);

	if (p == NULL)
		return NULL;
	p->late = true;
	TAILQ_INSERT_TAIL(&p->r->active, p, link);
	if (p->r->first_late == NULL)
		p->r->first_late = p;
	return p;
}

void mimo_poller_unregister(struct mimo_poller **pp)
{
	struct mimo_poller *p = *pp;

	*pp = NULL;
	if (p == NULL || p->dead)
		return;
	/* Only marked now: the poller may be running, or be the next one the loop visits. */
	p->dead = true;
	TAILQ_INSERT_TAIL(&p->r->dead, p, dead_link);
}

static int run_active(struct mimo_reactor *r)
{
	struct mimo_poller *p;
	int work = 0;

	/* Nothing leaves the list during the walk (see unregister), so TAILQ_NEXT is safe;
	 * pollers registered during the walk are appended and may run this turn. */
	TAILQ_FOREACH(p, &r->active, link)
	{
		if (p->dead)
			continue;
		p->run_count++;
		if (p->fn(p->arg) > 0) {
			p->busy_count++;
			work = 1;
		}
	}
	return work;
}

/* Called on the reactor: the poller may unregister itself, so count before running it. */
static int run_poller_counted(struct mimo_poller *p)
{
	p->run_count++;
	if (p->fn(p->arg) > 0) {
		p->busy_count++;
		return 1;
	}
	return 0;
}

static int run_timers(struct mimo_reactor *r, uint64_t now)
{
	int work = 0;

	for (;;) {
		struct mimo_poller *p = TAILQ_FIRST(&r->timed);

		if (p == NULL || p->next_run > now)
			break;
		TAILQ_REMOVE(&r->timed, p, link);
		p->in_timed = false;
		if (p->dead)
			continue;
		/* Re-arm before running, so that the callback may unregister itself. */
		p->next_run = now + p->period_ticks;
		timed_insert(r, p);
		work |= run_poller_counted(p);
	}
	return work;
}

/* --- fd watches ---------------------------------------------------------------------- */

int mimo_fd_watch_add(int fd, uint32_t events, mimo_fd_fn fn, void *arg, struct mimo_fd_watch **out)
{
	struct mimo_reactor *r = t_current;
	struct epoll_event ev = { .events = events };
	struct mimo_fd_watch *w;

	*out = NULL;
	if (r == NULL)
		return -EPERM;
	w = calloc(1, sizeof(*w));
	if (w == NULL)
		return -ENOMEM;
	w->fd = fd;
	w->fn = fn;
	w->arg = arg;
	w->r = r;
	w->events = events;
	ev.data.ptr = w;
	if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
		int rc = -errno;

		free(w);
		return rc;
	}
	*out = w;
	return 0;
}

static int watch_apply(struct mimo_fd_watch *w, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = w };

	return epoll_ctl(w->r->epfd, EPOLL_CTL_MOD, w->fd, &ev) == 0 ? 0 : -errno;
}

int mimo_fd_watch_modify(struct mimo_fd_watch *w, uint32_t events)
{
	w->events = events;
	return w->resume != NULL ? 0 : watch_apply(w, events);
}

static int watch_resume(void *arg)
{
	struct mimo_fd_watch *w = arg;
	int rc;

	mimo_poller_unregister(&w->resume);
	rc = watch_apply(w, w->events);
	if (rc != 0)
		MIMO_ERR(COMP, "cannot watch fd %d again: %s", w->fd, strerror(-rc));
	return 1;
}

int mimo_fd_watch_pause(struct mimo_fd_watch *w, uint64_t usec)
{
	int rc;

	mimo_poller_unregister(&w->resume);
	rc = watch_apply(w, 0);
	if (rc != 0)
		return rc;
	w->resume = mimo_poller_register(watch_resume, w, usec > 0 ? usec : 1);
	if (w->resume == NULL) {
		watch_apply(w, w->events);
		return -ENOMEM;
	}
	return 0;
}

void mimo_fd_watch_remove(struct mimo_fd_watch **wp)
{
	struct mimo_fd_watch *w = *wp;

	*wp = NULL;
	if (w == NULL || w->dead)
		return;
	mimo_poller_unregister(&w->resume);
	epoll_ctl(w->r->epfd, EPOLL_CTL_DEL, w->fd, NULL);
	/* Events already fetched this turn may still point at w: free it after the turn. */
	w->dead = true;
	TAILQ_INSERT_TAIL(&w->r->dead_watches, w, dead_link);
}

static int dispatch(struct mimo_reactor *r, struct epoll_event *evs, int n)
{
	int work = 0;

	for (int i = 0; i < n; i++) {
		struct mimo_fd_watch *w = evs[i].data.ptr;

		if (evs[i].data.ptr == &g_evfd_marker) {
			uint64_t v;

			if (read(r->evfd, &v, sizeof(v)) < 0 && errno != EAGAIN)
				MIMO_ERR(COMP, "reactor %u: eventfd read: %s", r->index,
					 strerror(errno));
			continue;
		}
		if (w->dead)
			continue;
		w->fn(w->arg, evs[i].events);
		work = 1;
	}
	return work;
}

static void reap(struct mimo_reactor *r)
{
	struct mimo_poller *p;
	struct mimo_fd_watch *w;

	while ((p = TAILQ_FIRST(&r->dead)) != NULL) {
		TAILQ_REMOVE(&r->dead, p, dead_link);
		if (p->period_ticks == 0) {
			/* Everything after the first late poller is late too. */
			if (p == r->first_late)
				r->first_late = TAILQ_NEXT(p, link);
			TAILQ_REMOVE(&r->active, p, link);
		} else if (p->in_timed)
			TAILQ_REMOVE(&r->timed, p, link);
		free(p);
	}
	while ((w = TAILQ_FIRST(&r->dead_watches)) != NULL) {
		TAILQ_REMOVE(&r->dead_watches, w, dead_link);
		free(w);
	}
}

/* --- the loop ------------------------------------------------------------------------ */

static int run_msgs(struct mimo_reactor *r)
{
	mimo_msg_fn fn;
	void *arg;
	int n = 0;

	while (n < MSG_BATCH && msg_ring_pop(&r->msgs, &fn, &arg)) {
		fn(arg);
		n++;
	}
	if (n > 0)
		atomic_store_explicit(&r->nmsgs,
				      atomic_load_explicit(&r->nmsgs, memory_order_relaxed) +
					      (uint64_t)n,
				      memory_order_relaxed);
	return n > 0;
}

/*
 * epoll_pwait2 (Linux 5.11) sleeps to the nanosecond; where it is missing (older kernels, and
 * valgrind 3.19, which answers ENOSYS) it failed at once, every time, and the reactor never
 * slept. Then epoll_wait, the timeout rounded up to a millisecond: a timer runs late by less
 * than that, never early.
 */
static int epoll_pwait2_or_wait(int epfd, struct epoll_event *evs, const struct timespec *ts)
{
	static atomic_bool no_pwait2;
	int n, ms;

	if (!atomic_load_explicit(&no_pwait2, memory_order_relaxed)) {
		n = epoll_pwait2(epfd, evs, MAX_EVENTS, ts, NULL);
		if (n >= 0 || errno != ENOSYS)
			return n;
		atomic_store_explicit(&no_pwait2, true, memory_order_relaxed);
	}
	if (ts == NULL)
		ms = -1;
	else if (ts->tv_sec >= INT_MAX / 1000 - 1)
		ms = INT_MAX;
	else
		ms = (int)(ts->tv_sec * 1000 + (ts->tv_nsec + 999999) / 1000000);
	return epoll_wait(epfd, evs, MAX_EVENTS, ms);
}

/*
 * Sleep until a message, a timer or a watched fd; dispatch what woke the reactor. Returns
 * true when the sleep fetched every fd that was ready (fewer than MAX_EVENTS came back), so
 * the next turn need not ask epoll again.
 */
static bool sleep_until_work(struct mimo_reactor *r, struct epoll_event *evs)
{
	struct mimo_poller *t = TAILQ_FIRST(&r->timed);
	struct timespec ts, *tsp = NULL;
	int n;

	if (t != NULL) {
		uint64_t now = mimo_get_ticks(), hz = mimo_get_ticks_hz();
		uint64_t left = t->next_run > now ? t->next_run - now : 0;
		uint64_t ns = (uint64_t)((double)left * 1e9 / (double)hz);

		ts.tv_sec = (time_t)(ns / 1000000000);
		ts.tv_nsec = (long)(ns % 1000000000);
		tsp = &ts;
	}
	atomic_store(&r->sleeping, 1);
	if (msg_ring_pending(&r->msgs) || atomic_load(&r->stop)) {
		atomic_store(&r->sleeping, 0);
		return false;
	}
	/* Counted on the way in: a reactor with no timer may sleep for as long as it is idle. */
	atomic_store_explicit(&r->sleeps,
			      atomic_load_explicit(&r->sleeps, memory_order_relaxed) + 1,
			      memory_order_relaxed);
	n = epoll_pwait2_or_wait(r->epfd, evs, tsp);
	atomic_store(&r->sleeping, 0);
	if (n > 0)
		dispatch(r, evs, n);
	return n >= 0 && n < MAX_EVENTS;
}

static void add_idle(struct mimo_reactor *r, uint64_t ticks)
{
	atomic_store_explicit(&r->idle_ticks,
			      atomic_load_explicit(&r->idle_ticks, memory_order_relaxed) + ticks,
			      memory_order_relaxed);
}

static void *reactor_main(void *arg)
{
	struct mimo_reactor *r = arg;
	struct epoll_event evs[MAX_EVENTS];
	cpu_set_t set;
	uint64_t last_work;

	t_current = r;
	atomic_store(&r->tid, (int)gettid());
	CPU_ZERO(&set);
	CPU_SET(r->core, &set);
	if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set) != 0)
		MIMO_WARN(COMP, "reactor %u: cannot pin to CPU %u; running unpinned", r->index,
			  r->core);
	{
		char name[16];

		snprintf(name, sizeof(name), "reactor_%u", r->index);
		pthread_setname_np(pthread_self(), name);
	}
	last_work = mimo_get_ticks();
	/*
	 * A request that wakes a sleeping reactor (a kick, a socket) should cost the wake-up and
	 * the answer, nothing more: the turn after a sleep does not ask epoll again when the sleep
	 * brought back every ready fd (fds_fresh), and a turn that finds nothing else to do, once
	 * the idle spin is over, goes straight to sleep - epoll_pwait2 returns at once if an fd
	 * is ready, so it is the poll. Two system calls per request at queue depth 1 instead of
	 * four; a spinning reactor still polls its fds every turn.
	 */
	bool fds_fresh = false;
	while (!atomic_load_explicit(&r->stop, memory_order_relaxed)) {
		uint64_t t0 = mimo_get_ticks(), t1;
		int work = 0, n;

		work |= run_msgs(r);
		if (mimo_unlikely(!STAILQ_EMPTY(&r->overflow)))
			work |= run_overflow(r);
		work |= run_active(r);
		if (!TAILQ_EMPTY(&r->timed))
			work |= run_timers(r, t0);
		if (!work && !fds_fresh && !r->poll_mode && t0 - last_work >= r->idle_spin_ticks) {
			reap(r);
			t1 = mimo_get_ticks();
			goto idle_sleep;
		}
		if (!fds_fresh) {
			n = epoll_wait(r->epfd, evs, MAX_EVENTS, 0);
			if (n > 0)
				work |= dispatch(r, evs, n);
		}
		fds_fresh = false;
		reap(r);
		t1 = mimo_get_ticks();
		if (work) {
			atomic_store_explicit(
				&r->busy_ticks,
				atomic_load_explicit(&r->busy_ticks, memory_order_relaxed) +
					(t1 - t0),
				memory_order_relaxed);
			last_work = t1;
			continue;
		}
		if (r->poll_mode || t1 - last_work < r->idle_spin_ticks) {
			add_idle(r, t1 - t0);
			continue;
		}
	idle_sleep:
		add_idle(r, t1 - t0);
		fds_fresh = sleep_until_work(r, evs);
		reap(r);
		last_work = mimo_get_ticks();
	}
	/* Drain what was sent before the stop, then release what is left. */
	while (run_msgs(r) || (!STAILQ_EMPTY(&r->overflow) && run_overflow(r) == 0))
		;
	if (!STAILQ_EMPTY(&r->overflow)) {
		struct overflow_msg *m;
		int n = 0;

		while ((m = STAILQ_FIRST(&r->overflow)) != NULL) {
			STAILQ_REMOVE_HEAD(&r->overflow, link);
			free(m);
			n++;
		}
		MIMO_WARN(COMP, "reactor %u stopped with %d message(s) it could not deliver",
			  r->index, n);
	}
	io_channels_release_all(r);
	reap(r);
	t_current = NULL;
	return NULL;
}

static void reactor_free(struct mimo_reactor *r)
{
	struct mimo_poller *p;

	while (atomic_load(&r->foreign_senders) != 0)
		sched_yield();

	while ((p = TAILQ_FIRST(&r->active)) != NULL) {
		TAILQ_REMOVE(&r->active, p, link);
		free(p);
	}
	while ((p = TAILQ_FIRST(&r->timed)) != NULL) {
		TAILQ_REMOVE(&r->timed, p, link);
		free(p);
	}
	if (r->epfd >= 0)
		close(r->epfd);
	if (r->evfd >= 0)
		close(r->evfd);
	msg_ring_fini(&r->msgs);
	free(r);
}

static struct mimo_reactor *reactor_new(uint32_t index, uint32_t core,
					const struct mimo_reactor_opts *o)
{
	struct mimo_reactor *r = aligned_alloc(MIMO_CACHELINE, sizeof(*r));
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &g_evfd_marker };

	if (r == NULL)
		return NULL;
	memset(r, 0, sizeof(*r));
	r->index = index;
	r->core = core;
	r->poll_mode = o->poll_mode;
	r->start_ticks = mimo_get_ticks();
	r->idle_spin_ticks = (uint64_t)o->idle_spin_us * mimo_get_ticks_hz() / 1000000;
	TAILQ_INIT(&r->active);
	TAILQ_INIT(&r->timed);
	TAILQ_INIT(&r->dead);
	TAILQ_INIT(&r->dead_watches);
	TAILQ_INIT(&r->channels);
	STAILQ_INIT(&r->overflow);
	r->epfd = epoll_create1(EPOLL_CLOEXEC);
	r->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (r->epfd < 0 || r->evfd < 0 || msg_ring_init(&r->msgs, o->msg_ring_size) != 0 ||
	    epoll_ctl(r->epfd, EPOLL_CTL_ADD, r->evfd, &ev) != 0) {
		reactor_free(r);
		return NULL;
	}
	return r;
}

int mimo_reactors_start(const struct mimo_reactor_opts *opts)
{
	struct mimo_reactor_opts o;
	uint32_t n = 0;
	int rc;

	if (g_count != 0)
		return -EALREADY;
	mimo_reactor_opts_init(&o);
	if (mimo_opts_copy(&o, sizeof(o), opts) != 0 || o.core_mask == 0)
		return -EINVAL;
	if (o.msg_ring_size == 0)
		o.msg_ring_size = 16384;
	mimo_get_ticks_hz(); /* calibrate once, before any reactor runs */
	for (uint32_t core = 0; core < 64; core++) {
		if (!(o.core_mask & (1ULL << core)))
			continue;
		g_reactors[n] = reactor_new(n, core, &o);
		if (g_reactors[n] == NULL) {
			rc = -ENOMEM;
			goto fail;
		}
		n++;
	}
	g_count = n;
	for (uint32_t i = 0; i < n; i++) {
		rc = pthread_create(&g_reactors[i]->thread, NULL, reactor_main, g_reactors[i]);
		if (rc != 0) {
			rc = -rc;
			for (uint32_t j = 0; j < i; j++) {
				atomic_store(&g_reactors[j]->stop, 1);
				wake(g_reactors[j]);
				pthread_join(g_reactors[j]->thread, NULL);
			}
			goto fail;
		}
	}
	MIMO_DEBUG(COMP, "%u reactor(s) started, core mask 0x%" PRIx64 "%s", n, o.core_mask,
		   o.poll_mode ? ", polling" : "");
	return 0;
fail:
	for (uint32_t i = 0; i < n; i++) {
		reactor_free(g_reactors[i]);
		g_reactors[i] = NULL;
	}
	g_count = 0;
	return rc;
}

void mimo_reactors_stop(void)
{
	uint32_t n = g_count;

	for (uint32_t i = 0; i < n; i++) {
		atomic_store(&g_reactors[i]->stop, 1);
		wake(g_reactors[i]);
	}
	for (uint32_t i = 0; i < n; i++)
		pthread_join(g_reactors[i]->thread, NULL);
	for (uint32_t i = 0; i < n; i++) {
		reactor_free(g_reactors[i]);
		g_reactors[i] = NULL;
	}
	g_count = 0;
}

/* --- for_each_reactor ---------------------------------------------------------------- */

struct each_ctx {
	mimo_msg_fn fn, done;
	void *arg;
	struct mimo_reactor *origin;
	uint32_t next;
};

static void each_step(void *p);

static void each_send(struct each_ctx *c, struct mimo_reactor *r, mimo_msg_fn fn)
{
	if (mimo_reactor_post(r, fn, c) != 0)
		MIMO_ERR(COMP, "out of memory: a for_each_reactor step is lost");
}

static void each_done(void *p)
{
	struct each_ctx *c = p;

	if (c->done != NULL)
		c->done(c->arg);
	free(c);
}

static void each_step(void *p)
{
	struct each_ctx *c = p;

	c->fn(c->arg);
	c->next++;
	if (c->next < g_count)
		each_send(c, g_reactors[c->next], each_step);
	else
		each_send(c, c->origin, each_done);
}

int mimo_for_each_reactor(mimo_msg_fn fn, void *arg, mimo_msg_fn done)
{
	struct each_ctx *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return -ENOMEM;
	c->fn = fn;
	c->done = done;
	c->arg = arg;
	c->origin = t_current;
	if (c->origin == NULL) {
		free(c);
		return -EPERM;
	}
	each_send(c, g_reactors[0], each_step);
	return 0;
}
