/*
 * Delivery of messages up to the slots' HTTP callbacks: one thread per slot that has had a
 * message, each with its own keep-alive connection, taking the slot's records from the durable
 * queue in order and posting each until it is delivered, refused for good or expired
 * (lib/fabric/callback_post.h: retries, backoff, the webhook-id). A record is released only
 * then; one still being retried when the agent stops stays queued for its next start.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "agent.h"
#include "callback.h"
#include "callback_post.h"

#define COMP "deliver"

struct deliverer {
	struct deliverer *next;
	struct agent *a;
	uint64_t slot_id;
	struct upq_consumer *cons;
	struct fab_cb_poster *poster;
	pthread_t thread;
};

/* A queued record's callback body: 0 or -ENOMEM. */
static int callback_body(const struct up_rec *r, const char *agent_id, struct mimo_buf *out)
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

/* Before each pause between attempts: one retry more. */
static void retrying(void *arg)
{
	struct agent *a = arg;

	__atomic_add_fetch(&a->up_retried, 1, __ATOMIC_RELAXED);
}

static bool stopping(void *arg)
{
	struct agent *a = arg;
	bool stop;

	pthread_mutex_lock(&a->lock);
	stop = a->stop;
	pthread_mutex_unlock(&a->lock);
	return stop;
}

/* Deliver one record: returns false only when the agent is stopping (record kept). */
static bool deliver_one(struct deliverer *d, const struct up_rec *r, struct mimo_buf *body)
{
	char name[MIMO_WIRE_MAX_MSG_ID + 1];
	struct fab_cb_msg m = { .slot_id = r->slot_id,
				.key_hi = r->key_hi,
				.key_lo = r->key_lo,
				.expires_ms = r->expires_ms,
				.name = name };
	struct fab_cb_hooks h = { .arg = d->a, .stopping = stopping, .pausing = retrying };
	enum fab_cb_outcome out;

	if (callback_body(r, d->a->o.agent_id, body) != 0)
		return true;
	snprintf(name, sizeof(name), "%.*s", (int)r->msg_id_len, r->msg_id);
	m.body = body->data;
	m.len = body->len;
	out = fab_cb_post(d->poster, &m, &h);
	if (out == FAB_CB_STOPPED)
		return false;
	__atomic_add_fetch(out == FAB_CB_DELIVERED ? &d->a->up_delivered : &d->a->up_dropped, 1,
			   __ATOMIC_RELAXED);
	return true;
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
	d->poster = fab_cb_poster_new(
		&(struct fab_cb_poster_opts){ .slots = a->slots,
					      .timeout_ms = a->o.callback_timeout_ms,
					      .backoff_ms = a->o.callback_backoff_ms,
					      .user_agent = "mimo-agent/" MIMO_VERSION,
					      .allow_link_local = a->o.allow_link_local_callbacks,
					      .log_component = COMP });
	d->cons = upq_consumer_open(a->upq, slot_id);
	if (d->poster == NULL || d->cons == NULL) {
		fab_cb_poster_free(d->poster);
		upq_consumer_close(d->cons);
		free(d);
		return -ENOMEM;
	}
	rc = pthread_create(&d->thread, NULL, deliver_main, d);
	if (rc != 0) {
		fab_cb_poster_free(d->poster);
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
		fab_cb_poster_abort(d->poster);
	}
	while (list != NULL) {
		struct deliverer *d = list;

		list = d->next;
		pthread_join(d->thread, NULL);
		upq_consumer_close(d->cons);
		fab_cb_poster_free(d->poster);
		free(d);
	}
}
