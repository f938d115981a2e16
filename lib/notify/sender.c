/*
 * The sender thread: takes events from the ring in order and delivers them one at a time over
 * a keep-alive libcurl connection, with retries, signatures and the spool.
 *
 * Sleeping without costing producers a system call: while events arrived within the last
 * SHALLOW_WINDOW the sender naps for SHALLOW_POLL_MS, after that for idle_poll_ms (10 ms), and
 * producers never wake it. Only with idle_poll_ms 0 does it announce a deep sleep in
 * b->sleeping, and then the first producer to see the flag wakes it - a system call on that
 * caller's path, once per idle period: with events seconds apart, on every call.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge.h"
#include "clock.h"
#include "log.h"
#include "poster.h"
#include "random.h"
#include "webhook.h"

#define COMP "notify"

#define SHALLOW_WINDOW_NS (100LL * 1000 * 1000)
#define SHALLOW_POLL_MS	  1
#define DEEP_POLL_MS	  1000
#define DOWN_POLL_MS	  100
#define PROBE_MIN_MS	  1000
#define SPOOL_BATCH	  1024

enum delivery {
	D_SENT,
	D_FAILED,
	D_EXHAUSTED,
	D_ABORTED
};

struct notify_sender {
	struct notify_bridge *b;
	struct mimo_http_poster *poster; /* the bridge's: producers wake it */
	struct notify_config cfg;
	uint64_t cfg_gen;
	struct mimo_buf body; /* envelope of the event in flight */
	bool body_ovf;	      /* ... which came from the overflow, not the ring */
	char id[WEBHOOK_ID_LEN];
	uint64_t seq;
	bool down; /* the spool holds undelivered events; new ones queue behind them there */
	/* The event at the head has used its retries: the receiver is reported down until an
	 * event gets through (one warning per outage). */
	bool receiver_down;
	int64_t next_probe_ns;
	uint32_t probe_ms;
	int64_t last_activity_ns;
	struct mimo_ratelimit rl;
};

static bool stopping(const struct notify_sender *s)
{
	return atomic_load_explicit(&s->b->stop, memory_order_acquire) != 0;
}

/* Sleep for ms, or until shutdown; wake-ups do not cut a backoff short. False: stopping. */
static bool nap(struct notify_sender *s, uint32_t ms)
{
	return !stopping(s) && mimo_http_poster_nap(s->poster, ms);
}

/* Sleep for up to ms, returning early when woken (a producer has queued an event). */
static void doze(struct notify_sender *s, uint32_t ms)
{
	if (!stopping(s))
		mimo_http_poster_wait(s->poster, ms);
}

static void apply_config(struct notify_sender *s)
{
	struct notify_bridge *b = s->b;
	uint64_t gen = atomic_load(&b->cfg_gen);
	struct mimo_http_poster_opts o;
	struct notify_config fresh;
	int rc;

	if (gen == s->cfg_gen && s->cfg.url != NULL)
		return;
	pthread_mutex_lock(&b->lock);
	rc = notify_config_copy(&fresh, &b->cfg);
	gen = atomic_load(&b->cfg_gen);
	pthread_mutex_unlock(&b->lock);
	if (rc != 0)
		return; /* out of memory: keep the settings we have, try again next event */
	notify_config_free(&s->cfg);
	s->cfg = fresh;
	s->cfg_gen = gen;
	/* The sender owns the spool: its size limit may change at run time. */
	b->spool.max_bytes = (uint64_t)s->cfg.spool_max_mb << 20;
	o = (struct mimo_http_poster_opts){
		.url = s->cfg.url,
		.method = s->cfg.method,
		.timeout_ms = s->cfg.timeout_ms,
		.spin_us = s->cfg.spin_us,
		.max_retry_after_ms = s->cfg.max_retry_after_ms,
		.secret = s->cfg.secret,
		.user_agent = "mimo-notify/" MIMO_VERSION,
	};
	if (mimo_http_poster_configure(s->poster, &o) != 0)
		MIMO_ERR(COMP, "secret: a \"whsec_\" secret must be base64 of at most 1 KiB; "
			       "events are sent unsigned");
}

