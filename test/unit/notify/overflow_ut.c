/* The ring's overflow: order, the memory cap, records larger than a chunk, and memory given
 * back once the sender has read everything. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "envelope.h"
#include "overflow.h"

static _Atomic int g_active;

static int push(struct notify_ovf *o, const char *name, const char *payload)
{
	return notify_ovf_push(o, 7, name, (uint16_t)strlen(name), payload,
			       payload ? (uint32_t)strlen(payload) : 0,
			       payload ? NOTIFY_F_PAYLOAD : 0);
}

static void test_order_cap_and_release(void **state)
{
	struct notify_ovf o;
	struct mimo_buf b = { 0 };
	char payload[64], want[128];
	int n = 0;

	(void)state;
	notify_ovf_init(&o, &g_active, 2 * NOTIFY_OVF_CHUNK);
	assert_int_equal(notify_ovf_pop_envelope(&o, &b), 0);
	/* Fill two chunks' worth: the third chunk is over the cap. */
	for (;; n++) {
		int rc;

		snprintf(payload, sizeof(payload), "{\"seq\":%d}", n);
		rc = push(&o, "burst", payload);
		if (rc == -ENOBUFS)
			break;
		assert_int_equal(rc, 0);
		assert_int_equal(atomic_load(&g_active), 1);
	}
	assert_true(n > (int)(2 * (NOTIFY_OVF_CHUNK / 64)));
	assert_int_equal(atomic_load(&o.bytes), 2 * NOTIFY_OVF_CHUNK);
	assert_int_equal(notify_ovf_depth(&o), n);
	for (int i = 0; i < n; i++) {
		mimo_buf_reset(&b);
		assert_int_equal(notify_ovf_pop_envelope(&o, &b), 1);
		snprintf(want, sizeof(want),
			 "{\"event\":\"burst\",\"payload\":{\"seq\":%d},\"timestamp\":7}", i);
		assert_string_equal(b.data, want);
		if (i == n * 3 / 4) /* the first chunk is read to its end and given back... */
			assert_int_equal(atomic_load(&o.bytes), NOTIFY_OVF_CHUNK);
	}
	assert_int_equal(notify_ovf_pop_envelope(&o, &b), 0);
	/* ...and the last once the sender finds nothing more: active is cleared with it. */
	assert_int_equal(atomic_load(&g_active), 1);
	notify_ovf_settle(&o);
	assert_int_equal(atomic_load(&g_active), 0);
	assert_int_equal(atomic_load(&o.bytes), 0);
	/* It works again after that. */
	assert_int_equal(push(&o, "again", NULL), 0);
	mimo_buf_reset(&b);
	assert_int_equal(notify_ovf_pop_envelope(&o, &b), 1);
	assert_string_equal(b.data, "{\"event\":\"again\",\"timestamp\":7}");
	notify_ovf_fini(&o);
	assert_int_equal(atomic_load(&o.bytes), 0);
	mimo_buf_free(&b);
}

static void test_record_larger_than_a_chunk(void **state)
{
	struct notify_ovf o;
	struct mimo_buf b = { 0 };
	size_t n = NOTIFY_OVF_CHUNK + 100;
	char *big = malloc(n + 1);

	(void)state;
	memset(big, ' ', n); /* whitespace around a payload is not sent */
	big[n - 2] = '[';
	big[n - 1] = ']';
	big[n] = '\0';
	notify_ovf_init(&o, &g_active, 64u << 20);
	assert_int_equal(push(&o, "small", "{}"), 0);
	assert_int_equal(push(&o, "big", big), 0);
	assert_int_equal(push(&o, "after", "{}"), 0);
	assert_int_equal(notify_ovf_pop_envelope(&o, &b), 1);
	mimo_buf_reset(&b);
	assert_int_equal(notify_ovf_pop_envelope(&o, &b), 1);
	assert_string_equal(b.data, "{\"event\":\"big\",\"payload\":[],\"timestamp\":7}");
	mimo_buf_reset(&b);
	assert_int_equal(notify_ovf_pop_envelope(&o, &b), 1);
	assert_string_equal(b.data, "{\"event\":\"after\",\"payload\":{},\"timestamp\":7}");
	notify_ovf_settle(&o);
	assert_int_equal(atomic_load(&o.bytes), 0);
	notify_ovf_fini(&o);
	mimo_buf_free(&b);
	free(big);
}

static void test_no_overflow_when_capped_at_zero(void **state)
{
	struct notify_ovf o;

	(void)state;
	notify_ovf_init(&o, &g_active, 0);
	assert_int_equal(push(&o, "e", NULL), -ENOBUFS);
	assert_int_equal(atomic_load(&g_active), 0);
	notify_ovf_fini(&o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_order_cap_and_release),
		cmocka_unit_test(test_record_larger_than_a_chunk),
		cmocka_unit_test(test_no_overflow_when_capped_at_zero),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
