/*
 * Delivery of messages up to the slots' HTTP callbacks: one thread per slot that has had a
 * message, each with its own keep-alive connection (lib/http's poster), taking the slot's
 * records from the durable queue in order. A 5xx, 408, 429, a timeout or a connection error
 * is retried after a pause that doubles from callback_backoff_ms up to 60 s (with jitter, at
 * least what Retry-After asks) until the message's TTL ends; any other status is final. The
 * webhook-id is derived from the message's idempotency key, so every attempt - and a delivery
 * repeated after a crash - carries the same one.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent.h"
#include "compiler.h"
#include "log.h"
#include "poster.h"
#include "webhook.h"

#define COMP "deliver"

struct deliverer {
	struct deliverer *next;
	struct agent *a;
	uint64_t slot_id;
	struct upq_consumer *cons;
	struct mimo_http_poster *poster;
	pthread_t thread;
	char url[FAB_URL_MAX];
	char secret[FAB_SECRET_LEN];
	struct slot_info si; /* the slot as of generation si_gen */
	uint64_t si_gen;
	bool si_ok;
	struct mimo_ratelimit rl;
};

/* The record's slot, looked up again only when the registry changed. */
static bool slot_of(struct deliverer *d, uint64_t slot_id, struct slot_info *si)
{
	uint64_t gen = slots_generation(d->a->slots);

	if (gen != d->si_gen || d->si.id != slot_id) {
		d->si_ok = slots_get(d->a->slots, slot_id, &d->si) == 0;
		d->si_gen = gen;
	}
	if (d->si_ok)
		*si = d->si;
	return d->si_ok;
}

