#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "poster.h"

static void expect_between(uint32_t base, uint32_t attempt, uint32_t ra, uint64_t lo, uint64_t hi)
{
	for (int i = 0; i < 1000; i++) {
		uint64_t d = mimo_http_backoff_ms(base, attempt, ra);

		if (d < lo || d > hi)
			fail_msg("backoff(%u,%u,%u) = %llu, want %llu..%llu", base, attempt, ra,
				 (unsigned long long)d, (unsigned long long)lo,
				 (unsigned long long)hi);
	}
}

static void test_defaults_double_with_jitter(void **state)
{
	(void)state;
	expect_between(100, 0, 0, 80, 120);
	expect_between(100, 1, 0, 160, 240);
	expect_between(100, 2, 0, 320, 480);
}

static void test_large_values_neither_wrap_nor_explode(void **state)
{
	(void)state;
	/* 65536 << 16 wraps to 0 in 32 bits; 40000 << 16 overflowed an int poll timeout. */
	expect_between(65536, 16, 0, 48000, 72000);
	expect_between(40000, 16, 0, 48000, 72000);
	expect_between(600000, 100, 0, 48000, 72000);
	expect_between(100, 100, 0, 48000, 72000);
}

static void test_retry_after_lengthens(void **state)
{
	(void)state;
	expect_between(100, 0, 1000, 1000, 1000);
	expect_between(100, 0, 50, 80, 120);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults_double_with_jitter),
		cmocka_unit_test(test_large_values_neither_wrap_nor_explode),
		cmocka_unit_test(test_retry_after_lengthens),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
