/*
 * The bdev layer and its modules on a real reactor: I/O is submitted on reactor 0 and the
 * test thread waits for each completion.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "bdev_aio.h"
#include "bdev_internal.h"
#include "bdev_error.h"
#include "bdev_malloc.h"
#include "bdev_null.h"
#include "mimo/bdev.h"
#include "mimo/events.h"
#include "mimo/reactor.h"

static sem_t g_sem;

static void wait_sem(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 10;
	assert_int_equal(sem_timedwait(&g_sem, &ts), 0);
}

/* --- running things on reactor 0 --------------------------------------------------------- */

struct call {
	int (*fn)(struct call *c);
	int rc;
	const char *name;
	struct mimo_bdev_desc *desc;
	struct mimo_io_channel *ch;
	enum mimo_bdev_io_type type;
	void *buf;
	struct iovec iov[4];
	int iovcnt;
	uint64_t off, num;
	int status;
};

static void run_msg(void *arg)
{
	struct call *c = arg;

	c->rc = c->fn(c);
	if (c->rc != 1)
		sem_post(&g_sem); /* 1: completes later and posts itself */
}

static int run(int (*fn)(struct call *c), struct call *c)
{
	c->fn = fn;
	assert_int_equal(mimo_reactor_send_msg(mimo_reactor_get(0), run_msg, c), 0);
	wait_sem();
	return c->rc;
}

static void io_done(struct mimo_bdev_io *io, bool success, void *arg)
{
	struct call *c = arg;

	c->status = success ? 0 : mimo_bdev_io_get_status(io);
	assert_int_equal(success, c->status == 0);
	mimo_bdev_free_io(io);
	c->rc = 0;
	sem_post(&g_sem);
}

static int do_io(struct call *c)
{
	int rc;

	switch (c->type) {
	case MIMO_BDEV_IO_READ:
		rc = c->iovcnt ? mimo_bdev_readv_blocks(c->desc, c->ch, c->iov, c->iovcnt, c->off,
							c->num, io_done, c)
			       : mimo_bdev_read_blocks(c->desc, c->ch, c->buf, c->off, c->num,
						       io_done, c);
		break;
	case MIMO_BDEV_IO_WRITE:
		rc = c->iovcnt ? mimo_bdev_writev_blocks(c->desc, c->ch, c->iov, c->iovcnt, c->off,
							 c->num, io_done, c)
			       : mimo_bdev_write_blocks(c->desc, c->ch, c->buf, c->off, c->num,
							io_done, c);
		break;
	case MIMO_BDEV_IO_UNMAP:
		rc = mimo_bdev_unmap_blocks(c->desc, c->ch, c->off, c->num, io_done, c);
		break;
	case MIMO_BDEV_IO_WRITE_ZEROES:
		rc = mimo_bdev_write_zeroes_blocks(c->desc, c->ch, c->off, c->num, io_done, c);
		break;
	case MIMO_BDEV_IO_FLUSH:
		rc = mimo_bdev_flush_blocks(c->desc, c->ch, c->off, c->num, io_done, c);
		break;
	default:
		rc = mimo_bdev_reset(c->desc, c->ch, io_done, c);
		break;
	}
	return rc == 0 ? 1 : rc;
}

/* Submit and wait: returns the submission error, or the completion status. */
static int io(struct call *h, enum mimo_bdev_io_type type, void *buf, uint64_t off, uint64_t num)
{
	struct call c = *h;
	int rc;

	c.type = type;
	c.buf = buf;
	c.iovcnt = 0;
	c.off = off;
	c.num = num;
	rc = run(do_io, &c);
	return rc != 0 ? rc : c.status;
}

static int removed_events;
static _Atomic int resize_events;

static void on_event(enum mimo_bdev_event_type type, struct mimo_bdev *bdev, void *ctx)
{
	struct call *h = ctx;

	(void)bdev;
	if (type == MIMO_BDEV_EVENT_RESIZE) {
		resize_events++;
		return;
	}
	assert_int_equal(type, MIMO_BDEV_EVENT_REMOVE);
	removed_events++;
	/* As a real owner would: drop the channel and close. */
	mimo_put_io_channel(h->ch);
	h->ch = NULL;
	mimo_bdev_close(h->desc);
	h->desc = NULL;
}

static int do_open(struct call *c)
{
	int rc = mimo_bdev_open(c->name, true, on_event, c, &c->desc);

	if (rc == 0)
		c->ch = mimo_bdev_get_io_channel(c->desc);
	return rc;
}

