/*
 * QoS rate limits (bdev_set_qos_limit): I/Os per second and MiB per second, read and write
 * together or apart, enforced for the bdev as a whole across every reactor.
 *
 * SPDK sends every I/O of a rate-limited bdev to one thread, which keeps the budget and
 * sends the I/O back. mimo keeps the budget in shared token buckets instead (struct
 * bdev_qos): each reactor admits its own I/O by taking its cost from them with an atomic
 * subtract, so a limited bdev costs an atomic per I/O rather than two messages, and a bdev
 * without limits costs one load. Time is cut in slices of 1 ms, as SPDK's; the first
 * submitter to see a new slice refills the buckets (a compare-and-swap on the slice number
 * decides who); what an I/O overdraws is debt carried into the next slices, as SPDK's. An I/O
 * that finds a bucket empty waits, in order, in its channel's queue, which a 1 ms poller on
 * that reactor submits from as budget comes back; later I/O of the channel queues behind it.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>

#include "bdev_internal.h"
#include "compiler.h"
#include "log.h"
#include "ticks.h"

#define COMP		   "bdev"
#define SLICE_US	   1000
#define BURST_SLICES	   4
#define MIN_IOS_PER_SEC	   1000 /* SPDK's: IOPS limits are multiples of this */
#define MAX_MBYTES_PER_SEC (UINT64_MAX / (1024 * 1024))

void bdev_qos_init(struct bdev_qos *q)
{
	q->slice_ticks = mimo_get_ticks_hz() * SLICE_US / 1000000;
	if (q->slice_ticks == 0)
		q->slice_ticks = 1;
}

static uint64_t per_slice(uint64_t per_sec)
{
	uint64_t n = per_sec * SLICE_US / 1000000;

	return n > 0 ? n : 1; /* at least one I/O, or a byte, per slice */
}

int bdev_qos_set(struct mimo_bdev *bdev, const uint64_t in[QOS_NUM])
{
	struct bdev_qos *q = &bdev_ext(bdev)->qos;
	uint64_t limits[QOS_NUM];
	bool any = false;

	pthread_mutex_lock(&bdev->internal.lock);
	for (int i = 0; i < QOS_NUM; i++) {
		limits[i] = in[i] == UINT64_MAX ? q->limit[i] : in[i];
		if (i == QOS_RW_IOPS && limits[i] % MIN_IOS_PER_SEC != 0) {
			/* SPDK's rule, and its answer: round up, with a log line. */
			MIMO_WARN(COMP,
				  "%s: rw_ios_per_sec %" PRIu64 " is not a multiple of %d: "
				  "rounded up",
				  bdev->name, limits[i], MIN_IOS_PER_SEC);
			limits[i] += MIN_IOS_PER_SEC - limits[i] % MIN_IOS_PER_SEC;
		} else if (i != QOS_RW_IOPS && limits[i] > MAX_MBYTES_PER_SEC) {
			limits[i] = MAX_MBYTES_PER_SEC;
		}
		any |= limits[i] > 0;
	}
	for (int i = 0; i < QOS_NUM; i++) {
		uint64_t per_sec = i == QOS_RW_IOPS ? limits[i] : limits[i] * 1024 * 1024;
		uint64_t n = limits[i] > 0 ? per_slice(per_sec) : 0;

		q->limit[i] = limits[i];
		atomic_store(&q->per_slice[i], n);
		atomic_store(&q->remaining[i], (int64_t)n);
	}
	atomic_store(&q->slice, mimo_get_ticks() / q->slice_ticks);
	/* Turned off: the queued I/O goes at each channel's next poll. */
	atomic_store(&q->enabled, any);
	bdev->internal.info_gen++;
	free(bdev->internal.info_text);
	bdev->internal.info_text = NULL;
	pthread_mutex_unlock(&bdev->internal.lock);
	return 0;
}

void bdev_qos_get(struct mimo_bdev *bdev, uint64_t limits[QOS_NUM])
{
	struct bdev_qos *q = &bdev_ext(bdev)->qos;

	pthread_mutex_lock(&bdev->internal.lock);
	for (int i = 0; i < QOS_NUM; i++)
		limits[i] = q->limit[i];
	pthread_mutex_unlock(&bdev->internal.lock);
}

/* The first to see a new slice adds a slice's budget per elapsed slice, up to BURST_SLICES':
 * debt is paid off, and unused budget piles up only that far. One slice's (SPDK's) would lose
 * the budget of every slice a late poll skips - a reactor's timer can come a millisecond late
 * - and the rate would fall short of the limit; four make up for that, at the cost of a burst
 * of 4 ms worth after an idle time. */
