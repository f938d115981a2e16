#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "base64.h"

/* RFC 4648 section 10 test vectors. */
static const char *const plain[] = { "", "f", "fo", "foo", "foob", "fooba", "foobar" };
static const char *const coded[] = {
	"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"
};

static void test_rfc4648_vectors(void **state)
{
	char out[32];
	uint8_t dec[32];

	(void)state;
	for (size_t i = 0; i < 7; i++) {
		size_t n = mimo_base64_encode(plain[i], strlen(plain[i]), out);

		assert_int_equal(n, strlen(coded[i]));
		assert_string_equal(out, coded[i]);
		assert_int_equal(mimo_base64_decode(coded[i], strlen(coded[i]), dec),
				 (long)strlen(plain[i]));
		assert_memory_equal(dec, plain[i], strlen(plain[i]));
	}
}

static void test_decode_rejects_bad_input(void **state)
{
	static const char *const bad[] = {
		"Zg=", "Zg", "Z===", "Zm9v!A==", "Zm=v", "Zm 9v", "=Zm9"
	};
	uint8_t dec[32];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (mimo_base64_decode(bad[i], strlen(bad[i]), dec) != -EINVAL)
			fail_msg("accepted %s", bad[i]);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc4648_vectors),
		cmocka_unit_test(test_decode_rejects_bad_input),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