int fab_callback_body(const struct up_rec *r, const char *agent_id, struct mimo_buf *out)
{
	struct fab_callback m = { .msg_id = r->msg_id,
				  .msg_id_len = r->msg_id_len,
				  .agent_id = agent_id,
				  .content = r->content,
				  .content_len = r->content_len,
				  .plugin = r->plugin,
				  .plugin_len = r->plugin_len,
				  .slot_id = r->slot_id,
				  .timestamp = r->accepted_ms / 1000 };

	return fab_callback_json(out, &m);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool stopping(struct deliverer *d)
{
	bool stop;

	pthread_mutex_lock(&d->a->lock);
	stop = d->a->stop;
	pthread_mutex_unlock(&d->a->lock);
	return stop;
}

static void count(struct deliverer *d, bool delivered)
{
	__atomic_add_fetch(delivered ? &d->a->up_delivered : &d->a->up_dropped, 1,
			   __ATOMIC_RELAXED);
}

/* Deliver one record: returns false only when the agent is stopping (record kept). */
static bool deliver_one(struct deliverer *d, const struct up_rec *r, struct mimo_buf *body)
{
	struct slot_info si;
	char id[WEBHOOK_ID_LEN], why[256];
	uint32_t attempt = 0;
	uint64_t sup;

	for (;;) {
		enum mimo_http_outcome out;
		uint32_t retry_after = 0;
		uint64_t pause;
		long status = 0;

		if (!slot_of(d, r->slot_id, &si)) {
			if (mimo_ratelimit_allow(&d->rl, 1000000000, &sup))
				MIMO_WARN(COMP, "slot %" PRIu64 " deleted: message %.*s dropped",
					  r->slot_id, (int)r->msg_id_len, r->msg_id);
			count(d, false);
			return true;
		}
		if (strcmp(si.url, d->url) != 0 || strcmp(si.secret, d->secret) != 0) {
			struct mimo_http_poster_opts o = {
				.url = si.url,
				.timeout_ms = d->a->o.callback_timeout_ms,
				.spin_us = 200,
				.max_retry_after_ms = 60000,
				.secret = si.secret,
				.user_agent = "mimo-agent/" MIMO_VERSION,
				.forbid_link_local = !d->a->o.allow_link_local_callbacks
			};

			mimo_http_poster_configure(d->poster, &o);
			snprintf(d->url, sizeof(d->url), "%s", si.url);
			snprintf(d->secret, sizeof(d->secret), "%s", si.secret);
		}
		if (now_ms() > r->expires_ms) {
			MIMO_WARN(COMP, "slot %" PRIu64 ": message %.*s expired undelivered (TTL)",
				  r->slot_id, (int)r->msg_id_len, r->msg_id);
			count(d, false);
			return true;
		}
		if (attempt == 0 && fab_callback_body(r, d->a->o.agent_id, body) != 0)
			return true;
		webhook_make_id(id, r->key_hi, r->key_lo);
		out = mimo_http_poster_send(d->poster, id, body->data, body->len, &retry_after,
					    &status, why, sizeof(why));
		if (out == MIMO_HTTP_OK) {
			count(d, true);
			return true;
		}
		if (out == MIMO_HTTP_ABORTED)
			return false;
		if (out == MIMO_HTTP_PERMANENT) {
			MIMO_WARN(COMP, "slot %" PRIu64 ": %s refused message %.*s for good: %s",
				  r->slot_id, d->url, (int)r->msg_id_len, r->msg_id, why);
			count(d, false);
			return true;
		}
		pause = mimo_http_backoff_ms(d->a->o.callback_backoff_ms, attempt++, retry_after);
		if (mimo_ratelimit_allow(&d->rl, 1000000000, &sup))
			MIMO_INFO(COMP, "slot %" PRIu64 ": %s: %s; retrying in %" PRIu64 " ms",
				  r->slot_id, d->url, why, pause);
		if (now_ms() + (int64_t)pause > r->expires_ms)
			pause = (uint64_t)MIMO_MAX(r->expires_ms - now_ms(), (int64_t)1);
		if (!mimo_http_poster_nap(d->poster, (uint32_t)MIMO_MIN(pause, 60000u)) ||
		    stopping(d))
			return false;
	}
}

static void *deliver_main(void *arg)
{
	struct deliverer *d = arg;
	struct mimo_buf rec = { 0 }, body = { 0 };
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	for (;;) {
		struct up_rec r;
		struct upq_pos next;
		int rc = upq_next(d->cons, &r, &next, &rec, 1000);

		if (rc == -ESHUTDOWN)
			break;
		if (rc != 0)
			continue;
		if (!deliver_one(d, &r, &body))
			break;
		upq_release(d->cons, next);
	}
	mimo_buf_free(&rec);
	mimo_buf_free(&body);
	return NULL;
}

int deliver_ensure_locked(struct agent *a, uint64_t slot_id)
{
	struct deliverer *d;
	int rc;

	for (d = a->deliverers; d != NULL; d = d->next) {
		if (d->slot_id == slot_id)
			return 0;
	}
	if (a->stop)
		return -ESHUTDOWN;
	d = calloc(1, sizeof(*d));
	if (d == NULL)
		return -ENOMEM;
	d->a = a;
	d->slot_id = slot_id;
	d->poster = mimo_http_poster_new();
	d->cons = upq_consumer_open(a->upq, slot_id);
	if (d->poster == NULL || d->cons == NULL) {
		mimo_http_poster_free(d->poster);
		upq_consumer_close(d->cons);
		free(d);
		return -ENOMEM;
	}
	rc = pthread_create(&d->thread, NULL, deliver_main, d);
	if (rc != 0) {
		mimo_http_poster_free(d->poster);
		upq_consumer_close(d->cons);
		free(d);
		return -rc;
	}
	d->next = a->deliverers;
	a->deliverers = d;
	return 0;
}

void deliver_stop_all(struct agent *a)
{
	struct deliverer *list;

	pthread_mutex_lock(&a->lock);
	list = a->deliverers;
	a->deliverers = NULL;
	pthread_mutex_unlock(&a->lock);
	for (struct deliverer *d = list; d != NULL; d = d->next) {
		upq_consumer_stop(d->cons);
		mimo_http_poster_set_abort(d->poster, true);
	}
	while (list != NULL) {
		struct deliverer *d = list;

		list = d->next;
		pthread_join(d->thread, NULL);
		upq_consumer_close(d->cons);
		mimo_http_poster_free(d->poster);
		free(d);
	}
}