static int do_close(struct call *c)
{
	mimo_put_io_channel(c->ch);
	mimo_bdev_close(c->desc);
	c->ch = NULL;
	c->desc = NULL;
	return 0;
}

static void deleted(void *arg, int rc)
{
	struct call *c = arg;

	c->rc = rc;
	sem_post(&g_sem);
}

static int do_delete(struct call *c)
{
	int rc = mimo_bdev_delete(c->name, deleted, c);

	return rc == 0 ? 1 : rc;
}

static int del(const char *name)
{
	struct call c = { .name = name };

	return run(do_delete, &c);
}

/* --- creation on the reactor ------------------------------------------------------------- */

struct create_args {
	const char *kind, *name, *file;
	uint64_t blocks;
	uint32_t bs;
};

static struct create_args g_create;

static int do_create(struct call *c)
{
	struct mimo_bdev *b;
	struct create_args *a = &g_create;

	(void)c;
	if (strcmp(a->kind, "malloc") == 0)
		return bdev_malloc_create(a->name, a->blocks, a->bs, NULL, &b);
	if (strcmp(a->kind, "null") == 0)
		return bdev_null_create(a->name, a->blocks, a->bs, NULL, &b);
	if (strcmp(a->kind, "aio") == 0)
		return bdev_aio_create(a->name, a->file, a->bs, false, NULL, &b);
	return bdev_error_create(a->name, NULL, &b);
}

static int create(const char *kind, const char *name, const char *file, uint64_t blocks,
		  uint32_t bs)
{
	struct call c = { 0 };

	g_create = (struct create_args){ kind, name, file, blocks, bs };
	return run(do_create, &c);
}

static int setup(void **state)
{
	struct mimo_reactor_opts o;

	(void)state;
	mimo_register_bdev_layer();
	mimo_register_bdev_aio();
	mimo_register_bdev_error();
	mimo_register_bdev_malloc();
	mimo_register_bdev_null();
	sem_init(&g_sem, 0, 0);
	mimo_reactor_opts_init(&o);
	o.core_mask = 0x1;
	/* Sleep at the first idle turn: a module that lets the reactor sleep with I/O in flight
	 * (and nothing to wake it) hangs these tests instead of passing by luck. The kernel
	 * happens to interrupt a sleeping epoll for io_uring completions; under TSan (make
	 * test-tsan), whose interceptor restarts the wait, it does not - that run catches it. */
	o.idle_spin_us = 0;
	return mimo_reactors_start(&o);
}

static int teardown(void **state)
{
	(void)state;
	mimo_reactors_stop();
	return 0;
}

static void fill(uint8_t *buf, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(i * 31 + seed);
}

static bool all_zero(const uint8_t *buf, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (buf[i] != 0)
			return false;
	}
	return true;
}

/* Write a pattern, read it back, zero part of it two ways, check. */
static void check_data_path(const char *name, uint32_t bs, bool keeps_data)
{
	struct call h = { .name = name };
	size_t len = 64 * (size_t)bs;
	uint8_t *w = aligned_alloc(4096, len), *r = aligned_alloc(4096, len);

	assert_int_equal(run(do_open, &h), 0);
	fill(w, len, 7);
	assert_int_equal(io(&h, MIMO_BDEV_IO_WRITE, w, 100, 64), 0);
	memset(r, 0xaa, len);
	assert_int_equal(io(&h, MIMO_BDEV_IO_READ, r, 100, 64), 0);
	if (keeps_data) {
		assert_memory_equal(r, w, len);
		assert_int_equal(io(&h, MIMO_BDEV_IO_UNMAP, NULL, 100, 8), 0);
		assert_int_equal(io(&h, MIMO_BDEV_IO_WRITE_ZEROES, NULL, 156, 8), 0);
		assert_int_equal(io(&h, MIMO_BDEV_IO_READ, r, 100, 64), 0);
		assert_true(all_zero(r, 8 * (size_t)bs));
		assert_memory_equal(r + 8 * bs, w + 8 * bs, 48 * (size_t)bs);
		assert_true(all_zero(r + 56 * (size_t)bs, 8 * (size_t)bs));
	} else {
		assert_true(all_zero(r, len));
	}
	assert_int_equal(io(&h, MIMO_BDEV_IO_FLUSH, NULL, 0, 0), 0);
	assert_int_equal(io(&h, MIMO_BDEV_IO_RESET, NULL, 0, 0), 0);
	/* Out of range and bad sizes are refused at submission. */
	assert_int_equal(io(&h, MIMO_BDEV_IO_READ, r, 1ULL << 40, 1), -EINVAL);
	assert_int_equal(io(&h, MIMO_BDEV_IO_READ, r, 0, 0), -EINVAL);
	assert_int_equal(run(do_close, &h), 0);
	free(w);
	free(r);
}

