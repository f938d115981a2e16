/* mimo_perf's pure parts: the log-linear histogram and the --verify pattern. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "histogram.h"
#include "pattern.h"

static void test_index_bounds(void **state)
{
	uint64_t lo, hi, prev_hi = 0;

	(void)state;
	/* Buckets tile the whole range with no gap or overlap, each at most 1/64 wide. */
	for (uint32_t i = 0; i < HIST_BUCKETS; i++) {
		histogram_bounds(i, &lo, &hi);
		assert_int_equal(lo, prev_hi);
		assert_true(hi > lo);
		if (lo >= HIST_SUB)
			assert_true((hi - lo) * HIST_SUB <= lo);
		assert_int_equal(histogram_index(lo), i);
		assert_int_equal(histogram_index(hi - 1), i);
		prev_hi = hi;
		if (hi == UINT64_MAX)
			break;
	}
	assert_int_equal(histogram_index(0), 0);
	assert_int_equal(histogram_index(63), 63);
	assert_int_equal(histogram_index(64), 64);
	assert_int_equal(histogram_index(UINT64_MAX), HIST_BUCKETS - 1);
}

static void test_percentiles(void **state)
{
	struct histogram *h = malloc(sizeof(*h)), *g = malloc(sizeof(*g));
	uint64_t p;

	(void)state;
	histogram_init(h);
	assert_int_equal(histogram_percentile(h, 0.5), 0);
	/* 1..10000: p50 ~ 5000, p99 ~ 9900, within a bucket's width. */
	for (uint64_t v = 1; v <= 10000; v++)
		histogram_add(h, v);
	assert_int_equal(h->total, 10000);
	assert_int_equal(h->min, 1);
	assert_int_equal(h->max, 10000);
	p = histogram_percentile(h, 0.5);
	assert_true(p > 4900 && p < 5100);
	p = histogram_percentile(h, 0.99);
	assert_true(p > 9750 && p < 10050);
	assert_int_equal(histogram_percentile(h, 1.0), 10000);
	assert_int_equal(histogram_percentile(h, 0.0), 1);
	/* Never outside what was recorded. */
	histogram_init(g);
	histogram_add(g, 1000000);
	assert_int_equal(histogram_percentile(g, 0.5), 1000000);
	histogram_merge(h, g);
	assert_int_equal(h->total, 10001);
	assert_int_equal(h->max, 1000000);
	assert_int_equal(histogram_percentile(h, 0.99999), 1000000);
	free(h);
	free(g);
}

static void test_pattern(void **state)
{
	enum {
		BS = 512,
		N = 8
	};
	uint8_t *buf = malloc(BS * N);

	(void)state;
	pattern_fill(buf, N, BS, 1000, 42, 7);
	assert_int_equal(pattern_check(buf, N, BS, 1000, 42, 7), -1);
	/* Another place, seed or generation: the first block already differs. */
	assert_int_equal(pattern_check(buf, N, BS, 1001, 42, 7), 0);
	assert_int_equal(pattern_check(buf, N, BS, 1000, 43, 7), 0);
	assert_int_equal(pattern_check(buf, N, BS, 1000, 42, 8), 0);
	/* One flipped bit anywhere is found, in its block. */
	buf[5 * BS + 300] ^= 0x10;
	assert_int_equal(pattern_check(buf, N, BS, 1000, 42, 7), 5);
	buf[5 * BS + 300] ^= 0x10;
	/* Blocks are independent: a sub-range checks against its own LBA. */
	assert_int_equal(pattern_check(buf + 2 * BS, N - 2, BS, 1002, 42, 7), -1);
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_index_bounds),
		cmocka_unit_test(test_percentiles),
		cmocka_unit_test(test_pattern),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
