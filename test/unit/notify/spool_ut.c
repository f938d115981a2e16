#include <dirent.h>
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

#include "spool.h"

static char g_dir[64];

static int setup(void **state)
{
	(void)state;
	strcpy(g_dir, "/tmp/mimo-spool-ut-XXXXXX");
	assert_non_null(mkdtemp(g_dir));
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", g_dir);
	return system(cmd) == 0 ? 0 : -1;
}

static int count_files(const char *suffix)
{
	DIR *d = opendir(g_dir);
	struct dirent *e;
	int n = 0;

	while ((e = readdir(d)) != NULL) {
		size_t l = strlen(e->d_name), s = strlen(suffix);

		if (strncmp(e->d_name, "seg-", 4) == 0 && l > s &&
		    strcmp(e->d_name + l - s, suffix) == 0)
			n++;
	}
	closedir(d);
	return n;
}

static void append(struct notify_spool *sp, int first, int n)
{
	struct spool_rec recs[8];
	char bodies[8][64];

	for (int i = 0; i < n; i++) {
		snprintf(recs[i].id, sizeof(recs[i].id), "msg_%d", first + i);
		/* Bodies may contain newlines: records are length-prefixed. */
		snprintf(bodies[i], sizeof(bodies[i]), "{\"n\":\n%d}", first + i);
		recs[i].body = bodies[i];
		recs[i].len = strlen(bodies[i]);
	}
	assert_int_equal(notify_spool_append(sp, recs, (size_t)n), 0);
}

static void expect_next(struct notify_spool *sp, int n)
{
	struct spool_rec rec;
	char want_id[32], want_body[64];

	snprintf(want_id, sizeof(want_id), "msg_%d", n);
	snprintf(want_body, sizeof(want_body), "{\"n\":\n%d}", n);
	assert_int_equal(notify_spool_peek(sp, &rec), 0);
	assert_string_equal(rec.id, want_id);
	assert_int_equal(rec.len, strlen(want_body));
	assert_memory_equal(rec.body, want_body, rec.len);
	notify_spool_consume(sp);
}

static void test_order_and_cleanup(void **state)
{
	struct notify_spool sp;
	struct spool_rec rec;

	(void)state;
	assert_int_equal(notify_spool_open(&sp, g_dir, 1 << 20), 0);
	assert_true(notify_spool_empty(&sp));
	append(&sp, 0, 3);
	append(&sp, 3, 2);
	assert_false(notify_spool_empty(&sp));
	assert_int_equal(count_files(".log"), 2);
	for (int i = 0; i < 5; i++)
		expect_next(&sp, i);
	assert_int_equal(notify_spool_peek(&sp, &rec), -ENOENT);
	assert_true(notify_spool_empty(&sp));
	assert_int_equal(count_files(".log"), 0);
	notify_spool_close(&sp);
}

static void test_survives_reopen_and_resumes(void **state)
{
	struct notify_spool sp;
	struct spool_rec rec;

	(void)state;
	assert_int_equal(notify_spool_open(&sp, g_dir, 1 << 20), 0);
	append(&sp, 0, 3);
	append(&sp, 3, 1);
	expect_next(&sp, 0);
	notify_spool_close(&sp); /* remembers that msg_0 is done */

	assert_int_equal(notify_spool_open(&sp, g_dir, 1 << 20), 0);
	assert_false(notify_spool_empty(&sp));
	append(&sp, 4, 1); /* goes after the existing segments */
	for (int i = 1; i < 5; i++)
		expect_next(&sp, i);
	assert_int_equal(notify_spool_peek(&sp, &rec), -ENOENT);
	assert_int_equal(count_files(".pos"), 0);
	notify_spool_close(&sp);
}

