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
	bool private_bufs; /* mimo_bdev_desc_set_private_buffers */
	mimo_bdev_event_cb event_cb;
	void *ctx;
	struct mimo_reactor *reactor;
	/* A REMOVE notice is queued to reactor (set under the bdev's lock by the delete); a
	 * close meanwhile leaves the freeing to the notice, which then tells nobody. Both are
	 * touched on reactor only after that, since only it closes the descriptor. */
	bool remove_pending;
	bool closed;
	TAILQ_ENTRY(mimo_bdev_desc) link;
};

/* A channel's counters, in SPDK's bdev_get_iostat terms. MIN_* hold UINT64_MAX until the first
 * I/O of the type; ERR_* count failed I/Os by SPDK's status names (io_error). */
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
	STAT_MAX_READ_TICKS,
	STAT_MIN_READ_TICKS,
	STAT_MAX_WRITE_TICKS,
	STAT_MIN_WRITE_TICKS,
	STAT_MAX_UNMAP_TICKS,
	STAT_MIN_UNMAP_TICKS,
	STAT_ERR_FAILED,
	STAT_ERR_NOMEM,
	STAT_ERR_ABORTED,
	STAT_ERR_MISCOMPARE,
	/* mimo's own, for the metrics endpoint: flushes, and the latency histograms' buckets
	 * (mimo_bdev_lat_bounds), which a reset of everything clears with the rest. */
	STAT_FLUSH_OPS,
	STAT_FLUSH_TICKS,
	STAT_READ_HIST,
	STAT_WRITE_HIST = STAT_READ_HIST + MIMO_BDEV_LAT_BUCKETS,
	STAT_WRITE_HIST_LAST = STAT_WRITE_HIST + MIMO_BDEV_LAT_BUCKETS - 1,
	STAT_COUNT,
};

/* What bdev_reset_iostat clears (SPDK's modes). */
enum bdev_reset_mode {
	BDEV_RESET_ALL,
	BDEV_RESET_MAXMIN,
	BDEV_RESET_ERROR,
	BDEV_RESET_NONE,
};

STAILQ_HEAD(bdev_io_list, mimo_bdev_io);

/* A latency histogram in SPDK's layout (include/spdk/histogram_data.h, whose encoding
 * bdev_get_histogram sends): 2^granularity buckets per power of two of ticks, for the
 * ranges min_range..max_range. */
struct bdev_hist {
	uint32_t granularity, min_range, max_range;
	uint64_t *bucket;
};

/* QoS limits, SPDK's order (bdev_set_qos_limit's parameters). */
enum {
	QOS_RW_IOPS,
	QOS_RW_BPS,
	QOS_R_BPS,
	QOS_W_BPS,
	QOS_NUM
};

/*
 * A bdev's QoS: one token bucket per limit, shared by every reactor (docs/mimo_tgt.md, "QoS").
 * The budget is of one millisecond: the first submitter to see a new millisecond refills it
 * (a compare-and-swap on slice), every admitted I/O takes its cost with one atomic subtract.
 * Only bdevs with a limit pay that; the others read "enabled" (a plain load) and go on.
 */
struct bdev_qos {
	_Atomic bool enabled;
	_Atomic uint64_t per_slice[QOS_NUM]; /* I/Os or bytes per slice; 0: no limit */
	_Atomic int64_t remaining[QOS_NUM];
	_Atomic uint64_t slice;
	uint64_t slice_ticks;
	uint64_t limit[QOS_NUM]; /* as set: I/Os per second, MiB per second (under the lock) */
};

/* The layer's state of a bdev beyond struct mimo_bdev's (allocated at registration). */
struct bdev_ext {
	/* bdev_reset_iostat bumps a generation; each channel catches up on its own reactor
	 * before its next count, and readers skip what a channel has not yet cleared. */
	_Atomic uint32_t gen[BDEV_RESET_NONE];
	/* bdev_set_qd_sampling_period: a poller on the reactor that set it (stat.c), both under
	 * the registry lock. */
	uint64_t qd_period_us;
	struct bdev_qd_sampler *qd;
	_Atomic uint64_t queue_depth, io_time, weighted_io_time;
	/* bdev_enable_histogram: the settings (under the bdev's lock) and their generation,
	 * which channels compare with theirs on completion to take a new histogram. */
	_Atomic uint32_t hist_gen;
	bool hist_enabled;
	int hist_io_type; /* -1: every type */
	uint32_t hist_granularity;
	uint64_t hist_min_nsec, hist_max_nsec;
	struct bdev_hist retired_hist; /* of channels that are gone */
	struct bdev_qos qos;
	/* bdev_examine or auto-examine has run for it. */
	bool examined;
};