static void test_malloc_bdev(void **state)
{
	struct mimo_bdev_io_stat st;

	(void)state;
	assert_int_equal(create("malloc", "M0", NULL, 2048, 512), 0);
	assert_int_equal(create("malloc", "M0", NULL, 2048, 512), -EEXIST);
	assert_int_equal(create("malloc", "Mbad", NULL, 2048, 500), -EINVAL);
	check_data_path("M0", 512, true);
	mimo_bdev_get_io_stat(mimo_bdev_get_by_name("M0"), &st);
	assert_int_equal(st.num_write_ops, 2); /* write + write-zeroes */
	assert_int_equal(st.num_read_ops, 2);
	assert_int_equal(st.bytes_read, 2 * 64 * 512);
	assert_int_equal(st.num_unmap_ops, 1);
	assert_int_equal(del("M0"), 0);
	assert_null(mimo_bdev_get_by_name("M0"));
	assert_int_equal(del("M0"), -ENODEV);
}

/* Zero-copy reads: the completion's iovec is the bdev's memory itself, held by the I/O. */
static void *g_zc_addr;
static size_t g_zc_len;

static void zc_done(struct mimo_bdev_io *io, bool success, void *arg)
{
	struct call *c = arg;
	struct iovec *iov;
	int iovcnt;

	c->status = success ? 0 : mimo_bdev_io_get_status(io);
	mimo_bdev_io_get_iovec(io, &iov, &iovcnt);
	assert_int_equal(iovcnt, 1);
	g_zc_addr = iov[0].iov_base;
	g_zc_len = iov[0].iov_len;
	mimo_bdev_free_io(io);
	c->rc = 0;
	sem_post(&g_sem);
}

static int do_zc_read(struct call *c)
{
	int rc = mimo_bdev_zcopy_read_blocks(c->desc, c->ch, c->off, c->num, zc_done, c);

	return rc == 0 ? 1 : rc;
}

static void test_malloc_zcopy_read(void **state)
{
	struct call h = { .name = "Z0" };
	struct mimo_bdev_io_stat st;
	uint8_t *w = malloc(8 * 512);
	void *first;

	(void)state;
	for (int i = 0; i < 8 * 512; i++)
		w[i] = (uint8_t)(i * 7 + 1);
	assert_int_equal(create("malloc", "Z0", NULL, 64, 512), 0);
	assert_true(mimo_bdev_zcopy_supported(mimo_bdev_get_by_name("Z0")));
	assert_int_equal(run(do_open, &h), 0);
	assert_int_equal(io(&h, MIMO_BDEV_IO_WRITE, w, 8, 8), 0);
	h.off = 8;
	h.num = 8;
	assert_int_equal(run(do_zc_read, &h), 0);
	assert_int_equal(h.status, 0);
	assert_int_equal(g_zc_len, 8 * 512);
	assert_memory_equal(g_zc_addr, w, 8 * 512);
	/* The bdev's own memory, not a copy: the next blocks follow it. */
	first = g_zc_addr;
	h.off = 9;
	h.num = 1;
	assert_int_equal(run(do_zc_read, &h), 0);
	assert_ptr_equal(g_zc_addr, (uint8_t *)first + 512);
	/* Counted as reads; a range past the end is refused at submission. */
	mimo_bdev_get_io_stat(mimo_bdev_get_by_name("Z0"), &st);
	assert_int_equal(st.num_read_ops, 2);
	assert_int_equal(st.bytes_read, 9 * 512);
	h.off = 60;
	h.num = 8;
	assert_int_equal(run(do_zc_read, &h), -EINVAL);
	assert_int_equal(run(do_close, &h), 0);
	assert_int_equal(del("Z0"), 0);
	/* A bdev that is not memory says so, and refuses. */
	assert_int_equal(create("null", "Z1", NULL, 64, 512), 0);
	assert_false(mimo_bdev_zcopy_supported(mimo_bdev_get_by_name("Z1")));
	h.name = "Z1";
	assert_int_equal(run(do_open, &h), 0);
	h.off = 0;
	h.num = 1;
	assert_int_equal(run(do_zc_read, &h), -ENOTSUP);
	assert_int_equal(run(do_close, &h), 0);
	assert_int_equal(del("Z1"), 0);
	free(w);
}