static void log_limited(struct notify_sender *s, enum mimo_log_level lvl, const char *fmt,
			const char *id, const char *why)
{
	uint64_t suppressed;

	/* A line that would not be printed must not use up the rate limit's slot. */
	if (!mimo_log_component_enabled(lvl, COMP) ||
	    !mimo_ratelimit_allow(&s->rl, 1000000000LL, &suppressed))
		return;
	mimo_log(lvl, COMP, fmt, id, s->cfg.url, why);
	if (suppressed > 0)
		mimo_log(lvl, COMP, "(%" PRIu64 " similar messages suppressed)", suppressed);
}

/* Nobody chose the default URL: a daemon started without a receiver says, once per outage,
 * how to name one or turn events off, rather than leave the user guessing. */
static const char *default_url_hint(const struct notify_sender *s)
{
	if (strcmp(s->cfg.url, NOTIFY_DEFAULT_URL) != 0)
		return "";
	return " (the default URL: set MIMO_NOTIFY_URL to your receiver, or "
	       "MIMO_NOTIFY_DISABLE=1 to turn events off)";
}

/* The pause before retry number n: backoff_ms doubling, at most max_backoff_ms, +-20% jitter
 * either way, and never shorter than what the receiver asked for (Retry-After). */
static uint64_t retry_delay_ms(const struct notify_sender *s, uint32_t n, uint32_t retry_after)
{
	uint64_t d = mimo_http_backoff_ms(s->cfg.backoff_ms, n, 0), cap = s->cfg.max_backoff_ms;

	if (d > cap)
		d = cap - cap / 5 + mimo_random_below(cap / 5 * 2 + 1);
	return MIMO_MAX(d, (uint64_t)retry_after);
}

/*
 * Deliver one event. A retryable failure (5xx, 408, 429, the network) keeps the event at the
 * head of the queue - everything behind it waits, in order - and it is tried again after a
 * backoff, for as long as the receiver keeps failing: nothing accepted is given up because
 * the receiver is down. After `retries` retries the receiver is reported down and, when a
 * spool is configured, the event goes there (D_EXHAUSTED) so the queue does not fill.
 * A permanent failure (other 4xx, 3xx, a bad URL) fails this event only.
 */
static enum delivery deliver(struct notify_sender *s, const char *id, const char *body, size_t len)
{
	struct notify_bridge *b = s->b;
	char why[512]; /* libcurl's error text (at most 256) and a prefix */

	for (uint32_t n = 0;; n++) {
		uint32_t retry_after;
		uint64_t delay;
		long status;
		enum mimo_http_outcome out = mimo_http_poster_send(
			s->poster, id, body, len, &retry_after, &status, why, sizeof(why));

		switch (out) {
		case MIMO_HTTP_OK:
			atomic_fetch_add(&b->sent, 1);
			if (s->receiver_down)
				MIMO_INFO(COMP, "%s answers again; delivering the queue",
					  s->cfg.url);
			s->receiver_down = false;
			return D_SENT;
		case MIMO_HTTP_ABORTED:
			return D_ABORTED;
		case MIMO_HTTP_PERMANENT:
			atomic_fetch_add(&b->failed, 1);
			log_limited(s, MIMO_LOG_ERROR, "event %s to %s failed for good: %s", id,
				    why);
			return D_FAILED;
		case MIMO_HTTP_RETRY:
			break;
		}
		if (n >= s->cfg.retries) {
			bool spool = notify_spool_is_open(&b->spool);

			if (!s->receiver_down)
				MIMO_WARN(COMP,
					  "%s is failing (%s): %s; retrying every %u ms at most%s",
					  s->cfg.url, why,
					  spool ? "events go to the spool until it answers"
						: "events wait in the queue, in order, until it "
						  "answers",
					  s->cfg.max_backoff_ms, default_url_hint(s));
			s->receiver_down = true;
			if (spool)
				return D_EXHAUSTED;
		}
		atomic_fetch_add(&b->retried, 1);
		delay = retry_delay_ms(s, n, retry_after);
		log_limited(s, MIMO_LOG_DEBUG, "event %s to %s: %s; retrying", id, why);
		if (!nap(s, (uint32_t)delay))
			return D_ABORTED;
	}
}

