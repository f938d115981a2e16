#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "envelope.h"

static void test_names(void **state)
{
	char long_name[200];
	size_t len = 0;

	(void)state;
	assert_int_equal(notify_check_name("bdev_ready", &len), 0);
	assert_int_equal(len, 10);
	assert_int_equal(notify_check_name("a.b:c-d_E9", &len), 0);
	assert_int_equal(notify_check_name(NULL, &len), -EINVAL);
	assert_int_equal(notify_check_name("", &len), -EINVAL);
	assert_int_equal(notify_check_name("has space", &len), -EINVAL);
	assert_int_equal(notify_check_name("quote\"", &len), -EINVAL);
	assert_int_equal(notify_check_name("slash/", &len), -EINVAL);
	assert_int_equal(notify_check_name("\xc3\xa9", &len), -EINVAL);

	memset(long_name, 'x', sizeof(long_name));
	long_name[128] = '\0';
	assert_int_equal(notify_check_name(long_name, &len), 0);
	assert_int_equal(len, 128);
	long_name[128] = 'x';
	long_name[129] = '\0';
	assert_int_equal(notify_check_name(long_name, &len), -ENAMETOOLONG);
}

static void test_envelope_with_payload(void **state)
{
	struct mimo_buf b = { 0 };
	const char *p = "  {\"name\":\"nvme0n1\"}\n";

	(void)state;
	assert_int_equal(notify_envelope_build(&b, "bdev_ready", 10, p, strlen(p), 1734603290), 0);
	assert_string_equal(b.data, "{\"event\":\"bdev_ready\",\"payload\":{\"name\":\"nvme0n1\"},"
				    "\"timestamp\":1734603290}");
	assert_int_equal(b.len, strlen(b.data));
	mimo_buf_free(&b);
}

static void test_envelope_without_payload(void **state)
{
	struct mimo_buf b = { 0 };

	(void)state;
	assert_int_equal(notify_envelope_build(&b, "error_occurred", 14, NULL, 0, 7), 0);
	assert_string_equal(b.data, "{\"event\":\"error_occurred\",\"timestamp\":7}");
	/* Appends: a second envelope follows the first. */
	assert_int_equal(notify_envelope_build(&b, "x", 1, "{}", 2, 8), 0);
	assert_string_equal(b.data, "{\"event\":\"error_occurred\",\"timestamp\":7}"
				    "{\"event\":\"x\",\"payload\":{},\"timestamp\":8}");
	mimo_buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_envelope_with_payload),
		cmocka_unit_test(test_envelope_without_payload),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
