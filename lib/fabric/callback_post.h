/*
 * Posting one message up to its slot's HTTP callback, with retries: the delivery loop that
 * mimo_agent (one thread per slot, from its durable queue) and mimo_gateway (worker threads,
 * from JetStream) both run.
 *
 * Before each attempt the slot is looked up again (only when the registry changed): a deleted
 * slot drops the message, a new URL or secret is used from the next attempt on. A 2xx delivers
 * it; a 5xx, 408, 429, a timeout or a connection error is retried after a pause that doubles
 * from backoff_ms up to 60 s (+-20% jitter, at least what Retry-After asks, at most
 * max_pause_ms) until the message expires; any other status drops it for good. Every attempt
 * carries the same webhook-id, derived from the message's idempotency key, so the receiver can
 * tell a repeat (a retry, or a delivery repeated after a crash) from a new message.
 *
 * Threading: a poster belongs to one thread, which calls fab_cb_post; fab_cb_poster_abort may
 * be called from any thread. Errors: fab_cb_poster_new returns NULL when out of memory;
 * fab_cb_post reports what became of the message as its result, and logs why (under the
 * component the caller named) - it never fails otherwise.
 */
#ifndef MIMO_FAB_CALLBACK_POST_H
#define MIMO_FAB_CALLBACK_POST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct slots;

struct fab_cb_poster_opts {
	struct slots *slots;	   /* where the message's slot is looked up (not owned) */
	uint32_t timeout_ms;	   /* per attempt, connection included */
	uint32_t backoff_ms;	   /* the first pause after a failure */
	uint32_t max_pause_ms;	   /* the longest pause (0: 60 s, the backoff's own cap) */
	const char *user_agent;	   /* "mimo-agent/<version>": a string that outlives the poster */
	bool allow_link_local;	   /* --allow-link-local-callbacks (lib/http/dest.h) */
	const char *log_component; /* its lines are logged under this name (outlives the poster) */
};

/* One message up, as the callback receives it. Every pointer is the caller's, read during
 * fab_cb_post only. */
struct fab_cb_msg {
	uint64_t slot_id;
	uint64_t key_hi, key_lo; /* idempotency key: the webhook-id */
	int64_t expires_ms;	 /* Unix ms; 0: never */
	const char *name;	 /* how logs name it: "<message id>" or "<id> from <agent>" */
	const char *body;	 /* the callback's JSON (fab_callback_json) */
	size_t len;
};

/* What the caller's thread is told between attempts. arg is the caller's. */
struct fab_cb_hooks {
	void *arg;
	/* Whether to give up now (the program is stopping): checked after each failed attempt
	 * and every 50 ms of a pause. NULL: never. */
	bool (*stopping)(void *arg);
	/* Before each pause (NULL: nothing); the gateway tells JetStream it is still on it. */
	void (*pausing)(void *arg);
};

enum fab_cb_outcome {
	FAB_CB_DELIVERED, /* answered 2xx */
	FAB_CB_DROPPED,	  /* refused for good, expired, or its slot deleted (logged) */
	FAB_CB_STOPPED,	  /* stopping or aborted: not delivered, to be kept for later */
};

/* A poster with its own keep-alive connection (lib/http's poster); options copied. NULL when
 * out of memory. */
struct fab_cb_poster *fab_cb_poster_new(const struct fab_cb_poster_opts *o);
void fab_cb_poster_free(struct fab_cb_poster *p);

/* Post m until it is delivered, dropped, or the caller stops. Blocks (the thread's own). */
enum fab_cb_outcome fab_cb_post(struct fab_cb_poster *p, const struct fab_cb_msg *m,
				const struct fab_cb_hooks *h);

/* Any thread: end the attempt in flight and the pauses; fab_cb_post returns FAB_CB_STOPPED
 * from now on. */
void fab_cb_poster_abort(struct fab_cb_poster *p);

#endif
