/*
 * error: a virtual bdev "EE_<base>" over a base bdev (which it claims), passing I/O through
 * except where bdev_error_inject_error says otherwise: fail it (-EIO), fail it for lack of
 * memory (-ENOMEM), hold it without completing (pending: failed by a reset, or sent on by
 * bdev_error_resume_pending), or corrupt
 * its data. Each injection covers the next `num` I/Os of a type, counted across reactors.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "bdev_error.h"
#include "compiler.h"
#include "log.h"
#include "uuid.h"

#define COMP "error"

struct injection {
	_Atomic int type; /* enum error_inject_type */
	_Atomic uint32_t remaining;
	_Atomic uint64_t corrupt_offset;
	_Atomic uint8_t corrupt_value;
	_Atomic uint64_t queue_depth; /* only while this many I/Os are at the base (SPDK's) */
	_Atomic uint16_t nvme_status; /* nvme_failure's SCT << 8 | SC */
};

struct error_disk {
	struct mimo_bdev bdev;
	struct mimo_bdev *base;
	struct mimo_bdev_desc *base_desc;
	struct injection inj[MIMO_BDEV_IO_NUM_TYPES];
	/* The module's io_device: not the disk's address, which is the bdev's, and the bdev
	 * layer registers that one for its own channels. */
	char io_device;
};

STAILQ_HEAD(io_list, mimo_bdev_io);

struct error_channel {
	struct mimo_io_channel *base_ch;
	struct io_list pending; /* held by a "pending" injection until a reset */
	uint64_t inflight;	/* I/Os of this channel at the base */
};

struct error_task {
	struct error_channel *ch;
	void *bounce; /* corrupted copy of a write's data */
	struct iovec bounce_iov;
	uint64_t corrupt_offset;
	uint8_t corrupt_value;
	bool corrupt_read;
	uint16_t nvme_status;
};

struct mimo_bdev_module g_error_module = { .name = "error", .ctx_size = sizeof(struct error_task) };

MIMO_EXPORT void mimo_register_bdev_error(void)
{
	mimo_bdev_module_register(&g_error_module);
	bdev_error_rpc_register();
}

/* Take one injection for this I/O type, if any is left and the channel has at least the
 * injection's queue depth at the base. */
static enum error_inject_type take(struct error_disk *d, struct error_channel *ch,
				   enum mimo_bdev_io_type type, struct error_task *t)
{
	struct injection *inj = &d->inj[type];
	uint32_t left = atomic_load(&inj->remaining);

	if (left > 0 && ch->inflight < atomic_load(&inj->queue_depth))
		return ERROR_INJECT_NONE;
	while (left > 0) {
		if (atomic_compare_exchange_weak(&inj->remaining, &left, left - 1)) {
			t->corrupt_offset = atomic_load(&inj->corrupt_offset);
			t->corrupt_value = atomic_load(&inj->corrupt_value);
			t->nvme_status = atomic_load(&inj->nvme_status);
			return atomic_load(&inj->type);
		}
	}
	return ERROR_INJECT_NONE;
}

static void corrupt(struct iovec *iov, int iovcnt, uint64_t off, uint8_t value)
{
	for (int i = 0; i < iovcnt; i++) {
		if (off < iov[i].iov_len) {
			((uint8_t *)iov[i].iov_base)[off] ^= value;
			return;
		}
		off -= iov[i].iov_len;
	}
}

static void base_done(struct mimo_bdev_io *child, bool success, void *arg)
{
	struct mimo_bdev_io *io = arg;
	struct error_task *t = mimo_bdev_io_driver_ctx(io);
	int status = success ? 0 : mimo_bdev_io_get_status(child);

	t->ch->inflight--;
	mimo_bdev_free_io(child);
	if (status == 0 && t->corrupt_read)
		corrupt(io->iovs, io->iovcnt, t->corrupt_offset, t->corrupt_value);
	free(t->bounce);
	t->bounce = NULL;
	mimo_bdev_io_complete(io, status);
}