static void test_null(void **state)
{
	struct call h = { .name = "N0" };
	uint8_t *r = aligned_alloc(4096, 2 * 4096);

	(void)state;
	assert_int_equal(create("null", "N0", NULL, 4096, 4096), 0);
	check_data_path("N0", 4096, false);
	/* A descriptor whose buffers are its user's own (a vhost guest's): reads leave them as
	 * they were, as SPDK's null bdev does; without it they read zeroes (above). */
	assert_int_equal(run(do_open, &h), 0);
	mimo_bdev_desc_set_private_buffers(h.desc, true);
	memset(r, 0xaa, 2 * 4096);
	assert_int_equal(io(&h, MIMO_BDEV_IO_READ, r, 3, 2), 0);
	for (size_t i = 0; i < 2 * 4096; i++)
		assert_int_equal(r[i], 0xaa);
	assert_int_equal(run(do_close, &h), 0);
	assert_int_equal(del("N0"), 0);
	free(r);
}

static void test_aio_file(void **state)
{
	char path[] = "/tmp/mimo-aio-ut-XXXXXX";
	int fd = mkstemp(path);
	struct call h = { .name = "A0" };
	uint8_t *raw = malloc(4 * 512 + 1), *back = malloc(4 * 512);
	struct call c;

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 4 << 20), 0);
	close(fd);
	assert_int_equal(create("aio", "A0", path, 0, 512), 0);
	check_data_path("A0", 512, true);

	/* A buffer that is not 4 KiB aligned, split over two iovecs: bounced under O_DIRECT. */
	assert_int_equal(run(do_open, &h), 0);
	fill(raw + 1, 4 * 512, 3);
	c = h;
	c.type = MIMO_BDEV_IO_WRITE;
	c.iov[0] = (struct iovec){ raw + 1, 512 };
	c.iov[1] = (struct iovec){ raw + 1 + 512, 3 * 512 };
	c.iovcnt = 2;
	c.off = 7;
	c.num = 4;
	assert_int_equal(run(do_io, &c), 0);
	assert_int_equal(c.status, 0);
	assert_int_equal(io(&h, MIMO_BDEV_IO_READ, back, 7, 4), 0);
	assert_memory_equal(back, raw + 1, 4 * 512);
	assert_int_equal(run(do_close, &h), 0);

	assert_int_equal(del("A0"), 0);
	/* The data is in the file. */
	fd = open(path, O_RDONLY);
	assert_int_equal(pread(fd, back, 4 * 512, 7 * 512), 4 * 512);
	assert_memory_equal(back, raw + 1, 4 * 512);
	close(fd);
	unlink(path);
	free(raw);
	free(back);
	assert_int_equal(create("aio", "A1", "/nonexistent/file", 0, 512), -ENOENT);
}

static void test_error_injection_and_claims(void **state)
{
	struct call h = { .name = "EE_B0" };
	uint8_t *buf = calloc(1, 4096), *w = malloc(4096);
	int failures = 0;

	(void)state;
	assert_int_equal(create("malloc", "B0", NULL, 1024, 512), 0);
	assert_int_equal(create("error", "B0", NULL, 0, 0), 0);
	assert_non_null(mimo_bdev_get_by_name("EE_B0"));
	assert_true(mimo_bdev_is_claimed(mimo_bdev_get_by_name("B0")));
	assert_int_equal(create("error", "B0", NULL, 0, 0), -EPERM); /* claimed already */
	assert_int_equal(del("B0"), -EBUSY);			     /* in use: refused */

	assert_int_equal(run(do_open, &h), 0);
	fill(w, 4096, 1);
	assert_int_equal(io(&h, MIMO_BDEV_IO_WRITE, w, 0, 8), 0);

	/* Three reads fail, then reads pass again. */
	assert_int_equal(
		bdev_error_inject("EE_B0", MIMO_BDEV_IO_READ, ERROR_INJECT_FAILURE, 3, 0, 0), 0);
	for (int i = 0; i < 5; i++)
		failures += io(&h, MIMO_BDEV_IO_READ, buf, 0, 8) == -EIO;
	assert_int_equal(failures, 3);
	/* I/O errors become events (rate-limited): the ring holds error_occurred for EE_B0. */
	{
		json_t *events = mimo_events_get(0, 0), *e;
		size_t i;
		bool seen = false;

		json_array_foreach(events, i, e)
		{
			if (strcmp(json_string_value(json_object_get(e, "type")),
				   "error_occurred") == 0 &&
			    strcmp(json_string_value(json_object_get(e, "ctx")), "EE_B0") == 0)
				seen = true;
		}
		json_decref(events);
		assert_true(seen);
	}
	assert_int_equal(io(&h, MIMO_BDEV_IO_WRITE, w, 0, 8), 0); /* writes untouched */

	/* nomem, and corrupt data on read (the data on the base is intact). */
	assert_int_equal(
		bdev_error_inject("EE_B0", MIMO_BDEV_IO_WRITE, ERROR_INJECT_NOMEM, 1, 0, 0), 0);
	assert_int_equal(io(&h, MIMO_BDEV_IO_WRITE, w, 0, 8), -ENOMEM);
	assert_int_equal(bdev_error_inject("EE_B0", MIMO_BDEV_IO_READ, ERROR_INJECT_CORRUPT_DATA, 1,
					   10, 0x0f),
			 0);
	assert_int_equal(io(&h, MIMO_BDEV_IO_READ, buf, 0, 8), 0);
	assert_int_equal(buf[10], w[10] ^ 0x0f);
	assert_int_equal(io(&h, MIMO_BDEV_IO_READ, buf, 0, 8), 0);
	assert_memory_equal(buf, w, 4096);

	/* clear stops a pending injection. */
	assert_int_equal(bdev_error_inject("EE_B0", -1, ERROR_INJECT_FAILURE, 10, 0, 0), 0);
	assert_int_equal(bdev_error_inject("EE_B0", -1, ERROR_INJECT_NONE, 0, 0, 0), 0);
	assert_int_equal(io(&h, MIMO_BDEV_IO_READ, buf, 0, 8), 0);
	assert_int_equal(bdev_error_inject("nope", 0, ERROR_INJECT_FAILURE, 1, 0, 0), -ENODEV);
	assert_int_equal(run(do_close, &h), 0);

	/* Deleting the error bdev releases its base. */
	assert_int_equal(del("EE_B0"), 0);
	assert_false(mimo_bdev_is_claimed(mimo_bdev_get_by_name("B0")));
	assert_int_equal(del("B0"), 0);
	free(buf);
	free(w);
}

