/*
 * The bridge's public API: lazy start, the producer's hot path, configuration, flush,
 * shutdown at exit, and the fork protocol.
 */
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <openssl/crypto.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bridge.h"
#include "clock.h"
#include "envelope.h"
#include "json_check.h"
#include "log.h"
#include "mimo/notify.h"
#include "producers.h"
#include "random.h"
#include "tstamp.h"

#define COMP "notify"

struct notify_bridge g_notify_bridge = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.shutdown_cond = PTHREAD_COND_INITIALIZER,
	.flush_lock = PTHREAD_MUTEX_INITIALIZER,
	.flush_cond = PTHREAD_COND_INITIALIZER,
	.max_payload = 64 * 1024,
	.spool = { .lock_fd = -1 },
};

static struct mimo_ratelimit g_input_rl;

static void at_exit(void);
static void fork_prepare(void);
static void fork_parent(void);
static void fork_child(void);

static void register_process_hooks(void)
{
	/* Once per process image: a forked child inherits both registrations. */
	static bool done;

	if (done)
		return;
	done = true;
	pthread_atfork(fork_prepare, fork_parent, fork_child);
	atexit(at_exit);
}

static void reset_counters(struct notify_bridge *b)
{
	atomic_store(&b->handled, 0);
	atomic_store(&b->ovf_handled, 0);
	atomic_store(&b->sent, 0);
	atomic_store(&b->retried, 0);
	atomic_store(&b->failed, 0);
	atomic_store(&b->spooled, 0);
	atomic_store(&b->void_cells, 0);
	atomic_store(&b->dropped, 0);
	atomic_store(&b->draining, 0);
	atomic_store(&b->stop, 0);
	atomic_store(&b->sleeping, 0);
}

/* Start the bridge; called with b->lock held. Returns the new state or a negative errno. */
static int start_locked(struct notify_bridge *b)
{
	static bool curl_ready;
	sigset_t all, old;
	int rc;

	notify_config_free(&b->cfg);
	notify_config_load(&b->cfg, b->api_overrides);
	atomic_store(&b->max_payload, b->cfg.max_payload);
	atomic_store(&b->strict, b->cfg.strict);
	atomic_store(&b->ts_ticks, notify_tstamp_use_ticks());
	if (b->cfg.disable) {
		register_process_hooks();
		atomic_store_explicit(&b->state, BRIDGE_DISABLED, memory_order_release);
		return BRIDGE_DISABLED;
	}
	if (!curl_ready) {
		/* OpenSSL and libcurl first: OpenSSL registers its own atexit cleanup when it
		 * initialises, and exit handlers run last-registered first, so ours (registered
		 * after) flushes while HMAC and TLS still work. */
		OPENSSL_init_crypto(0, NULL);
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
			MIMO_ERR(COMP, "libcurl failed to initialise; events are refused");
			return -ENOMEM;
		}
		curl_ready = true;
	}
	register_process_hooks();
	/* Restarting after mimo_notify_shutdown: the shutdown waited until no producer was
	 * inside, and producers stay out until the state is RUNNING again. */
	notify_ring_fini(&b->ring);
	notify_ovf_fini(&b->ovf);
	rc = notify_ring_init(&b->ring, b->cfg.queue);
	if (rc != 0)
		return rc;
	notify_ovf_init(&b->ovf, &b->ovf_active, (uint64_t)b->cfg.queue_max_mb << 20);
	/* One poster for the life of the process: producers may wake it at any time. */
	if (b->poster == NULL)
		b->poster = mimo_http_poster_new();
	if (b->poster == NULL)
		return -ENOMEM;
	mimo_http_poster_set_abort(b->poster, false);
	if (mimo_random_bytes(&b->id_prefix, sizeof(b->id_prefix)) != 0)
		b->id_prefix = (uint64_t)mimo_now_ns() ^ ((uint64_t)getpid() << 32);
	reset_counters(b);
	if (b->cfg.spool != NULL) {
		rc = notify_spool_open(&b->spool, b->cfg.spool,
				       (uint64_t)b->cfg.spool_max_mb << 20);
		if (rc != 0)
			MIMO_ERR(COMP, "spool %s: %s; running without a spool", b->cfg.spool,
				 rc == -EWOULDBLOCK ? "in use by another process" : strerror(-rc));
		/* A backlog from an earlier run is delivered first; flush waits for it. */
		atomic_store(&b->draining,
			     notify_spool_is_open(&b->spool) && !notify_spool_empty(&b->spool));
	}
	/* The sender inherits a mask that blocks every signal: the application's handlers never
	 * run on it, and SIGPIPE from a closed connection only makes the write fail. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&b->thread, NULL, notify_sender_main, b);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		MIMO_ERR(COMP, "cannot start the sender thread: %s", strerror(rc));
		if (notify_spool_is_open(&b->spool))
			notify_spool_close(&b->spool);
		return -rc;
	}
	atomic_store_explicit(&b->state, BRIDGE_RUNNING, memory_order_release);
	MIMO_DEBUG(COMP, "bridge started: %s %s, queue %u", b->cfg.method, b->cfg.url,
		   b->cfg.queue);
	return BRIDGE_RUNNING;
}

/* Start unless running, disabled or (unless restart) stopped. A shutdown in progress is
 * waited for first. Returns the state or a negative errno. */
