/*
 * The running bridge under concurrent producers, against a URL libcurl cannot use (a
 * permanent failure: a receiver that is merely down would keep every event waiting): every
 * accepted event is accounted for (failed), flush and shutdown return, and counters add up,
 * with a ring small enough that most events go through the overflow. Built under TSan as well.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "mimo/notify.h"

#define THREADS 4
#define EVENTS	500

static void *producer(void *arg)
{
	char payload[64];

	(void)arg;
	for (int i = 0; i < EVENTS; i++) {
		snprintf(payload, sizeof(payload), "{\"i\":%d}", i);
		while (mimo_notify_event("threaded", payload) == -ENOBUFS)
			usleep(100);
	}
	return NULL;
}

static void test_concurrent_producers_accounted(void **state)
{
	pthread_t th[THREADS];
	struct mimo_notify_stats st;

	(void)state;
	setenv("MIMO_LOG", "error", 1);
	/* A malformed URL: libcurl refuses it at once, for good. */
	assert_int_equal(mimo_notify_configure("{\"url\":\"http://[::1/x\",\"retries\":0,"
					       "\"queue\":64,\"grace_ms\":0}"),
			 0);
	assert_int_equal(mimo_notify_init(), 0);
	for (int t = 0; t < THREADS; t++)
		pthread_create(&th[t], NULL, producer, NULL);
	for (int t = 0; t < THREADS; t++)
		pthread_join(th[t], NULL);
	assert_int_equal(mimo_notify_flush(60000), 0);
	mimo_notify_stats(&st);
	assert_int_equal(st.queued, THREADS * EVENTS);
	assert_int_equal(st.failed, THREADS * EVENTS);
	assert_int_equal(st.sent, 0);
	assert_int_equal(st.queue_depth, 0);
	mimo_notify_shutdown(0);
	assert_int_equal(mimo_notify_event("late", NULL), -ESHUTDOWN);
	/* An explicit init restarts a stopped bridge. */
	assert_int_equal(mimo_notify_init(), 0);
	assert_int_equal(mimo_notify_event("again", NULL), 0);
	assert_int_equal(mimo_notify_flush(10000), 0);
	mimo_notify_stats(&st);
	assert_int_equal(st.queued, 1);
	assert_int_equal(st.failed, 1);
	mimo_notify_shutdown(0);
}

static _Atomic uint64_t g_accepted, g_full;

static void *until_shutdown(void *arg)
{
	(void)arg;
	for (;;) {
		int rc = mimo_notify_event("racing", "{\"x\":1}");

		if (rc == 0)
			atomic_fetch_add(&g_accepted, 1);
		else if (rc == -ENOBUFS)
			atomic_fetch_add(&g_full, 1);
		else if (rc == -ESHUTDOWN)
			return NULL;
		else
			fail_msg("unexpected %d", rc);
	}
}

/* Producers keep calling while another thread shuts the bridge down: every call that
 * returned 0 is accounted for (failed, or lost at shutdown and counted), none vanishes. */
static void test_shutdown_racing_producers_loses_nothing_silently(void **state)
{
	pthread_t th[THREADS];
	struct mimo_notify_stats st;

	(void)state;
	assert_int_equal(mimo_notify_init(), 0);
	for (int t = 0; t < THREADS; t++)
		pthread_create(&th[t], NULL, until_shutdown, NULL);
	/* The producers are in full swing (events accepted) when the shutdown comes. */
	for (time_t t0 = time(NULL); atomic_load(&g_accepted) < 1000;)
		assert_true(time(NULL) - t0 < 10);
	mimo_notify_shutdown(0);
	for (int t = 0; t < THREADS; t++)
		pthread_join(th[t], NULL);
	mimo_notify_stats(&st);
	assert_true(atomic_load(&g_accepted) > 0);
	assert_int_equal(st.queued, atomic_load(&g_accepted));
	assert_int_equal(st.sent + st.failed + st.spooled + (st.dropped - atomic_load(&g_full)),
			 atomic_load(&g_accepted));
	assert_int_equal(st.queue_depth, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_concurrent_producers_accounted),
		cmocka_unit_test(test_shutdown_racing_producers_loses_nothing_silently),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