static void pass_through(struct error_disk *d, struct error_channel *ch, struct mimo_bdev_io *io)
{
	struct error_task *t = mimo_bdev_io_driver_ctx(io);
	struct iovec *iov = t->bounce != NULL ? &t->bounce_iov : io->iovs;
	int iovcnt = t->bounce != NULL ? 1 : io->iovcnt;
	uint64_t off = io->offset_blocks, num = io->num_blocks;
	int rc;

	/* Counted before the submission: base_done may run before it returns. */
	t->ch = ch;
	ch->inflight++;
	switch (io->type) {
	case MIMO_BDEV_IO_READ:
		rc = mimo_bdev_readv_blocks(d->base_desc, ch->base_ch, iov, iovcnt, off, num,
					    base_done, io);
		break;
	case MIMO_BDEV_IO_WRITE:
		rc = mimo_bdev_writev_blocks(d->base_desc, ch->base_ch, iov, iovcnt, off, num,
					     base_done, io);
		break;
	case MIMO_BDEV_IO_UNMAP:
		rc = mimo_bdev_unmap_blocks(d->base_desc, ch->base_ch, off, num, base_done, io);
		break;
	case MIMO_BDEV_IO_WRITE_ZEROES:
		rc = mimo_bdev_write_zeroes_blocks(d->base_desc, ch->base_ch, off, num, base_done,
						   io);
		break;
	case MIMO_BDEV_IO_FLUSH:
		rc = mimo_bdev_flush_blocks(d->base_desc, ch->base_ch, off, num, base_done, io);
		break;
	case MIMO_BDEV_IO_RESET:
		rc = mimo_bdev_reset(d->base_desc, ch->base_ch, base_done, io);
		break;
	default:
		rc = -ENOTSUP;
		break;
	}
	if (rc != 0) {
		ch->inflight--;
		free(t->bounce);
		t->bounce = NULL;
		mimo_bdev_io_complete(io, rc);
	}
}

static void error_submit(struct mimo_io_channel *ioch, struct mimo_bdev_io *io)
{
	struct error_channel *ch = mimo_io_channel_get_ctx(ioch);
	struct error_disk *d = io->bdev->ctxt;
	struct error_task *t = mimo_bdev_io_driver_ctx(io);
	struct mimo_bdev_io *held;

	memset(t, 0, sizeof(*t));
	if (io->type == MIMO_BDEV_IO_RESET) {
		/* A reset releases the I/Os a "pending" injection holds: they fail. */
		while ((held = STAILQ_FIRST(&ch->pending)) != NULL) {
			STAILQ_REMOVE_HEAD(&ch->pending, link);
			mimo_bdev_io_complete(held, -EIO);
		}
	}
	switch (take(d, ch, io->type, t)) {
	case ERROR_INJECT_FAILURE:
		mimo_bdev_io_complete(io, -EIO);
		return;
	case ERROR_INJECT_NOMEM:
		mimo_bdev_io_complete(io, -ENOMEM);
		return;
	case ERROR_INJECT_NVME_FAILURE:
		mimo_bdev_io_complete_nvme_status(io, (uint8_t)(t->nvme_status >> 8),
						  (uint8_t)t->nvme_status);
		return;
	case ERROR_INJECT_PENDING:
		STAILQ_INSERT_TAIL(&ch->pending, io, link);
		return;
	case ERROR_INJECT_CORRUPT_DATA:
		if (io->type == MIMO_BDEV_IO_READ) {
			t->corrupt_read = true;
		} else if (io->type == MIMO_BDEV_IO_WRITE) {
			size_t len = io->num_blocks * d->bdev.blocklen;

			/* Corrupt a copy: the caller's buffer stays as it was. */
			t->bounce = malloc(len);
			if (t->bounce == NULL) {
				mimo_bdev_io_complete(io, -ENOMEM);
				return;
			}
			mimo_iov_to_buf(io->iovs, io->iovcnt, t->bounce, len);
			t->bounce_iov.iov_base = t->bounce;
			t->bounce_iov.iov_len = len;
			corrupt(&t->bounce_iov, 1, t->corrupt_offset, t->corrupt_value);
		}
		break;
	default:
		break;
	}
	pass_through(d, ch, io);
}

/* On each channel's reactor: send what it holds on, as if it had just arrived (SPDK's
 * resume; the pending injections are cleared first, so they pass through, unless another
 * kind of injection for their type is armed). */
