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

static void test_event_names(void **state)
{
	char name[140];

	(void)state;
	assert_int_equal(NotifyEvent("bdev_ready", NULL), 0);
	assert_int_equal(NotifyEvent(NULL, NULL), -EINVAL);
	assert_int_equal(NotifyEvent("", "{}"), -EINVAL);
	assert_int_equal(NotifyEvent("bad name", NULL), -EINVAL);
	assert_int_equal(NotifyEvent("bad/name", NULL), -EINVAL);
	memset(name, 'n', sizeof(name));
	name[128] = '\0';
	assert_int_equal(NotifyEvent(name, NULL), 0);
	name[128] = 'n';
	name[129] = '\0';
	assert_int_equal(NotifyEvent(name, NULL), -ENAMETOOLONG);
}

static void test_payloads(void **state)
{
	(void)state;
	assert_int_equal(NotifyEvent("e", "{\"name\":\"nvme0n1\",\"size\":1073741824}"), 0);
	assert_int_equal(NotifyEvent("e", "{}"), 0);
	assert_int_equal(NotifyEvent("e", ""), -EBADMSG);
	assert_int_equal(NotifyEvent("e", "[1,2]"), -EBADMSG);
	assert_int_equal(NotifyEvent("e", "\"str\""), -EBADMSG);
	assert_int_equal(NotifyEvent("e", "{\"a\":1}{\"b\":2}"), -EBADMSG);
	assert_int_equal(NotifyEvent("e", "{\"a\":"), -EBADMSG);
	assert_int_equal(NotifyEvent("e", "{\"error\":\"unescaped \" quote\"}"), -EBADMSG);
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
		cmocka_unit_test(test_payloads),
		cmocka_unit_test(test_payload_size_limit),
		cmocka_unit_test(test_configure_errors),
		cmocka_unit_test(test_disabled_counts_nothing),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