/* The bdev layer's context of a reactor's io_channel for a bdev. */
struct bdev_channel {
	struct mimo_bdev *bdev;
	struct mimo_io_channel *module_ch;
	struct bdev_io_list free_ios;
	uint32_t nfree;
	/* Written by the owning reactor only; relaxed atomics so that the queue-depth poller and
	 * bdev_get_iostat may read them from theirs (plain loads and stores on x86). */
	_Atomic uint32_t outstanding;
	_Atomic uint64_t stat[STAT_COUNT];
	_Atomic uint32_t seen_gen[BDEV_RESET_NONE]; /* the resets applied */
	uint64_t tid;				    /* thread_id of per_channel statistics */
	/* The histogram and the settings' generation it was made for (swapped under the bdev's
	 * lock, which readers hold). */
	uint32_t hist_gen;
	struct bdev_hist *hist;
	/* I/Os QoS holds back, in order, and the poller that submits them as budget comes. */
	struct bdev_io_list qos_queue;
	struct mimo_poller *qos_poller;
	TAILQ_ENTRY(bdev_channel) link;
};

static inline struct bdev_ext *bdev_ext(const struct mimo_bdev *bdev)
{
	return bdev->internal.ext;
}

static inline uint64_t stat_get(const struct bdev_channel *ch, enum bdev_stat s)
{
	return atomic_load_explicit(&ch->stat[s], memory_order_relaxed);
}

static inline void stat_set(struct bdev_channel *ch, enum bdev_stat s, uint64_t v)
{
	atomic_store_explicit(&ch->stat[s], v, memory_order_relaxed);
}

static inline void stat_add_one(struct bdev_channel *ch, enum bdev_stat s, uint64_t v)
{
	/* Single writer: a plain load and store, no locked instruction. */
	stat_set(ch, s, stat_get(ch, s) + v);
}

/* mimo_bdev_lat_bounds in ticks, set when the first bdev registers (bdev.c). */
extern uint64_t g_bdev_lat_bounds_ticks[MIMO_BDEV_LAT_BOUNDS];

/* Count one I/O of ticks in its bucket of the histogram starting at first: a binary search
 * over the 17 bounds, one plain store. */
static inline void lat_hist_add(struct bdev_channel *ch, enum bdev_stat first, uint64_t ticks)
{
	unsigned int lo = 0, hi = MIMO_BDEV_LAT_BOUNDS;

	while (lo < hi) {
		unsigned int mid = (lo + hi) / 2;

		if (ticks <= g_bdev_lat_bounds_ticks[mid])
			hi = mid;
		else
			lo = mid + 1;
	}
	stat_add_one(ch, (enum bdev_stat)(first + lo), 1);
}

static inline uint32_t ch_outstanding(const struct bdev_channel *ch)
{
	return atomic_load_explicit(&ch->outstanding, memory_order_relaxed);
}

static inline void ch_outstanding_add(struct bdev_channel *ch, int32_t d)
{
	atomic_store_explicit(&ch->outstanding, ch_outstanding(ch) + (uint32_t)d,
			      memory_order_relaxed);
}

/*
 * Send a message without waiting for room in r's ring. The layer sends while it holds g_lock
 * and a bdev's lock (a delete tells every descriptor's reactor), and r may be this reactor or
 * one blocked on those very locks: a sender that spun until r drained would wait forever
 * (docs/ARCHITECTURE.md, "Locking rules of the bdev layer"). mimo_reactor_post parks what does
 * not fit on this reactor's overflow list instead, sent on in order by its own loop. Only when
 * it has no memory for that does this wait for room, as the SCSI layer's scsi_post does.
 */
static inline void bdev_send(struct mimo_reactor *r, mimo_msg_fn fn, void *arg)
{
	while (mimo_reactor_post(r, fn, arg) != 0) {
		if (mimo_reactor_send_msg(r, fn, arg) == 0)
			return;
		sched_yield();
	}
}

/* stat.c: statistics. */
void bdev_stat_init(struct bdev_channel *ch);
/* On the channel's reactor, before counting: apply the resets asked since the last count. */
void bdev_stat_catch_up(struct bdev_channel *ch);
/* Count a completed I/O (on the channel's reactor). */
void bdev_stat_count(struct bdev_channel *ch, struct mimo_bdev_io *io, uint64_t ticks);
/* Add what a channel counted, less what was reset and not yet applied by it, to *to. */
void bdev_stat_add_channel(struct mimo_bdev_io_stat *to, const struct bdev_channel *ch,
			   const struct bdev_ext *ext);