static int resume_channel(struct mimo_io_channel *ioch, void *arg)
{
	struct error_channel *ch = mimo_io_channel_get_ctx(ioch);
	struct io_list held = ch->pending;
	struct mimo_bdev_io *io;

	(void)arg;
	if (STAILQ_EMPTY(&held))
		return 0;
	STAILQ_INIT(&ch->pending);
	while ((io = STAILQ_FIRST(&held)) != NULL) {
		STAILQ_REMOVE_HEAD(&held, link);
		error_submit(ioch, io);
	}
	return 0;
}

int bdev_error_resume_pending(const char *name, void (*done)(void *arg, int status), void *arg)
{
	struct mimo_bdev *bdev = mimo_bdev_get_by_name(name);
	struct error_disk *d;

	if (bdev == NULL || bdev->module != &g_error_module)
		return -ENODEV;
	d = bdev->ctxt;
	for (int t = 0; t < MIMO_BDEV_IO_NUM_TYPES; t++) {
		if (atomic_load(&d->inj[t].type) == ERROR_INJECT_PENDING)
			atomic_store(&d->inj[t].remaining, 0);
	}
	return mimo_for_each_channel(&d->io_device, resume_channel, arg, done);
}

static bool error_io_type_supported(void *ctx, enum mimo_bdev_io_type type)
{
	struct error_disk *d = ctx;

	return mimo_bdev_io_type_supported(d->base, type);
}

static int channel_create(void *io_device, void *ctx)
{
	struct error_disk *d =
		(struct error_disk *)((char *)io_device - offsetof(struct error_disk, io_device));
	struct error_channel *ch = ctx;

	STAILQ_INIT(&ch->pending);
	ch->base_ch = mimo_bdev_get_io_channel(d->base_desc);
	return ch->base_ch != NULL ? 0 : -ENOMEM;
}

static void channel_destroy(void *io_device, void *ctx)
{
	struct error_channel *ch = ctx;
	struct mimo_bdev_io *held;

	(void)io_device;
	while ((held = STAILQ_FIRST(&ch->pending)) != NULL) {
		STAILQ_REMOVE_HEAD(&ch->pending, link);
		mimo_bdev_io_complete(held, -EIO);
	}
	mimo_put_io_channel(ch->base_ch);
}

static struct mimo_io_channel *error_get_io_channel(void *ctx)
{
	struct error_disk *d = ctx;

	return mimo_get_io_channel(&d->io_device);
}

static void error_unregistered(void *arg)
{
	struct error_disk *d = arg;

	mimo_bdev_module_release_bdev(d->base);
	mimo_bdev_close(d->base_desc);
	free(d->bdev.name);
	free(d);
}

static int error_destruct(void *ctx)
{
	struct error_disk *d = ctx;

	/* The base channels go with ours; then the base is released and closed. */
	mimo_io_device_unregister(&d->io_device, error_unregistered, d);
	return 0;
}

static void error_dump_info(void *ctx, json_t *driver)
{
	struct error_disk *d = ctx;

	json_object_set_new(driver, "error",
			    json_pack("{s:s}", "base_bdev", mimo_bdev_get_name(d->base)));
}

static void error_write_config(struct mimo_bdev *bdev, json_t *config)
{
	struct error_disk *d = bdev->ctxt;
	char uuid[MIMO_UUID_STR_LEN];

	mimo_uuid_format(bdev->uuid, uuid);
	json_array_append_new(config, json_pack("{s:s, s:{s:s, s:s}}", "method",
						"bdev_error_create", "params", "base_name",
						mimo_bdev_get_name(d->base), "uuid", uuid));
}

static const struct mimo_bdev_fn_table error_fn_table = {
	.destruct = error_destruct,
	.submit_request = error_submit,
	.io_type_supported = error_io_type_supported,
	.get_io_channel = error_get_io_channel,
	.dump_info_json = error_dump_info,
	.write_config_json = error_write_config,
};

static void base_event(enum mimo_bdev_event_type type, struct mimo_bdev *bdev, void *ctx)
{
	/* The base is claimed, so it cannot be deleted under us. A resize of the base leaves
	 * EE_<base> at its size, as SPDK's error bdev (a part of fixed size). */
	(void)ctx;
	if (type == MIMO_BDEV_EVENT_RESIZE)
		return;
	MIMO_WARN(COMP, "unexpected event for base bdev %s", mimo_bdev_get_name(bdev));
}

