/*
 * An HTTP poster: one keep-alive libcurl connection that sends JSON bodies (POST or PUT) with
 * Standard Webhooks headers, says whether a failure is worth retrying, and waits in a way
 * other threads can interrupt. The event bridge's sender and the agent's callbacks use it;
 * each decides its own retry policy.
 *
 * One thread owns a poster; mimo_http_poster_wakeup and _set_abort may be called from any.
 */
#ifndef MIMO_HTTP_POSTER_H
#define MIMO_HTTP_POSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mimo_http_poster;

struct mimo_http_poster_opts {
	const char *url;
	const char *method;	     /* "POST" (default) or "PUT" */
	uint32_t timeout_ms;	     /* per attempt, connection included */
	uint32_t spin_us;	     /* spin this long for the answer before sleeping in poll() */
	uint32_t max_retry_after_ms; /* cap on a Retry-After the receiver asks for */
	const char *secret; /* Standard Webhooks: "whsec_<base64>" or raw bytes; NULL: unsigned */
	const char *user_agent;
	/* Refuse to connect to link-local and cloud-metadata addresses (dest.h), judged on the
	 * address each connection is about to use, after DNS: a refusal is MIMO_HTTP_PERMANENT. */
	bool forbid_link_local;
};

enum mimo_http_outcome {
	MIMO_HTTP_OK,	     /* 2xx */
	MIMO_HTTP_RETRY,     /* 408, 429, 5xx, timeouts, connection errors */
	MIMO_HTTP_PERMANENT, /* any other status, an unusable URL */
	MIMO_HTTP_ABORTED,   /* mimo_http_poster_set_abort */
};

/* NULL when libcurl cannot give a handle. */
struct mimo_http_poster *mimo_http_poster_new(void);
void mimo_http_poster_free(struct mimo_http_poster *p);

/* Apply settings (copied). Returns 0, or -EINVAL for a "whsec_" secret that is not base64 (the
 * poster then sends unsigned) - the caller says so in its own log. */
int mimo_http_poster_configure(struct mimo_http_poster *p, const struct mimo_http_poster_opts *o);

/*
 * One attempt: send body with headers webhook-id: id, webhook-timestamp: now and, with a
 * secret, webhook-signature. *retry_after_ms receives a receiver's Retry-After (429, 503);
 * *status the HTTP status (0 without one); why a reason for logs on failure.
 */
enum mimo_http_outcome mimo_http_poster_send(struct mimo_http_poster *p, const char *id,
					     const char *body, size_t len, uint32_t *retry_after_ms,
					     long *status, char *why, size_t why_len);

/* Sleep up to ms; returns early when woken or aborting. */
void mimo_http_poster_wait(struct mimo_http_poster *p, uint32_t ms);
/* Sleep ms unless aborted (wake-ups do not cut it short). False when aborting. */
bool mimo_http_poster_nap(struct mimo_http_poster *p, uint32_t ms);
void mimo_http_poster_wakeup(struct mimo_http_poster *p);
/* Abort the transfer in flight and the waits, until cleared. */
void mimo_http_poster_set_abort(struct mimo_http_poster *p, bool abort);
bool mimo_http_poster_aborting(const struct mimo_http_poster *p);

/* The pause before retry number attempt (0 = after the first failure): base_ms doubling,
 * capped at 60 s, +-20% jitter, at least retry_after_ms. */
uint64_t mimo_http_backoff_ms(uint32_t base_ms, uint32_t attempt, uint32_t retry_after_ms);

#endif
