#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "json_check.h"

static int check(const char *s)
{
	return mimo_json_check_object(s, strlen(s), 64, NULL);
}

static void test_valid_objects(void **state)
{
	static const char *const ok[] = {
		"{}",
		" \t\r\n{ } \n",
		"{\"a\":1}",
		"{\"name\":\"nvme0n1\",\"size\":1073741824}",
		"{\"a\":[1,2,3],\"b\":{\"c\":null,\"d\":true,\"e\":false}}",
		"{\"n\":-0,\"m\":0.5,\"x\":1e10,\"y\":-1.25E-3,\"z\":2e+7}",
		"{\"esc\":\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u00e9 \\uD83D\\uDE00\"}",
		"{\"utf8\":\"h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80\"}",
		"{\"\":\"\"}",
		"{\"a\":[],\"b\":[[]],\"c\":[{}]}",
		"{\"dup\":1,\"dup\":2}",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		if (check(ok[i]) != 0)
			fail_msg("rejected valid %s", ok[i]);
	}
}

static void test_invalid_documents(void **state)
{
	static const char *const bad[] = {
		"",
		"   ",
		"[]",
		"1",
		"\"s\"",
		"null",
		"{",
		"}",
		"{}{}",
		"{} x",
		"{\"a\"}",
		"{\"a\":}",
		"{\"a\":1,}",
		"{,}",
		"{a:1}",
		"{'a':1}",
		"{\"a\":01}",
		"{\"a\":1.}",
		"{\"a\":.5}",
		"{\"a\":+1}",
		"{\"a\":1e}",
		"{\"a\":-}",
		"{\"a\":NaN}",
		"{\"a\":Infinity}",
		"{\"a\":tru}",
		"{\"a\":nul}",
		"{\"a\":[1,]}",
		"{\"a\":[1 2]}",
		"{\"a\":\"unterminated}",
		"{\"a\":\"bad \\x escape\"}",
		"{\"a\":\"\\u12G4\"}",
		"{\"a\":\"tab\there\"}",
		"{\"a\":\"nl\nhere\"}",
		"{\"a\":\"\xc3\"}",		/* truncated UTF-8 */
		"{\"a\":\"\xc0\xaf\"}",		/* overlong */
		"{\"a\":\"\xe0\x80\xaf\"}",	/* overlong */
		"{\"a\":\"\xed\xa0\x80\"}",	/* surrogate */
		"{\"a\":\"\xf4\x90\x80\x80\"}", /* above U+10FFFF */
		"{\"a\":\"\xff\"}",
		"{\"a\":1]",
		"{\"a\":[1}",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (check(bad[i]) != -EBADMSG)
			fail_msg("accepted invalid [%s]", bad[i]);
	}
}

static void test_embedded_nul_rejected(void **state)
{
	static const char doc[] = "{\"a\":\"x\0y\"}";

	(void)state;
	assert_int_equal(mimo_json_check_object(doc, sizeof(doc) - 1, 64, NULL), -EBADMSG);
}

static void test_error_offset(void **state)
{
	size_t off = 0;

	(void)state;
	assert_int_equal(mimo_json_check_object("{\"a\":1,}", 8, 64, &off), -EBADMSG);
	assert_int_equal(off, 7);
	assert_int_equal(mimo_json_check_object("{\"a\":", 5, 64, &off), -EBADMSG);
	assert_int_equal(off, 5);
}

static void test_depth_limit(void **state)
{
	char doc[600];
	size_t n = 0;

	(void)state;
	/* depth 4: {"a":[{"b":[]}]} */
	assert_int_equal(check("{\"a\":[{\"b\":[]}]}"), 0);
	assert_int_equal(mimo_json_check_object("{\"a\":[{\"b\":[]}]}", 16, 3, NULL), -E2BIG);
	assert_int_equal(mimo_json_check_object("{\"a\":[{\"b\":[]}]}", 16, 4, NULL), 0);

	/* 300 levels are refused even with a larger limit requested. */
	doc[n++] = '{';
	doc[n++] = '"';
	doc[n++] = 'a';
	doc[n++] = '"';
	doc[n++] = ':';
	for (int i = 0; i < 290; i++)
		doc[n++] = '[';
	for (int i = 0; i < 290; i++)
		doc[n++] = ']';
	doc[n++] = '}';
	assert_int_equal(mimo_json_check_object(doc, n, 100000, NULL), -E2BIG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_objects),
		cmocka_unit_test(test_invalid_documents),
		cmocka_unit_test(test_embedded_nul_rejected),
		cmocka_unit_test(test_error_offset),
		cmocka_unit_test(test_depth_limit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
