/*
 * I/O statistics in SPDK's terms (bdev_get_iostat): per-channel counters, their extremes and
 * error counts, resets, and the queue-depth sampling of bdev_set_qd_sampling_period.
 *
 * Each channel's counters are written by its reactor alone, with relaxed atomics (plain loads
 * and stores): no locked instruction on the I/O path. A reset cannot clear another reactor's
 * counters without racing its writes, so it bumps a generation instead; the channel clears its
 * own before its next count, and a reader skips what a channel has not cleared yet - both see
 * the reset at once.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bdev_internal.h"
#include "compiler.h"

static const enum bdev_stat g_mins[] = { STAT_MIN_READ_TICKS, STAT_MIN_WRITE_TICKS,
					 STAT_MIN_UNMAP_TICKS };
static const enum bdev_stat g_maxs[] = { STAT_MAX_READ_TICKS, STAT_MAX_WRITE_TICKS,
					 STAT_MAX_UNMAP_TICKS };
static const enum bdev_stat g_errs[] = { STAT_ERR_FAILED, STAT_ERR_NOMEM, STAT_ERR_ABORTED,
					 STAT_ERR_MISCOMPARE };

static uint32_t gen_get(const _Atomic uint32_t *g)
{
	return atomic_load_explicit(g, memory_order_relaxed);
}

static void clear_maxmin(struct bdev_channel *ch)
{
	for (size_t i = 0; i < MIMO_ARRAY_SIZE(g_mins); i++) {
		stat_set(ch, g_mins[i], UINT64_MAX);
		stat_set(ch, g_maxs[i], 0);
	}
}

static void clear_errors(struct bdev_channel *ch)
{
	for (size_t i = 0; i < MIMO_ARRAY_SIZE(g_errs); i++)
		stat_set(ch, g_errs[i], 0);
	stat_set(ch, STAT_FAILED_OPS, 0);
}

void bdev_stat_init(struct bdev_channel *ch)
{
	struct bdev_ext *ext = bdev_ext(ch->bdev);
	struct mimo_reactor *r = mimo_reactor_current();

	for (int m = 0; m < BDEV_RESET_NONE; m++)
		atomic_store_explicit(&ch->seen_gen[m], gen_get(&ext->gen[m]),
				      memory_order_relaxed);
	clear_maxmin(ch);
	/* SPDK's thread ids start at 1 (the app thread). */
	ch->tid = r != NULL ? mimo_reactor_index(r) + 1 : 0;
}

void bdev_stat_catch_up(struct bdev_channel *ch)
{
	struct bdev_ext *ext = bdev_ext(ch->bdev);
	uint32_t g;

	g = gen_get(&ext->gen[BDEV_RESET_ALL]);
	if (mimo_unlikely(g != gen_get(&ch->seen_gen[BDEV_RESET_ALL]))) {
		for (int s = 0; s < STAT_COUNT; s++)
			stat_set(ch, s, 0);
		clear_maxmin(ch);
		atomic_store_explicit(&ch->seen_gen[BDEV_RESET_ALL], g, memory_order_relaxed);
	}
	g = gen_get(&ext->gen[BDEV_RESET_MAXMIN]);
	if (mimo_unlikely(g != gen_get(&ch->seen_gen[BDEV_RESET_MAXMIN]))) {
		clear_maxmin(ch);
		atomic_store_explicit(&ch->seen_gen[BDEV_RESET_MAXMIN], g, memory_order_relaxed);
	}
	g = gen_get(&ext->gen[BDEV_RESET_ERROR]);
	if (mimo_unlikely(g != gen_get(&ch->seen_gen[BDEV_RESET_ERROR]))) {
		clear_errors(ch);
		atomic_store_explicit(&ch->seen_gen[BDEV_RESET_ERROR], g, memory_order_relaxed);
	}
}