static __attribute__((cold, noinline)) int ensure_started(bool restart)
{
	struct notify_bridge *b = &g_notify_bridge;
	int st;

	pthread_mutex_lock(&b->lock);
	while (atomic_load(&b->shutting_down))
		pthread_cond_wait(&b->shutdown_cond, &b->lock);
	st = atomic_load(&b->state);
	if (st == BRIDGE_UNINIT || (restart && st == BRIDGE_STOPPED))
		st = start_locked(b);
	pthread_mutex_unlock(&b->lock);
	return st;
}

static __attribute__((cold, noinline)) int refuse(int rc, const char *event, const char *what,
						  size_t off)
{
	uint64_t suppressed;

	if (!mimo_ratelimit_allow(&g_input_rl, 1000000000LL, &suppressed))
		return rc;
	if (rc == -EBADMSG) {
		char shown[129];
		size_t i;

		/* Any name is accepted: keep control characters and the like out of the log. */
		for (i = 0; i < sizeof(shown) - 1 && event[i] != '\0'; i++)
			shown[i] = event[i] >= 0x20 && event[i] < 0x7f ? event[i] : '?';
		shown[i] = '\0';
		MIMO_ERR(COMP, "NotifyEvent(\"%s\"): payload refused: %s at byte %zu", shown, what,
			 off);
	} else
		MIMO_ERR(COMP, "NotifyEvent: event refused: %s", what);
	if (suppressed > 0)
		MIMO_ERR(COMP, "(%" PRIu64 " similar messages suppressed)", suppressed);
	return rc;
}

/* The queue is full. This path runs at the rate producers call while the receiver is down,
 * so it touches one shared counter only; the log line reports that counter. */
static __attribute__((cold, noinline)) int refuse_full(struct notify_bridge *b)
{
	static struct mimo_ratelimit rl;
	uint64_t dropped = atomic_fetch_add_explicit(&b->dropped, 1, memory_order_relaxed) + 1;

	if (mimo_ratelimit_allow(&rl, 1000000000LL, NULL))
		MIMO_ERR(COMP,
			 "NotifyEvent: queue full (%" PRIu64 " events in the ring, %" PRIu64
			 " more in %" PRIu64 " MiB of overflow, the cap): event dropped, %" PRIu64
			 " dropped so far",
			 notify_ring_capacity(&b->ring), notify_ovf_depth(&b->ovf),
			 atomic_load(&b->ovf.bytes) >> 20, dropped);
	return -ENOBUFS;
}

/* A payload the checker refused: too long, or not JSON. Out of line: the producer's path
 * stays small (see docs/PERFORMANCE.md, "Event bridge"). */
static __attribute__((cold, noinline)) int refuse_payload(const char *event, const char *payload,
							  uint32_t max, int rc, bool strict,
							  size_t off)
{
	if (strnlen(payload, (size_t)max + 1) > max)
		return refuse(-EMSGSIZE, event, "payload larger than max_payload_bytes", 0);
	return refuse(-EBADMSG, event,
		      rc == -E2BIG ? "nested too deeply"
		      : strict	   ? "not a single JSON object (strict)"
				   : "not a single JSON value",
		      off);
}