/*
 * The next event: from the ring, or from the overflow once the ring is empty after the
 * overflow's record was seen (overflow.h: this keeps each thread's order). Returns what
 * notify_ring_pop_envelope does; *from_ovf says where a taken event came from.
 */
static int queue_pop(struct notify_bridge *b, struct mimo_buf *out, bool *from_ovf)
{
	int rc = notify_ring_pop_envelope(&b->ring, out);

	*from_ovf = false;
	if (rc != 0)
		return rc;
	if (!notify_ovf_ready(&b->ovf)) {
		notify_ovf_settle(&b->ovf);
		return 0;
	}
	if (atomic_load(&b->ring.enq) != atomic_load(&b->ring.deq))
		return -EAGAIN; /* a cell claimed before the record was published: it goes first */
	*from_ovf = true;
	return notify_ovf_pop_envelope(&b->ovf, out);
}

static uint64_t queue_depth(struct notify_bridge *b)
{
	return notify_ring_depth(&b->ring) + notify_ovf_depth(&b->ovf);
}

/* Take up to max events from the queue and write them to the spool as one segment. */
static uint64_t ring_to_spool(struct notify_sender *s, size_t max)
{
	struct notify_bridge *b = s->b;
	struct spool_rec *recs = calloc(max, sizeof(*recs));
	size_t *offs = calloc(max, sizeof(*offs));
	struct mimo_buf all = { 0 };
	size_t n = 0, voids = 0, lost = 0, from_ovf = 0;
	bool ovf;
	int rc;

	if (recs == NULL || offs == NULL) {
		free(recs);
		free(offs);
		return 0;
	}
	while (n < max) {
		size_t before = all.len;

		rc = queue_pop(b, &all, &ovf);
		if (rc == -EAGAIN) {
			mimo_cpu_relax(); /* a producer is filling the cell: it takes nanoseconds */
			continue;
		}
		if (rc == 0)
			break;
		from_ovf += ovf;
		if (rc == -ENODATA) {
			voids++;
			continue;
		}
		if (rc == -ENOMEM) {
			all.len = before;
			lost++;
			continue;
		}
		offs[n] = before;
		recs[n].len = all.len - before;
		webhook_make_id(recs[n].id, b->id_prefix, ++s->seq);
		n++;
	}
	for (size_t i = 0; i < n; i++)
		recs[i].body = all.data + offs[i];
	if (n > 0) {
		rc = notify_spool_append(&b->spool, recs, n);
		if (rc == 0) {
			atomic_fetch_add(&b->spooled, n);
		} else {
			atomic_fetch_add(&b->failed, n);
			MIMO_ERR(COMP, "spool %s: cannot write %zu event(s): %s; they are lost",
				 b->spool.dir, n, strerror(-rc));
		}
	}
	atomic_fetch_add(&b->void_cells, voids);
	atomic_fetch_add(&b->dropped, lost);
	mimo_buf_free(&all);
	free(recs);
	free(offs);
	if (n + voids + lost > 0)
		notify_bridge_handled(b, n + voids + lost - from_ovf, from_ovf);
	return n + voids + lost;
}

/* Deliver spooled events oldest first. Returns D_SENT once the spool is empty, D_EXHAUSTED
 * when the receiver failed again or a segment could not be read. */
static enum delivery drain_spool(struct notify_sender *s)
{
	struct notify_bridge *b = s->b;
	struct spool_rec rec;
	int rc;

	while ((rc = notify_spool_peek(&b->spool, &rec)) == 0) {
		enum delivery d = deliver(s, rec.id, rec.body, rec.len);

		if (d == D_EXHAUSTED || d == D_ABORTED)
			return d;
		notify_spool_consume(&b->spool);
		/* Keep producers from filling the ring while a long backlog drains. */
		if (queue_depth(b) > notify_ring_capacity(&b->ring) / 2)
			ring_to_spool(s, SPOOL_BATCH);
	}
	/* Only an empty spool lets new events go straight out again: anything else (a segment
	 * that can neither be read nor moved aside) would reorder them. */
	return rc == -ENOENT && notify_spool_empty(&b->spool) ? D_SENT : D_EXHAUSTED;
}