static void extremes(struct bdev_channel *ch, enum bdev_stat min, enum bdev_stat max,
		     uint64_t ticks)
{
	if (ticks < stat_get(ch, min))
		stat_set(ch, min, ticks);
	if (ticks > stat_get(ch, max))
		stat_set(ch, max, ticks);
}

/* SPDK's statuses for mimo's errnos: what its io_error object names. */
static enum bdev_stat error_kind(int status)
{
	switch (status) {
	case -ENOMEM:
		return STAT_ERR_NOMEM;
	case -ECANCELED:
		return STAT_ERR_ABORTED;
	case -EILSEQ:
		return STAT_ERR_MISCOMPARE;
	default:
		return STAT_ERR_FAILED;
	}
}

void bdev_stat_count(struct bdev_channel *ch, struct mimo_bdev_io *io, uint64_t ticks)
{
	uint64_t bytes = io->num_blocks * io->bdev->blocklen;

	bdev_stat_catch_up(ch);
	if (io->status != 0) {
		stat_add_one(ch, STAT_FAILED_OPS, 1);
		stat_add_one(ch, error_kind(io->status), 1);
		return;
	}
	switch (io->type) {
	case MIMO_BDEV_IO_READ:
		stat_add_one(ch, STAT_BYTES_READ, bytes);
		stat_add_one(ch, STAT_READ_OPS, 1);
		stat_add_one(ch, STAT_READ_TICKS, ticks);
		extremes(ch, STAT_MIN_READ_TICKS, STAT_MAX_READ_TICKS, ticks);
		lat_hist_add(ch, STAT_READ_HIST, ticks);
		break;
	case MIMO_BDEV_IO_WRITE:
	case MIMO_BDEV_IO_WRITE_ZEROES:
		stat_add_one(ch, STAT_BYTES_WRITTEN, bytes);
		stat_add_one(ch, STAT_WRITE_OPS, 1);
		stat_add_one(ch, STAT_WRITE_TICKS, ticks);
		extremes(ch, STAT_MIN_WRITE_TICKS, STAT_MAX_WRITE_TICKS, ticks);
		lat_hist_add(ch, STAT_WRITE_HIST, ticks);
		break;
	case MIMO_BDEV_IO_UNMAP:
		stat_add_one(ch, STAT_BYTES_UNMAPPED, bytes);
		stat_add_one(ch, STAT_UNMAP_OPS, 1);
		stat_add_one(ch, STAT_UNMAP_TICKS, ticks);
		extremes(ch, STAT_MIN_UNMAP_TICKS, STAT_MAX_UNMAP_TICKS, ticks);
		break;
	case MIMO_BDEV_IO_FLUSH:
		stat_add_one(ch, STAT_FLUSH_OPS, 1);
		stat_add_one(ch, STAT_FLUSH_TICKS, ticks);
		break;
	default:
		break;
	}
}

void bdev_stat_empty(struct mimo_bdev_io_stat *st)
{
	memset(st, 0, sizeof(*st));
	st->min_read_latency_ticks = UINT64_MAX;
	st->min_write_latency_ticks = UINT64_MAX;
	st->min_unmap_latency_ticks = UINT64_MAX;
}

static uint64_t min64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

static uint64_t max64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