/*
 * The producer's path. Everything it needs is inlined here - the name check, the ring push and
 * its copy - or hot and placed right after it (the JSON check), so that a call from a thread
 * that has just woken up, its caches cold, touches as few lines and pages as possible: no libc
 * call, no PLT stub, no clock call (tstamp.h), no lookup table; one cache line of bridge state,
 * the ring's enq line, one cell, the thread's slot. Aligned to a page: with the JSON check
 * after it (.text.hot keeps them together) the whole path is one page of code, one iTLB entry.
 */
MIMO_EXPORT __attribute__((hot, aligned(4096))) int mimo_notify_event(const char *event,
								      const char *payload)
{
	struct notify_bridge *b = &g_notify_bridge;
	int st = atomic_load_explicit(&b->state, memory_order_acquire);
	size_t name_len, payload_len = 0, off = 0;
	struct producer_slot *slot;
	unsigned flags = 0;
	bool strict, escape, ticks;
	int64_t ts;
	int rc;

	if (mimo_unlikely(st == BRIDGE_UNINIT))
		st = ensure_started(false);
	strict = atomic_load_explicit(&b->strict, memory_order_relaxed);
	/* Start the misses the push will take - the enq line, the cell enq points to now (the
	 * one this call will most likely get), this thread's slot - so that they overlap with
	 * the validation below instead of following it one by one. */
	if (mimo_likely(st == BRIDGE_RUNNING)) {
		struct notify_cell *cells = __atomic_load_n(&b->ring.cells, __ATOMIC_RELAXED);
		uint64_t mask = __atomic_load_n(&b->ring.mask, __ATOMIC_RELAXED);
		uint64_t guess = atomic_load_explicit(&b->ring.enq, memory_order_relaxed);
		const char *cell = (const char *)&cells[guess & mask];

		__builtin_prefetch(cell, 1, 3);
		__builtin_prefetch(cell + MIMO_CACHELINE, 1, 3);
		__builtin_prefetch(&notify_t_slot, 1, 3);
	}

	rc = notify_check_name(event, strict, &name_len, &escape);
	if (mimo_unlikely(rc != 0))
		return refuse(rc, event,
			      rc == -ENAMETOOLONG ? (strict ? "name longer than 128 bytes (strict)"
							    : "name longer than 65535 bytes")
			      : event == NULL || event[0] == '\0'
				      ? "name NULL or empty"
				      : "name outside [A-Za-z0-9_.:-] (strict)",
			      0);
	if (escape)
		flags |= NOTIFY_F_NAME_ESCAPE;
	/* The Go bridge's contract: "NULL/empty for no payload". */
	if (payload != NULL && payload[0] != '\0') {
		uint32_t max = atomic_load_explicit(&b->max_payload, memory_order_relaxed);

		/* Strict: one object of valid UTF-8, 64 levels deep. Otherwise what Go's
		 * json.Valid takes: any value, 10,000 levels, strings not necessarily UTF-8
		 * (repaired when the envelope is built). The check finds the string's end
		 * itself (MIMO_JSON_CSTR), reading at most max + 1 bytes. */
		rc = strict ? mimo_json_check(payload, (size_t)max + 1,
					      MIMO_JSON_OBJECT | MIMO_JSON_CSTR,
					      NOTIFY_STRICT_DEPTH, &off)
			    : mimo_json_check(payload, (size_t)max + 1,
					      MIMO_JSON_ALLOW_BAD_UTF8 | MIMO_JSON_CSTR,
					      MIMO_JSON_MAX_DEPTH_ANY, &off);
		if (mimo_unlikely(rc < 0 || off > max))
			return refuse_payload(event, payload, max, rc, strict, off);
		payload_len = off;
		flags |= NOTIFY_F_PAYLOAD | (rc == 1 ? NOTIFY_F_PAYLOAD_UTF8 : 0);
	}
	if (mimo_unlikely(st != BRIDGE_RUNNING))
		return st == BRIDGE_DISABLED ? 0 : st < 0 ? st : -ESHUTDOWN;

	/* Announce ourselves before looking at the state again (see producers.h): a shutdown
	 * either waits for this push or we see it and stay out of the ring. */
	slot = notify_producer_enter();
	if (mimo_unlikely(slot == NULL))
		return refuse(-ENOMEM, event, "no memory", 0);
	if (mimo_unlikely(atomic_load(&b->state) != BRIDGE_RUNNING)) {
		notify_producer_leave(slot);
		return -ESHUTDOWN;
	}
	/* The ring is the fast path; the overflow takes a burst the ring cannot, and while it
	 * holds events every producer goes there, so a thread's events stay in order. */
	ticks = atomic_load_explicit(&b->ts_ticks, memory_order_relaxed);
	ts = notify_tstamp_now(ticks);
	flags |= ticks ? NOTIFY_F_TICKS : 0;
	if (mimo_likely(!atomic_load_explicit(&b->ovf_active, memory_order_relaxed))) {
		rc = notify_ring_push(&b->ring, ts, event, (uint16_t)name_len, payload,
				      (uint32_t)payload_len, flags);
		if (mimo_unlikely(rc == -ENOBUFS))
			rc = notify_ovf_push(&b->ovf, ts, event, (uint16_t)name_len, payload,
					     (uint32_t)payload_len, flags);
	} else {
		rc = notify_ovf_push(&b->ovf, ts, event, (uint16_t)name_len, payload,
				     (uint32_t)payload_len, flags);
	}
	notify_producer_leave(slot);
	if (mimo_unlikely(rc == -ENOBUFS))
		return refuse_full(b);
	/* A void cell (-ENOMEM) is still a cell the sender must take: wake it either way. */
	if (mimo_unlikely(atomic_load(&b->sleeping)))
		notify_bridge_wake(b);
	if (mimo_unlikely(rc != 0))
		return refuse(rc, event, "no memory", 0);
	return 0;
}