static void enter_down_mode(struct notify_sender *s)
{
	if (!s->down)
		MIMO_WARN(COMP, "%s is not answering; queueing events in the spool %s", s->cfg.url,
			  s->b->spool.dir);
	s->down = true;
	s->next_probe_ns = mimo_now_ns() + (int64_t)s->probe_ms * 1000000;
	s->probe_ms = MIMO_MIN(s->probe_ms * 2, MIMO_MAX(s->cfg.max_backoff_ms, PROBE_MIN_MS));
}

/*
 * While the spool is not empty, everything new goes behind it, so order is kept. b->draining
 * is set while a delivery attempt of the backlog is under way (before new events move, so that
 * flush() never sees them handled with the backlog not yet tried), and cleared once the
 * backlog is delivered or the receiver has failed again.
 */
static void down_mode_step(struct notify_sender *s)
{
	struct notify_bridge *b = s->b;
	int64_t now = mimo_now_ns(), wait_ms;
	bool probe = now >= s->next_probe_ns;

	if (probe)
		notify_bridge_set_draining(b, true);
	while (ring_to_spool(s, SPOOL_BATCH) == SPOOL_BATCH)
		;
	if (probe) {
		enum delivery d = drain_spool(s);

		if (d == D_SENT) {
			MIMO_INFO(COMP, "%s answers; spooled events delivered", s->cfg.url);
			s->down = false;
			s->probe_ms = PROBE_MIN_MS;
		} else if (d == D_EXHAUSTED) {
			enter_down_mode(s);
		}
		notify_bridge_set_draining(b, false);
		if (d != D_EXHAUSTED)
			return;
		now = mimo_now_ns();
	}
	wait_ms = (s->next_probe_ns - now) / 1000000;
	if (queue_depth(b) > 0)
		wait_ms = MIMO_MIN(wait_ms, DOWN_POLL_MS);
	if (wait_ms > 0)
		doze(s, (uint32_t)MIMO_MIN(wait_ms, DOWN_POLL_MS));
}

static void deliver_from_ring(struct notify_sender *s)
{
	struct notify_bridge *b = s->b;
	enum delivery d;

	webhook_make_id(s->id, b->id_prefix, ++s->seq);
	d = deliver(s, s->id, s->body.data, s->body.len);
	if (d == D_ABORTED)
		return; /* finish() deals with it */
	if (d == D_EXHAUSTED) {
		struct spool_rec rec = { .body = s->body.data, .len = s->body.len };
		int rc = -ENOENT;

		memcpy(rec.id, s->id, sizeof(rec.id));
		if (notify_spool_is_open(&b->spool))
			rc = notify_spool_append(&b->spool, &rec, 1);
		if (rc == 0) {
			atomic_fetch_add(&b->spooled, 1);
			enter_down_mode(s);
		} else {
			atomic_fetch_add(&b->failed, 1);
			if (rc != -ENOENT)
				MIMO_ERR(COMP, "spool %s: cannot write event %s: %s; it is lost",
					 b->spool.dir, s->id, strerror(-rc));
		}
	}
	mimo_buf_reset(&s->body);
	notify_bridge_handled(b, !s->body_ovf, s->body_ovf);
}

/* Wait for work without making producers pay a system call per event. */
static void idle_wait(struct notify_sender *s)
{
	struct notify_bridge *b = s->b;

	if (mimo_now_ns() - s->last_activity_ns < SHALLOW_WINDOW_NS) {
		doze(s, SHALLOW_POLL_MS);
		return;
	}
	/* Idle: look every idle_poll_ms rather than wait to be woken, so that a caller after a
	 * quiet spell - the usual caller: events are rare - makes no system call. */
	if (s->cfg.idle_poll_ms > 0) {
		doze(s, s->cfg.idle_poll_ms);
		return;
	}
	/* seq_cst store, then seq_cst loads of enq and of the overflow's count: either we see
	 * the producer's claim or append, or the producer (whose CAS on enq, or increment of
	 * pushed, is seq_cst) sees our flag and wakes us. */
	atomic_store(&b->sleeping, 1);
	if (atomic_load(&b->ring.enq) != atomic_load(&b->ring.deq) ||
	    notify_ovf_depth(&b->ovf) > 0 || stopping(s)) {
		atomic_store(&b->sleeping, 0);
		return;
	}
	doze(s, DEEP_POLL_MS);
	atomic_store(&b->sleeping, 0);
}

