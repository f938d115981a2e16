/* The one rule for versioned options (lib/util/opts.h). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "opts.h"

struct v1 {
	size_t opts_size;
	uint64_t a;
};

struct v2 {
	size_t opts_size;
	uint64_t a;
	uint64_t b; /* added later */
};

static void test_older_caller_keeps_new_defaults(void **state)
{
	struct v1 caller = { .opts_size = sizeof(caller), .a = 7 };
	struct v2 lib = { .a = 1, .b = 42 };

	(void)state;
	assert_int_equal(mimo_opts_copy(&lib, sizeof(lib), &caller), 0);
	assert_int_equal(lib.a, 7);
	assert_int_equal(lib.b, 42);
	assert_int_equal(lib.opts_size, sizeof(lib));
}

static void test_newer_caller_refused_only_for_unknown_options(void **state)
{
	struct v2 caller = { .opts_size = sizeof(caller), .a = 7 };
	struct v1 lib = { .a = 1 };

	(void)state;
	assert_int_equal(mimo_opts_copy(&lib, sizeof(lib), &caller), 0);
	assert_int_equal(lib.a, 7);
	caller.b = 1; /* an option this library does not know: never silently dropped */
	assert_int_equal(mimo_opts_copy(&lib, sizeof(lib), &caller), -EINVAL);
}

static void test_uninitialised_and_absent(void **state)
{
	struct v2 caller;
	struct v2 lib = { .a = 1, .b = 2 };

	(void)state;
	memset(&caller, 0, sizeof(caller));
	assert_int_equal(mimo_opts_copy(&lib, sizeof(lib), &caller), -EINVAL);
	assert_int_equal(mimo_opts_copy(&lib, sizeof(lib), NULL), 0);
	assert_int_equal(lib.a, 1);
	assert_int_equal(lib.opts_size, sizeof(lib));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_older_caller_keeps_new_defaults),
		cmocka_unit_test(test_newer_caller_refused_only_for_unknown_options),
		cmocka_unit_test(test_uninitialised_and_absent),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