void bdev_stat_merge(struct mimo_bdev_io_stat *to, const struct mimo_bdev_io_stat *from)
{
	to->bytes_read += from->bytes_read;
	to->num_read_ops += from->num_read_ops;
	to->bytes_written += from->bytes_written;
	to->num_write_ops += from->num_write_ops;
	to->bytes_unmapped += from->bytes_unmapped;
	to->num_unmap_ops += from->num_unmap_ops;
	to->read_latency_ticks += from->read_latency_ticks;
	to->write_latency_ticks += from->write_latency_ticks;
	to->unmap_latency_ticks += from->unmap_latency_ticks;
	to->num_failed_ops += from->num_failed_ops;
	to->max_read_latency_ticks =
		max64(to->max_read_latency_ticks, from->max_read_latency_ticks);
	to->min_read_latency_ticks =
		min64(to->min_read_latency_ticks, from->min_read_latency_ticks);
	to->max_write_latency_ticks =
		max64(to->max_write_latency_ticks, from->max_write_latency_ticks);
	to->min_write_latency_ticks =
		min64(to->min_write_latency_ticks, from->min_write_latency_ticks);
	to->max_unmap_latency_ticks =
		max64(to->max_unmap_latency_ticks, from->max_unmap_latency_ticks);
	to->min_unmap_latency_ticks =
		min64(to->min_unmap_latency_ticks, from->min_unmap_latency_ticks);
	to->io_error_failed += from->io_error_failed;
	to->io_error_nomem += from->io_error_nomem;
	to->io_error_aborted += from->io_error_aborted;
	to->io_error_miscompare += from->io_error_miscompare;
	to->num_flush_ops += from->num_flush_ops;
	to->flush_latency_ticks += from->flush_latency_ticks;
	for (int i = 0; i < MIMO_BDEV_LAT_BUCKETS; i++) {
		to->read_lat_hist[i] += from->read_lat_hist[i];
		to->write_lat_hist[i] += from->write_lat_hist[i];
	}
}

void bdev_stat_add_channel(struct mimo_bdev_io_stat *to, const struct bdev_channel *ch,
			   const struct bdev_ext *ext)
{
	struct mimo_bdev_io_stat c;

	bdev_stat_empty(&c);
	/* A reset the channel has not applied yet: what it would clear counts as cleared. */
	if (gen_get(&ch->seen_gen[BDEV_RESET_ALL]) != gen_get(&ext->gen[BDEV_RESET_ALL]))
		return;
	c.bytes_read = stat_get(ch, STAT_BYTES_READ);
	c.num_read_ops = stat_get(ch, STAT_READ_OPS);
	c.bytes_written = stat_get(ch, STAT_BYTES_WRITTEN);
	c.num_write_ops = stat_get(ch, STAT_WRITE_OPS);
	c.bytes_unmapped = stat_get(ch, STAT_BYTES_UNMAPPED);
	c.num_unmap_ops = stat_get(ch, STAT_UNMAP_OPS);
	c.read_latency_ticks = stat_get(ch, STAT_READ_TICKS);
	c.write_latency_ticks = stat_get(ch, STAT_WRITE_TICKS);
	c.unmap_latency_ticks = stat_get(ch, STAT_UNMAP_TICKS);
	c.num_flush_ops = stat_get(ch, STAT_FLUSH_OPS);
	c.flush_latency_ticks = stat_get(ch, STAT_FLUSH_TICKS);
	for (int i = 0; i < MIMO_BDEV_LAT_BUCKETS; i++) {
		c.read_lat_hist[i] = stat_get(ch, (enum bdev_stat)(STAT_READ_HIST + i));
		c.write_lat_hist[i] = stat_get(ch, (enum bdev_stat)(STAT_WRITE_HIST + i));
	}
	if (gen_get(&ch->seen_gen[BDEV_RESET_MAXMIN]) == gen_get(&ext->gen[BDEV_RESET_MAXMIN])) {
		c.max_read_latency_ticks = stat_get(ch, STAT_MAX_READ_TICKS);
		c.min_read_latency_ticks = stat_get(ch, STAT_MIN_READ_TICKS);
		c.max_write_latency_ticks = stat_get(ch, STAT_MAX_WRITE_TICKS);
		c.min_write_latency_ticks = stat_get(ch, STAT_MIN_WRITE_TICKS);
		c.max_unmap_latency_ticks = stat_get(ch, STAT_MAX_UNMAP_TICKS);
		c.min_unmap_latency_ticks = stat_get(ch, STAT_MIN_UNMAP_TICKS);
	}
	if (gen_get(&ch->seen_gen[BDEV_RESET_ERROR]) == gen_get(&ext->gen[BDEV_RESET_ERROR])) {
		c.num_failed_ops = stat_get(ch, STAT_FAILED_OPS);
		c.io_error_failed = stat_get(ch, STAT_ERR_FAILED);
		c.io_error_nomem = stat_get(ch, STAT_ERR_NOMEM);
		c.io_error_aborted = stat_get(ch, STAT_ERR_ABORTED);
		c.io_error_miscompare = stat_get(ch, STAT_ERR_MISCOMPARE);
	}
	bdev_stat_merge(to, &c);
}

