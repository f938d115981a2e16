/*
 * The durable up-queue: a record counts once its completion ran; it survives a reopen (the
 * "crash" here is closing the queue without consuming); a torn tail is cut; a key seen before
 * is not stored twice; consumers see their slot's records in order and release them.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "upq.h"

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;
static int g_done, g_failed;

static void done(void *arg, int status)
{
	(void)arg;
	pthread_mutex_lock(&g_mu);
	g_done++;
	g_failed += status != 0;
	pthread_cond_broadcast(&g_cv);
	pthread_mutex_unlock(&g_mu);
}

static void wait_done(int n)
{
	pthread_mutex_lock(&g_mu);
	while (g_done < n)
		pthread_cond_wait(&g_cv, &g_mu);
	pthread_mutex_unlock(&g_mu);
}

static struct upq_hooks g_hooks;

static char *tmpdir(void)
{
	char *d = strdup("/tmp/mimo-upq-ut-XXXXXX");

	assert_non_null(mkdtemp(d));
	return d;
}

static struct up_rec rec(uint64_t key, uint64_t slot, const char *id, const char *content)
{
	struct up_rec r = { .key_hi = 7,
			    .key_lo = key,
			    .slot_id = slot,
			    .accepted_ms = 1000,
			    .expires_ms = 2000,
			    .plugin = "p",
			    .plugin_len = 1,
			    .msg_id = id,
			    .msg_id_len = strlen(id),
			    .content = content,
			    .content_len = strlen(content) };

	return r;
}

static struct upq *open_q(const char *dir)
{
	struct upq_opts o = { .dir = dir, .segment_bytes = 4096 };
	struct upq *q = NULL;

	assert_int_equal(upq_open(&q, &o, &g_hooks), 0);
	return q;
}

static void test_record_codec(void **state)
{
	struct up_rec r = rec(5, 3, "id-1", "content"), d;
	uint8_t buf[256];
	size_t n = upq_rec_size(&r);

	(void)state;
	upq_rec_encode(buf, &r);
	assert_int_equal(upq_rec_decode(buf, n, &d), (long)n);
	assert_int_equal(d.key_lo, 5);
	assert_memory_equal(d.content, "content", 7);
	assert_int_equal(upq_rec_decode(buf, n - 1, &d), 0);
	buf[n - 1] ^= 1; /* a flipped bit: the CRC says so */
	assert_int_equal(upq_rec_decode(buf, n, &d), -EBADMSG);
}

static void test_append_consume_recover(void **state)
{
	char *dir = tmpdir(), path[512];
	struct mimo_buf b = { 0 };
	struct upq_consumer *c;
	struct upq_pos next;
	struct up_rec r;
	struct upq *q;
	char id[32];
	size_t npend;
	uint64_t *pend;
	int fd;

	(void)state;
	g_done = g_failed = 0;
	q = open_q(dir);
	for (int i = 0; i < 100; i++) {
		struct up_rec x;

		snprintf(id, sizeof(id), "m-%d", i);
		x = rec((uint64_t)i + 1, (uint64_t)(i % 2) + 1, id, "hello");
		assert_int_equal(upq_append(q, &x, done, NULL), 0);
	}
	wait_done(100);
	assert_int_equal(g_failed, 0);
	/* The same key again: already durable, nothing written. */
	r = rec(1, 1, "m-0", "hello");
	assert_int_equal(upq_append(q, &r, done, NULL), 1);
	/* Slot 1's consumer sees its 50 records in order; releases 10 of them. */
	c = upq_consumer_open(q, 1);
	for (int i = 0; i < 50; i++) {
		assert_int_equal(upq_next(c, &r, &next, &b, 1000), 0);
		snprintf(id, sizeof(id), "m-%d", 2 * i);
		assert_int_equal(r.msg_id_len, strlen(id));
		assert_memory_equal(r.msg_id, id, strlen(id));
		if (i < 10)
			upq_release(c, next);
	}
	assert_int_equal(upq_next(c, &r, &next, &b, 0), -EAGAIN);
	upq_consumer_close(c);
	upq_close(q);

	/* A torn record at the end of the newest segment (never acknowledged). */
	snprintf(path, sizeof(path), "%s/seg-%020d.log", dir, 999);
	fd = open(path, O_WRONLY | O_CREAT, 0600);
	assert_true(write(fd, "MUPR\x40\0\0\0junk", 12) == 12);
	close(fd);

	/* Reopen: slot 1 resumes after its 10 released records, slot 2 from the start. */
	q = open_q(dir);
	pend = upq_pending_slots(q, &npend);
	assert_int_equal(npend, 2);
	free(pend);
	c = upq_consumer_open(q, 1);
	assert_int_equal(upq_next(c, &r, &next, &b, 1000), 0);
	assert_memory_equal(r.msg_id, "m-20", 4);
	upq_consumer_close(c);
	c = upq_consumer_open(q, 2);
	assert_int_equal(upq_next(c, &r, &next, &b, 1000), 0);
	assert_memory_equal(r.msg_id, "m-1", 3);
	upq_consumer_close(c);
	/* Keys are remembered across the reopen. */
	r = rec(2, 2, "m-1", "hello");
	assert_int_equal(upq_append(q, &r, done, NULL), 1);
	upq_close(q);
	mimo_buf_free(&b);
	snprintf(path, sizeof(path), "rm -rf %s", dir);
	assert_int_equal(system(path), 0);
	free(dir);
}

static void test_released_segments_are_deleted_and_bound_holds(void **state)
{
	char *dir = tmpdir(), cmd[512];
	struct upq_opts o = { .dir = dir, .segment_bytes = 4096, .max_bytes = 64 * 1024 };
	struct mimo_buf b = { 0 };
	char content[1000];
	struct upq_consumer *c;
	struct upq_stats st;
	struct upq_pos next;
	struct up_rec r;
	struct upq *q;
	int ok = 0, full = 0;

	(void)state;
	g_done = g_failed = 0;
	memset(content, 'x', sizeof(content) - 1);
	content[sizeof(content) - 1] = '\0';
	assert_int_equal(upq_open(&q, &o, &g_hooks), 0);
	for (int i = 0; i < 100; i++) {
		struct up_rec x = rec((uint64_t)i + 1, 1, "m", content);
		int rc = upq_append(q, &x, done, NULL);

		if (rc == 0)
			ok++;
		else if (rc == -ENOSPC)
			full++;
		if (i % 8 == 7)
			wait_done(ok);
	}
	wait_done(ok);
	assert_true(full > 0 && ok > 0 && ok < 100);
	upq_get_stats(q, &st);
	assert_true(st.segments > 5);
	c = upq_consumer_open(q, 1);
	for (int i = 0; i < ok; i++) {
		assert_int_equal(upq_next(c, &r, &next, &b, 1000), 0);
		upq_release(c, next);
	}
	upq_get_stats(q, &st);
	assert_int_equal(st.segments, 1);
	upq_consumer_close(c);
	upq_close(q);
	mimo_buf_free(&b);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_record_codec),
		cmocka_unit_test(test_append_consume_recover),
		cmocka_unit_test(test_released_segments_are_deleted_and_bound_holds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