/* The same function under the Go bridge's name: an alias, not a wrapper, so that a call does
 * not go through one more PLT stub (mimo_notify_event is exported, hence interposable). */
MIMO_EXPORT __attribute__((hot, aligned(4096))) int NotifyEvent(const char *event,
								const char *payload)
	__attribute__((alias("mimo_notify_event")));

MIMO_EXPORT int mimo_notify_init(void)
{
	int st = ensure_started(true);

	return st < 0 ? st : 0;
}

MIMO_EXPORT int mimo_notify_configure(const char *json)
{
	struct notify_bridge *b = &g_notify_bridge;
	json_error_t err;
	json_t *doc;
	struct notify_config trial;
	int rc = 0, st;

	if (json == NULL)
		return -EINVAL;
	doc = json_loads(json, JSON_REJECT_DUPLICATES, &err);
	if (doc == NULL) {
		MIMO_ERR(COMP, "mimo_notify_configure: %s at byte %d", err.text, err.position);
		return -EINVAL;
	}
	pthread_mutex_lock(&b->lock);
	st = atomic_load(&b->state);
	/* Validate against the live settings; nothing changes on error. */
	if (st == BRIDGE_UNINIT)
		notify_config_load(&trial, b->api_overrides);
	else
		rc = notify_config_copy(&trial, &b->cfg);
	if (rc == 0)
		rc = notify_config_apply_object(&trial, doc, true, "mimo_notify_configure");
	if (rc == 0 && st != BRIDGE_UNINIT &&
	    (trial.queue != b->cfg.queue || trial.disable != b->cfg.disable ||
	     (trial.spool == NULL) != (b->cfg.spool == NULL) ||
	     (trial.spool != NULL && strcmp(trial.spool, b->cfg.spool) != 0))) {
		MIMO_ERR(COMP, "mimo_notify_configure: queue, spool and disable cannot change "
			       "once the bridge has started");
		rc = -EBUSY;
	}
	if (rc == 0) {
		if (b->api_overrides == NULL)
			b->api_overrides = json_object();
		json_object_update(b->api_overrides, doc);
		if (st != BRIDGE_UNINIT) {
			notify_config_free(&b->cfg);
			b->cfg = trial;
			memset(&trial, 0, sizeof(trial));
			atomic_store(&b->max_payload, b->cfg.max_payload);
			atomic_store(&b->strict, b->cfg.strict);
			atomic_store(&b->ovf.max_bytes, (uint64_t)b->cfg.queue_max_mb << 20);
			atomic_fetch_add(&b->cfg_gen, 1);
		}
	}
	notify_config_free(&trial);
	pthread_mutex_unlock(&b->lock);
	json_decref(doc);
	return rc;
}

