#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"

static char g_path[64];

static int setup(void **state)
{
	static const char *const vars[] = { "MIMO_NOTIFY_URL",	   "MIMO_NOTIFY_TIMEOUT_MS",
					    "MIMO_NOTIFY_RETRIES", "MIMO_NOTIFY_QUEUE",
					    "MIMO_NOTIFY_SPOOL",   "MIMO_NOTIFY_SECRET",
					    "MIMO_NOTIFY_DISABLE", "MIMO_NOTIFY_CONFIG" };
	int fd;

	(void)state;
	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
		unsetenv(vars[i]);
	strcpy(g_path, "/tmp/mimo-config-ut-XXXXXX");
	fd = mkstemp(g_path);
	assert_true(fd >= 0);
	close(fd);
	setenv("MIMO_NOTIFY_CONFIG", g_path, 1);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(g_path);
	return 0;
}

static void write_file(const char *text)
{
	FILE *f = fopen(g_path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void test_defaults(void **state)
{
	struct notify_config c;

	(void)state;
	write_file("{}");
	notify_config_load(&c, NULL);
	assert_string_equal(c.url, "http://127.0.0.1:9090/spdk/events");
	assert_string_equal(c.method, "POST");
	assert_int_equal(c.timeout_ms, 2000);
	assert_int_equal(c.retries, 2);
	assert_int_equal(c.backoff_ms, 100);
	assert_int_equal(c.queue, 8192);
	assert_int_equal(c.queue_max_mb, 64);
	assert_int_equal(c.max_backoff_ms, 5000);
	assert_int_equal(c.max_payload, 65536);
	assert_int_equal(c.grace_ms, 2000);
	assert_null(c.spool);
	assert_null(c.secret);
	assert_false(c.disable);
	assert_false(c.strict); /* the Go bridge's rules unless asked */
	notify_config_free(&c);
}

static void test_issue10_keys(void **state)
{
	struct notify_config c;

	(void)state;
	write_file("{\"strict\":true,\"queue_max_mb\":0,\"max_backoff_ms\":250}");
	notify_config_load(&c, NULL);
	assert_true(c.strict);
	assert_int_equal(c.queue_max_mb, 0);
	assert_int_equal(c.max_backoff_ms, 250);
	notify_config_free(&c);
	setenv("MIMO_NOTIFY_STRICT", "no", 1);
	setenv("MIMO_NOTIFY_QUEUE_MAX_MB", "8", 1);
	setenv("MIMO_NOTIFY_MAX_BACKOFF_MS", "1000", 1);
	notify_config_load(&c, NULL);
	assert_false(c.strict);
	assert_int_equal(c.queue_max_mb, 8);
	assert_int_equal(c.max_backoff_ms, 1000);
	notify_config_free(&c);
	unsetenv("MIMO_NOTIFY_STRICT");
	unsetenv("MIMO_NOTIFY_QUEUE_MAX_MB");
	unsetenv("MIMO_NOTIFY_MAX_BACKOFF_MS");
}

/* A config file written for the Go bridge works unchanged. */
static void test_go_bridge_file(void **state)
{
	struct notify_config c;

	(void)state;
	write_file("{\"endpoint\":\"http://10.1.2.3:9988/mimo/events\",\"method\":\"POST\","
		   "\"timeout\":\"1500ms\",\"source\":\"spdk_nvmf\",\"retry\":3,"
		   "\"retry_backoff_ms\":50}");
	notify_config_load(&c, NULL);
	assert_string_equal(c.url, "http://10.1.2.3:9988/mimo/events");
	assert_int_equal(c.timeout_ms, 1500);
	assert_int_equal(c.retries, 3);
	assert_int_equal(c.backoff_ms, 50);
	notify_config_free(&c);
}

static void test_precedence(void **state)
{
	struct notify_config c;
	json_t *api = json_pack("{s:i}", "retries", 7);

	(void)state;
	write_file("{\"retries\":3,\"queue\":64,\"grace_ms\":10}");
	setenv("MIMO_NOTIFY_RETRIES", "5", 1);
	setenv("MIMO_NOTIFY_QUEUE", "128", 1);
	notify_config_load(&c, NULL);
	assert_int_equal(c.retries, 5);	  /* env over file */
	assert_int_equal(c.queue, 128);	  /* env over file */
	assert_int_equal(c.grace_ms, 10); /* file over default */
	notify_config_free(&c);
	notify_config_load(&c, api);
	assert_int_equal(c.retries, 7); /* API over env */
	assert_int_equal(c.queue, 128);
	notify_config_free(&c);
	json_decref(api);
	unsetenv("MIMO_NOTIFY_RETRIES");
	unsetenv("MIMO_NOTIFY_QUEUE");
}

static void test_bad_file_is_ignored_whole(void **state)
{
	struct notify_config c;

	(void)state;
	write_file("{\"retries\":4,\"timeout_ms\":\"soon\"}");
	notify_config_load(&c, NULL);
	assert_int_equal(c.retries, 2);
	assert_int_equal(c.timeout_ms, 2000);
	notify_config_free(&c);

	write_file("{\"retries\":4,");
	notify_config_load(&c, NULL);
	assert_int_equal(c.retries, 2);
	notify_config_free(&c);

	/* An unknown key in a file is only a warning: the rest applies. */
	write_file("{\"retries\":4,\"future_key\":1}");
	notify_config_load(&c, NULL);
	assert_int_equal(c.retries, 4);
	notify_config_free(&c);
}

static void test_env_bad_values_skipped(void **state)
{
	struct notify_config c;

	(void)state;
	write_file("{}");
	setenv("MIMO_NOTIFY_TIMEOUT_MS", "abc", 1);
	setenv("MIMO_NOTIFY_RETRIES", "-1", 1);
	setenv("MIMO_NOTIFY_URL", "ftp://x", 1);
	setenv("MIMO_NOTIFY_DISABLE", "yes", 1);
	setenv("MIMO_NOTIFY_SPOOL", "/var/tmp/spool", 1);
	notify_config_load(&c, NULL);
	assert_int_equal(c.timeout_ms, 2000);
	assert_int_equal(c.retries, 2);
	assert_string_equal(c.url, "http://127.0.0.1:9090/spdk/events");
	assert_true(c.disable);
	assert_string_equal(c.spool, "/var/tmp/spool");
	notify_config_free(&c);
	unsetenv("MIMO_NOTIFY_TIMEOUT_MS");
	unsetenv("MIMO_NOTIFY_RETRIES");
	unsetenv("MIMO_NOTIFY_URL");
	unsetenv("MIMO_NOTIFY_DISABLE");
	unsetenv("MIMO_NOTIFY_SPOOL");
}

static void test_strict_api_values(void **state)
{
	static const char *const bad[] = {
		"{\"queue\":1}",
		"{\"timeout_ms\":0}",
		"{\"url\":\"ftp://x\"}",
		"{\"method\":\"GET\"}",
		"{\"retries\":-1}",
		"{\"disable\":\"no\"}",
		"{\"no_such_key\":1}",
		"{\"spool\":5}",
		"{\"timeout\":\"fast\"}",
		"{\"max_payload_bytes\":1}",
		"[]",
	};
	struct notify_config c;

	(void)state;
	notify_config_defaults(&c);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_t *doc = json_loads(bad[i], 0, NULL);

		assert_non_null(doc);
		if (notify_config_apply_object(&c, doc, true, "test") != -EINVAL)
			fail_msg("accepted %s", bad[i]);
		json_decref(doc);
	}
	/* Nothing changed. */
	assert_int_equal(c.queue, 8192);
	assert_string_equal(c.url, "http://127.0.0.1:9090/spdk/events");
	notify_config_free(&c);
}

static void test_durations(void **state)
{
	uint32_t ms = 0;

	(void)state;
	assert_int_equal(notify_parse_duration_ms("2s", &ms), 0);
	assert_int_equal(ms, 2000);
	assert_int_equal(notify_parse_duration_ms("500ms", &ms), 0);
	assert_int_equal(ms, 500);
	assert_int_equal(notify_parse_duration_ms("1m30s", &ms), 0);
	assert_int_equal(ms, 90000);
	assert_int_equal(notify_parse_duration_ms("1.5s", &ms), 0);
	assert_int_equal(ms, 1500);
	assert_int_equal(notify_parse_duration_ms("1500000us", &ms), 0);
	assert_int_equal(ms, 1500);
	assert_int_equal(notify_parse_duration_ms("5", &ms), -EINVAL);
	assert_int_equal(notify_parse_duration_ms("", &ms), -EINVAL);
	assert_int_equal(notify_parse_duration_ms("2 s", &ms), -EINVAL);
	assert_int_equal(notify_parse_duration_ms("-1s", &ms), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_issue10_keys, setup, teardown),
		cmocka_unit_test_setup_teardown(test_go_bridge_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_precedence, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_file_is_ignored_whole, setup, teardown),
		cmocka_unit_test_setup_teardown(test_env_bad_values_skipped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_strict_api_values, setup, teardown),
		cmocka_unit_test(test_durations),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
