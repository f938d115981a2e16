/*
 * mimo/bdev.h - block devices: an asynchronous block layer in SPDK's shape.
 *
 * A user opens a bdev by name (a descriptor), takes an I/O channel on each reactor it submits
 * from, and submits reads, writes, flushes, unmaps, write-zeroes and resets; each completes
 * through a callback on the submitting reactor. Nothing blocks; there are no locks on the I/O
 * path. Offsets and lengths are in blocks.
 *
 * Rules: open, close and get_io_channel run on a reactor; an I/O is submitted on the reactor
 * that owns the channel; put every channel before closing the descriptor. When a bdev is
 * deleted, each open descriptor's event callback receives MIMO_BDEV_EVENT_REMOVE on its
 * reactor; the owner then puts its channels and closes.
 *
 * Errors: 0 or a negative errno (an I/O's status too); a lookup returns NULL when the thing
 * does not exist. JSON: a returned json_t * is a new reference the caller releases with
 * json_decref; a malloc'd char * the caller frees.
 */
#ifndef MIMO_BDEV_H
#define MIMO_BDEV_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

struct mimo_bdev;
struct mimo_bdev_desc;
struct mimo_bdev_io;
struct mimo_io_channel;

/*
 * Register the layer's RPC methods (bdev_get_bdevs, bdev_get_iostat and their legacy names)
 * and event types (bdev_register...). Each module registers itself and its methods with its
 * own mimo_register_bdev_<name>() (module/bdev/<name>/bdev_<name>.h). mimo/jsonrpc.h,
 * "Registration".
 */
void mimo_register_bdev_layer(void);

enum mimo_bdev_io_type {
	MIMO_BDEV_IO_READ,
	MIMO_BDEV_IO_WRITE,
	MIMO_BDEV_IO_UNMAP,
	MIMO_BDEV_IO_FLUSH,
	MIMO_BDEV_IO_RESET,
	MIMO_BDEV_IO_WRITE_ZEROES,
	MIMO_BDEV_IO_NUM_TYPES,
};

/* SPDK's names: "read", "write", "unmap", "flush", "reset", "write_zeroes". */
const char *mimo_bdev_io_type_name(enum mimo_bdev_io_type type);

enum mimo_bdev_event_type {
	MIMO_BDEV_EVENT_REMOVE,
	/* The size changed (mimo_bdev_get_num_blocks has the new one): a resized null bdev, an
	 * aio bdev whose file grew. Owners that cache the size re-read it. */
	MIMO_BDEV_EVENT_RESIZE,
};

typedef void (*mimo_bdev_event_cb)(enum mimo_bdev_event_type type, struct mimo_bdev *bdev,
				   void *ctx);
/* success is status == 0; mimo_bdev_io_get_status() gives the negative errno. Free the I/O
 * with mimo_bdev_free_io() (inside the callback or later, on the same reactor). */
typedef void (*mimo_bdev_io_cb)(struct mimo_bdev_io *io, bool success, void *cb_arg);

/*
 * Open a bdev, on a reactor. write: writes, unmaps and write-zeroes are allowed. event_cb (may
 * be NULL) runs on this reactor. Returns 0, -ENODEV (no such bdev), -EBUSY (being deleted),
 * -EPERM (claimed by a module and write asked for).
 */
int mimo_bdev_open(const char *name, bool write, mimo_bdev_event_cb event_cb, void *ctx,
		   struct mimo_bdev_desc **desc);
void mimo_bdev_close(struct mimo_bdev_desc *desc);
struct mimo_bdev *mimo_bdev_desc_get_bdev(struct mimo_bdev_desc *desc);
/*
 * Say that the buffers of desc's reads are its user's own memory - a vhost guest's, into
 * which nothing of another client can leak - so a module may leave in them what a read does
 * not define: the null bdev then does not zero them (SPDK's null never fills a buffer it is
 * given). Off by default: buffers from a pool shared between clients (NVMe-oF, FUSE) must
 * not come back with what a previous request left in them. Before the first I/O.
 */
