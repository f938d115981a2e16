/*
 * The callback delivery loop (lib/fabric/callback_post.h) against a small HTTP receiver on
 * loopback that answers each request with the next status of a script: what is delivered,
 * dropped or kept, how often it is tried, with which webhook-id, and that it stops on time.
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "callback_post.h"
#include "slots.h"
#include "webhook.h"

#define MAX_REQ 64

/* --- the receiver --------------------------------------------------------------------------- */

struct receiver {
	int lfd;
	uint16_t port;
	pthread_t thread;
	atomic_bool stop;
	int script[8]; /* statuses in order; the last one is repeated */
	int nscript;
	atomic_int requests;
	char ids[MAX_REQ][WEBHOOK_ID_LEN];
};

static int header_value(const char *head, const char *name, char *out, size_t len)
{
	const char *p = strcasestr(head, name);
	size_t n = 0;

	if (p == NULL)
		return -1;
	p += strlen(name);
	while (*p == ' ')
		p++;
	while (p[n] != '\r' && p[n] != '\0' && n + 1 < len)
		n++;
	memcpy(out, p, n);
	out[n] = '\0';
	return 0;
}

/* The length of the first complete request in buf (headers and body), or 0. */
static size_t request_len(char *buf, size_t have)
{
	char *end = memmem(buf, have, "\r\n\r\n", 4), value[64];
	size_t head, body = 0;

	if (end == NULL)
		return 0;
	head = (size_t)(end - buf) + 4;
	buf[head - 2] = '\0';
	if (header_value(buf, "content-length:", value, sizeof(value)) == 0)
		body = strtoul(value, NULL, 10);
	buf[head - 2] = '\r';
	return have >= head + body ? head + body : 0;
}

/* One keep-alive connection: answer its requests until the client closes it. */
static void serve(struct receiver *rv, int fd)
{
	char buf[65536];
	size_t have = 0;

	while (!rv->stop) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		size_t len = request_len(buf, have);
		char answer[128];
		int i, status;
		ssize_t n;

		if (len == 0) {
			if (poll(&pfd, 1, 100) <= 0)
				continue;
			n = read(fd, buf + have, sizeof(buf) - have - 1);
			if (n <= 0)
				return;
			have += (size_t)n;
			continue;
		}
		buf[len - 1] = '\0'; /* the headers as a string (the body is not read) */
		i = atomic_load(&rv->requests);
		if (i < MAX_REQ)
			header_value(buf, "webhook-id:", rv->ids[i], sizeof(rv->ids[i]));
		status = rv->script[i < rv->nscript ? i : rv->nscript - 1];
		n = snprintf(answer, sizeof(answer),
			     "HTTP/1.1 %d X\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n",
			     status);
		atomic_fetch_add(&rv->requests, 1);
		if (write(fd, answer, (size_t)n) != n)
			return;
		memmove(buf, buf + len, have - len);
		have -= len;
	}
}

static void *receiver_main(void *arg)
{
	struct receiver *rv = arg;

	while (!rv->stop) {
		struct pollfd pfd = { .fd = rv->lfd, .events = POLLIN };
		int fd;

		if (poll(&pfd, 1, 100) <= 0)
			continue;
		fd = accept(rv->lfd, NULL, NULL);
		if (fd < 0)
			continue;
		serve(rv, fd);
		close(fd);
	}
	return NULL;
}

static struct receiver *receiver_start(const int *script, int n)
{
	struct receiver *rv = calloc(1, sizeof(*rv));
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);

	assert_non_null(rv);
	memcpy(rv->script, script, (size_t)n * sizeof(int));
	rv->nscript = n;
	rv->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(rv->lfd >= 0);
	assert_int_equal(bind(rv->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(rv->lfd, 8), 0);
	assert_int_equal(getsockname(rv->lfd, (struct sockaddr *)&sa, &len), 0);
	rv->port = ntohs(sa.sin_port);
	assert_int_equal(pthread_create(&rv->thread, NULL, receiver_main, rv), 0);
	return rv;
}

static void receiver_stop(struct receiver *rv)
{
	rv->stop = true;
	pthread_join(rv->thread, NULL);
	close(rv->lfd);
	free(rv);
}

/* --- the caller's side -------------------------------------------------------------------- */

