/* The callback destination policy (lib/http/dest.c): which addresses and URLs are refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include "dest.h"

static const char *judge(const char *text)
{
	struct sockaddr_in6 s6 = { .sin6_family = AF_INET6 };
	struct sockaddr_in s4 = { .sin_family = AF_INET };

	if (inet_pton(AF_INET, text, &s4.sin_addr) == 1)
		return mimo_dest_refused((struct sockaddr *)&s4, sizeof(s4));
	assert_int_equal(inet_pton(AF_INET6, text, &s6.sin6_addr), 1);
	return mimo_dest_refused((struct sockaddr *)&s6, sizeof(s6));
}

static void test_addresses(void **state)
{
	(void)state;
	assert_string_equal(judge("169.254.169.254"), "cloud metadata");
	assert_string_equal(judge("169.254.170.2"), "cloud metadata");
	assert_string_equal(judge("169.254.0.1"), "link-local");
	assert_string_equal(judge("100.100.100.200"), "cloud metadata");
	assert_string_equal(judge("fe80::1"), "link-local");
	assert_string_equal(judge("febf::1"), "link-local");
	assert_string_equal(judge("fd00:ec2::254"), "cloud metadata");
	assert_string_equal(judge("::ffff:169.254.169.254"), "cloud metadata");
	/* The usual callbacks stay allowed. */
	assert_null(judge("127.0.0.1"));
	assert_null(judge("10.0.0.1"));
	assert_null(judge("192.168.1.1"));
	assert_null(judge("100.100.100.201"));
	assert_null(judge("169.253.255.255"));
	assert_null(judge("::1"));
	assert_null(judge("fec0::1"));
	assert_null(judge("fd00:ec2::253"));
}

static void test_urls(void **state)
{
	static const char *const refused[] = {
		"http://169.254.169.254/latest/meta-data/",
		"https://169.254.169.254:8443/x",
		"http://user:pw@169.254.169.254/",
		"http://[fe80::1%25lo]:80/cb",
		"http://[::ffff:a9fe:a9fe]/",
		"http://2852039166/",
		"http://0xa9.0xfe.0xa9.0xfe/",
		"http://metadata.google.internal/computeMetadata/v1/",
		"http://METADATA.GOOGLE.INTERNAL./",
		"http://metadata/",
		NULL,
	};
	static const char *const allowed[] = {
		"http://127.0.0.1:8080/cb",
		"https://example.com/cb?x=169.254.169.254",
		"http://metadata.example.com/",
		"http://[::1]:9/",
		"http://10.1.2.3/",
		NULL,
	};
	char why[128];

	(void)state;
	for (size_t i = 0; refused[i] != NULL; i++) {
		why[0] = '\0';
		if (mimo_dest_check_url(refused[i], why, sizeof(why)) != -EACCES)
			fail_msg("%s was allowed", refused[i]);
		assert_true(strlen(why) > 0);
	}
	for (size_t i = 0; allowed[i] != NULL; i++) {
		if (mimo_dest_check_url(allowed[i], why, sizeof(why)) != 0)
			fail_msg("%s was refused: %s", allowed[i], why);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_addresses),
		cmocka_unit_test(test_urls),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
