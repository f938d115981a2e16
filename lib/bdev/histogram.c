/*
 * Latency histograms (bdev_enable_histogram, bdev_get_histogram), in the layout of SPDK's
 * include/spdk/histogram_data.h, because bdev_get_histogram sends the buckets themselves
 * (base64 of little-endian 64-bit counts) and SPDK's scripts/histogram.py decodes them with
 * that layout: a value v in ticks falls in range r = (64 - granularity) - clz(v) (0 for small
 * values), and within it in bucket (v >> (r - 1)) & (2^granularity - 1); ranges below
 * min_range and above max_range are clamped to the first and last bucket.
 *
 * Each channel has its own histogram, written by its reactor alone (relaxed stores); the
 * settings have a generation that a channel compares with its own on completion, taking a new
 * histogram under the bdev's lock when they changed. Readers sum under that lock.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bdev_internal.h"
#include "compiler.h"
#include "ticks.h"

static uint32_t range_of(uint32_t granularity, uint64_t v)
{
	uint32_t lsb = 64 - granularity;
	uint32_t clz = v > 0 ? (uint32_t)__builtin_clzll(v) : 64;

	return clz <= lsb ? lsb - clz : 0;
}

size_t bdev_hist_num_buckets(const struct bdev_hist *h)
{
	return (size_t)(h->max_range - h->min_range + 1) << h->granularity;
}

int bdev_hist_init(struct bdev_hist *h, uint32_t granularity, uint64_t min_val, uint64_t max_val)
{
	if (min_val >= max_val)
		return -EINVAL;
	h->granularity = granularity;
	h->min_range = range_of(granularity, min_val);
	h->max_range = range_of(granularity, max_val - 1);
	h->bucket = calloc(bdev_hist_num_buckets(h), sizeof(uint64_t));
	return h->bucket != NULL ? 0 : -ENOMEM;
}

void bdev_hist_free(struct bdev_hist *h)
{
	free(h->bucket);
	h->bucket = NULL;
}

void bdev_hist_tally(struct bdev_hist *h, uint64_t v)
{
	uint32_t range = range_of(h->granularity, v), index;
	uint64_t *b;

	if (range < h->min_range) {
		range = h->min_range;
		index = 0;
	} else if (range > h->max_range) {
		range = h->max_range;
		index = (1u << h->granularity) - 1;
	} else {
		index = (v >> (range > 0 ? range - 1 : 0)) & ((1u << h->granularity) - 1);
	}
	b = &h->bucket[((size_t)(range - h->min_range) << h->granularity) + index];
	/* Single writer; readers load relaxed under the bdev's lock. */
	__atomic_store_n(b, *b + 1, __ATOMIC_RELAXED);
}

void bdev_hist_merge(struct bdev_hist *dst, const struct bdev_hist *src)
{
	size_t n = bdev_hist_num_buckets(dst);

	for (size_t i = 0; i < n; i++)
		dst->bucket[i] += __atomic_load_n(&src->bucket[i], __ATOMIC_RELAXED);
}

/* nanoseconds to ticks, saturating (SPDK's default maximum, 120 s, overflows 64 bits at a
 * GHz tick rate when multiplied first). */
static uint64_t ns_to_ticks(uint64_t ns)
{
	unsigned __int128 t;

	if (ns == UINT64_MAX)
		return UINT64_MAX;
	t = (unsigned __int128)ns * mimo_get_ticks_hz() / 1000000000u;
	return t > UINT64_MAX ? UINT64_MAX : (uint64_t)t;
}

static int hist_new_locked(struct bdev_ext *ext, struct bdev_hist *h)
{
	return bdev_hist_init(h, ext->hist_granularity, ns_to_ticks(ext->hist_min_nsec),
			      ns_to_ticks(ext->hist_max_nsec));
}