struct ctx {
	struct slots *slots;
	struct receiver *rv, *other; /* other: where the slot moves at the first pause, if set */
	atomic_bool stop;
	atomic_int pauses;
};

static bool stopping(void *arg)
{
	return ((struct ctx *)arg)->stop;
}

static void set_slot(struct slots *s, uint64_t id, uint16_t port)
{
	struct slot_info si = { .id = id, .plugin = "p" };

	snprintf(si.url, sizeof(si.url), "http://127.0.0.1:%u/hook", port);
	snprintf(si.secret, sizeof(si.secret), "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
	slots_apply(s, &si, false);
}

static void pausing(void *arg)
{
	struct ctx *c = arg;

	if (atomic_fetch_add(&c->pauses, 1) == 0 && c->other != NULL)
		set_slot(c->slots, 7, c->other->port);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Post one message to slot 7 (served by c->rv unless no_slot) and say what became of it. */
static enum fab_cb_outcome post(struct ctx *c, uint32_t backoff_ms, uint32_t max_pause_ms,
				int64_t expires_ms, struct fab_cb_poster **keep)
{
	struct fab_cb_poster_opts o = { .slots = c->slots,
					.timeout_ms = 2000,
					.backoff_ms = backoff_ms,
					.max_pause_ms = max_pause_ms,
					.user_agent = "callback_post_ut",
					.log_component = "test" };
	const char *body = "{\"message_id\":\"m-1\"}";
	struct fab_cb_msg m = { .slot_id = 7,
				.key_hi = 0x0123456789abcdefull,
				.key_lo = 42,
				.expires_ms = expires_ms,
				.name = "m-1",
				.body = body,
				.len = strlen(body) };
	struct fab_cb_hooks h = { .arg = c, .stopping = stopping, .pausing = pausing };
	struct fab_cb_poster *p = keep != NULL && *keep != NULL ? *keep : fab_cb_poster_new(&o);
	enum fab_cb_outcome out;

	assert_non_null(p);
	if (keep != NULL && *keep == NULL)
		*keep = p;
	out = fab_cb_post(p, &m, &h);
	if (keep == NULL)
		fab_cb_poster_free(p);
	return out;
}

static struct ctx *ctx_new(const int *script, int n)
{
	struct ctx *c = calloc(1, sizeof(*c));

	assert_non_null(c);
	c->slots = slots_new(NULL, NULL);
	assert_non_null(c->slots);
	c->rv = receiver_start(script, n);
	set_slot(c->slots, 7, c->rv->port);
	return c;
}

static void ctx_free(struct ctx *c)
{
	receiver_stop(c->rv);
	if (c->other != NULL)
		receiver_stop(c->other);
	slots_free(c->slots);
	free(c);
}

/* --- tests ---------------------------------------------------------------------------------- */

static void test_delivered_at_once(void **state)
{
	struct ctx *c = ctx_new((int[]){ 200 }, 1);
	char id[WEBHOOK_ID_LEN];

	(void)state;
	assert_int_equal(post(c, 1, 0, now_ms() + 60000, NULL), FAB_CB_DELIVERED);
	assert_int_equal(c->rv->requests, 1);
	webhook_make_id(id, 0x0123456789abcdefull, 42);
	assert_string_equal(c->rv->ids[0], id);
	assert_int_equal(c->pauses, 0);
	ctx_free(c);
}

static void test_retried_until_answered(void **state)
{
	struct ctx *c = ctx_new((int[]){ 503, 500, 429, 200 }, 4);

	(void)state;
	assert_int_equal(post(c, 1, 0, now_ms() + 60000, NULL), FAB_CB_DELIVERED);
	assert_int_equal(c->rv->requests, 4);
	assert_int_equal(c->pauses, 3);
	/* Every attempt carries the same webhook-id. */
	for (int i = 1; i < 4; i++)
		assert_string_equal(c->rv->ids[i], c->rv->ids[0]);
	ctx_free(c);
}

static void test_refused_for_good(void **state)
{
	struct ctx *c = ctx_new((int[]){ 400, 200 }, 2);

	(void)state;
	assert_int_equal(post(c, 1, 0, now_ms() + 60000, NULL), FAB_CB_DROPPED);
	assert_int_equal(c->rv->requests, 1);
	ctx_free(c);
}

static void test_deleted_slot_and_expired_message_are_not_posted(void **state)
{
	struct ctx *c = ctx_new((int[]){ 200 }, 1);
	struct slot_info gone = { .id = 7 };

	(void)state;
	assert_int_equal(post(c, 1, 0, now_ms() - 1, NULL), FAB_CB_DROPPED);
	slots_apply(c->slots, &gone, true);
	assert_int_equal(post(c, 1, 0, now_ms() + 60000, NULL), FAB_CB_DROPPED);
	assert_int_equal(c->rv->requests, 0);
	ctx_free(c);
}

static void test_retries_end_with_the_ttl(void **state)
{
	struct ctx *c = ctx_new((int[]){ 503 }, 1);
	int64_t t0 = mono_ms();

	(void)state;
	/* A pause of 5 s is cut to the message's end, 300 ms away. */
	assert_int_equal(post(c, 5000, 0, now_ms() + 300, NULL), FAB_CB_DROPPED);
	assert_true(mono_ms() - t0 < 2000);
	assert_true(c->rv->requests >= 1);
	ctx_free(c);
}

static void test_max_pause_caps_the_backoff(void **state)
{
	struct ctx *c = ctx_new((int[]){ 503, 200 }, 2);
	int64_t t0 = mono_ms();

	(void)state;
	assert_int_equal(post(c, 10000, 20, now_ms() + 60000, NULL), FAB_CB_DELIVERED);
	assert_true(mono_ms() - t0 < 2000);
	ctx_free(c);
}

static void test_stopping_caller_keeps_the_message(void **state)
{
	struct ctx *c = ctx_new((int[]){ 503 }, 1);

	(void)state;
	c->stop = true;
	assert_int_equal(post(c, 1, 0, now_ms() + 60000, NULL), FAB_CB_STOPPED);
	assert_int_equal(c->rv->requests, 1);
	ctx_free(c);
}

struct aborter {
	struct fab_cb_poster *p;
	struct receiver *rv;
};

/* Abort once the receiver has refused the first attempt: the poster is then in (or entering)
 * its 30 s pause, which the abort must end. */
static void *abort_later(void *arg)
{
	struct aborter *ab = arg;

	while (atomic_load(&ab->rv->requests) < 1)
		usleep(1000);
	fab_cb_poster_abort(ab->p);
	return NULL;
}

static void test_abort_ends_a_long_pause(void **state)
{
	struct ctx *c = ctx_new((int[]){ 503 }, 1);
	struct fab_cb_poster_opts o = { .slots = c->slots,
					.timeout_ms = 2000,
					.backoff_ms = 30000,
					.user_agent = "callback_post_ut",
					.log_component = "test" };
	struct aborter ab = { .p = fab_cb_poster_new(&o), .rv = c->rv };
	int64_t t0 = mono_ms();
	pthread_t t;

	(void)state;
	assert_non_null(ab.p);
	assert_int_equal(pthread_create(&t, NULL, abort_later, &ab), 0);
	assert_int_equal(post(c, 30000, 0, now_ms() + 600000, &ab.p), FAB_CB_STOPPED);
	assert_true(mono_ms() - t0 < 5000);
	pthread_join(t, NULL);
	fab_cb_poster_free(ab.p);
	ctx_free(c);
}

static void test_new_url_used_from_the_next_attempt(void **state)
{
	struct ctx *c = ctx_new((int[]){ 503 }, 1);

	(void)state;
	c->other = receiver_start((int[]){ 200 }, 1);
	assert_int_equal(post(c, 1, 0, now_ms() + 60000, NULL), FAB_CB_DELIVERED);
	assert_int_equal(c->rv->requests, 1);
	assert_int_equal(c->other->requests, 1);
	assert_string_equal(c->other->ids[0], c->rv->ids[0]);
	ctx_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_delivered_at_once),
		cmocka_unit_test(test_retried_until_answered),
		cmocka_unit_test(test_refused_for_good),
		cmocka_unit_test(test_deleted_slot_and_expired_message_are_not_posted),
		cmocka_unit_test(test_retries_end_with_the_ttl),
		cmocka_unit_test(test_max_pause_caps_the_backoff),
		cmocka_unit_test(test_stopping_caller_keeps_the_message),
		cmocka_unit_test(test_abort_ends_a_long_pause),
		cmocka_unit_test(test_new_url_used_from_the_next_attempt),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
