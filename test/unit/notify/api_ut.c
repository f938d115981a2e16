/* The public API's answers to bad input, with the bridge disabled (no network). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mimo/notify.h"
#include "spdk_go_notify.h"

static int setup(void **state)
{
	(void)state;
	setenv("MIMO_LOG", "error", 1);
	assert_int_equal(mimo_notify_configure("{\"disable\":true}"), 0);
	return 0;
}

/* Default: what the Go bridge accepted - any non-empty name. */
static void test_event_names(void **state)
{
	char name[140];

	(void)state;
	assert_int_equal(NotifyEvent("bdev_ready", NULL), 0);
	assert_int_equal(NotifyEvent(NULL, NULL), -EINVAL);
	assert_int_equal(NotifyEvent("", "{}"), -EINVAL);
	assert_int_equal(NotifyEvent("bad name", NULL), 0);
	assert_int_equal(NotifyEvent("bad/name \"quoted\"\n\xff", NULL), 0);
	memset(name, 'n', sizeof(name));
	name[129] = '\0';
	assert_int_equal(NotifyEvent(name, NULL), 0);
}

/* strict: mimo's own rules, opted into. */
static void test_event_names_strict(void **state)
{
	char name[140];

	(void)state;
	assert_int_equal(mimo_notify_configure("{\"strict\":true}"), 0);
	assert_int_equal(NotifyEvent("bdev_ready", NULL), 0);
	assert_int_equal(NotifyEvent("bad name", NULL), -EINVAL);
	assert_int_equal(NotifyEvent("bad/name", NULL), -EINVAL);
	memset(name, 'n', sizeof(name));
	name[128] = '\0';
	assert_int_equal(NotifyEvent(name, NULL), 0);
	name[128] = 'n';
	name[129] = '\0';
	assert_int_equal(NotifyEvent(name, NULL), -ENAMETOOLONG);
	assert_int_equal(mimo_notify_configure("{\"strict\":false}"), 0);
}

static void test_payloads(void **state)
{
	(void)state;
	assert_int_equal(NotifyEvent("e", "{\"name\":\"nvme0n1\",\"size\":1073741824}"), 0);
	assert_int_equal(NotifyEvent("e", "{}"), 0);
	/* "NULL/empty for no payload" (the Go bridge's header). */
	assert_int_equal(NotifyEvent("e", ""), 0);
	/* Any JSON value, as json.Valid. */
	assert_int_equal(NotifyEvent("e", "[1,2]"), 0);
	assert_int_equal(NotifyEvent("e", "\"str\""), 0);
	assert_int_equal(NotifyEvent("e", " 42 "), 0);
	assert_int_equal(NotifyEvent("e", "null"), 0);
	assert_int_equal(NotifyEvent("e", "{\"s\":\"\xff\"}"), 0); /* repaired when sent */
	assert_int_equal(NotifyEvent("e", "   "), -EBADMSG);
	assert_int_equal(NotifyEvent("e", "{\"a\":1}{\"b\":2}"), -EBADMSG);
	assert_int_equal(NotifyEvent("e", "{\"a\":"), -EBADMSG);
	assert_int_equal(NotifyEvent("e", "{\"error\":\"unescaped \" quote\"}"), -EBADMSG);
	assert_int_equal(NotifyEvent("e", "{\"a\":\"\x01\"}"), -EBADMSG);
}

static void test_payloads_strict(void **state)
{
	(void)state;
	assert_int_equal(mimo_notify_configure("{\"strict\":true}"), 0);
	assert_int_equal(NotifyEvent("e", "{}"), 0);
	assert_int_equal(NotifyEvent("e", ""), 0);
	assert_int_equal(NotifyEvent("e", "[1,2]"), -EBADMSG);
	assert_int_equal(NotifyEvent("e", "\"str\""), -EBADMSG);
	assert_int_equal(NotifyEvent("e", "{\"s\":\"\xff\"}"), -EBADMSG);
	assert_int_equal(mimo_notify_configure("{\"strict\":false}"), 0);
}

