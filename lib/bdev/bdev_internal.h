/* State shared by the bdev layer's files. */
#ifndef MIMO_BDEV_INTERNAL_H
#define MIMO_BDEV_INTERNAL_H

#include <sched.h>
#include <stdatomic.h>
#include <sys/queue.h>

#include "mimo/bdev_module.h"

struct mimo_bdev_desc {
	struct mimo_bdev *bdev;
	bool write;
	mimo_bdev_event_cb event_cb;
	void *ctx;
	struct mimo_reactor *reactor;
	TAILQ_ENTRY(mimo_bdev_desc) link;
};

enum bdev_stat {
	STAT_BYTES_READ,
	STAT_READ_OPS,
	STAT_BYTES_WRITTEN,
	STAT_WRITE_OPS,
	STAT_BYTES_UNMAPPED,
	STAT_UNMAP_OPS,
	STAT_READ_TICKS,
	STAT_WRITE_TICKS,
	STAT_UNMAP_TICKS,
	STAT_FAILED_OPS,
	STAT_FLUSH_OPS,
	STAT_FLUSH_TICKS,
	STAT_COUNT,
};

STAILQ_HEAD(bdev_io_list, mimo_bdev_io);

/* The bdev layer's context of a reactor's io_channel for a bdev. */
struct bdev_channel {
	struct mimo_bdev *bdev;
	struct mimo_io_channel *module_ch;
	struct bdev_io_list free_ios;
	uint32_t nfree;
	uint32_t outstanding;
	/* Written by the owning reactor only; relaxed atomics so iostat may read them. */
	_Atomic uint64_t stat[STAT_COUNT];
	_Atomic uint64_t read_hist[MIMO_BDEV_LAT_BUCKETS], write_hist[MIMO_BDEV_LAT_BUCKETS];
	TAILQ_ENTRY(bdev_channel) link;
};

static inline uint64_t stat_get(const struct bdev_channel *ch, enum bdev_stat s)
{
	return atomic_load_explicit(&ch->stat[s], memory_order_relaxed);
}

/* mimo_bdev_lat_bounds in ticks, set when the first bdev registers (bdev.c). */
extern uint64_t g_bdev_lat_bounds_ticks[MIMO_BDEV_LAT_BOUNDS];

/* Count one I/O of ticks in its bucket: a binary search over 17 bounds, one plain store. */
static inline void hist_add(_Atomic uint64_t *hist, uint64_t ticks)
{
	unsigned int lo = 0, hi = MIMO_BDEV_LAT_BOUNDS;

	while (lo < hi) {
		unsigned int mid = (lo + hi) / 2;

		if (ticks <= g_bdev_lat_bounds_ticks[mid])
			hi = mid;
		else
			lo = mid + 1;
	}
	atomic_store_explicit(&hist[lo], atomic_load_explicit(&hist[lo], memory_order_relaxed) + 1,
			      memory_order_relaxed);
}

static inline void stat_add_one(struct bdev_channel *ch, enum bdev_stat s, uint64_t v)
{
	/* Single writer: a plain load and store, no locked instruction. */
	atomic_store_explicit(&ch->stat[s], stat_get(ch, s) + v, memory_order_relaxed);
}

/* Send a message, retrying while the target's ring is full (it drains every turn). */
static inline void bdev_send(struct mimo_reactor *r, mimo_msg_fn fn, void *arg)
{
	while (mimo_reactor_send_msg(r, fn, arg) == -EAGAIN)
		sched_yield();
}

json_t *bdev_iostat_json(const char *name);
void bdev_report_io_error(struct mimo_bdev_io *io);
size_t bdev_io_ctx_size(void);
/* bdev_rpc.c: register its methods (mimo_register_bdev_layer does). */
void bdev_rpc_register(void);
void bdev_opts_rpc_register(void); /* bdev_opts_rpc.c: SPDK's bdev option methods */

#endif
