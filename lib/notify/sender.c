/*
 * The sender thread: takes events from the ring in order and delivers them one at a time over
 * a keep-alive libcurl connection, with retries, signatures and the spool.
 *
 * Sleeping without costing producers a system call: while events arrived within the last
 * SHALLOW_WINDOW the sender naps for SHALLOW_POLL_MS and producers never wake it; after that
 * it announces a deep sleep in b->sleeping and the first producer to see the flag wakes it
 * (once per idle period, not per event).
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
#include "random.h"
#include "webhook.h"

#define COMP "notify"

#define SHALLOW_WINDOW_NS (100LL * 1000 * 1000)
#define SHALLOW_POLL_MS	  1
#define DEEP_POLL_MS	  1000
#define DOWN_POLL_MS	  100
#define PROBE_MIN_MS	  1000
#define PROBE_MAX_MS	  30000
#define SPOOL_BATCH	  1024

enum outcome {
	OUT_OK,
	OUT_RETRY,
	OUT_PERMANENT,
	OUT_ABORTED
};
enum delivery {
	D_SENT,
	D_FAILED,
	D_EXHAUSTED,
	D_ABORTED
};

struct notify_sender {
	struct notify_bridge *b;
	CURL *easy;
	struct notify_config cfg;
	uint64_t cfg_gen;
	struct notify_signer signer;
	struct mimo_buf body; /* envelope of the event in flight */
	char id[NOTIFY_WEBHOOK_ID_LEN];
	uint64_t seq;
	bool down; /* the spool holds undelivered events; new ones queue behind them there */
	/* The last event exhausted its retries: until one gets through, each event is tried
	 * once, so a dead receiver drains the queue at the speed of a refused connection. */
	bool receiver_down;
	int64_t next_probe_ns;
	uint32_t probe_ms;
	int64_t last_activity_ns;
	struct mimo_ratelimit rl;
	char errbuf[CURL_ERROR_SIZE];
};

static bool stopping(const struct notify_sender *s)
{
	return atomic_load_explicit(&s->b->stop, memory_order_acquire) != 0;
}

static size_t discard_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	(void)ptr;
	(void)userdata;
	return size * nmemb;
}

/* Sleep for ms, or until shutdown. Wake-ups for other reasons (flush, producers) do not cut
 * the sleep short: a backoff or a Retry-After pause is kept. Returns false when stopping. */
static bool nap(struct notify_sender *s, uint32_t ms)
{
	int64_t deadline = mimo_now_ns() + (int64_t)ms * 1000000;

	for (;;) {
		int64_t left = deadline - mimo_now_ns();

		if (stopping(s))
			return false;
		if (left <= 0)
			return true;
		/* At most a second per poll: the timeout is an int of milliseconds. */
		curl_multi_poll(s->b->multi, NULL, 0,
				(int)MIMO_MIN((left + 999999) / 1000000, 1000), NULL);
	}
}

/* Sleep for up to ms, returning early when woken (a producer has queued an event). */
static void doze(struct notify_sender *s, uint32_t ms)
{
	if (!stopping(s))
		curl_multi_poll(s->b->multi, NULL, 0, (int)ms, NULL);
}

static void apply_config(struct notify_sender *s)
{
	struct notify_bridge *b = s->b;
	uint64_t gen = atomic_load(&b->cfg_gen);

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

	if (notify_signer_init(&s->signer, s->cfg.secret) != 0)
		MIMO_ERR(COMP, "secret: a \"whsec_\" secret must be base64 of at most 1 KiB; "
			       "events are sent unsigned");
	curl_easy_setopt(s->easy, CURLOPT_URL, s->cfg.url);
	curl_easy_setopt(s->easy, CURLOPT_TIMEOUT_MS, (long)s->cfg.timeout_ms);
	curl_easy_setopt(s->easy, CURLOPT_CUSTOMREQUEST,
			 strcmp(s->cfg.method, "PUT") == 0 ? "PUT" : NULL);
}