/* On the channel's reactor: the settings changed since this channel's histogram was made. */
static void hist_refresh(struct bdev_channel *ch)
{
	struct mimo_bdev *bdev = ch->bdev;
	struct bdev_ext *ext = bdev_ext(bdev);
	struct bdev_hist *h = NULL;

	pthread_mutex_lock(&bdev->internal.lock);
	if (ch->hist != NULL) {
		bdev_hist_free(ch->hist);
		free(ch->hist);
		ch->hist = NULL;
	}
	if (ext->hist_enabled) {
		h = calloc(1, sizeof(*h));
		if (h != NULL && hist_new_locked(ext, h) != 0) {
			free(h);
			h = NULL;
		}
	}
	ch->hist = h;
	ch->hist_gen = atomic_load(&ext->hist_gen);
	pthread_mutex_unlock(&bdev->internal.lock);
}

void bdev_hist_complete(struct bdev_channel *ch, struct mimo_bdev_io *io, uint64_t ticks)
{
	struct bdev_ext *ext = bdev_ext(ch->bdev);

	if (mimo_unlikely(ch->hist_gen !=
			  atomic_load_explicit(&ext->hist_gen, memory_order_relaxed)))
		hist_refresh(ch);
	if (ch->hist != NULL) {
		int only = __atomic_load_n(&ext->hist_io_type, __ATOMIC_RELAXED);

		if (only < 0 || only == (int)io->type)
			bdev_hist_tally(ch->hist, ticks);
	}
}

void bdev_hist_channel_destroy(struct bdev_channel *ch)
{
	struct bdev_ext *ext = bdev_ext(ch->bdev);

	if (ch->hist == NULL)
		return;
	if (ch->hist_gen == atomic_load(&ext->hist_gen) && ext->retired_hist.bucket != NULL)
		bdev_hist_merge(&ext->retired_hist, ch->hist);
	bdev_hist_free(ch->hist);
	free(ch->hist);
	ch->hist = NULL;
}

int bdev_hist_configure(struct mimo_bdev *bdev, bool enable, int io_type, uint32_t granularity,
			uint64_t min_nsec, uint64_t max_nsec)
{
	struct bdev_ext *ext = bdev_ext(bdev);
	struct bdev_hist retired = { 0 };
	int rc = 0;

	pthread_mutex_lock(&bdev->internal.lock);
	ext->hist_enabled = enable;
	__atomic_store_n(&ext->hist_io_type, io_type, __ATOMIC_RELAXED);
	ext->hist_granularity = granularity;
	ext->hist_min_nsec = min_nsec;
	ext->hist_max_nsec = max_nsec;
	bdev_hist_free(&ext->retired_hist);
	/* Every channel starts a new histogram: enabling again starts from zero, as SPDK. */
	if (enable)
		rc = hist_new_locked(ext, &retired);
	if (rc == 0)
		ext->retired_hist = retired;
	else
		ext->hist_enabled = false;
	atomic_fetch_add(&ext->hist_gen, 1);
	pthread_mutex_unlock(&bdev->internal.lock);
	return rc;
}

int bdev_hist_collect(struct mimo_bdev *bdev, struct bdev_hist *out)
{
	struct bdev_ext *ext = bdev_ext(bdev);
	struct bdev_channel *ch;
	uint32_t gen;
	int rc;

	pthread_mutex_lock(&bdev->internal.lock);
	if (!ext->hist_enabled || ext->retired_hist.bucket == NULL) {
		pthread_mutex_unlock(&bdev->internal.lock);
		return -EFAULT; /* SPDK's answer when the histogram is not enabled */
	}
	rc = hist_new_locked(ext, out);
	if (rc == 0) {
		gen = atomic_load(&ext->hist_gen);
		bdev_hist_merge(out, &ext->retired_hist);
		TAILQ_FOREACH(ch, &bdev->internal.channels, link)
		{
			if (ch->hist != NULL && ch->hist_gen == gen)
				bdev_hist_merge(out, ch->hist);
		}
	}
	pthread_mutex_unlock(&bdev->internal.lock);
	return rc;
}