/* Under the bdev's lock. */
void bdev_stat_reset_retired(struct mimo_bdev *bdev, enum bdev_reset_mode mode)
{
	struct mimo_bdev_io_stat *st = &bdev->internal.retired;

	if (mode == BDEV_RESET_ALL) {
		bdev_stat_empty(st);
		return;
	}
	if (mode == BDEV_RESET_ERROR) {
		st->num_failed_ops = 0;
		st->io_error_failed = st->io_error_nomem = 0;
		st->io_error_aborted = st->io_error_miscompare = 0;
	} else if (mode == BDEV_RESET_MAXMIN) {
		st->max_read_latency_ticks = st->max_write_latency_ticks = 0;
		st->max_unmap_latency_ticks = 0;
		st->min_read_latency_ticks = st->min_write_latency_ticks = UINT64_MAX;
		st->min_unmap_latency_ticks = UINT64_MAX;
	}
}

void bdev_reset_io_stat(struct mimo_bdev *bdev, enum bdev_reset_mode mode)
{
	struct bdev_ext *ext = bdev_ext(bdev);

	if (mode == BDEV_RESET_NONE)
		return;
	pthread_mutex_lock(&bdev->internal.lock);
	bdev_stat_reset_retired(bdev, mode);
	atomic_fetch_add_explicit(&ext->gen[mode], 1, memory_order_relaxed);
	pthread_mutex_unlock(&bdev->internal.lock);
}

static json_t *u64(uint64_t v)
{
	return json_integer((json_int_t)v);
}

static uint64_t min_or_zero(uint64_t v)
{
	return v == UINT64_MAX ? 0 : v;
}

/* SPDK's field order (spdk_bdev_dump_io_stat_json), and mimo's num_failed_ops. */
void bdev_stat_to_json(const struct mimo_bdev_io_stat *st, json_t *o)
{
	json_t *err = json_object();

	json_object_set_new(o, "bytes_read", u64(st->bytes_read));
	json_object_set_new(o, "num_read_ops", u64(st->num_read_ops));
	json_object_set_new(o, "bytes_written", u64(st->bytes_written));
	json_object_set_new(o, "num_write_ops", u64(st->num_write_ops));
	json_object_set_new(o, "bytes_unmapped", u64(st->bytes_unmapped));
	json_object_set_new(o, "num_unmap_ops", u64(st->num_unmap_ops));
	json_object_set_new(o, "bytes_copied", u64(0));
	json_object_set_new(o, "num_copy_ops", u64(0));
	json_object_set_new(o, "read_latency_ticks", u64(st->read_latency_ticks));
	json_object_set_new(o, "max_read_latency_ticks", u64(st->max_read_latency_ticks));
	json_object_set_new(o, "min_read_latency_ticks",
			    u64(min_or_zero(st->min_read_latency_ticks)));
	json_object_set_new(o, "write_latency_ticks", u64(st->write_latency_ticks));
	json_object_set_new(o, "max_write_latency_ticks", u64(st->max_write_latency_ticks));
	json_object_set_new(o, "min_write_latency_ticks",
			    u64(min_or_zero(st->min_write_latency_ticks)));
	json_object_set_new(o, "unmap_latency_ticks", u64(st->unmap_latency_ticks));
	json_object_set_new(o, "max_unmap_latency_ticks", u64(st->max_unmap_latency_ticks));
	json_object_set_new(o, "min_unmap_latency_ticks",
			    u64(min_or_zero(st->min_unmap_latency_ticks)));
	json_object_set_new(o, "copy_latency_ticks", u64(0));
	json_object_set_new(o, "max_copy_latency_ticks", u64(0));
	json_object_set_new(o, "min_copy_latency_ticks", u64(0));
	/* SPDK lists only the statuses that occurred. */
	if (st->io_error_failed)
		json_object_set_new(err, "failed", u64(st->io_error_failed));
	if (st->io_error_nomem)
		json_object_set_new(err, "nomem", u64(st->io_error_nomem));
	if (st->io_error_aborted)
		json_object_set_new(err, "aborted", u64(st->io_error_aborted));
	if (st->io_error_miscompare)
		json_object_set_new(err, "miscompare", u64(st->io_error_miscompare));
	json_object_set_new(o, "io_error", err);
	json_object_set_new(o, "num_failed_ops", u64(st->num_failed_ops));
}