static void refill(struct bdev_qos *q)
{
	uint64_t now = mimo_get_ticks() / q->slice_ticks;
	uint64_t last = atomic_load_explicit(&q->slice, memory_order_relaxed);
	uint64_t elapsed;

	if (now <= last || !atomic_compare_exchange_strong(&q->slice, &last, now))
		return;
	elapsed = now - last < 1000 ? now - last : 1000;
	for (int i = 0; i < QOS_NUM; i++) {
		int64_t max = (int64_t)atomic_load_explicit(&q->per_slice[i], memory_order_relaxed);
		int64_t cur = atomic_load(&q->remaining[i]), want;

		if (max == 0)
			continue;
		do {
			want = cur + max * (int64_t)elapsed;
			if (want > max * BURST_SLICES)
				want = max * BURST_SLICES;
		} while (!atomic_compare_exchange_weak(&q->remaining[i], &cur, want));
	}
}

/* What an I/O costs against each limit (0: that limit does not apply to it). */
static void costs(const struct mimo_bdev_io *io, int64_t cost[QOS_NUM])
{
	int64_t bytes = (int64_t)(io->num_blocks * io->bdev->blocklen);
	bool read = io->type == MIMO_BDEV_IO_READ;
	bool data = read || io->type == MIMO_BDEV_IO_WRITE ||
		    io->type == MIMO_BDEV_IO_WRITE_ZEROES || io->type == MIMO_BDEV_IO_UNMAP;

	cost[QOS_RW_IOPS] = data ? 1 : 0;
	cost[QOS_RW_BPS] = data ? bytes : 0;
	cost[QOS_R_BPS] = read ? bytes : 0;
	cost[QOS_W_BPS] = data && !read ? bytes : 0;
}

/* Admit io if every bucket it draws from has budget left; take its cost from them. */
static bool try_take(struct bdev_qos *q, const struct mimo_bdev_io *io)
{
	int64_t cost[QOS_NUM];

	costs(io, cost);
	refill(q);
	for (int i = 0; i < QOS_NUM; i++) {
		if (cost[i] > 0 &&
		    atomic_load_explicit(&q->per_slice[i], memory_order_relaxed) > 0 &&
		    atomic_load_explicit(&q->remaining[i], memory_order_relaxed) <= 0)
			return false;
	}
	for (int i = 0; i < QOS_NUM; i++) {
		if (cost[i] > 0 && atomic_load_explicit(&q->per_slice[i], memory_order_relaxed) > 0)
			atomic_fetch_sub_explicit(&q->remaining[i], cost[i], memory_order_relaxed);
	}
	return true;
}

static int qos_poll(void *arg)
{
	struct bdev_channel *ch = arg;
	struct bdev_qos *q = &bdev_ext(ch->bdev)->qos;
	struct mimo_bdev_io *io;
	int n = 0;

	while ((io = STAILQ_FIRST(&ch->qos_queue)) != NULL) {
		if (atomic_load_explicit(&q->enabled, memory_order_relaxed) && !try_take(q, io))
			break;
		STAILQ_REMOVE_HEAD(&ch->qos_queue, link);
		bdev_io_dispatch(io);
		n++;
	}
	if (STAILQ_EMPTY(&ch->qos_queue))
		mimo_poller_unregister(&ch->qos_poller);
	/* Held I/O is no reason to spin: the timer brings the next slice. */
	return n > 0;
}

bool bdev_qos_admit(struct bdev_channel *ch, struct mimo_bdev_io *io)
{
	struct bdev_qos *q = &bdev_ext(ch->bdev)->qos;

	if (STAILQ_EMPTY(&ch->qos_queue) && try_take(q, io))
		return true;
	if (ch->qos_poller == NULL) {
		ch->qos_poller = mimo_poller_register(qos_poll, ch, SLICE_US);
		if (ch->qos_poller == NULL)
			return true; /* no memory for the poller: let it through rather than lose it
				      */
	}
	STAILQ_INSERT_TAIL(&ch->qos_queue, io, link);
	return false;
}

void bdev_qos_channel_destroy(struct bdev_channel *ch)
{
	struct mimo_bdev_io *io;

	/* An owner puts its channel with nothing outstanding (channel_destroy logs it when not):
	 * there is nobody left to complete what is still held to. */
	while ((io = STAILQ_FIRST(&ch->qos_queue)) != NULL) {
		STAILQ_REMOVE_HEAD(&ch->qos_queue, link);
		free(io);
	}
	mimo_poller_unregister(&ch->qos_poller);
}