static void wake_flush_waiters(struct notify_bridge *b)
{
	if (atomic_load(&b->flush_waiters) > 0) {
		pthread_mutex_lock(&b->flush_lock);
		pthread_cond_broadcast(&b->flush_cond);
		pthread_mutex_unlock(&b->flush_lock);
	}
}

void notify_bridge_handled(struct notify_bridge *b, uint64_t ring, uint64_t ovf)
{
	if (ring > 0)
		atomic_fetch_add(&b->handled, ring);
	if (ovf > 0)
		atomic_fetch_add(&b->ovf_handled, ovf);
	wake_flush_waiters(b);
}

void notify_bridge_set_draining(struct notify_bridge *b, bool on)
{
	atomic_store(&b->draining, on ? 1 : 0);
	if (!on)
		wake_flush_waiters(b);
}

/* Settled: every event queued up to the targets (ring and overflow, each in order) has been
 * handled, and no spooled backlog is being delivered to a receiver that answers. */
static bool settled(struct notify_bridge *b, uint64_t target, uint64_t ovf_target)
{
	return atomic_load(&b->handled) >= target && atomic_load(&b->ovf_handled) >= ovf_target &&
	       atomic_load(&b->draining) == 0;
}

MIMO_EXPORT int mimo_notify_flush(uint32_t timeout_ms)
{
	struct notify_bridge *b = &g_notify_bridge;
	int64_t deadline = mimo_now_ns() + (int64_t)timeout_ms * 1000000;
	uint64_t target, ovf_target;
	int rc = 0;

	if (atomic_load_explicit(&b->state, memory_order_acquire) != BRIDGE_RUNNING)
		return 0;
	target = atomic_load(&b->ring.enq);
	ovf_target = atomic_load(&b->ovf.pushed);
	atomic_fetch_add(&b->flush_waiters, 1);
	pthread_mutex_lock(&b->flush_lock);
	while (!settled(b, target, ovf_target)) {
		int64_t now = mimo_now_ns(), step;
		struct timespec ts;

		if (now >= deadline) {
			rc = -ETIMEDOUT;
			break;
		}
		if (atomic_load(&b->state) != BRIDGE_RUNNING && !atomic_load(&b->shutting_down))
			break;
		mimo_http_poster_wakeup(b->poster);
		/* Bounded waits: the sender's broadcast can fall between our check and wait. */
		step = MIMO_MIN(deadline - now, 10 * 1000000LL);
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += step;
		ts.tv_sec += ts.tv_nsec / 1000000000;
		ts.tv_nsec %= 1000000000;
		pthread_cond_timedwait(&b->flush_cond, &b->flush_lock, &ts);
	}
	pthread_mutex_unlock(&b->flush_lock);
	atomic_fetch_sub(&b->flush_waiters, 1);
	return rc;
}

MIMO_EXPORT void mimo_notify_shutdown(uint32_t timeout_ms)
{
	struct notify_bridge *b = &g_notify_bridge;
	int st;

	/* The lock is never held while waiting: the sender takes it to read new settings. */
	pthread_mutex_lock(&b->lock);
	if (atomic_load(&b->shutting_down)) {
		/* Another thread is shutting down (exit() while a daemon stops, say): returning
		 * now would let the process end under the sender's feet. Wait for it. */
		while (atomic_load(&b->shutting_down))
			pthread_cond_wait(&b->shutdown_cond, &b->lock);
		pthread_mutex_unlock(&b->lock);
		return;
	}
	st = atomic_load(&b->state);
	if (st != BRIDGE_RUNNING) {
		if (st == BRIDGE_DISABLED)
			atomic_store(&b->state, BRIDGE_STOPPED);
		pthread_mutex_unlock(&b->lock);
		return;
	}
	atomic_store(&b->shutting_down, 1);
	pthread_mutex_unlock(&b->lock);

	if (mimo_notify_flush(timeout_ms) != 0)
		MIMO_WARN(COMP, "shutdown: %" PRIu64 " event(s) still queued after %u ms",
			  atomic_load(&b->ring.enq) - atomic_load(&b->handled) +
				  atomic_load(&b->ovf.pushed) - atomic_load(&b->ovf_handled),
			  timeout_ms);

	/* No new producer gets in; wait out those already inside, then the sender takes the
	 * last events from the ring (finish() in sender.c). */
	atomic_store(&b->state, BRIDGE_STOPPED);
	notify_producers_wait_quiescent();
	atomic_store_explicit(&b->stop, 1, memory_order_release);
	mimo_http_poster_set_abort(b->poster, true);
	pthread_join(b->thread, NULL);

	pthread_mutex_lock(&b->lock);
	atomic_store(&b->shutting_down, 0);
	pthread_cond_broadcast(&b->shutdown_cond);
	pthread_mutex_unlock(&b->lock);
}

