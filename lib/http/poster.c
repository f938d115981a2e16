/*
 * The HTTP poster (see poster.h). The transfer runs through a libcurl multi handle so that a
 * wait, or a transfer to a receiver that hangs, can be interrupted from another thread with
 * curl_multi_wakeup. While a request is in flight the owner spins for up to spin_us before it
 * sleeps in poll(): on loopback and LANs the answer comes within that window, and waking a
 * sleeping thread costs as much again as the round trip.
 */
#include "poster.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "clock.h"
#include "compiler.h"
#include "dest.h"
#include "random.h"
#include "webhook.h"

#define MAX_DELAY_MS 60000

struct mimo_http_poster {
	CURLM *multi;
	CURL *easy;
	_Atomic bool abort;
	uint32_t spin_us;
	uint32_t max_retry_after_ms;
	struct webhook_signer signer;
	char errbuf[CURL_ERROR_SIZE];
	bool forbid_link_local;
	char refused[160]; /* why the last attempt's address was refused, or "" */
};

static size_t discard_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	(void)ptr;
	(void)userdata;
	return size * nmemb;
}

/* libcurl asks us for every socket it connects, with the address it resolved: the one place
 * where a name that resolved harmlessly at registration and to a metadata address now (DNS
 * rebinding) is caught before a single packet leaves. */
static curl_socket_t open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *addr)
{
	struct mimo_http_poster *p = clientp;
	const char *reason;

	(void)purpose;
	reason = p->forbid_link_local ? mimo_dest_refused(&addr->addr, addr->addrlen) : NULL;
	if (reason != NULL) {
		char text[INET6_ADDRSTRLEN] = "?";
		const void *in =
			addr->family == AF_INET6
				? (const void *)&((struct sockaddr_in6 *)&addr->addr)->sin6_addr
				: (const void *)&((struct sockaddr_in *)&addr->addr)->sin_addr;

		inet_ntop(addr->family, in, text, sizeof(text));
		snprintf(p->refused, sizeof(p->refused),
			 "%s is a %s address: refused (see --allow-link-local-callbacks)", text,
			 reason);
		return CURL_SOCKET_BAD;
	}
	return socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
}

struct mimo_http_poster *mimo_http_poster_new(void)
{
	struct mimo_http_poster *p = calloc(1, sizeof(*p));