/* Nesting: Go's json.Valid stops at 10,000 levels; strict mode at 64. */
static void test_payload_depth(void **state)
{
	size_t n = 10001;
	char *p = malloc(2 * n + 1);

	(void)state;
	memset(p, '[', n);
	memset(p + n, ']', n);
	p[2 * n] = '\0';
	assert_int_equal(NotifyEvent("e", p), -EBADMSG);
	p[2 * n - 1] = '\0';
	assert_int_equal(NotifyEvent("e", p + 1), 0); /* 10,000 deep */
	assert_int_equal(mimo_notify_configure("{\"strict\":true}"), 0);
	/* {"a": and 64 arrays: 65 levels. */
	memcpy(p, "{\"a\":", 5);
	memset(p + 5, '[', 64);
	memset(p + 69, ']', 64);
	memcpy(p + 133, "}", 2);
	assert_int_equal(NotifyEvent("e", p), -EBADMSG);
	memcpy(p + 132, "}", 2);
	p[5] = ' ';
	assert_int_equal(NotifyEvent("e", p), 0);
	assert_int_equal(mimo_notify_configure("{\"strict\":false}"), 0);
	free(p);
}

static void test_payload_size_limit(void **state)
{
	size_t n = 64 * 1024;
	char *p = malloc(n + 2);

	(void)state;
	/* Exactly 64 KiB is accepted, one byte more is not. */
	memset(p, ' ', n);
	p[0] = '{';
	p[n - 1] = '}';
	p[n] = '\0';
	assert_int_equal(NotifyEvent("e", p), 0);
	p[n] = ' ';
	p[n + 1] = '\0';
	assert_int_equal(NotifyEvent("e", p), -EMSGSIZE);
	/* The limit is configurable at run time. */
	assert_int_equal(mimo_notify_configure("{\"max_payload_bytes\":16}"), 0);
	assert_int_equal(NotifyEvent("e", "{\"a\":\"01234567\"}"), 0);		/* 16 bytes */
	assert_int_equal(NotifyEvent("e", "{\"a\":\"012345678\"}"), -EMSGSIZE); /* 17 */
	assert_int_equal(mimo_notify_configure("{\"max_payload_bytes\":65536}"), 0);
	free(p);
}

static void test_configure_errors(void **state)
{
	(void)state;
	assert_int_equal(mimo_notify_configure(NULL), -EINVAL);
	assert_int_equal(mimo_notify_configure("not json"), -EINVAL);
	assert_int_equal(mimo_notify_configure("{\"nope\":1}"), -EINVAL);
	assert_int_equal(mimo_notify_configure("{\"retries\":\"3\"}"), -EINVAL);
	/* The bridge has started (disabled): these are fixed now. */
	assert_int_equal(mimo_notify_configure("{\"queue\":8}"), -EBUSY);
	assert_int_equal(mimo_notify_configure("{\"disable\":false}"), -EBUSY);
	assert_int_equal(mimo_notify_configure("{\"retries\":3,\"timeout_ms\":500}"), 0);
}

static void test_disabled_counts_nothing(void **state)
{
	struct mimo_notify_stats st;

	(void)state;
	assert_int_equal(mimo_notify_flush(10), 0);
	mimo_notify_stats(&st);
	assert_int_equal(st.queued, 0);
	assert_int_equal(st.sent, 0);
	assert_int_equal(st.dropped, 0);
	mimo_notify_shutdown(0);
	assert_int_equal(NotifyEvent("after", NULL), -ESHUTDOWN);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_event_names),
		cmocka_unit_test(test_event_names_strict),
		cmocka_unit_test(test_payloads),
		cmocka_unit_test(test_payloads_strict),
		cmocka_unit_test(test_payload_depth),
		cmocka_unit_test(test_payload_size_limit),
		cmocka_unit_test(test_configure_errors),
		cmocka_unit_test(test_disabled_counts_nothing),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
