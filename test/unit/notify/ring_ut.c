#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "envelope.h"
#include "ring.h"

static void push(struct notify_ring *r, const char *name, const char *payload, int expect)
{
	assert_int_equal(notify_ring_push(r, 42, name, (uint16_t)strlen(name), payload,
					  payload ? (uint32_t)strlen(payload) : 0, payload != NULL),
			 expect);
}

static void test_fifo_and_full(void **state)
{
	struct notify_ring r;
	struct mimo_buf b = { 0 };

	(void)state;
	assert_int_equal(notify_ring_init(&r, 3), 0); /* rounded up to 4 */
	assert_int_equal(notify_ring_capacity(&r), 4);
	assert_int_equal(notify_ring_pop_envelope(&r, &b), 0);
	push(&r, "e1", "{\"i\":1}", 0);
	push(&r, "e2", NULL, 0);
	push(&r, "e3", "{}", 0);
	push(&r, "e4", "{}", 0);
	push(&r, "e5", "{}", -ENOBUFS);
	assert_int_equal(notify_ring_depth(&r), 4);

	assert_int_equal(notify_ring_pop_envelope(&r, &b), 1);
	assert_string_equal(b.data, "{\"event\":\"e1\",\"payload\":{\"i\":1},\"timestamp\":42}");
	mimo_buf_reset(&b);
	assert_int_equal(notify_ring_pop_envelope(&r, &b), 1);
	assert_string_equal(b.data, "{\"event\":\"e2\",\"timestamp\":42}");
	mimo_buf_reset(&b);
	/* A freed cell is reusable at once. */
	push(&r, "e5", "{}", 0);
	for (int i = 3; i <= 5; i++) {
		char want[64];

		snprintf(want, sizeof(want), "{\"event\":\"e%d\",\"payload\":{},\"timestamp\":42}",
			 i);
		assert_int_equal(notify_ring_pop_envelope(&r, &b), 1);
		assert_string_equal(b.data, want);
		mimo_buf_reset(&b);
	}
	assert_int_equal(notify_ring_pop_envelope(&r, &b), 0);
	mimo_buf_free(&b);
	notify_ring_fini(&r);
}

static void test_large_event_uses_heap(void **state)
{
	struct notify_ring r;
	struct mimo_buf b = { 0 };
	size_t n = 10000;
	char *payload = malloc(n + 16);

	(void)state;
	memcpy(payload, "{\"x\":\"", 6);
	memset(payload + 6, 'a', n);
	memcpy(payload + 6 + n, "\"}", 3);
	assert_int_equal(notify_ring_init(&r, 8), 0);
	push(&r, "big", payload, 0);
	push(&r, "big2", payload, 0);
	assert_int_equal(notify_ring_pop_envelope(&r, &b), 1);
	assert_non_null(strstr(b.data, payload));
	mimo_buf_free(&b);
	notify_ring_fini(&r); /* frees the second event's heap copy (ASan checks) */
	free(payload);
}

#define PRODUCERS    4
#define PER_PRODUCER 50000

static struct notify_ring g_ring;

static void *producer(void *arg)
{
	int id = (int)(intptr_t)arg;
	char payload[64];

	for (int i = 0; i < PER_PRODUCER; i++) {
		int n = snprintf(payload, sizeof(payload), "{\"p\":%d,\"i\":%d}", id, i);

		while (notify_ring_push(&g_ring, 1, "ev", 2, payload, (uint32_t)n,
					NOTIFY_F_PAYLOAD) == -ENOBUFS)
			sched_yield();
	}
	return NULL;
}

/* Several producers, one consumer: every event arrives once, in each producer's order. */
static void test_concurrent_producers(void **state)
{
	pthread_t th[PRODUCERS];
	int next[PRODUCERS] = { 0 };
	struct mimo_buf b = { 0 };
	int got = 0;

	(void)state;
	assert_int_equal(notify_ring_init(&g_ring, 256), 0);
	for (int i = 0; i < PRODUCERS; i++)
		pthread_create(&th[i], NULL, producer, (void *)(intptr_t)i);
	while (got < PRODUCERS * PER_PRODUCER) {
		int rc = notify_ring_pop_envelope(&g_ring, &b);
		int p, i;

		if (rc == 0 || rc == -EAGAIN)
			continue;
		assert_int_equal(rc, 1);
		assert_int_equal(
			sscanf(b.data, "{\"event\":\"ev\",\"payload\":{\"p\":%d,\"i\":%d}", &p, &i),
			2);
		assert_true(p >= 0 && p < PRODUCERS);
		assert_int_equal(i, next[p]);
		next[p]++;
		got++;
		mimo_buf_reset(&b);
	}
	for (int i = 0; i < PRODUCERS; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(notify_ring_pop_envelope(&g_ring, &b), 0);
	mimo_buf_free(&b);
	notify_ring_fini(&g_ring);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fifo_and_full),
		cmocka_unit_test(test_large_event_uses_heap),
		cmocka_unit_test(test_concurrent_producers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
