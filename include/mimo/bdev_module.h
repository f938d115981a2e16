/*
 * mimo/bdev_module.h - how a block device module (malloc, null, aio, error...) plugs into the
 * bdev layer. A module embeds struct mimo_bdev in its own disk structure, fills the public
 * fields and registers it; the layer calls submit_request on the submitting reactor with the
 * module's channel, and the module completes each I/O with mimo_bdev_io_complete() on that
 * same reactor, at once or later.
 *
 * Errors: 0 or a negative errno. JSON: the json_t * a callback receives belongs to the layer;
 * the module adds to it and keeps no reference.
 */
#ifndef MIMO_BDEV_MODULE_H
#define MIMO_BDEV_MODULE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/uio.h>

#include "mimo/bdev.h"
#include "mimo/reactor.h"

#ifdef __cplusplus
extern "C" {
#endif

struct mimo_bdev_module {
	const char *name;
	/* Bytes of per-I/O context the module needs (mimo_bdev_io_driver_ctx). */
	size_t ctx_size;
	/* A bdev this module claims may still be deleted (SPDK's hot removal): the module's
	 * descriptor gets MIMO_BDEV_EVENT_REMOVE and must release the claim and close it, as
	 * split, passthru, delay and raid do when their base goes. false: the deletion of a bdev
	 * it claims is refused (-EBUSY), as the error module wants. */
	bool claims_removable;
	TAILQ_ENTRY(mimo_bdev_module) link;
};

/*
 * Add a module to the layer, before any bdev of it is registered: from the module's
 * mimo_register_bdev_<name>(), which also registers its RPC methods and which programs call
 * (mimo/jsonrpc.h, "Registration"). Registering a module again does nothing.
 */
void mimo_bdev_module_register(struct mimo_bdev_module *module);

struct mimo_bdev_fn_table {
	/* Free the module's disk. Return 0 when done, or 1 and call mimo_bdev_destruct_done()
	 * later. Runs on the reactor that deleted the bdev, after every channel is gone. */
	int (*destruct)(void *ctx);
	void (*submit_request)(struct mimo_io_channel *ch, struct mimo_bdev_io *io);
	bool (*io_type_supported)(void *ctx, enum mimo_bdev_io_type type);
	/* The module's channel for this disk on the calling reactor. */
	struct mimo_io_channel *(*get_io_channel)(void *ctx);
	/* Optional: fill bdev_get_bdevs' driver_specific object. */
	void (*dump_info_json)(void *ctx, json_t *driver_specific);
	/* Optional: append the {method, params} that re-create this disk (save_config). */
	void (*write_config_json)(struct mimo_bdev *bdev, json_t *config);
	/* Optional: the address of len bytes at byte offset off of a disk held in memory, for
	 * zero-copy reads and writes (mimo_bdev_zcopy_read_blocks, mimo_bdev_zcopy_write_start):
	 * valid until destruct, read from and written to directly, without the module hearing of
	 * it. Only a module whose every write is a plain store into that memory may give it: one
	 * that must see each write (to fail it, delay it, mirror it) leaves this NULL, and the
	 * layer refuses zero-copy with -ENOTSUP. */
	void *(*zcopy_addr)(void *ctx, uint64_t off, uint64_t len);
};

/* The largest size a bdev may have, in bytes: sizes are signed 64-bit where they leave mimo
 * (off_t for the FUSE export, JSON numbers for most clients). */
#define MIMO_BDEV_MAX_BYTES ((uint64_t)INT64_MAX)

/* The block sizes a bdev may have, as SPDK's: a multiple of 512, from 512 to 64 KiB. */
static inline bool mimo_bdev_block_size_ok(uint32_t bs)
{
	return bs >= 512 && bs % 512 == 0 && bs <= 65536;
}

struct bdev_channel;
struct bdev_ext;
struct mimo_bdev_desc;
TAILQ_HEAD(bdev_desc_list, mimo_bdev_desc);
TAILQ_HEAD(bdev_channel_list, bdev_channel);

struct mimo_bdev {
	/* Filled in by the module before mimo_bdev_register. */
	char *name;
	const char *product_name;
	uint32_t blocklen;
	uint64_t blockcnt;
	uint8_t uuid[16];   /* all zero: the layer generates one */
	uint32_t buf_align; /* required data buffer alignment in bytes; 0 or 1 = none */
	void *ctxt;	    /* passed to every fn_table call */
	const struct mimo_bdev_fn_table *fn_table;
	struct mimo_bdev_module *module;

	/* The layer's own state. */
	struct {
		pthread_mutex_t lock; /* descs, claim, status, channels */
		bool removing;
		struct mimo_bdev_module *claim_module;
		struct bdev_desc_list descs;
		struct bdev_channel_list channels;
		struct mimo_bdev_io_stat retired; /* stats of channels that are gone */
		struct bdev_ext *ext;		  /* statistics, histograms, QoS (lib/bdev) */
		char *info_text; /* bdev_get_bdevs' object, serialised; NULL when stale */
		size_t info_len;
		uint64_t info_gen; /* bumped whenever info_text goes stale */
		void (*unregister_cb)(void *arg, int rc);
		void *unregister_arg;
		struct mimo_reactor *unregister_reactor;
		TAILQ_ENTRY(mimo_bdev) link;
	} internal;
};

/* Register a filled-in bdev (on a reactor). Returns 0, -EEXIST (name in use), -EINVAL (no
 * name, no blocks, more than MIMO_BDEV_MAX_BYTES, or a module not registered). */
int mimo_bdev_register(struct mimo_bdev *bdev);
/* For destruct returning 1. */
void mimo_bdev_destruct_done(struct mimo_bdev *bdev, int rc);
/*
 * The module changed the bdev's size (bdev_null_resize, bdev_aio_rescan): the layer takes the
 * new count and tells every open descriptor (MIMO_BDEV_EVENT_RESIZE, on its reactor), as
 * SPDK's spdk_bdev_notify_blockcnt_change. Shrinking a bdev that is open is refused
 * (-EBUSY): its users could have I/O beyond the new end. Returns 0, -EBUSY or -EINVAL (0
 * blocks, or more than MIMO_BDEV_MAX_BYTES).
 */
int mimo_bdev_notify_blockcnt_change(struct mimo_bdev *bdev, uint64_t blockcnt);

/* What dump_info_json writes changed (a delay bdev's latencies, a raid's members): the layer
 * caches bdev_get_bdevs' object of a bdev and builds it again after this. Any thread. */
void mimo_bdev_info_changed(struct mimo_bdev *bdev);

/* Exclusive use by a module (an error bdev over its base): others may still open read-only.
 * Returns 0 or -EPERM when already claimed. */
int mimo_bdev_module_claim_bdev(struct mimo_bdev *bdev, struct mimo_bdev_desc *desc,
				struct mimo_bdev_module *module);
void mimo_bdev_module_release_bdev(struct mimo_bdev *bdev);

/* What a module sees of an I/O. */
struct mimo_bdev_io {
	struct mimo_bdev *bdev;
	enum mimo_bdev_io_type type;
	struct iovec *iovs;
	int iovcnt;
	uint64_t offset_blocks;
	uint64_t num_blocks;

	/* The layer's. */
	struct iovec iov; /* storage for a single-buffer I/O */
	int status;
	mimo_bdev_io_cb cb;
	void *cb_arg;
	uint64_t submit_ticks;
	struct bdev_channel *ch;
	/* Write hooks holding the completion (0: none; else one more for the layer while the
	 * hooks run), and the reactor the completion then goes back to. */
	uint32_t holds; /* __atomic builtins: this header is also C++ */
	struct mimo_reactor *hold_reactor;
	bool zcopy; /* zero-copy: completes without reaching the module */
	/* The buffers are the submitter's own memory (mimo_bdev_desc_set_private_buffers): a
	 * read may leave in them what it does not define. */
	bool private_bufs;
	/* With status -EIO: the NVMe status the module completed with (SCT, SC), for front-ends
	 * that speak NVMe (mimo_bdev_io_complete_nvme_status); 0, 0 when it gave none. */
	uint8_t nvme_sct, nvme_sc;
	STAILQ_ENTRY(mimo_bdev_io)
	link; /* free list, deferred completions; modules may use it
		 while they own the I/O */
	_Alignas(16) char driver_ctx[];
};

/* status: 0 or a negative errno. On the reactor that submitted the I/O. */
void mimo_bdev_io_complete(struct mimo_bdev_io *io, int status);
/* A failure with an NVMe status (SPDK's spdk_bdev_io_complete_nvme_status): NVMe-oF hosts get
 * that status; every other user sees -EIO. */
void mimo_bdev_io_complete_nvme_status(struct mimo_bdev_io *io, uint8_t sct, uint8_t sc);

static inline void *mimo_bdev_io_driver_ctx(struct mimo_bdev_io *io)
{
	return io->driver_ctx;
}

static inline struct mimo_bdev_io *mimo_bdev_io_from_ctx(void *ctx)
{
	return (struct mimo_bdev_io *)((char *)ctx - offsetof(struct mimo_bdev_io, driver_ctx));
}

/* Copy between an I/O's buffers and flat memory (modules that keep data in memory). */
void mimo_iov_to_buf(const struct iovec *iov, int iovcnt, void *buf, size_t len);
void mimo_iov_from_buf(const struct iovec *iov, int iovcnt, const void *buf, size_t len);

/* A name of the form "<prefix><n>" not yet used by any bdev (Malloc0, Malloc1...). */
char *mimo_bdev_unused_name(const char *prefix);
struct mimo_bdev *mimo_bdev_get_by_name(const char *name);

#ifdef __cplusplus
}
#endif

#endif /* MIMO_BDEV_MODULE_H */