static int setup_curl(struct notify_sender *s)
{
	s->easy = curl_easy_init();
	if (s->easy == NULL)
		return -ENOMEM;
	curl_easy_setopt(s->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(s->easy, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(s->easy, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(s->easy, CURLOPT_WRITEFUNCTION, discard_body);
	curl_easy_setopt(s->easy, CURLOPT_ERRORBUFFER, s->errbuf);
	curl_easy_setopt(s->easy, CURLOPT_USERAGENT, "mimo-notify/" MIMO_VERSION);
	return 0;
}

static struct curl_slist *make_headers(struct notify_sender *s, const char *id, const char *body,
				       size_t len)
{
	struct curl_slist *h = NULL, *t;
	char line[128];
	int64_t now = mimo_unix_seconds();

	/* "Expect:" stops libcurl from waiting for 100-continue on bodies over 1 KiB. */
	static const char *const fixed[] = { "Content-Type: application/json", "Expect:" };

	for (size_t i = 0; i < 2; i++) {
		t = curl_slist_append(h, fixed[i]);
		if (t == NULL)
			goto fail;
		h = t;
	}
	snprintf(line, sizeof(line), "webhook-id: %s", id);
	if ((t = curl_slist_append(h, line)) == NULL)
		goto fail;
	h = t;
	/* The attempt's time, not the event's: receivers reject stale timestamps (replay
	 * protection), and a spooled event may be sent hours after it was queued. */
	snprintf(line, sizeof(line), "webhook-timestamp: %" PRId64, now);
	if ((t = curl_slist_append(h, line)) == NULL)
		goto fail;
	h = t;
	if (s->signer.enabled) {
		char sig[NOTIFY_SIGNATURE_LEN];

		if (notify_sign(&s->signer, id, now, body, len, sig) != 0)
			goto fail;
		snprintf(line, sizeof(line), "webhook-signature: %s", sig);
		if ((t = curl_slist_append(h, line)) == NULL)
			goto fail;
		h = t;
	}
	return h;
fail:
	curl_slist_free_all(h);
	return NULL;
}

static bool permanent_curl_error(CURLcode rc)
{
	switch (rc) {
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_URL_MALFORMAT:
	case CURLE_NOT_BUILT_IN:
	case CURLE_BAD_FUNCTION_ARGUMENT:
		return true;
	default:
		return false;
	}
}

/* One attempt. *retry_after_ms is set when the receiver asked for a pause. */
static enum outcome attempt(struct notify_sender *s, const char *id, const char *body, size_t len,
			    uint32_t *retry_after_ms, char *why, size_t why_len)
{
	struct notify_bridge *b = s->b;
	struct curl_slist *hdrs = make_headers(s, id, body, len);
	CURLcode result = CURLE_OK;
	enum outcome out;
	int64_t spin_until;
	bool done = false;
	int running = 1;
	long status = 0;
	CURLMsg *msg;
	int left;

	*retry_after_ms = 0;
	if (hdrs == NULL) {
		snprintf(why, why_len, "out of memory");
		return OUT_RETRY;
	}
	s->errbuf[0] = '\0';
	curl_easy_setopt(s->easy, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(s->easy, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(s->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	if (curl_multi_add_handle(b->multi, s->easy) != CURLM_OK) {
		curl_easy_setopt(s->easy, CURLOPT_HTTPHEADER, NULL);
		curl_slist_free_all(hdrs);
		snprintf(why, why_len, "libcurl refused the transfer");
		return OUT_RETRY;
	}
	spin_until = mimo_now_ns() + (int64_t)s->cfg.spin_us * 1000;
	for (;;) {
		curl_multi_perform(b->multi, &running);
		if (running == 0)
			break;
		if (stopping(s))
			break;
		/* Spin for a short while before sleeping in poll(): a loopback or LAN answer
		 * usually comes within it, and the thread's wake-up after a sleep costs as much as
		 * the round trip itself. Slow receivers cost at most spin_us of CPU per request. */
		if (mimo_now_ns() < spin_until) {
			mimo_cpu_relax();
			continue;
		}
		curl_multi_poll(b->multi, NULL, 0, 1000, NULL);
	}
	while ((msg = curl_multi_info_read(b->multi, &left)) != NULL) {
		if (msg->msg == CURLMSG_DONE) {
			result = msg->data.result;
			done = true;
		}
	}
	curl_multi_remove_handle(b->multi, s->easy);
	curl_easy_setopt(s->easy, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(hdrs);

	if (running != 0)
		return OUT_ABORTED;
	if (!done) {
		/* Never count an event as sent on a transfer libcurl did not report finished. */
		snprintf(why, why_len, "transfer ended without a result");
		return OUT_RETRY;
	}
	if (result != CURLE_OK) {
		snprintf(why, why_len, "%s", s->errbuf[0] ? s->errbuf : curl_easy_strerror(result));
		return permanent_curl_error(result) ? OUT_PERMANENT : OUT_RETRY;
	}
	curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &status);
	if (status >= 200 && status < 300)
		return OUT_OK;
	snprintf(why, why_len, "HTTP %ld", status);
	out = (status == 408 || status == 429 || status >= 500) ? OUT_RETRY : OUT_PERMANENT;
	if (status == 429 || status == 503) {
		curl_off_t ra = 0;

		if (curl_easy_getinfo(s->easy, CURLINFO_RETRY_AFTER, &ra) == CURLE_OK && ra > 0)
			*retry_after_ms = (uint32_t)MIMO_MIN(
				(uint64_t)MIMO_MIN(ra, (curl_off_t)4000000) * 1000,
				(uint64_t)s->cfg.max_retry_after_ms);
	}
	return out;
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

uint64_t notify_backoff_ms(uint32_t base_ms, uint32_t attempt, uint32_t retry_after_ms)
{
	/* base, 2 x base, 4 x base... with +-20% jitter, in 64 bits and capped, so that large
	 * settings neither wrap nor stall the queue for days. */
	uint64_t delay = (uint64_t)base_ms << MIMO_MIN(attempt, 20u);

	delay = MIMO_MIN(delay, (uint64_t)NOTIFY_MAX_DELAY_MS);
	delay = delay - delay / 5 + mimo_random_below(delay / 5 * 2 + 1);
	return MIMO_MAX(delay, (uint64_t)retry_after_ms);
}

/* Deliver one event with the configured retries and backoff. */
static enum delivery deliver(struct notify_sender *s, const char *id, const char *body, size_t len)
{
	struct notify_bridge *b = s->b;
	char why[CURL_ERROR_SIZE + 32];

	for (uint32_t n = 0;; n++) {
		uint32_t retry_after;
		uint64_t delay;
		enum outcome out = attempt(s, id, body, len, &retry_after, why, sizeof(why));

		switch (out) {
		case OUT_OK:
			atomic_fetch_add(&b->sent, 1);
			if (s->receiver_down)
				MIMO_INFO(COMP, "%s answers again", s->cfg.url);
			s->receiver_down = false;
			return D_SENT;
		case OUT_ABORTED:
			return D_ABORTED;
		case OUT_PERMANENT:
			atomic_fetch_add(&b->failed, 1);
			log_limited(s, MIMO_LOG_ERROR, "event %s to %s failed for good: %s", id,
				    why);
			return D_FAILED;
		case OUT_RETRY:
			break;
		}
		if (n >= s->cfg.retries || s->receiver_down) {
			log_limited(s, MIMO_LOG_WARN, "event %s to %s: retries exhausted: %s", id,
				    why);
			s->receiver_down = true;
			return D_EXHAUSTED;
		}
		atomic_fetch_add(&b->retried, 1);
		delay = notify_backoff_ms(s->cfg.backoff_ms, n, retry_after);
		log_limited(s, MIMO_LOG_DEBUG, "event %s to %s: %s; retrying", id, why);
		if (!nap(s, (uint32_t)delay))
			return D_ABORTED;
	}
}

/* Take up to max events from the ring and write them to the spool as one segment. */
static uint64_t ring_to_spool(struct notify_sender *s, size_t max)
{
	struct notify_bridge *b = s->b;
	struct spool_rec *recs = calloc(max, sizeof(*recs));
	size_t *offs = calloc(max, sizeof(*offs));
	struct mimo_buf all = { 0 };
	size_t n = 0, voids = 0, lost = 0;
	int rc;

	if (recs == NULL || offs == NULL) {
		free(recs);
		free(offs);
		return 0;
	}
	while (n < max) {
		size_t before = all.len;

		rc = notify_ring_pop_envelope(&b->ring, &all);
		if (rc == -EAGAIN) {
			mimo_cpu_relax(); /* a producer is filling the cell: it takes nanoseconds */
			continue;
		}
		if (rc == 0)
			break;
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
		notify_webhook_id(recs[n].id, b->id_prefix, ++s->seq);
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
		notify_bridge_handled(b, n + voids + lost);
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
		if (notify_ring_depth(&b->ring) > notify_ring_capacity(&b->ring) / 2)
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
	s->probe_ms = MIMO_MIN(s->probe_ms * 2, PROBE_MAX_MS);
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
	if (notify_ring_depth(&b->ring) > 0)
		wait_ms = MIMO_MIN(wait_ms, DOWN_POLL_MS);
	if (wait_ms > 0)
		doze(s, (uint32_t)MIMO_MIN(wait_ms, DOWN_POLL_MS));
}

static void deliver_from_ring(struct notify_sender *s)
{
	struct notify_bridge *b = s->b;
	enum delivery d;

	notify_webhook_id(s->id, b->id_prefix, ++s->seq);
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
	notify_bridge_handled(b, 1);
}

/* Wait for work without making producers pay a system call per event. */
static void idle_wait(struct notify_sender *s)
{
	struct notify_bridge *b = s->b;

	if (mimo_now_ns() - s->last_activity_ns < SHALLOW_WINDOW_NS) {
		doze(s, SHALLOW_POLL_MS);
		return;
	}
	/* seq_cst store, then seq_cst load of enq: either we see the producer's claim, or the
	 * producer (whose CAS on enq is seq_cst) sees our flag and wakes us. */
	atomic_store(&b->sleeping, 1);
	if (atomic_load(&b->ring.enq) != atomic_load(&b->ring.deq) || stopping(s)) {
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
			notify_bridge_handled(b, 1);
		}
		while (ring_to_spool(s, SPOOL_BATCH) > 0)
			;
		notify_spool_close(&b->spool);
	} else {
		int rc;

		if (in_flight) {
			lost++;
			notify_bridge_handled(b, 1);
		}
		while ((rc = notify_ring_pop_envelope(&b->ring, &s->body)) != 0) {
			if (rc == -EAGAIN) {
				mimo_cpu_relax();
				continue;
			}
			mimo_buf_reset(&s->body);
			if (rc == -ENODATA)
				atomic_fetch_add(&b->void_cells, 1);
			else
				lost++;
			notify_bridge_handled(b, 1);
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

	if (s == NULL || setup_curl(s) != 0) {
		MIMO_ERR(COMP, "sender cannot start: out of memory; events will not be delivered");
		free(s);
		return NULL;
	}
	b->sender = s;
	s->b = b;
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
		rc = notify_ring_pop_envelope(&b->ring, &s->body);
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
			notify_bridge_handled(b, 1);
		} else if (rc == 0) {
			idle_wait(s);
		} else {
			mimo_cpu_relax(); /* -EAGAIN: a producer is mid-copy; look again */
		}
	}
	finish(s, in_flight && s->body.len > 0);

	curl_easy_cleanup(s->easy);
	notify_config_free(&s->cfg);
	mimo_buf_free(&s->body);
	b->sender = NULL;
	free(s);
	return NULL;
}