void bdev_stat_reset_retired(struct mimo_bdev *bdev, enum bdev_reset_mode mode);
/* SPDK's bdev_get_iostat object fields of a statistics record, into obj. */
void bdev_stat_to_json(const struct mimo_bdev_io_stat *st, json_t *obj);
void bdev_stat_empty(struct mimo_bdev_io_stat *st);
void bdev_stat_merge(struct mimo_bdev_io_stat *to, const struct mimo_bdev_io_stat *from);
/* Reset bdev's statistics (any thread; channels catch up on their reactors). */
void bdev_reset_io_stat(struct mimo_bdev *bdev, enum bdev_reset_mode mode);
/* Period 0 stops sampling. On a reactor. */
int bdev_set_qd_sampling_period(struct mimo_bdev *bdev, uint64_t period_us);
/* Under the registry lock, before the bdev is destructed: stop its sampler. */
void bdev_qd_sampler_detach(struct mimo_bdev *bdev);
/* bdev.c's registry lock (bdevs come and go under it). */
void bdev_registry_lock(void);
void bdev_registry_unlock(void);

/* histogram.c */
int bdev_hist_init(struct bdev_hist *h, uint32_t granularity, uint64_t min_val, uint64_t max_val);
void bdev_hist_free(struct bdev_hist *h);
void bdev_hist_tally(struct bdev_hist *h, uint64_t value);
size_t bdev_hist_num_buckets(const struct bdev_hist *h);
/* Add src's counts into dst (same geometry). */
void bdev_hist_merge(struct bdev_hist *dst, const struct bdev_hist *src);
/* On completion: take the histogram the current settings ask for, then tally. */
void bdev_hist_complete(struct bdev_channel *ch, struct mimo_bdev_io *io, uint64_t ticks);
void bdev_hist_channel_destroy(struct bdev_channel *ch); /* under the bdev's lock */
/* Enable (with SPDK's options) or disable. io_type -1: all. */
int bdev_hist_configure(struct mimo_bdev *bdev, bool enable, int io_type, uint32_t granularity,
			uint64_t min_nsec, uint64_t max_nsec);
/* The sum of every channel's histogram (a new one, free with bdev_hist_free); -EFAULT when
 * disabled. */
int bdev_hist_collect(struct mimo_bdev *bdev, struct bdev_hist *out);

/* qos.c */
void bdev_qos_init(struct bdev_qos *q);
/* limits[]: UINT64_MAX leaves one as it is; IOPS are rounded up to a multiple of 1000, MiB/s
 * counted in bytes. */
int bdev_qos_set(struct mimo_bdev *bdev, const uint64_t limits[QOS_NUM]);
void bdev_qos_get(struct mimo_bdev *bdev, uint64_t limits[QOS_NUM]);
/* On the I/O's reactor: submit now (true) or hold in the channel's queue (false). */
bool bdev_qos_admit(struct bdev_channel *ch, struct mimo_bdev_io *io);
void bdev_qos_channel_destroy(struct bdev_channel *ch);
/* io.c: hand an I/O to its module (or complete a zero-copy one), after QoS let it go. */
void bdev_io_dispatch(struct mimo_bdev_io *io);

/* bdev_get_iostat's "bdevs" array: every bdev, or those named (-ENODEV when one is not). */
json_t *bdev_iostat_json(char *const *names, size_t n, enum bdev_reset_mode mode, int *rc);
/* Its per_channel object: {name, channels: [{thread_id, ...}]}. */
json_t *bdev_iostat_channels_json(const char *name, enum bdev_reset_mode mode, int *rc);
/* bdev_reset_iostat: one bdev, or every one when name is NULL. */
int bdev_reset_iostat_named(const char *name, enum bdev_reset_mode mode);
/* Append the layer's settings of bdev (QoS, histogram) to a saved configuration. */
void bdev_layer_config_json(struct mimo_bdev *bdev, json_t *arr);
void bdev_report_io_error(struct mimo_bdev_io *io);
size_t bdev_io_ctx_size(void);
/* bdev_rpc.c: register its methods (mimo_register_bdev_layer does). */
void bdev_rpc_register(void);
void bdev_opts_rpc_register(void); /* bdev_opts_rpc.c: SPDK's bdev option methods */
void bdev_stat_rpc_register(void); /* bdev_stat_rpc.c: iostat, histograms, QoS */
/* bdev_stat_rpc.c's bdev_get_iostat, registered by bdev_rpc.c (the order methods are
 * listed in is part of what clients see). */
struct mimo_jsonrpc_request;
void rpc_bdev_get_iostat(struct mimo_jsonrpc_request *req, const json_t *params);
/* bdev_opts_rpc.c: bdev_set_options' bdev_auto_examine, bdev_examine's list. */
bool bdev_auto_examine(void);
json_t *bdev_examine_config_json(void);

#endif