void mimo_bdev_desc_set_private_buffers(struct mimo_bdev_desc *desc, bool private_buffers);
/* This reactor's channel for desc's bdev (put it with mimo_put_io_channel). */
struct mimo_io_channel *mimo_bdev_get_io_channel(struct mimo_bdev_desc *desc);

const char *mimo_bdev_get_name(const struct mimo_bdev *bdev);
const char *mimo_bdev_get_product_name(const struct mimo_bdev *bdev);
uint32_t mimo_bdev_get_block_size(const struct mimo_bdev *bdev);
uint64_t mimo_bdev_get_num_blocks(const struct mimo_bdev *bdev);
const uint8_t *mimo_bdev_get_uuid(const struct mimo_bdev *bdev);
/* Byte alignment the bdev needs for data buffers (1 = none). Misaligned buffers still work
 * (the module bounces them) but cost a copy. */
uint32_t mimo_bdev_get_buf_align(const struct mimo_bdev *bdev);
bool mimo_bdev_io_type_supported(const struct mimo_bdev *bdev, enum mimo_bdev_io_type type);
bool mimo_bdev_is_claimed(const struct mimo_bdev *bdev);

/* Submission, on the channel's reactor. Returns 0 (the callback will run), or -EINVAL (range
 * or buffer wrong), -EBADF (descriptor not writable), -ENOTSUP, -ENOMEM, -ENODEV (removing). */
int mimo_bdev_read_blocks(struct mimo_bdev_desc *desc, struct mimo_io_channel *ch, void *buf,
			  uint64_t offset_blocks, uint64_t num_blocks, mimo_bdev_io_cb cb,
			  void *cb_arg);
int mimo_bdev_readv_blocks(struct mimo_bdev_desc *desc, struct mimo_io_channel *ch,
			   struct iovec *iov, int iovcnt, uint64_t offset_blocks,
			   uint64_t num_blocks, mimo_bdev_io_cb cb, void *cb_arg);
int mimo_bdev_write_blocks(struct mimo_bdev_desc *desc, struct mimo_io_channel *ch, void *buf,
			   uint64_t offset_blocks, uint64_t num_blocks, mimo_bdev_io_cb cb,
			   void *cb_arg);
int mimo_bdev_writev_blocks(struct mimo_bdev_desc *desc, struct mimo_io_channel *ch,
			    struct iovec *iov, int iovcnt, uint64_t offset_blocks,
			    uint64_t num_blocks, mimo_bdev_io_cb cb, void *cb_arg);
int mimo_bdev_write_zeroes_blocks(struct mimo_bdev_desc *desc, struct mimo_io_channel *ch,
				  uint64_t offset_blocks, uint64_t num_blocks, mimo_bdev_io_cb cb,
				  void *cb_arg);
int mimo_bdev_unmap_blocks(struct mimo_bdev_desc *desc, struct mimo_io_channel *ch,
			   uint64_t offset_blocks, uint64_t num_blocks, mimo_bdev_io_cb cb,
			   void *cb_arg);
int mimo_bdev_flush_blocks(struct mimo_bdev_desc *desc, struct mimo_io_channel *ch,
			   uint64_t offset_blocks, uint64_t num_blocks, mimo_bdev_io_cb cb,
			   void *cb_arg);
int mimo_bdev_reset(struct mimo_bdev_desc *desc, struct mimo_io_channel *ch, mimo_bdev_io_cb cb,
		    void *cb_arg);

void mimo_bdev_free_io(struct mimo_bdev_io *io);

/*
 * Zero-copy read, for a bdev whose blocks are memory the process can address (malloc): the
 * completion's I/O points at the bdev's own memory (mimo_bdev_io_get_iovec) instead of a copy
 * in a buffer of the caller's. The memory stays valid until mimo_bdev_free_io(io): a bdev is
 * destructed only after every channel to it is put, so the caller frees the I/O before it puts
 * the channel it submitted on. It is a live view: a write to the same blocks before the free
 * shows in it. Returns as mimo_bdev_read_blocks, and -ENOTSUP when the bdev cannot (read into
 * a buffer instead; mimo_bdev_zcopy_supported says so beforehand).
 */
