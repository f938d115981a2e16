/*
 * null: a bdev that discards writes and reads zeroes; for testing the layers above. A read
 * into buffers that are the submitter's own memory (a vhost guest's: the descriptor says so,
 * mimo_bdev_desc_set_private_buffers) leaves them as they were, as SPDK's null bdev does with
 * every buffer it is given - what is in them is the reader's own, and zeroing 128 KiB costs
 * more than the rest of the request. Other buffers (a pool that served another client) are
 * zeroed, so nothing of one client reaches another.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "bdev_null.h"
#include "compiler.h"
#include "uuid.h"

struct null_disk {
	struct mimo_bdev bdev;
};

struct mimo_bdev_module g_null_module = { .name = "null" };

MIMO_EXPORT void mimo_register_bdev_null(void)
{
	mimo_bdev_module_register(&g_null_module);
	bdev_null_rpc_register();
}

static pthread_once_t g_device_once = PTHREAD_ONCE_INIT;

static void register_device(void)
{
	mimo_io_device_register(&g_null_module, NULL, NULL, 0, "null");
}

static void null_submit(struct mimo_io_channel *ch, struct mimo_bdev_io *io)
{
	(void)ch;
	if (io->type == MIMO_BDEV_IO_READ && !io->private_bufs) {
		for (int i = 0; i < io->iovcnt; i++)
			memset(io->iovs[i].iov_base, 0, io->iovs[i].iov_len);
	}
	mimo_bdev_io_complete(io, 0);
}

static bool null_io_type_supported(void *ctx, enum mimo_bdev_io_type type)
{
	(void)ctx;
	(void)type;
	return true;
}

static struct mimo_io_channel *null_get_io_channel(void *ctx)
{
	(void)ctx;
	return mimo_get_io_channel(&g_null_module);
}

static int null_destruct(void *ctx)
{
	struct null_disk *d = ctx;

	free(d->bdev.name);
	free(d);
	return 0;
}

static void null_write_config(struct mimo_bdev *bdev, json_t *config)
{
	char uuid[MIMO_UUID_STR_LEN];

	mimo_uuid_format(bdev->uuid, uuid);
	json_array_append_new(config, json_pack("{s:s, s:{s:s, s:I, s:i, s:s}}", "method",
						"bdev_null_create", "params", "name", bdev->name,
						"num_blocks", (json_int_t)bdev->blockcnt,
						"block_size", (int)bdev->blocklen, "uuid", uuid));
}

static const struct mimo_bdev_fn_table null_fn_table = {
	.destruct = null_destruct,
	.submit_request = null_submit,
	.io_type_supported = null_io_type_supported,
	.get_io_channel = null_get_io_channel,
	.write_config_json = null_write_config,
};

/* SPDK's bdev_null_resize: the size in MiB, never smaller than it is (in whole MiB). */
int bdev_null_resize(const char *name, uint64_t new_size_mib)
{
	struct mimo_bdev *bdev = mimo_bdev_get_by_name(name);
	uint64_t cur_mib;

	if (bdev == NULL)
		return -ENODEV;
	if (bdev->module != &g_null_module)
		return -EINVAL;
	cur_mib = mimo_bdev_get_num_blocks(bdev) * bdev->blocklen / (1024 * 1024);
	if (new_size_mib < cur_mib || new_size_mib > MIMO_BDEV_MAX_BYTES / (1024 * 1024))
		return -EINVAL;
	return mimo_bdev_notify_blockcnt_change(bdev, new_size_mib * 1024 * 1024 / bdev->blocklen);
}

int bdev_null_create(const char *name, uint64_t num_blocks, uint32_t block_size,
		     const uint8_t *uuid, struct mimo_bdev **out)
{
	struct null_disk *d;
	int rc;

	if (name == NULL || !mimo_bdev_block_size_ok(block_size) || num_blocks == 0)
		return -EINVAL;
	pthread_once(&g_device_once, register_device);
	d = calloc(1, sizeof(*d));
	if (d == NULL)
		return -ENOMEM;
	d->bdev.name = strdup(name);
	d->bdev.product_name = "Null disk";
	d->bdev.blocklen = block_size;
	d->bdev.blockcnt = num_blocks;
	if (uuid != NULL)
		memcpy(d->bdev.uuid, uuid, 16);
	d->bdev.ctxt = d;
	d->bdev.fn_table = &null_fn_table;
	d->bdev.module = &g_null_module;
	rc = d->bdev.name != NULL ? mimo_bdev_register(&d->bdev) : -ENOMEM;
	if (rc != 0) {
		free(d->bdev.name);
		free(d);
		return rc;
	}
	*out = &d->bdev;
	return 0;
}
