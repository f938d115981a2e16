/* The log's thresholds, flags and line format (lib/util/log.h). Each test runs in its own
 * process state order: main sets MIMO_LOG before the first call, as a daemon does. */
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

#include "log.h"

/* stderr goes to a file while a test writes lines; the text written is returned. */
static char g_text[8192];

static FILE *capture_begin(int *saved)
{
	FILE *f = tmpfile();

	assert_non_null(f);
	fflush(stderr);
	*saved = dup(STDERR_FILENO);
	dup2(fileno(f), STDERR_FILENO);
	return f;
}

static const char *capture_end(FILE *f, int saved)
{
	size_t n;

	dup2(saved, STDERR_FILENO);
	close(saved);
	rewind(f);
	n = fread(g_text, 1, sizeof(g_text) - 1, f);
	g_text[n] = '\0';
	fclose(f);
	return g_text;
}

static void test_threshold_names(void **state)
{
	(void)state;
	assert_int_equal(mimo_log_threshold_parse("ERROR"), MIMO_LOG_T_ERROR);
	assert_int_equal(mimo_log_threshold_parse("warning"), MIMO_LOG_T_WARNING);
	assert_int_equal(mimo_log_threshold_parse("warn"), MIMO_LOG_T_WARNING);
	assert_int_equal(mimo_log_threshold_parse("Notice"), MIMO_LOG_T_NOTICE);
	assert_int_equal(mimo_log_threshold_parse("INFO"), MIMO_LOG_T_INFO);
	assert_int_equal(mimo_log_threshold_parse("debug"), MIMO_LOG_T_DEBUG);
	assert_int_equal(mimo_log_threshold_parse("loud"), -1);
	assert_int_equal(mimo_log_threshold_parse(NULL), -1);
	assert_string_equal(mimo_log_threshold_name(MIMO_LOG_T_WARNING), "WARNING");
	assert_string_equal(mimo_log_threshold_name(MIMO_LOG_T_NOTICE), "NOTICE");
}

static void test_env_debug_sets_every_flag(void **state)
{
	bool on;

	(void)state;
	setenv("MIMO_LOG", "debug", 1);
	mimo_log_reload_level();
	assert_int_equal(mimo_log_get_print_level(), MIMO_LOG_T_DEBUG);
	for (size_t i = 0; i < mimo_log_flag_count(); i++) {
		assert_non_null(mimo_log_flag_get(i, &on));
		assert_true(on);
	}
	assert_null(mimo_log_flag_get(mimo_log_flag_count(), &on));
	assert_true(mimo_log_debug_enabled("bdev"));
	/* A component that is no flag follows the threshold alone. */
	assert_true(mimo_log_debug_enabled("not_a_flag"));
}

static void test_flags_gate_debug_lines(void **state)
{
	int saved;
	FILE *f;
	const char *out;

	(void)state;
	mimo_log_set_print_level(MIMO_LOG_T_DEBUG);
	assert_int_equal(mimo_log_set_flag("all", false), 0);
	assert_false(mimo_log_debug_enabled("bdev"));
	assert_int_equal(mimo_log_set_flag("BDEV", true), 0); /* any case */
	assert_true(mimo_log_debug_enabled("bdev"));
	assert_false(mimo_log_debug_enabled("bdev_nvme"));
	assert_int_equal(mimo_log_set_flag("nvmf*", true), 0); /* a pattern */
	assert_true(mimo_log_debug_enabled("nvmf_tcp") && mimo_log_debug_enabled("nvmf"));
	assert_int_equal(mimo_log_set_flag("nosuch", true), -EINVAL);

	f = capture_begin(&saved);
	MIMO_DEBUG("bdev", "shown %d", 1);
	MIMO_DEBUG("reactor", "hidden %d", 2);
	MIMO_INFO("reactor", "info %d", 3); /* not a debug line: the flag does not matter */
	out = capture_end(f, saved);
	assert_non_null(strstr(out, "bdev DEBUG: shown 1\n"));
	assert_null(strstr(out, "hidden"));
	assert_non_null(strstr(out, "reactor INFO: info 3\n"));

	/* The flag is set, but the threshold keeps DEBUG out: nothing. */
	mimo_log_set_print_level(MIMO_LOG_T_INFO);
	assert_false(mimo_log_debug_enabled("bdev"));
	f = capture_begin(&saved);
	MIMO_DEBUG("bdev", "below the threshold");
	MIMO_WARN("bdev", "a warning");
	out = capture_end(f, saved);
	assert_null(strstr(out, "below the threshold"));
	assert_non_null(strstr(out, "a warning"));
}

static void test_enable_flag_raises_the_print_level(void **state)
{
	(void)state;
	mimo_log_set_print_level(MIMO_LOG_T_WARNING);
	assert_int_equal(mimo_log_set_flag("all", false), 0);
	assert_int_equal(mimo_log_enable_flag("rpc"), 0);
	assert_int_equal(mimo_log_get_print_level(), MIMO_LOG_T_DEBUG);
	assert_true(mimo_log_debug_enabled("rpc"));
	assert_false(mimo_log_debug_enabled("bdev"));
	assert_int_equal(mimo_log_enable_flag("nosuch"), -EINVAL);
}

static void test_levels_and_timestamps(void **state)
{
	int saved;
	FILE *f;
	const char *out;
	char want[64];

	(void)state;
	mimo_log_set_print_level(MIMO_LOG_T_NOTICE); /* WARNING's lines: mimo writes no NOTICE */
	assert_true(mimo_log_enabled(MIMO_LOG_WARN));
	assert_false(mimo_log_enabled(MIMO_LOG_INFO));
	mimo_log_set_level(MIMO_LOG_T_ERROR);
	assert_int_equal(mimo_log_get_level(), MIMO_LOG_T_ERROR);

	mimo_log_enable_timestamps(false);
	f = capture_begin(&saved);
	MIMO_WARN("app", "plain");
	MIMO_INFO("app", "too verbose");
	out = capture_end(f, saved);
	snprintf(want, sizeof(want), "mimo[%d] app WARN: plain\n", (int)getpid());
	assert_string_equal(out, want);

	mimo_log_enable_timestamps(true);
	f = capture_begin(&saved);
	MIMO_ERR("app", "stamped");
	out = capture_end(f, saved);
	/* 2026-12-07T17:44:19.261Z mimo[...] */
	assert_int_equal(strlen(out) > 25, 1);
	assert_int_equal(out[4], '-');
	assert_int_equal(out[10], 'T');
	assert_int_equal(out[23], 'Z');
	assert_non_null(strstr(out, "app ERROR: stamped\n"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_threshold_names),
		cmocka_unit_test(test_env_debug_sets_every_flag),
		cmocka_unit_test(test_flags_gate_debug_lines),
		cmocka_unit_test(test_enable_flag_raises_the_print_level),
		cmocka_unit_test(test_levels_and_timestamps),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