bool mimo_bdev_zcopy_supported(const struct mimo_bdev *bdev);
int mimo_bdev_zcopy_read_blocks(struct mimo_bdev_desc *desc, struct mimo_io_channel *ch,
				uint64_t offset_blocks, uint64_t num_blocks, mimo_bdev_io_cb cb,
				void *cb_arg);
/*
 * Zero-copy write, for a bdev mimo_bdev_zcopy_supported says is memory (SPDK's
 * spdk_bdev_zcopy_start with populate false, then spdk_bdev_zcopy_end). Start hands back, at
 * once (a front-end may already hold the data's header and be about to receive it), an I/O
 * whose iovec (mimo_bdev_io_get_iovec) is the bdev's own memory at those blocks; the caller
 * puts the data there and ends the I/O, on the channel's reactor.
 *
 * The blocks are live while the data lands: a read of them before the end may see any mix
 * of old and new bytes. End with commit true: the write happens as any other does (QoS,
 * statistics, write hooks) and cb runs with its outcome. With commit false (the data did
 * not all come): nothing is counted, but the blocks may hold part of the new data, so the
 * write hooks still hear of the range; cb runs with success false (-ECANCELED). Either way
 * free the I/O with mimo_bdev_free_io(). The memory stays valid until then, as a zero-copy
 * read's.
 *
 * Start returns 0, or -EBADF (descriptor not writable), -EINVAL (range), -ENOTSUP (not
 * memory), -EAGAIN (the bdev has a QoS limit: a limited write must not land before QoS lets
 * it), -ENOMEM. On any failure, write through a buffer instead.
 */
int mimo_bdev_zcopy_write_start(struct mimo_bdev_desc *desc, struct mimo_io_channel *ch,
				uint64_t offset_blocks, uint64_t num_blocks,
				struct mimo_bdev_io **io);
void mimo_bdev_zcopy_write_end(struct mimo_bdev_io *io, bool commit, mimo_bdev_io_cb cb,
			       void *cb_arg);
/* The data of a completed I/O (a zero-copy read's: the bdev's memory), or of a started
 * zero-copy write (where its data goes). */
void mimo_bdev_io_get_iovec(struct mimo_bdev_io *io, struct iovec **iovs, int *iovcnt);
int mimo_bdev_io_get_status(const struct mimo_bdev_io *io);
/* The NVMe status a failed I/O carries (a module's mimo_bdev_io_complete_nvme_status): true
 * and *sct, *sc set, or false when it has none. */
bool mimo_bdev_io_get_nvme_status(const struct mimo_bdev_io *io, uint8_t *sct, uint8_t *sc);

/*
 * Listen to writes: after every successful write, write-zeroes or unmap, and every zero-copy
 * write ended without commit (its blocks may have changed), cb runs on the submitting reactor
 * with the range, before the submitter's completion callback. Keep cb short;
 * it must not submit I/O. It may hold the completion back from the submitter
 * (mimo_bdev_io_hold) until something outside the bdev layer has caught up with the write - the
 * FUSE export holds writes until the kernel's page cache of the range is updated, so that
 * nobody learns of a write before every cached copy shows it.
 */
typedef void (*mimo_bdev_write_hook)(void *arg, struct mimo_bdev_io *io, struct mimo_bdev *bdev,
				     uint64_t offset_blocks, uint64_t num_blocks);
int mimo_bdev_add_write_hook(mimo_bdev_write_hook cb, void *arg);
void mimo_bdev_remove_write_hook(mimo_bdev_write_hook cb, void *arg);
/*
 * From inside a write hook only (on the submitting reactor): keep io's completion from its
 * submitter until mimo_bdev_io_release has been called once for every hold. Release from any
 * thread; after the last one the completion callback runs on the submitting reactor (by a
 * message, never inside the release). A write nobody holds completes as before, at no cost.
 */
void mimo_bdev_io_hold(struct mimo_bdev_io *io);
void mimo_bdev_io_release(struct mimo_bdev_io *io);
/* io's cb_arg if io was submitted with completion callback cb, else NULL: a write hook tells
 * its own layer's I/O from others'. */
void *mimo_bdev_io_cb_arg_if(const struct mimo_bdev_io *io, mimo_bdev_io_cb cb);