/* Deleting a bdev that is open tells the owner, who closes; then the bdev goes. */
static void test_delete_while_open(void **state)
{
	struct call h = { .name = "D0" };

	(void)state;
	assert_int_equal(create("malloc", "D0", NULL, 64, 512), 0);
	assert_int_equal(run(do_open, &h), 0);
	removed_events = 0;
	assert_int_equal(del("D0"), 0);
	assert_int_equal(removed_events, 1);
	assert_null(h.desc);
	assert_null(mimo_bdev_get_by_name("D0"));
}

/* The owner closes its descriptor after the delete queued its REMOVE notice but before the
 * notice runs (one reactor message does both, as an RPC that removes a namespace right after a
 * bdev_delete can): nobody hears REMOVE about a closed descriptor, the bdev still goes, and
 * nothing touches freed memory (the ASan run of this test proves that part). */
static int do_delete_then_close(struct call *c)
{
	int rc = mimo_bdev_delete(c->name, deleted, c);

	if (rc != 0)
		return rc;
	mimo_put_io_channel(c->ch);
	mimo_bdev_close(c->desc);
	c->ch = NULL;
	c->desc = NULL;
	return 1; /* deleted() posts once the bdev is gone */
}

static void test_close_before_remove_notice(void **state)
{
	struct call h = { .name = "D1" };

	(void)state;
	assert_int_equal(create("malloc", "D1", NULL, 64, 512), 0);
	assert_int_equal(run(do_open, &h), 0);
	removed_events = 0;
	assert_int_equal(run(do_delete_then_close, &h), 0);
	assert_int_equal(removed_events, 0);
	assert_null(mimo_bdev_get_by_name("D1"));
}

/* Statistics: extremes, errors, and resets that show at once although each reactor clears
 * its own counters later. */
static enum bdev_reset_mode g_reset_mode;

static int do_reset(struct call *c)
{
	bdev_reset_io_stat(mimo_bdev_get_by_name(c->name), g_reset_mode);
	return 0;
}

