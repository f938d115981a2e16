/* The Prometheus text writer and --metrics' address parser (lib/metrics). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "expo.h"
#include "server.h"

static void test_family_and_samples(void **state)
{
	struct mimo_expo e = { 0 };

	(void)state;
	mimo_expo_family(&e, "mimo_x_total", MIMO_EXPO_COUNTER, "Things.");
	mimo_expo_u64(&e, "mimo_x_total", (const char *const[]){ "a", "1", "b", "2", NULL },
		      18446744073709551615ull);
	mimo_expo_f64(&e, "mimo_x_total", NULL, 0.5);
	assert_false(e.oom);
	assert_string_equal(e.b.data, "# HELP mimo_x_total Things.\n"
				      "# TYPE mimo_x_total counter\n"
				      "mimo_x_total{a=\"1\",b=\"2\"} 18446744073709551615\n"
				      "mimo_x_total 0.5\n");
	mimo_buf_free(&e.b);
}

/* The format's escapes in label values: backslash, quote, newline; UTF-8 untouched. */
static void test_label_values_are_escaped(void **state)
{
	struct mimo_expo e = { 0 };

	(void)state;
	mimo_expo_u64(&e, "m", (const char *const[]){ "bdev", "a\\b\"c\nd\xc3\xa4", NULL }, 1);
	assert_string_equal(e.b.data, "m{bdev=\"a\\\\b\\\"c\\nd\xc3\xa4\"} 1\n");
	mimo_buf_free(&e.b);
}

static void test_special_values(void **state)
{
	struct mimo_expo e = { 0 };

	(void)state;
	mimo_expo_f64(&e, "m", NULL, 1.0 / 0.0);
	mimo_expo_f64(&e, "m", NULL, 0.0 / 0.0);
	assert_string_equal(e.b.data, "m +Inf\nm NaN\n");
	mimo_buf_free(&e.b);
}

static void test_histogram_is_cumulative(void **state)
{
	static const double bounds[] = { 0.001, 0.5 };
	static const uint64_t counts[] = { 2, 0, 3 };
	struct mimo_expo e = { 0 };

	(void)state;
	mimo_expo_histogram(&e, "h_seconds", "bdev", "M0", bounds, 2, counts, 1.5);
	assert_string_equal(e.b.data, "h_seconds_bucket{bdev=\"M0\",le=\"0.001\"} 2\n"
				      "h_seconds_bucket{bdev=\"M0\",le=\"0.5\"} 2\n"
				      "h_seconds_bucket{bdev=\"M0\",le=\"+Inf\"} 5\n"
				      "h_seconds_sum{bdev=\"M0\"} 1.5\n"
				      "h_seconds_count{bdev=\"M0\"} 5\n");
	mimo_buf_free(&e.b);
}

static void test_addresses(void **state)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
	static const char *const bad[] = {
		"9464",		"localhost:9464", "127.0.0.1:",	   "127.0.0.1:65536",
		"127.0.0.1:-1", "127.0.0.1:+1",	  "[::1:9464",	   "::1:9464",
		"1.2.3:80",	"[::1]x:80",	  "127.0.0.1:80x", ""
	};
	char err[160];

	(void)state;
	assert_int_equal(mimo_metrics_parse_addr("127.0.0.1:9464", &ss, err, sizeof(err)), 0);
	assert_int_equal(ss.ss_family, AF_INET);
	assert_int_equal(ntohs(s4->sin_port), 9464);
	assert_int_equal(ntohl(s4->sin_addr.s_addr), 0x7f000001);
	assert_int_equal(mimo_metrics_parse_addr(":80", &ss, err, sizeof(err)), 0);
	assert_int_equal(s4->sin_addr.s_addr, htonl(INADDR_ANY));
	assert_int_equal(mimo_metrics_parse_addr("[::1]:0", &ss, err, sizeof(err)), 0);
	assert_int_equal(ss.ss_family, AF_INET6);
	assert_int_equal(ntohs(s6->sin6_port), 0);
	assert_true(IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		assert_int_equal(mimo_metrics_parse_addr(bad[i], &ss, err, sizeof(err)), -EINVAL);
		assert_true(strlen(err) > 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_family_and_samples),
		cmocka_unit_test(test_label_values_are_escaped),
		cmocka_unit_test(test_special_values),
		cmocka_unit_test(test_histogram_is_cumulative),
		cmocka_unit_test(test_addresses),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