/*
 * Latency histograms of reads and writes (the metrics endpoint's mimo_bdev_*_latency_seconds):
 * how many completed within each bound, in seconds, the last bucket being everything slower
 * (+Inf). Not cumulative here: bucket i counts the I/Os above bound i-1 and within bound i.
 */
#define MIMO_BDEV_LAT_BOUNDS  17
#define MIMO_BDEV_LAT_BUCKETS (MIMO_BDEV_LAT_BOUNDS + 1)
extern const double mimo_bdev_lat_bounds[MIMO_BDEV_LAT_BOUNDS];

struct mimo_bdev_io_stat {
	uint64_t bytes_read, num_read_ops;
	uint64_t bytes_written, num_write_ops;
	uint64_t bytes_unmapped, num_unmap_ops;
	uint64_t read_latency_ticks, write_latency_ticks, unmap_latency_ticks;
	uint64_t num_failed_ops;
	/* SPDK's extremes (min_*: UINT64_MAX until the first I/O of the type) and its io_error
	 * counts by status. mimo has no copy I/O: SPDK's copy fields are always 0. */
	uint64_t max_read_latency_ticks, min_read_latency_ticks;
	uint64_t max_write_latency_ticks, min_write_latency_ticks;
	uint64_t max_unmap_latency_ticks, min_unmap_latency_ticks;
	uint64_t io_error_failed, io_error_nomem, io_error_aborted, io_error_miscompare;
	/* mimo's own (the metrics endpoint's; not in bdev_get_iostat, SPDK has no such fields). */
	uint64_t num_flush_ops, flush_latency_ticks;
	uint64_t read_lat_hist[MIMO_BDEV_LAT_BUCKETS], write_lat_hist[MIMO_BDEV_LAT_BUCKETS];
};

/* Statistics summed over every channel the bdev has had (any thread). */
void mimo_bdev_get_io_stat(struct mimo_bdev *bdev, struct mimo_bdev_io_stat *stat);
/*
 * Call fn with every bdev's name and statistics, from any thread (the metrics endpoint's).
 * fn runs under the bdev registry's lock: it must only copy what it was given (the name is
 * valid during the call), never call back into the bdev layer. bdev_reset_iostat resets
 * what it reads, as it does bdev_get_iostat's.
 */
typedef void (*mimo_bdev_stat_fn)(void *arg, const char *name, const struct mimo_bdev_io_stat *st);
void mimo_bdev_foreach_io_stat(mimo_bdev_stat_fn fn, void *arg);

/*
 * The bdev as bdev_get_bdevs shows it (SPDK's object: name, aliases, product_name,
 * block_size, num_blocks, uuid, claimed, supported_io_types, driver_specific...). Take a
 * snapshot of every bdev, or of one by name or UUID (NULL when unknown).
 */
json_t *mimo_bdev_info_json(struct mimo_bdev *bdev);
json_t *mimo_bdev_list_json(void);
json_t *mimo_bdev_find_json(const char *name_or_uuid);
/* The same as JSON text, from a per-bdev cache: "[{...},...]" for every bdev, or for the one
 * named (NULL when it does not exist). malloc'd; *len gets its length. */
char *mimo_bdev_list_text(const char *name_or_uuid, size_t *len);
/* The "bdev" subsystem's saved configuration: a JSON array of {method, params}. */
json_t *mimo_bdev_config_json(void);

/*
 * Delete a bdev (any module), on a reactor: refused with -EBUSY while claimed by a module
 * whose claims are not removable (bdev_module.h, claims_removable). Open
 * descriptors are told (REMOVE) and the bdev goes once they are closed; cb(arg, 0) then runs
 * on this reactor. Returns 0, -ENODEV or -EBUSY (then cb is not called).
 */
int mimo_bdev_delete(const char *name, void (*cb)(void *arg, int rc), void *arg);

/* Delete every bdev (at shutdown), virtual ones before their bases; cb runs when done. */
void mimo_bdev_delete_all(void (*cb)(void *arg), void *arg);

#ifdef __cplusplus
}
#endif

#endif /* MIMO_BDEV_H */