	if (p == NULL)
		return NULL;
	p->multi = curl_multi_init();
	p->easy = curl_easy_init();
	if (p->multi == NULL || p->easy == NULL) {
		mimo_http_poster_free(p);
		return NULL;
	}
	curl_easy_setopt(p->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(p->easy, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(p->easy, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(p->easy, CURLOPT_WRITEFUNCTION, discard_body);
	curl_easy_setopt(p->easy, CURLOPT_ERRORBUFFER, p->errbuf);
	curl_easy_setopt(p->easy, CURLOPT_OPENSOCKETFUNCTION, open_socket);
	curl_easy_setopt(p->easy, CURLOPT_OPENSOCKETDATA, p);
	p->spin_us = 200;
	p->max_retry_after_ms = 60000;
	return p;
}

void mimo_http_poster_free(struct mimo_http_poster *p)
{
	if (p == NULL)
		return;
	if (p->easy != NULL)
		curl_easy_cleanup(p->easy);
	if (p->multi != NULL)
		curl_multi_cleanup(p->multi);
	free(p);
}

int mimo_http_poster_configure(struct mimo_http_poster *p, const struct mimo_http_poster_opts *o)
{
	int rc = webhook_signer_init(&p->signer, o->secret);

	curl_easy_setopt(p->easy, CURLOPT_URL, o->url);
	curl_easy_setopt(p->easy, CURLOPT_TIMEOUT_MS, (long)o->timeout_ms);
	curl_easy_setopt(p->easy, CURLOPT_CUSTOMREQUEST,
			 o->method != NULL && strcmp(o->method, "PUT") == 0 ? "PUT" : NULL);
	curl_easy_setopt(p->easy, CURLOPT_USERAGENT,
			 o->user_agent != NULL ? o->user_agent : "mimo/" MIMO_VERSION);
	p->spin_us = o->spin_us;
	p->max_retry_after_ms = o->max_retry_after_ms;
	p->forbid_link_local = o->forbid_link_local;
	return rc;
}

void mimo_http_poster_wakeup(struct mimo_http_poster *p)
{
	curl_multi_wakeup(p->multi);
}

void mimo_http_poster_set_abort(struct mimo_http_poster *p, bool abort)
{
	atomic_store(&p->abort, abort);
	if (abort)
		curl_multi_wakeup(p->multi);
}

bool mimo_http_poster_aborting(const struct mimo_http_poster *p)
{
	return atomic_load_explicit(&p->abort, memory_order_acquire);
}

void mimo_http_poster_wait(struct mimo_http_poster *p, uint32_t ms)
{
	if (!mimo_http_poster_aborting(p))
		curl_multi_poll(p->multi, NULL, 0, (int)MIMO_MIN(ms, 1000000u), NULL);
}

bool mimo_http_poster_nap(struct mimo_http_poster *p, uint32_t ms)
{
	int64_t deadline = mimo_now_ns() + (int64_t)ms * 1000000;

	for (;;) {
		int64_t left = deadline - mimo_now_ns();

		if (mimo_http_poster_aborting(p))
			return false;
		if (left <= 0)
			return true;
		/* At most a second per poll: the timeout is an int of milliseconds. */
		curl_multi_poll(p->multi, NULL, 0, (int)MIMO_MIN((left + 999999) / 1000000, 1000),
				NULL);
	}
}

uint64_t mimo_http_backoff_ms(uint32_t base_ms, uint32_t attempt, uint32_t retry_after_ms)
{
	/* base, 2 x base, 4 x base... with +-20% jitter, in 64 bits and capped, so that large
	 * settings neither wrap nor stall a queue for days. */
	uint64_t delay = (uint64_t)base_ms << MIMO_MIN(attempt, 20u);

	delay = MIMO_MIN(delay, (uint64_t)MAX_DELAY_MS);
	delay = delay - delay / 5 + mimo_random_below(delay / 5 * 2 + 1);
	return MIMO_MAX(delay, (uint64_t)retry_after_ms);
}

static struct curl_slist *make_headers(struct mimo_http_poster *p, const char *id, const char *body,
				       size_t len)
{
	/* "Expect:" stops libcurl from waiting for 100-continue on bodies over 1 KiB. */
	static const char *const fixed[] = { "Content-Type: application/json", "Expect:" };
	struct curl_slist *h = NULL, *t;
	int64_t now = mimo_unix_seconds();
	char line[128];

	for (size_t i = 0; i < 2; i++) {
		if ((t = curl_slist_append(h, fixed[i])) == NULL)
			goto fail;
		h = t;
	}
	snprintf(line, sizeof(line), "webhook-id: %s", id);
	if ((t = curl_slist_append(h, line)) == NULL)
		goto fail;
	h = t;
	/* The attempt's time, not the event's: receivers reject stale timestamps (replay
	 * protection), and a queued message may be sent hours after it was written. */
	snprintf(line, sizeof(line), "webhook-timestamp: %" PRId64, now);
	if ((t = curl_slist_append(h, line)) == NULL)
		goto fail;
	h = t;
	if (p->signer.enabled) {
		char sig[WEBHOOK_SIGNATURE_LEN];

		if (webhook_sign(&p->signer, id, now, body, len, sig) != 0)
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

enum mimo_http_outcome mimo_http_poster_send(struct mimo_http_poster *p, const char *id,
					     const char *body, size_t len, uint32_t *retry_after_ms,
					     long *status, char *why, size_t why_len)
{
	struct curl_slist *hdrs = make_headers(p, id, body, len);
	CURLcode result = CURLE_OK;
	enum mimo_http_outcome out;
	int64_t spin_until;
	bool done = false;
	int running = 1;
	CURLMsg *msg;
	int left;

	*retry_after_ms = 0;
	*status = 0;
	if (hdrs == NULL) {
		snprintf(why, why_len, "out of memory");
		return MIMO_HTTP_RETRY;
	}
	p->errbuf[0] = '\0';
	p->refused[0] = '\0';
	curl_easy_setopt(p->easy, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(p->easy, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(p->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	if (curl_multi_add_handle(p->multi, p->easy) != CURLM_OK) {
		curl_easy_setopt(p->easy, CURLOPT_HTTPHEADER, NULL);
		curl_slist_free_all(hdrs);
		snprintf(why, why_len, "libcurl refused the transfer");
		return MIMO_HTTP_RETRY;
	}
	spin_until = mimo_now_ns() + (int64_t)p->spin_us * 1000;
	for (;;) {
		curl_multi_perform(p->multi, &running);
		if (running == 0 || mimo_http_poster_aborting(p))
			break;
		if (mimo_now_ns() < spin_until) {
			mimo_cpu_relax();
			continue;
		}
		curl_multi_poll(p->multi, NULL, 0, 1000, NULL);
	}
	while ((msg = curl_multi_info_read(p->multi, &left)) != NULL) {
		if (msg->msg == CURLMSG_DONE) {
			result = msg->data.result;
			done = true;
		}
	}
	curl_multi_remove_handle(p->multi, p->easy);
	curl_easy_setopt(p->easy, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(hdrs);

	if (running != 0)
		return MIMO_HTTP_ABORTED;
	if (!done) {
		/* Never count a message as sent on a transfer libcurl did not report finished. */
		snprintf(why, why_len, "transfer ended without a result");
		return MIMO_HTTP_RETRY;
	}
	if (result != CURLE_OK && p->refused[0] != '\0') {
		snprintf(why, why_len, "%s", p->refused);
		return MIMO_HTTP_PERMANENT;
	}
	if (result != CURLE_OK) {
		snprintf(why, why_len, "%s", p->errbuf[0] ? p->errbuf : curl_easy_strerror(result));
		return permanent_curl_error(result) ? MIMO_HTTP_PERMANENT : MIMO_HTTP_RETRY;
	}
	curl_easy_getinfo(p->easy, CURLINFO_RESPONSE_CODE, status);
	if (*status >= 200 && *status < 300)
		return MIMO_HTTP_OK;
	snprintf(why, why_len, "HTTP %ld", *status);
	out = (*status == 408 || *status == 429 || *status >= 500) ? MIMO_HTTP_RETRY
								   : MIMO_HTTP_PERMANENT;
	if (*status == 429 || *status == 503) {
		curl_off_t ra = 0;

		if (curl_easy_getinfo(p->easy, CURLINFO_RETRY_AFTER, &ra) == CURLE_OK && ra > 0)
			*retry_after_ms = (uint32_t)MIMO_MIN(
				(uint64_t)MIMO_MIN(ra, (curl_off_t)4000000) * 1000,
				(uint64_t)p->max_retry_after_ms);
	}
	return out;
}