static void test_stats_and_resets(void **state)
{
	struct call h = { .name = "S0" };
	struct mimo_bdev_io_stat st;
	uint8_t *buf = calloc(1, 8 * 512);
	struct mimo_bdev *b;

	(void)state;
	assert_int_equal(create("malloc", "S0", NULL, 64, 512), 0);
	b = mimo_bdev_get_by_name("S0");
	assert_int_equal(run(do_open, &h), 0);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(io(&h, MIMO_BDEV_IO_WRITE, buf, 0, 8), 0);
		assert_int_equal(io(&h, MIMO_BDEV_IO_READ, buf, 0, 8), 0);
	}
	mimo_bdev_get_io_stat(b, &st);
	assert_int_equal(st.num_read_ops, 3);
	assert_int_equal(st.bytes_written, 3 * 8 * 512);
	assert_true(st.min_read_latency_ticks <= st.max_read_latency_ticks);
	assert_true(st.max_read_latency_ticks <= st.read_latency_ticks);
	assert_true(st.min_unmap_latency_ticks == UINT64_MAX && st.max_unmap_latency_ticks == 0);
	g_reset_mode = BDEV_RESET_MAXMIN;
	assert_int_equal(run(do_reset, &h), 0);
	mimo_bdev_get_io_stat(b, &st);
	assert_int_equal(st.num_read_ops, 3);
	assert_true(st.max_read_latency_ticks == 0 && st.min_read_latency_ticks == UINT64_MAX);
	g_reset_mode = BDEV_RESET_ALL;
	assert_int_equal(run(do_reset, &h), 0);
	mimo_bdev_get_io_stat(b, &st); /* before the channel has counted anything since */
	assert_int_equal(st.num_read_ops, 0);
	assert_int_equal(st.bytes_written, 0);
	assert_int_equal(io(&h, MIMO_BDEV_IO_READ, buf, 0, 8), 0);
	mimo_bdev_get_io_stat(b, &st);
	assert_int_equal(st.num_read_ops, 1);
	assert_int_equal(st.num_write_ops, 0);
	assert_int_equal(run(do_close, &h), 0);
	assert_int_equal(del("S0"), 0);
	free(buf);
}

/* SPDK's histogram layout (include/spdk/histogram_data.h), worked by hand. */
static void test_histogram_layout(void **state)
{
	struct bdev_hist h;

	(void)state;
	assert_int_equal(bdev_hist_init(&h, 7, 0, UINT64_MAX), 0);
	assert_int_equal(h.min_range, 0);
	assert_int_equal(h.max_range, 57);
	assert_int_equal(bdev_hist_num_buckets(&h), 58 * 128);
	bdev_hist_tally(&h, 0);	  /* range 0, bucket 0 */
	bdev_hist_tally(&h, 127); /* range 0, bucket 127 */
	bdev_hist_tally(&h, 128); /* clz 56: range 1, bucket 128 & 127 = 0 */
	bdev_hist_tally(&h, 300); /* clz 55: range 2, bucket (300 >> 1) & 127 = 22 */
	assert_int_equal(h.bucket[0], 1);
	assert_int_equal(h.bucket[127], 1);
	assert_int_equal(h.bucket[128], 1);
	assert_int_equal(h.bucket[2 * 128 + 22], 1);
	bdev_hist_free(&h);
	/* Clamped: below min_range to its first bucket, above max_range to its last. */
	assert_int_equal(bdev_hist_init(&h, 7, 1000, 1000000), 0);
	assert_int_equal(h.min_range, 3);  /* clz(1000) = 54 */
	assert_int_equal(h.max_range, 13); /* clz(999999) = 44 */
	bdev_hist_tally(&h, 5);
	bdev_hist_tally(&h, 1ull << 40);
	assert_int_equal(h.bucket[0], 1);
	assert_int_equal(h.bucket[bdev_hist_num_buckets(&h) - 1], 1);
	bdev_hist_free(&h);
	assert_int_equal(bdev_hist_init(&h, 7, 10, 10), -EINVAL);
}

static uint64_t g_resize_mib;

static int do_null_resize(struct call *c)
{
	return bdev_null_resize(c->name, g_resize_mib);
}

static void test_resize_tells_owners(void **state)
{
	struct call h = { .name = "R0" };

	(void)state;
	assert_int_equal(create("null", "R0", NULL, 2048, 512), 0); /* 1 MiB */
	assert_int_equal(run(do_open, &h), 0);
	resize_events = 0;
	g_resize_mib = 4;
	assert_int_equal(run(do_null_resize, &h), 0);
	assert_int_equal(mimo_bdev_get_num_blocks(mimo_bdev_get_by_name("R0")), 8192);
	/* The event is a message to the owner's reactor, after the one that resized. */
	for (int i = 0; i < 10000 && atomic_load(&resize_events) == 0; i++)
		usleep(1000);
	assert_int_equal(atomic_load(&resize_events), 1);
	g_resize_mib = 0; /* smaller than it is: refused, as SPDK */
	assert_int_equal(run(do_null_resize, &h), -EINVAL);
	assert_int_equal(run(do_close, &h), 0);
	assert_int_equal(del("R0"), 0);
}

static int g_hook_calls;
static uint64_t g_hook_off, g_hook_num;

static void hook(void *arg, struct mimo_bdev_io *io, struct mimo_bdev *bdev, uint64_t off,
		 uint64_t num)
{
	(void)arg;
	(void)io;
	(void)bdev;
	g_hook_calls++;
	g_hook_off = off;
	g_hook_num = num;
}

