/*
 * passthru: every I/O goes to the base as it came, on the base's own channel (the module has
 * no per-reactor state). The base is claimed; when it is deleted, the passthru bdev is too.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bdev_passthru.h"
#include "compiler.h"
#include "log.h"
#include "uuid.h"
#include "vbdev.h"

#define COMP "passthru"

struct pt_disk {
	struct mimo_bdev bdev;
	struct mimo_bdev *base;
	struct mimo_bdev_desc *base_desc;
};

struct mimo_bdev_module g_passthru_module = { .name = "passthru", .claims_removable = true };

MIMO_EXPORT void mimo_register_bdev_passthru(void)
{
	mimo_bdev_module_register(&g_passthru_module);
	bdev_passthru_rpc_register();
}

static void base_done(struct mimo_bdev_io *child, bool success, void *arg)
{
	struct mimo_bdev_io *io = arg;
	int status = success ? 0 : mimo_bdev_io_get_status(child);

	mimo_bdev_free_io(child);
	mimo_bdev_io_complete(io, status);
}

static void pt_submit(struct mimo_io_channel *ch, struct mimo_bdev_io *io)
{
	struct pt_disk *d = io->bdev->ctxt;
	int rc = vbdev_submit(d->base_desc, ch, io->type, io->iovs, io->iovcnt, io->offset_blocks,
			      io->num_blocks, base_done, io);

	if (rc != 0)
		mimo_bdev_io_complete(io, rc);
}

static bool pt_io_type_supported(void *ctx, enum mimo_bdev_io_type type)
{
	struct pt_disk *d = ctx;

	return mimo_bdev_io_type_supported(d->base, type);
}

static struct mimo_io_channel *pt_get_io_channel(void *ctx)
{
	struct pt_disk *d = ctx;

	return mimo_bdev_get_io_channel(d->base_desc);
}

static int pt_destruct(void *ctx)
{
	struct pt_disk *d = ctx;

	mimo_bdev_module_release_bdev(d->base);
	mimo_bdev_close(d->base_desc);
	free(d->bdev.name);
	free(d);
	return 0;
}

static void pt_dump_info(void *ctx, json_t *driver)
{
	struct pt_disk *d = ctx;

	json_object_set_new(driver, "passthru",
			    json_pack("{s:s, s:s}", "name", d->bdev.name, "base_bdev_name",
				      mimo_bdev_get_name(d->base)));
}

static void pt_write_config(struct mimo_bdev *bdev, json_t *config)
{
	struct pt_disk *d = bdev->ctxt;
	char uuid[MIMO_UUID_STR_LEN];

	mimo_uuid_format(bdev->uuid, uuid);
	json_array_append_new(config, json_pack("{s:s, s:{s:s, s:s, s:s}}", "method",
						"bdev_passthru_create", "params", "base_bdev_name",
						mimo_bdev_get_name(d->base), "name", bdev->name,
						"uuid", uuid));
}

static const struct mimo_bdev_fn_table pt_fn_table = {
	.destruct = pt_destruct,
	.submit_request = pt_submit,
	.io_type_supported = pt_io_type_supported,
	.get_io_channel = pt_get_io_channel,
	.dump_info_json = pt_dump_info,
	.write_config_json = pt_write_config,
};

static void base_event(enum mimo_bdev_event_type type, struct mimo_bdev *bdev, void *ctx)
{
	struct pt_disk *d = ctx;

	(void)bdev;
	if (type == MIMO_BDEV_EVENT_REMOVE)
		vbdev_delete_after_base_removed(d->bdev.name);
}

int bdev_passthru_create(const char *base_name, const char *name, const uint8_t *uuid)
{
	struct pt_disk *d = calloc(1, sizeof(*d));
	int rc;

	if (d == NULL || (d->bdev.name = strdup(name)) == NULL) {
		free(d);
		return -ENOMEM;
	}
	if (mimo_bdev_get_by_name(name) != NULL) {
		free(d->bdev.name);
		free(d);
		return -EEXIST;
	}
	rc = mimo_bdev_open(base_name, true, base_event, d, &d->base_desc);
	if (rc != 0) {
		free(d->bdev.name);
		free(d);
		return rc;
	}
	d->base = mimo_bdev_desc_get_bdev(d->base_desc);
	rc = mimo_bdev_module_claim_bdev(d->base, d->base_desc, &g_passthru_module);
	if (rc == 0) {
		d->bdev.product_name = "passthru";
		d->bdev.blocklen = mimo_bdev_get_block_size(d->base);
		d->bdev.blockcnt = mimo_bdev_get_num_blocks(d->base);
		d->bdev.buf_align = mimo_bdev_get_buf_align(d->base);
		if (uuid != NULL)
			memcpy(d->bdev.uuid, uuid, 16);
		d->bdev.ctxt = d;
		d->bdev.fn_table = &pt_fn_table;
		d->bdev.module = &g_passthru_module;
		rc = mimo_bdev_register(&d->bdev);
		if (rc != 0)
			mimo_bdev_module_release_bdev(d->base);
	}
	if (rc != 0) {
		mimo_bdev_close(d->base_desc);
		free(d->bdev.name);
		free(d);
	}
	return rc;
}