int bdev_error_create(const char *base_name, const uint8_t *uuid, struct mimo_bdev **out)
{
	struct error_disk *d = calloc(1, sizeof(*d));
	size_t n;
	int rc;

	if (d == NULL)
		return -ENOMEM;
	rc = mimo_bdev_open(base_name, true, base_event, d, &d->base_desc);
	if (rc != 0) {
		free(d);
		return rc;
	}
	d->base = mimo_bdev_desc_get_bdev(d->base_desc);
	rc = mimo_bdev_module_claim_bdev(d->base, d->base_desc, &g_error_module);
	if (rc != 0) {
		mimo_bdev_close(d->base_desc);
		free(d);
		return rc;
	}
	n = strlen(base_name) + 4;
	d->bdev.name = malloc(n);
	if (d->bdev.name != NULL)
		snprintf(d->bdev.name, n, "EE_%s", base_name);
	d->bdev.product_name = "Error disk";
	d->bdev.blocklen = mimo_bdev_get_block_size(d->base);
	d->bdev.blockcnt = mimo_bdev_get_num_blocks(d->base);
	d->bdev.buf_align = mimo_bdev_get_buf_align(d->base);
	if (uuid != NULL)
		memcpy(d->bdev.uuid, uuid, 16);
	d->bdev.ctxt = d;
	d->bdev.fn_table = &error_fn_table;
	d->bdev.module = &g_error_module;
	mimo_io_device_register(&d->io_device, channel_create, channel_destroy,
				sizeof(struct error_channel), base_name);
	rc = d->bdev.name != NULL ? mimo_bdev_register(&d->bdev) : -ENOMEM;
	if (rc != 0) {
		mimo_io_device_unregister(&d->io_device, NULL, NULL);
		mimo_bdev_module_release_bdev(d->base);
		mimo_bdev_close(d->base_desc);
		free(d->bdev.name);
		free(d);
		return rc;
	}
	*out = &d->bdev;
	return 0;
}

int bdev_error_inject(const char *name, int io_type, enum error_inject_type type, uint32_t num,
		      uint64_t corrupt_offset, uint8_t corrupt_value)
{
	return bdev_error_inject_at_depth(name, io_type, type, num, corrupt_offset, corrupt_value,
					  0);
}

static int inject(const char *name, int io_type, enum error_inject_type type, uint32_t num,
		  uint64_t corrupt_offset, uint8_t corrupt_value, uint64_t queue_depth,
		  uint16_t nvme_status)
{
	struct mimo_bdev *bdev = mimo_bdev_get_by_name(name);
	struct error_disk *d;

	if (bdev == NULL || bdev->module != &g_error_module)
		return -ENODEV;
	d = bdev->ctxt;
	for (int t = 0; t < MIMO_BDEV_IO_NUM_TYPES; t++) {
		struct injection *inj = &d->inj[t];

		if (io_type >= 0 && t != io_type)
			continue;
		/* Count last: another reactor must not take an injection before it is whole. */
		atomic_store(&inj->remaining, 0);
		atomic_store(&inj->type, type);
		atomic_store(&inj->corrupt_offset, corrupt_offset);
		atomic_store(&inj->corrupt_value, corrupt_value);
		atomic_store(&inj->queue_depth, queue_depth);
		atomic_store(&inj->nvme_status, nvme_status);
		atomic_store(&inj->remaining, type == ERROR_INJECT_NONE ? 0 : num);
	}
	return 0;
}

int bdev_error_inject_at_depth(const char *name, int io_type, enum error_inject_type type,
			       uint32_t num, uint64_t corrupt_offset, uint8_t corrupt_value,
			       uint64_t queue_depth)
{
	return inject(name, io_type, type, num, corrupt_offset, corrupt_value, queue_depth, 0);
}

int bdev_error_inject_nvme(const char *name, int io_type, uint32_t num, uint64_t queue_depth,
			   uint8_t sct, uint8_t sc)
{
	return inject(name, io_type, ERROR_INJECT_NVME_FAILURE, num, 0, 0, queue_depth,
		      (uint16_t)(sct << 8 | sc));
}