static void test_write_hook(void **state)
{
	struct call h = { .name = "H0" };
	uint8_t *buf = calloc(1, 2048);

	(void)state;
	assert_int_equal(create("malloc", "H0", NULL, 64, 512), 0);
	assert_int_equal(mimo_bdev_add_write_hook(hook, NULL), 0);
	assert_int_equal(run(do_open, &h), 0);
	assert_int_equal(io(&h, MIMO_BDEV_IO_WRITE, buf, 5, 4), 0);
	assert_int_equal(g_hook_calls, 1);
	assert_int_equal(g_hook_off, 5);
	assert_int_equal(g_hook_num, 4);
	assert_int_equal(io(&h, MIMO_BDEV_IO_READ, buf, 5, 4), 0);
	assert_int_equal(g_hook_calls, 1); /* reads do not change data */
	assert_int_equal(io(&h, MIMO_BDEV_IO_UNMAP, NULL, 9, 2), 0);
	assert_int_equal(g_hook_calls, 2);
	mimo_bdev_remove_write_hook(hook, NULL);
	assert_int_equal(io(&h, MIMO_BDEV_IO_WRITE, buf, 5, 4), 0);
	assert_int_equal(g_hook_calls, 2);
	assert_int_equal(run(do_close, &h), 0);
	assert_int_equal(del("H0"), 0);
	free(buf);
}

/* Zero-copy writes: the start hands out the bdev's memory, the end makes it a write. */
static struct mimo_bdev_io *g_zw_io;
static bool g_zw_commit;

static int do_zw_start(struct call *c)
{
	return mimo_bdev_zcopy_write_start(c->desc, c->ch, c->off, c->num, &g_zw_io);
}

static int do_zw_end(struct call *c)
{
	mimo_bdev_zcopy_write_end(g_zw_io, g_zw_commit, io_done, c);
	return 1;
}

/* Start a zero-copy write of num blocks at off and fill it with byte v. */
static void zw_fill(struct call *h, uint64_t off, uint64_t num, uint8_t v)
{
	struct iovec *iov;
	int iovcnt;

	h->off = off;
	h->num = num;
	assert_int_equal(run(do_zw_start, h), 0);
	mimo_bdev_io_get_iovec(g_zw_io, &iov, &iovcnt);
	assert_int_equal(iovcnt, 1);
	assert_int_equal(iov[0].iov_len, num * 512);
	memset(iov[0].iov_base, v, iov[0].iov_len);
}

static int zw_end(struct call *h, bool commit)
{
	g_zw_commit = commit;
	assert_int_equal(run(do_zw_end, h), 0); /* rc 0 once io_done ran */
	return h->status;
}

static void test_malloc_zcopy_write(void **state)
{
	struct call h = { .name = "W0" };
	struct mimo_bdev_io_stat st;
	uint8_t *r = malloc(4 * 512), want[4 * 512];
	uint64_t qos[QOS_NUM] = { 1000, 0, 0, 0 };

	(void)state;
	assert_int_equal(create("malloc", "W0", NULL, 64, 512), 0);
	assert_int_equal(run(do_open, &h), 0);
	assert_int_equal(mimo_bdev_add_write_hook(hook, NULL), 0);
	g_hook_calls = 0;
	/* The data lands in the bdev itself: a read before the end already sees it. */
	zw_fill(&h, 10, 4, 0xa5);
	memset(want, 0xa5, sizeof(want));
	assert_int_equal(io(&h, MIMO_BDEV_IO_READ, r, 10, 4), 0);
	assert_memory_equal(r, want, sizeof(want));
	mimo_bdev_get_io_stat(mimo_bdev_get_by_name("W0"), &st);
	assert_int_equal(st.num_write_ops, 0);
	assert_int_equal(g_hook_calls, 0);
	/* Committed: a write like any other, counted and heard of by the hooks. */
	assert_int_equal(zw_end(&h, true), 0);
	mimo_bdev_get_io_stat(mimo_bdev_get_by_name("W0"), &st);
	assert_int_equal(st.num_write_ops, 1);
	assert_int_equal(st.bytes_written, 4 * 512);
	assert_int_equal(g_hook_calls, 1);
	assert_int_equal(g_hook_off, 10);
	assert_int_equal(g_hook_num, 4);
	/* Dropped: not counted, cancelled, but the hooks hear of the range it may have changed. */
	zw_fill(&h, 20, 2, 0x5a);
	assert_int_equal(zw_end(&h, false), -ECANCELED);
	mimo_bdev_get_io_stat(mimo_bdev_get_by_name("W0"), &st);
	assert_int_equal(st.num_write_ops, 1);
	assert_int_equal(st.num_failed_ops, 0);
	assert_int_equal(g_hook_calls, 2);
	assert_int_equal(g_hook_off, 20);
	mimo_bdev_remove_write_hook(hook, NULL);
	/* Refused: past the end; under a QoS limit (the data would land before QoS let it). */
	h.off = 62;
	h.num = 4;
	assert_int_equal(run(do_zw_start, &h), -EINVAL);
	assert_int_equal(bdev_qos_set(mimo_bdev_get_by_name("W0"), qos), 0);
	h.off = 0;
	h.num = 1;
	assert_int_equal(run(do_zw_start, &h), -EAGAIN);
	qos[QOS_RW_IOPS] = 0;
	assert_int_equal(bdev_qos_set(mimo_bdev_get_by_name("W0"), qos), 0);
	assert_int_equal(run(do_close, &h), 0);
	assert_int_equal(del("W0"), 0);
	/* A bdev that is not memory refuses. */
	assert_int_equal(create("null", "W1", NULL, 64, 512), 0);
	h.name = "W1";
	assert_int_equal(run(do_open, &h), 0);
	assert_int_equal(run(do_zw_start, &h), -ENOTSUP);
	assert_int_equal(run(do_close, &h), 0);
	assert_int_equal(del("W1"), 0);
	free(r);
}

