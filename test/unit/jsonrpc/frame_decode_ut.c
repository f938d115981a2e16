#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "frame.h"
#include "mimo/jsonrpc.h"
#include "parse.h"

static ssize_t frame(const char *s, size_t *start)
{
	return jsonrpc_frame(s, strlen(s), start);
}

static void test_complete_values(void **state)
{
	size_t start;

	(void)state;
	assert_int_equal(frame("{}", &start), 2);
	assert_int_equal(start, 0);
	assert_int_equal(frame("  \n{\"a\":[1,{\"b\":\"}\"}]}{\"next\":1}", &start), 22);
	assert_int_equal(start, 3);
	assert_int_equal(frame("[{},{}] ", &start), 7);
	assert_int_equal(frame("{\"s\":\"\\\"}\"}", &start), 11); /* escaped quote in string */
	assert_int_equal(frame("\"str\"x", &start), 5);
	assert_int_equal(frame("123 ", &start), 3);
	assert_int_equal(frame("true}", &start), 4);
}

static void test_incomplete_values(void **state)
{
	size_t start;

	(void)state;
	assert_int_equal(frame("", &start), 0);
	assert_int_equal(frame("   \n", &start), 0);
	assert_int_equal(start, 4); /* all of it may be dropped */
	assert_int_equal(frame("{\"method\":\"rpc_get", &start), 0);
	assert_int_equal(frame("{\"a\":\"}", &start), 0);
	assert_int_equal(frame("[[[", &start), 0);
	assert_int_equal(frame("123", &start), 0); /* more digits may follow */
	assert_int_equal(frame("\"abc\\", &start), 0);
}

static void test_garbage(void **state)
{
	size_t start;
	char deep[2100];

	(void)state;
	assert_int_equal(frame("}", &start), -EBADMSG);
	assert_int_equal(frame("  ]", &start), -EBADMSG);
	assert_int_equal(start, 2);
	assert_int_equal(frame("\x01", &start), -EBADMSG);
	assert_int_equal(frame("#", &start), -EBADMSG);
	memset(deep, '[', sizeof(deep) - 1);
	deep[sizeof(deep) - 1] = '\0';
	assert_int_equal(frame(deep, &start), -EBADMSG);
}

/* A value that arrives a byte at a time is found where a whole scan finds it, and no byte is
 * looked at twice (the framer's position only moves forward). */
static void test_incremental(void **state)
{
	static const char *texts[] = {
		"{\"a\":[1,{\"b\":\"}\\\"]\"}]} ",
		"  \"str\\\"ing\" ",
		"  12345 ",
		"[[[]],{}] ",
	};

	(void)state;
	for (size_t t = 0; t < MIMO_COUNTOF(texts); t++) {
		const char *s = texts[t];
		size_t whole_start, len = strlen(s);
		ssize_t whole = jsonrpc_frame(s, len, &whole_start);
		struct jsonrpc_framer f = { 0 };
		ssize_t end = 0;
		size_t n, last_pos = 0;

		assert_true(whole > 0);
		for (n = 1; n <= len && end == 0; n++) {
			end = jsonrpc_framer_scan(&f, s, n);
			assert_true(f.pos >= last_pos);
			last_pos = f.pos;
		}
		assert_int_equal(end, whole);
		assert_int_equal(f.start, whole_start);
	}
}

/* Integers past INT64_MAX reach unsigned 64-bit parameters exactly, and nothing else. */
static void test_big_integers(void **state)
{
	static const char text[] = "{\"a\":18446744073709551615,\"b\":9223372036854775808,"
				   "\"c\":9223372036854775807,\"d\":-9223372036854775808,"
				   "\"e\":18446744073709551615}";
	struct jsonrpc_bignums bigs = { 0 };
	char err[128];
	json_t *v = jsonrpc_parse(text, strlen(text), &bigs, err, sizeof(err));
	uint64_t u = 0;
	uint32_t u32;

	(void)state;
	assert_non_null(v);
	assert_int_equal(bigs.n, 3);
	jsonrpc_bignums_enter(&bigs);
	assert_null(mimo_json_decode_uint64(json_object_get(v, "a"), &u));
	assert_true(u == UINT64_MAX);
	assert_null(mimo_json_decode_uint64(json_object_get(v, "b"), &u));
	assert_true(u == (uint64_t)INT64_MAX + 1);
	assert_null(mimo_json_decode_uint64(json_object_get(v, "c"), &u));
	assert_true(u == (uint64_t)INT64_MAX);
	assert_non_null(mimo_json_decode_uint64(json_object_get(v, "d"), &u));
	assert_non_null(mimo_json_decode_uint32(json_object_get(v, "a"), &u32));
	jsonrpc_bignums_leave();
	/* Outside the dispatch the exact value is gone: refused, never rounded. */
	assert_non_null(mimo_json_decode_uint64(json_object_get(v, "a"), &u));
	json_decref(v);
	jsonrpc_bignums_free(&bigs);

	assert_null(jsonrpc_parse("18446744073709551616", 20, &bigs, err, sizeof(err)));
	assert_string_equal(err, "too big integer");
	assert_null(jsonrpc_parse("-9223372036854775809", 20, &bigs, err, sizeof(err)));
	assert_int_equal(bigs.n, 0);
	jsonrpc_bignums_free(&bigs);
}

