#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "envelope.h"

static int name_rc(const char *name, bool strict, size_t *len, bool *escape)
{
	return notify_check_name(name, strict, len, escape);
}

static void test_names_strict(void **state)
{
	char long_name[200];
	size_t len = 0;
	bool esc = true;

	(void)state;
	assert_int_equal(name_rc("bdev_ready", true, &len, &esc), 0);
	assert_int_equal(len, 10);
	assert_false(esc);
	assert_int_equal(name_rc("a.b:c-d_E9", true, &len, &esc), 0);
	assert_int_equal(name_rc(NULL, true, &len, &esc), -EINVAL);
	assert_int_equal(name_rc("", true, &len, &esc), -EINVAL);
	assert_int_equal(name_rc("has space", true, &len, &esc), -EINVAL);
	assert_int_equal(name_rc("quote\"", true, &len, &esc), -EINVAL);
	assert_int_equal(name_rc("slash/", true, &len, &esc), -EINVAL);
	assert_int_equal(name_rc("\xc3\xa9", true, &len, &esc), -EINVAL);

	memset(long_name, 'x', sizeof(long_name));
	long_name[128] = '\0';
	assert_int_equal(name_rc(long_name, true, &len, &esc), 0);
	assert_int_equal(len, 128);
	long_name[128] = 'x';
	long_name[129] = '\0';
	assert_int_equal(name_rc(long_name, true, &len, &esc), -ENAMETOOLONG);
}

/* The Go bridge took any non-empty name and JSON-escaped it: so does the default mode. */
static void test_names_any(void **state)
{
	char *long_name = malloc(NOTIFY_NAME_MAX_ANY + 2);
	size_t len = 0;
	bool esc = false;

	(void)state;
	assert_int_equal(name_rc(NULL, false, &len, &esc), -EINVAL);
	assert_int_equal(name_rc("", false, &len, &esc), -EINVAL);
	assert_int_equal(name_rc("bdev_ready", false, &len, &esc), 0);
	assert_false(esc);
	assert_int_equal(name_rc("has space/and slash", false, &len, &esc), 0);
	assert_false(esc); /* nothing JSON needs escaped */
	assert_int_equal(name_rc("quote\"", false, &len, &esc), 0);
	assert_true(esc);
	assert_int_equal(name_rc("\xc3\xa9", false, &len, &esc), 0);
	assert_true(esc);
	memset(long_name, 'x', NOTIFY_NAME_MAX_ANY + 1);
	long_name[NOTIFY_NAME_MAX_ANY] = '\0';
	assert_int_equal(name_rc(long_name, false, &len, &esc), 0);
	assert_int_equal(len, NOTIFY_NAME_MAX_ANY);
	long_name[NOTIFY_NAME_MAX_ANY] = 'x';
	long_name[NOTIFY_NAME_MAX_ANY + 1] = '\0';
	assert_int_equal(name_rc(long_name, false, &len, &esc), -ENAMETOOLONG);
	free(long_name);
}

static void test_envelope_escapes_name_and_repairs_utf8(void **state)
{
	struct mimo_buf b = { 0 };
	const char name[] = "a\"b\\c\n\x01 \xc3\xa9\xff";
	const char payload[] = "[\"x\xfey\",1]";

	(void)state;
	assert_int_equal(notify_envelope_build(
				 &b, name, sizeof(name) - 1, payload, sizeof(payload) - 1,
				 NOTIFY_F_PAYLOAD | NOTIFY_F_NAME_ESCAPE | NOTIFY_F_PAYLOAD_UTF8,
				 5),
			 0);
	assert_string_equal(b.data, "{\"event\":\"a\\\"b\\\\c\\n\\u0001 \xc3\xa9\xef\xbf\xbd\","
				    "\"payload\":[\"x\xef\xbf\xbdy\",1],\"timestamp\":5}");
	mimo_buf_free(&b);
}

static void test_envelope_with_payload(void **state)
{
	struct mimo_buf b = { 0 };
	const char *p = "  {\"name\":\"nvme0n1\"}\n";

	(void)state;
	assert_int_equal(notify_envelope_build(&b, "bdev_ready", 10, p, strlen(p), NOTIFY_F_PAYLOAD,
					       1734603290),
			 0);
	assert_string_equal(b.data, "{\"event\":\"bdev_ready\",\"payload\":{\"name\":\"nvme0n1\"},"
				    "\"timestamp\":1734603290}");
	assert_int_equal(b.len, strlen(b.data));
	mimo_buf_free(&b);
}

static void test_envelope_without_payload(void **state)
{
	struct mimo_buf b = { 0 };

	(void)state;
	assert_int_equal(notify_envelope_build(&b, "error_occurred", 14, NULL, 0, 0, 7), 0);
	assert_string_equal(b.data, "{\"event\":\"error_occurred\",\"timestamp\":7}");
	/* Appends: a second envelope follows the first. */
	assert_int_equal(notify_envelope_build(&b, "x", 1, "{}", 2, NOTIFY_F_PAYLOAD, 8), 0);
	assert_string_equal(b.data, "{\"event\":\"error_occurred\",\"timestamp\":7}"
				    "{\"event\":\"x\",\"payload\":{},\"timestamp\":8}");
	mimo_buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names_strict),
		cmocka_unit_test(test_names_any),
		cmocka_unit_test(test_envelope_escapes_name_and_repairs_utf8),
		cmocka_unit_test(test_envelope_with_payload),
		cmocka_unit_test(test_envelope_without_payload),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