/* A hook that holds every write twice; the test thread releases them. */
static struct mimo_bdev_io *_Atomic g_held;
static _Atomic int g_holding_hooks;

static void holding_hook(void *arg, struct mimo_bdev_io *io, struct mimo_bdev *bdev, uint64_t off,
			 uint64_t num)
{
	(void)bdev;
	(void)off;
	(void)num;
	assert_ptr_equal(mimo_bdev_io_cb_arg_if(io, io_done), arg);
	assert_null(mimo_bdev_io_cb_arg_if(io, NULL));
	mimo_bdev_io_hold(io);
	mimo_bdev_io_hold(io);
	atomic_fetch_add(&g_holding_hooks, 1);
	atomic_store(&g_held, io);
}

static void test_write_hook_holds_completion(void **state)
{
	struct call h = { .name = "H1" }, c;
	uint8_t *buf = calloc(1, 512);
	struct mimo_bdev_io *io;

	(void)state;
	assert_int_equal(create("malloc", "H1", NULL, 64, 512), 0);
	assert_int_equal(run(do_open, &h), 0);
	c = h;
	c.type = MIMO_BDEV_IO_WRITE;
	c.buf = buf;
	c.off = 3;
	c.num = 1;
	assert_int_equal(mimo_bdev_add_write_hook(holding_hook, &c), 0);
	c.fn = do_io;
	assert_int_equal(mimo_reactor_send_msg(mimo_reactor_get(0), run_msg, &c), 0);
	/* The hook ran and holds it: the submitter has not heard of the write. */
	while ((io = atomic_load(&g_held)) == NULL)
		sched_yield();
	assert_int_equal(sem_trywait(&g_sem), -1);
	mimo_bdev_io_release(io);
	assert_int_equal(sem_trywait(&g_sem), -1); /* one hold is left */
	mimo_bdev_io_release(io);		   /* from this thread: completes on reactor 0 */
	wait_sem();
	assert_int_equal(c.rc, 0);
	assert_int_equal(c.status, 0);
	assert_int_equal(atomic_load(&g_holding_hooks), 1);
	mimo_bdev_remove_write_hook(holding_hook, &c);
	assert_int_equal(run(do_close, &h), 0);
	assert_int_equal(del("H1"), 0);
	free(buf);
}

int main(void)
{
	/* The layer emits events; nothing here needs them delivered. */
	setenv("MIMO_NOTIFY_DISABLE", "1", 1);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_malloc_bdev),
		cmocka_unit_test(test_malloc_zcopy_read),
		cmocka_unit_test(test_null),
		cmocka_unit_test(test_aio_file),
		cmocka_unit_test(test_error_injection_and_claims),
		cmocka_unit_test(test_delete_while_open),
		cmocka_unit_test(test_close_before_remove_notice),
		cmocka_unit_test(test_write_hook),
		cmocka_unit_test(test_write_hook_holds_completion),
		cmocka_unit_test(test_malloc_zcopy_write),
		cmocka_unit_test(test_stats_and_resets),
		cmocka_unit_test(test_histogram_layout),
		cmocka_unit_test(test_resize_tells_owners),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
