#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "webhook.h"

/* The example of the Standard Webhooks specification (its reference libraries' tests). */
static void test_standard_webhooks_vector(void **state)
{
	struct webhook_signer s;
	char sig[WEBHOOK_SIGNATURE_LEN];
	const char *body = "{\"test\": 2432232314}";

	(void)state;
	assert_int_equal(webhook_signer_init(&s, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), 0);
	assert_true(s.enabled);
	assert_int_equal(s.key_len, 24);
	assert_int_equal(webhook_sign(&s, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body,
				      strlen(body), sig),
			 0);
	assert_string_equal(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
}

static void test_signer_forms(void **state)
{
	struct webhook_signer s;

	(void)state;
	assert_int_equal(webhook_signer_init(&s, NULL), 0);
	assert_false(s.enabled);
	assert_int_equal(webhook_signer_init(&s, ""), 0);
	assert_false(s.enabled);
	assert_int_equal(webhook_signer_init(&s, "plain-secret"), 0);
	assert_true(s.enabled);
	assert_int_equal(s.key_len, 12);
	assert_memory_equal(s.key, "plain-secret", 12);
	assert_int_equal(webhook_signer_init(&s, "whsec_not*base64"), -EINVAL);
}

static void test_ids_are_stable_and_distinct(void **state)
{
	char a[WEBHOOK_ID_LEN], b[WEBHOOK_ID_LEN], c[WEBHOOK_ID_LEN];

	(void)state;
	webhook_make_id(a, 0x1234, 1);
	webhook_make_id(b, 0x1234, 1);
	webhook_make_id(c, 0x1234, 2);
	assert_string_equal(a, b);
	assert_string_not_equal(a, c);
	assert_int_equal(strlen(a), WEBHOOK_ID_LEN - 1);
	assert_memory_equal(a, "msg_", 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_standard_webhooks_vector),
		cmocka_unit_test(test_signer_forms),
		cmocka_unit_test(test_ids_are_stable_and_distinct),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