/* The parser's refusals and acceptances that jansson shares (the fuzzer compares the rest). */
static void test_parse_rules(void **state)
{
	static const char *bad[] = { "01",	     "1.",
				     ".5",	     "-",
				     "1e",	     "[1,]",
				     "{\"a\":1,}",   "truex",
				     "\"\\u0000\"",  "\"\\ud800\"",
				     "\"\\udc00\"",  "\"\x01\"",
				     "\"\xc0\xaf\"", "\"\xed\xa0\x80\"",
				     "[1] 2",	     "1e999" };
	static const char *good[] = {
		"-0",	 "0.5e-3", "\"\\ud83d\\ude00\"", "\"\xc3\xa9\"", "{\"a\":1,\"a\":2}",
		" [ ] ", "1e-400"
	};
	struct jsonrpc_bignums bigs = { 0 };
	char err[128];

	(void)state;
	for (size_t i = 0; i < MIMO_COUNTOF(bad); i++)
		assert_null(jsonrpc_parse(bad[i], strlen(bad[i]), &bigs, err, sizeof(err)));
	for (size_t i = 0; i < MIMO_COUNTOF(good); i++) {
		json_t *v = jsonrpc_parse(good[i], strlen(good[i]), &bigs, err, sizeof(err));

		assert_non_null(v);
		json_decref(v);
	}
	jsonrpc_bignums_free(&bigs);
}

struct params {
	char *name;
	uint32_t block_size;
	uint64_t num_blocks;
	bool flag;
	int32_t neg;
	const json_t *obj;
};

static const struct mimo_json_decoder decoders[] = {
	{ "name", offsetof(struct params, name), mimo_json_decode_string, true },
	{ "block_size", offsetof(struct params, block_size), mimo_json_decode_uint32, false },
	{ "num_blocks", offsetof(struct params, num_blocks), mimo_json_decode_uint64, false },
	{ "flag", offsetof(struct params, flag), mimo_json_decode_bool, true },
	{ "neg", offsetof(struct params, neg), mimo_json_decode_int32, true },
	{ "obj", offsetof(struct params, obj), mimo_json_decode_json, true },
};

static int decode(const char *text, struct params *p, char *err)
{
	json_t *j = json_loads(text, 0, NULL);
	int rc;

	memset(p, 0, sizeof(*p));
	rc = mimo_json_decode_object(j, decoders, MIMO_COUNTOF(decoders), p, err, 256);
	json_decref(j);
	return rc;
}

static void test_decoders(void **state)
{
	struct params p;
	char err[256];

	(void)state;
	assert_int_equal(decode("{\"name\":\"Malloc0\",\"block_size\":512,\"num_blocks\":131072,"
				"\"flag\":true,\"neg\":-3}",
				&p, err),
			 0);
	assert_string_equal(p.name, "Malloc0");
	assert_int_equal(p.block_size, 512);
	assert_int_equal(p.num_blocks, 131072);
	assert_true(p.flag);
	assert_int_equal(p.neg, -3);
	mimo_json_decode_free(decoders, MIMO_COUNTOF(decoders), &p);
	assert_null(p.name);

	assert_int_equal(decode("{\"block_size\":4096.0,\"num_blocks\":1}", &p, err), 0);
	assert_int_equal(p.block_size, 4096);

	assert_int_equal(decode("{\"num_blocks\":1}", &p, err), -EINVAL);
	assert_string_equal(err, "missing parameter \"block_size\"");
	assert_int_equal(decode("{\"block_size\":-1,\"num_blocks\":1}", &p, err), -EINVAL);
	assert_string_equal(err, "parameter \"block_size\" must be an unsigned 32-bit integer");
	assert_int_equal(decode("{\"block_size\":4294967296,\"num_blocks\":1}", &p, err), -EINVAL);
	assert_int_equal(decode("{\"block_size\":1.5,\"num_blocks\":1}", &p, err), -EINVAL);
	assert_int_equal(decode("{\"block_size\":\"512\",\"num_blocks\":1}", &p, err), -EINVAL);
	assert_int_equal(decode("{\"block_size\":512,\"num_blocks\":1,\"bogus\":2}", &p, err),
			 -EINVAL);
	assert_string_equal(err, "unknown parameter \"bogus\"");
	assert_int_equal(decode("{\"block_size\":512,\"num_blocks\":1,\"flag\":1}", &p, err),
			 -EINVAL);
	assert_string_equal(err, "parameter \"flag\" must be true or false");
	assert_int_equal(decode("[512]", &p, err), -EINVAL);
	assert_string_equal(err, "parameters must be a JSON object");
	/* No params at all: required ones are missing. */
	assert_int_equal(mimo_json_decode_object(NULL, decoders, MIMO_COUNTOF(decoders), &p, err,
						 sizeof(err)),
			 -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_complete_values), cmocka_unit_test(test_incomplete_values),
		cmocka_unit_test(test_garbage),		cmocka_unit_test(test_incremental),
		cmocka_unit_test(test_big_integers),	cmocka_unit_test(test_parse_rules),
		cmocka_unit_test(test_decoders),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