static void at_exit(void)
{
	struct notify_bridge *b = &g_notify_bridge;

	if (atomic_load(&b->state) == BRIDGE_RUNNING)
		mimo_notify_shutdown(b->cfg.grace_ms);
}

MIMO_EXPORT void mimo_notify_stats(struct mimo_notify_stats *st)
{
	struct notify_bridge *b = &g_notify_bridge;
	uint64_t enq = 0, voids = atomic_load(&b->void_cells);

	memset(st, 0, sizeof(*st));
	if (atomic_load(&b->state) == BRIDGE_UNINIT)
		return;
	if (b->ring.cells != NULL) {
		enq = atomic_load(&b->ring.enq);
		st->queue_depth = notify_ring_depth(&b->ring);
	}
	enq += atomic_load(&b->ovf.pushed);
	st->queue_depth += notify_ovf_depth(&b->ovf);
	st->queued = enq > voids ? enq - voids : 0;
	st->sent = atomic_load(&b->sent);
	st->retried = atomic_load(&b->retried);
	st->failed = atomic_load(&b->failed);
	st->dropped = atomic_load(&b->dropped);
	st->spooled = atomic_load(&b->spooled);
}

/*
 * fork(): the child has no sender thread and may have inherited the ring mid-update, so it
 * forgets the parent's bridge (events queued there are the parent's to deliver) and starts a
 * fresh one on its first call. The parent's curl handles are abandoned, not cleaned up: that
 * could touch connections the parent still uses.
 */
static void fork_prepare(void)
{
	pthread_mutex_lock(&g_notify_bridge.lock);
	pthread_mutex_lock(&g_notify_bridge.flush_lock);
}

static void fork_parent(void)
{
	pthread_mutex_unlock(&g_notify_bridge.flush_lock);
	pthread_mutex_unlock(&g_notify_bridge.lock);
}

/* The posters forked children abandoned, kept reachable so that a leak checker in the child
 * reports only real leaks. One per fork generation; deeper chains are simply dropped. */
static struct mimo_http_poster *g_abandoned_posters[8];

static void fork_child(void)
{
	struct notify_bridge *b = &g_notify_bridge;

	/* Whatever the state (running, stopping, stopped), everything inherited is the
	 * parent's: forget it without freeing what another thread may have been using. */
	notify_ring_abandon(&b->ring);
	notify_ovf_abandon(&b->ovf);
	notify_spool_abandon(&b->spool);
	for (size_t i = 0;
	     b->poster != NULL && i < sizeof(g_abandoned_posters) / sizeof(g_abandoned_posters[0]);
	     i++) {
		if (g_abandoned_posters[i] == NULL) {
			g_abandoned_posters[i] = b->poster;
			break;
		}
	}
	b->poster = NULL;
	b->sender = NULL;
	notify_producers_after_fork();
	atomic_store(&b->state, BRIDGE_UNINIT);
	atomic_store(&b->shutting_down, 0);
	reset_counters(b);
	atomic_store(&b->flush_waiters, 0);
	pthread_cond_init(&b->flush_cond, NULL);
	pthread_cond_init(&b->shutdown_cond, NULL);
	pthread_mutex_unlock(&b->flush_lock);
	pthread_mutex_unlock(&b->lock);
}