/* Shutdown: spool (or count as lost) the event in flight and everything still queued. */
static void finish(struct notify_sender *s, bool in_flight)
{
	struct notify_bridge *b = s->b;
	uint64_t lost = 0;

	if (notify_spool_is_open(&b->spool)) {
		if (in_flight) {
			struct spool_rec rec = { .body = s->body.data, .len = s->body.len };

			memcpy(rec.id, s->id, sizeof(rec.id));
			if (notify_spool_append(&b->spool, &rec, 1) == 0) {
				atomic_fetch_add(&b->spooled, 1);
			} else {
				atomic_fetch_add(&b->dropped, 1);
				lost++;
			}
			notify_bridge_handled(b, !s->body_ovf, s->body_ovf);
		}
		while (ring_to_spool(s, SPOOL_BATCH) > 0)
			;
		notify_spool_close(&b->spool);
	} else {
		bool ovf;
		int rc;

		if (in_flight) {
			lost++;
			notify_bridge_handled(b, !s->body_ovf, s->body_ovf);
		}
		while ((rc = queue_pop(b, &s->body, &ovf)) != 0) {
			if (rc == -EAGAIN) {
				mimo_cpu_relax();
				continue;
			}
			mimo_buf_reset(&s->body);
			if (rc == -ENODATA)
				atomic_fetch_add(&b->void_cells, 1);
			else
				lost++;
			notify_bridge_handled(b, !ovf, ovf);
		}
		atomic_fetch_add(&b->dropped, lost);
	}
	if (lost > 0)
		MIMO_WARN(COMP, "shutdown: %" PRIu64 " undelivered event(s) lost%s", lost,
			  notify_spool_is_open(&b->spool) ? ""
							  : " (configure a spool to keep them)");
}

void *notify_sender_main(void *arg)
{
	struct notify_bridge *b = arg;
	struct notify_sender *s = calloc(1, sizeof(*s));
	bool in_flight = false;

	if (s == NULL) {
		MIMO_ERR(COMP, "sender cannot start: out of memory; events will not be delivered");
		return NULL;
	}
	b->sender = s;
	s->b = b;
	s->poster = b->poster;
	s->probe_ms = PROBE_MIN_MS;
	s->last_activity_ns = mimo_now_ns();
	/* Spooled events from an earlier run go first: they are older than anything queued. */
	s->down = notify_spool_is_open(&b->spool) && !notify_spool_empty(&b->spool);

	while (!stopping(s)) {
		int rc;

		apply_config(s);
		if (s->down) {
			down_mode_step(s);
			continue;
		}
		rc = queue_pop(b, &s->body, &s->body_ovf);
		if (rc == 1) {
			in_flight = true;
			deliver_from_ring(s);
			if (stopping(s))
				break;
			in_flight = false;
			s->last_activity_ns = mimo_now_ns();
		} else if (rc == -ENODATA || rc == -ENOMEM) {
			atomic_fetch_add(rc == -ENODATA ? &b->void_cells : &b->dropped, 1);
			mimo_buf_reset(&s->body);
			notify_bridge_handled(b, !s->body_ovf, s->body_ovf);
		} else if (rc == 0) {
			idle_wait(s);
		} else {
			mimo_cpu_relax(); /* -EAGAIN: a producer is mid-copy; look again */
		}
	}
	finish(s, in_flight && s->body.len > 0);

	notify_config_free(&s->cfg);
	mimo_buf_free(&s->body);
	b->sender = NULL;
	free(s);
	return NULL;
}