static void test_damaged_segment_quarantined(void **state)
{
	struct notify_spool sp;
	char path[128];
	FILE *f;

	(void)state;
	assert_int_equal(notify_spool_open(&sp, g_dir, 1 << 20), 0);
	append(&sp, 0, 1);
	notify_spool_close(&sp);
	/* A segment that sorts after the good one, with a record cut short. */
	snprintf(path, sizeof(path), "%s/seg-00000000000000000007.log", g_dir);
	f = fopen(path, "w");
	fputs("mimo-spool 1\nmsg_x 100\n{\"short\"", f);
	fclose(f);
	assert_int_equal(notify_spool_open(&sp, g_dir, 1 << 20), 0);
	append(&sp, 1, 1);
	expect_next(&sp, 0);
	expect_next(&sp, 1);
	assert_true(notify_spool_empty(&sp));
	assert_int_equal(count_files(".bad"), 1);
	notify_spool_close(&sp);
}

static void test_single_owner_and_limits(void **state)
{
	struct notify_spool a, b;
	struct spool_rec rec = { .id = "msg_big" };
	char big[256];
	char tmp[128];
	FILE *f;

	(void)state;
	/* A leftover temporary file from a crash is removed at open. */
	snprintf(tmp, sizeof(tmp), "%s/.tmp-seg-00000000000000000001.log", g_dir);
	f = fopen(tmp, "w");
	fputs("partial", f);
	fclose(f);
	assert_int_equal(notify_spool_open(&a, g_dir, 200), 0);
	assert_int_not_equal(access(tmp, F_OK), 0);
	assert_int_equal(notify_spool_open(&b, g_dir, 200), -EWOULDBLOCK);
	memset(big, 'x', sizeof(big));
	rec.body = big;
	rec.len = sizeof(big);
	assert_int_equal(notify_spool_append(&a, &rec, 1), -ENOSPC);
	notify_spool_close(&a);
	assert_int_equal(notify_spool_open(&b, g_dir, 200), 0);
	notify_spool_close(&b);
}

/* A position left behind for a segment must never apply to a later segment that could
 * reuse its name (the segment was removed, or moved aside as damaged). */
static void test_stale_position_never_skips_records(void **state)
{
	struct notify_spool sp;
	char path[160];

	(void)state;
	assert_int_equal(notify_spool_open(&sp, g_dir, 1 << 20), 0);
	append(&sp, 0, 2);
	expect_next(&sp, 0);
	notify_spool_close(&sp); /* leaves seg-0.log.pos pointing past record 0 */
	snprintf(path, sizeof(path), "%s/seg-00000000000000000000.log", g_dir);
	assert_int_equal(unlink(path), 0); /* the segment goes, its position stays */

	assert_int_equal(notify_spool_open(&sp, g_dir, 1 << 20), 0);
	assert_true(notify_spool_empty(&sp));
	append(&sp, 10, 2); /* same record sizes: the old offset would be a valid boundary */
	expect_next(&sp, 10);
	expect_next(&sp, 11);
	notify_spool_close(&sp);
}

/* A segment that cannot be read is moved aside; the ones after it are still delivered. */
static void test_unreadable_segment_does_not_stall(void **state)
{
	struct notify_spool sp;
	struct spool_rec rec;
	char path[160];

	(void)state;
	snprintf(path, sizeof(path), "%s/seg-00000000000000000000.log", g_dir);
	assert_int_equal(symlink("/nonexistent/target", path), 0);
	assert_int_equal(notify_spool_open(&sp, g_dir, 1 << 20), 0);
	append(&sp, 0, 1);
	expect_next(&sp, 0);
	assert_int_equal(notify_spool_peek(&sp, &rec), -ENOENT);
	assert_true(notify_spool_empty(&sp));
	assert_int_equal(count_files(".bad"), 1);
	notify_spool_close(&sp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_order_and_cleanup, setup, teardown),
		cmocka_unit_test_setup_teardown(test_survives_reopen_and_resumes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_damaged_segment_quarantined, setup, teardown),
		cmocka_unit_test_setup_teardown(test_single_owner_and_limits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stale_position_never_skips_records, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_unreadable_segment_does_not_stall, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