/* --- queue-depth sampling ------------------------------------------------------------------ */

/*
 * The sampler outlives nothing: its bdev pointer is cleared under the registry lock before
 * the bdev is destructed, and the poller reads it under the same lock; the sampler itself is
 * freed on its own reactor by a message.
 */
struct bdev_qd_sampler {
	struct mimo_bdev *bdev; /* under the registry lock; NULL once the bdev goes */
	uint64_t period_us;
	struct mimo_poller *poller;
	struct mimo_reactor *reactor;
};

static int qd_sample(void *arg)
{
	struct bdev_qd_sampler *s = arg;
	struct mimo_bdev *bdev;
	struct bdev_channel *ch;
	uint64_t qd = 0;

	bdev_registry_lock();
	bdev = s->bdev;
	if (bdev != NULL) {
		struct bdev_ext *ext = bdev_ext(bdev);

		pthread_mutex_lock(&bdev->internal.lock);
		TAILQ_FOREACH(ch, &bdev->internal.channels, link)
		qd += ch_outstanding(ch);
		pthread_mutex_unlock(&bdev->internal.lock);
		/* SPDK's: time with I/O outstanding, and that time weighted by the depth (µs). */
		atomic_store(&ext->queue_depth, qd);
		if (qd > 0) {
			atomic_fetch_add(&ext->io_time, s->period_us);
			atomic_fetch_add(&ext->weighted_io_time, s->period_us * qd);
		}
	}
	bdev_registry_unlock();
	return 0; /* a sample is no work: the reactor may sleep until the next */
}

static void qd_stop(void *arg)
{
	struct bdev_qd_sampler *s = arg;

	mimo_poller_unregister(&s->poller);
	free(s);
}

/* Under the registry lock: detach the sampler and have its reactor free it. */
void bdev_qd_sampler_detach(struct mimo_bdev *bdev)
{
	struct bdev_qd_sampler *s = bdev_ext(bdev)->qd;

	if (s == NULL)
		return;
	bdev_ext(bdev)->qd = NULL;
	s->bdev = NULL;
	bdev_send(s->reactor, qd_stop, s);
}

int bdev_set_qd_sampling_period(struct mimo_bdev *bdev, uint64_t period_us)
{
	struct bdev_ext *ext = bdev_ext(bdev);
	struct bdev_qd_sampler *s = NULL;

	if (period_us > 0) {
		s = calloc(1, sizeof(*s));
		if (s == NULL)
			return -ENOMEM;
		s->period_us = period_us;
		s->reactor = mimo_reactor_current();
		s->poller = mimo_poller_register(qd_sample, s, period_us);
		if (s->poller == NULL) {
			free(s);
			return -ENOMEM;
		}
	}
	bdev_registry_lock();
	bdev_qd_sampler_detach(bdev);
	if (s != NULL) {
		s->bdev = bdev;
		ext->qd = s;
	}
	ext->qd_period_us = period_us;
	bdev_registry_unlock();
	return 0;
}
