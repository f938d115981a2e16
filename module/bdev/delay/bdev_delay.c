/*
 * delay: each I/O is passed to the base at once, and its completion held for its latency
 * after the base completed it (SPDK's semantics). Reads and writes get the average latency, or
 * the p99 one for about one in a hundred (chosen when submitted, the value read when the base
 * completes, so bdev_delay_update_latency acts at once); unmap, flush and write-zeroes are not
 * delayed; a reset fails every held I/O (-ECANCELED, SPDK's "aborted") before the base's reset,
 * as SPDK's module does.
 *
 * Held completions wait on their channel's list; a timer poller of the channel's reactor,
 * registered only while the list is not empty, completes those due. Nothing sleeps or spins:
 * an idle reactor with held I/O wakes only for its timer.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bdev_delay.h"
#include "compiler.h"
#include "log.h"
#include "uuid.h"
#include "vbdev.h"

#define COMP "delay"
/* How often a channel with held completions looks for due ones: fine enough for latencies
 * of a millisecond and up, coarse enough that waiting I/O costs little CPU. */
#define POLL_US 100

struct delay_disk {
	struct mimo_bdev bdev;
	struct mimo_bdev *base;
	struct mimo_bdev_desc *base_desc;
	/* Microseconds; bdev_delay_update_latency changes them while I/O runs elsewhere. */
	_Atomic uint64_t latency_us[DELAY_NUM_LATENCIES];
	char io_device; /* the module's io_device (the bdev's address is the layer's) */
};

STAILQ_HEAD(io_list, mimo_bdev_io);

struct delay_channel {
	struct mimo_io_channel *base_ch;
	struct io_list held; /* completions waiting for their time */
	struct mimo_poller *poller;
	unsigned int seed;
};

struct delay_task {
	uint64_t due_us;
	int latency; /* enum delay_latency, or -1: not delayed */
	int status;
	struct delay_channel *ch; /* where it was submitted, and waits */
};

struct mimo_bdev_module g_delay_module = { .name = "delay",
					   .ctx_size = sizeof(struct delay_task),
					   .claims_removable = true };

MIMO_EXPORT void mimo_register_bdev_delay(void)
{
	mimo_bdev_module_register(&g_delay_module);
	bdev_delay_rpc_register();
}

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static struct delay_disk *disk_of_device(void *io_device)
{
	return (struct delay_disk *)((char *)io_device - offsetof(struct delay_disk, io_device));
}

/* Complete the held I/Os that are due; the poller goes when none is left. */
static int release_due(void *arg)
{
	struct delay_channel *ch = arg;
	struct io_list due = STAILQ_HEAD_INITIALIZER(due);
	struct mimo_bdev_io *io, *next;
	uint64_t now = now_us();
	int n = 0;

	/* Take the due ones off first: a completion may submit again and append to held. */
	for (io = STAILQ_FIRST(&ch->held); io != NULL; io = next) {
		struct delay_task *t = mimo_bdev_io_driver_ctx(io);

		next = STAILQ_NEXT(io, link);
		if (t->due_us <= now) {
			STAILQ_REMOVE(&ch->held, io, mimo_bdev_io, link);
			STAILQ_INSERT_TAIL(&due, io, link);
		}
	}
	if (STAILQ_EMPTY(&ch->held))
		mimo_poller_unregister(&ch->poller);
	while ((io = STAILQ_FIRST(&due)) != NULL) {
		struct delay_task *t = mimo_bdev_io_driver_ctx(io);

		STAILQ_REMOVE_HEAD(&due, link);
		mimo_bdev_io_complete(io, t->status);
		n++;
	}
	return n;
}

static void base_done(struct mimo_bdev_io *child, bool success, void *arg)
{
	struct mimo_bdev_io *io = arg;
	struct delay_task *t = mimo_bdev_io_driver_ctx(io);
	struct delay_channel *ch = t->ch;

	t->status = success ? 0 : mimo_bdev_io_get_status(child);
	mimo_bdev_free_io(child);
	t->due_us = now_us();
	if (t->latency >= 0)
		t->due_us +=
			atomic_load(&((struct delay_disk *)io->bdev->ctxt)->latency_us[t->latency]);
	if (t->due_us <= now_us()) {
		mimo_bdev_io_complete(io, t->status);
		return;
	}
	STAILQ_INSERT_TAIL(&ch->held, io, link);
	if (ch->poller == NULL)
		ch->poller = mimo_poller_register(release_due, ch, POLL_US);
	if (ch->poller == NULL) {
		/* No memory for the timer: better early than never. */
		STAILQ_REMOVE(&ch->held, io, mimo_bdev_io, link);
		mimo_bdev_io_complete(io, t->status);
	}
}

/* Which latency an I/O gets (-1: none). */
static int latency_of(struct delay_channel *ch, enum mimo_bdev_io_type type)
{
	bool p99 = rand_r(&ch->seed) % 100 == 0;

	if (type == MIMO_BDEV_IO_READ)
		return p99 ? DELAY_P99_READ : DELAY_AVG_READ;
	if (type == MIMO_BDEV_IO_WRITE)
		return p99 ? DELAY_P99_WRITE : DELAY_AVG_WRITE;
	return -1;
}

/* A reset: every channel's held I/O fails first, then the base is reset. */
static int abort_held(struct mimo_io_channel *ioch, void *arg)
{
	struct delay_channel *ch = mimo_io_channel_get_ctx(ioch);
	struct mimo_bdev_io *io;

	(void)arg;
	while ((io = STAILQ_FIRST(&ch->held)) != NULL) {
		STAILQ_REMOVE_HEAD(&ch->held, link);
		mimo_bdev_io_complete(io, -ECANCELED);
	}
	mimo_poller_unregister(&ch->poller);
	return 0;
}

static void reset_base(void *arg, int status)
{
	struct mimo_bdev_io *io = arg;
	struct delay_task *t = mimo_bdev_io_driver_ctx(io);
	struct delay_disk *d = io->bdev->ctxt;
	int rc;

	(void)status;
	rc = mimo_bdev_reset(d->base_desc, t->ch->base_ch, base_done, io);
	if (rc != 0)
		mimo_bdev_io_complete(io, rc);
}

static void delay_submit(struct mimo_io_channel *ioch, struct mimo_bdev_io *io)
{
	struct delay_channel *ch = mimo_io_channel_get_ctx(ioch);
	struct delay_disk *d = io->bdev->ctxt;
	struct delay_task *t = mimo_bdev_io_driver_ctx(io);
	int rc;

	t->latency = latency_of(ch, io->type);
	t->status = 0;
	t->ch = ch;
	if (io->type == MIMO_BDEV_IO_RESET) {
		rc = mimo_for_each_channel(&d->io_device, abort_held, io, reset_base);
		/* Scheduled; without memory for that, the reset goes at once. */
		if (rc != 0)
			reset_base(io, 0);
		return;
	}
	rc = vbdev_submit(d->base_desc, ch->base_ch, io->type, io->iovs, io->iovcnt,
			  io->offset_blocks, io->num_blocks, base_done, io);
	if (rc != 0)
		mimo_bdev_io_complete(io, rc);
}

static bool delay_io_type_supported(void *ctx, enum mimo_bdev_io_type type)
{
	struct delay_disk *d = ctx;

	return mimo_bdev_io_type_supported(d->base, type);
}

static int channel_create(void *io_device, void *ctx)
{
	struct delay_disk *d = disk_of_device(io_device);
	struct delay_channel *ch = ctx;

	STAILQ_INIT(&ch->held);
	ch->seed = (unsigned int)now_us();
	ch->base_ch = mimo_bdev_get_io_channel(d->base_desc);
	return ch->base_ch != NULL ? 0 : -ENOMEM;
}

static void channel_destroy(void *io_device, void *ctx)
{
	struct delay_channel *ch = ctx;
	struct mimo_bdev_io *io;

	(void)io_device;
	/* The layer destroys a channel with nothing outstanding; complete any stragglers. */
	while ((io = STAILQ_FIRST(&ch->held)) != NULL) {
		struct delay_task *t = mimo_bdev_io_driver_ctx(io);

		STAILQ_REMOVE_HEAD(&ch->held, link);
		mimo_bdev_io_complete(io, t->status);
	}
	mimo_poller_unregister(&ch->poller);
	mimo_put_io_channel(ch->base_ch);
}

static struct mimo_io_channel *delay_get_io_channel(void *ctx)
{
	struct delay_disk *d = ctx;

	return mimo_get_io_channel(&d->io_device);
}

static void delay_unregistered(void *arg)
{
	struct delay_disk *d = arg;

	mimo_bdev_module_release_bdev(d->base);
	mimo_bdev_close(d->base_desc);
	free(d->bdev.name);
	free(d);
}

static int delay_destruct(void *ctx)
{
	struct delay_disk *d = ctx;

	mimo_io_device_unregister(&d->io_device, delay_unregistered, d);
	return 0;
}

static json_t *conf_values(struct delay_disk *d)
{
	char uuid[MIMO_UUID_STR_LEN];

	mimo_uuid_format(d->bdev.uuid, uuid);
	return json_pack(
		"{s:s, s:s, s:s, s:I, s:I, s:I, s:I}", "name", d->bdev.name, "base_bdev_name",
		mimo_bdev_get_name(d->base), "uuid", uuid, "avg_read_latency",
		(json_int_t)atomic_load(&d->latency_us[DELAY_AVG_READ]), "p99_read_latency",
		(json_int_t)atomic_load(&d->latency_us[DELAY_P99_READ]), "avg_write_latency",
		(json_int_t)atomic_load(&d->latency_us[DELAY_AVG_WRITE]), "p99_write_latency",
		(json_int_t)atomic_load(&d->latency_us[DELAY_P99_WRITE]));
}

static void delay_dump_info(void *ctx, json_t *driver)
{
	json_object_set_new(driver, "delay", conf_values(ctx));
}

static void delay_write_config(struct mimo_bdev *bdev, json_t *config)
{
	json_array_append_new(config, json_pack("{s:s, s:o}", "method", "bdev_delay_create",
						"params", conf_values(bdev->ctxt)));
}

static const struct mimo_bdev_fn_table delay_fn_table = {
	.destruct = delay_destruct,
	.submit_request = delay_submit,
	.io_type_supported = delay_io_type_supported,
	.get_io_channel = delay_get_io_channel,
	.dump_info_json = delay_dump_info,
	.write_config_json = delay_write_config,
};

static void base_event(enum mimo_bdev_event_type type, struct mimo_bdev *bdev, void *ctx)
{
	struct delay_disk *d = ctx;

	(void)bdev;
	if (type == MIMO_BDEV_EVENT_REMOVE)
		vbdev_delete_after_base_removed(d->bdev.name);
}

int bdev_delay_create(const char *base_name, const char *name, const uint8_t *uuid,
		      const uint64_t latency_us[DELAY_NUM_LATENCIES])
{
	struct delay_disk *d;
	int rc;

	if (latency_us[DELAY_P99_READ] < latency_us[DELAY_AVG_READ] ||
	    latency_us[DELAY_P99_WRITE] < latency_us[DELAY_AVG_WRITE])
		return -EINVAL;
	if (mimo_bdev_get_by_name(name) != NULL)
		return -EEXIST;
	d = calloc(1, sizeof(*d));
	if (d == NULL || (d->bdev.name = strdup(name)) == NULL) {
		free(d);
		return -ENOMEM;
	}
	for (int i = 0; i < DELAY_NUM_LATENCIES; i++)
		atomic_init(&d->latency_us[i], latency_us[i]);
	rc = mimo_bdev_open(base_name, true, base_event, d, &d->base_desc);
	if (rc != 0) {
		free(d->bdev.name);
		free(d);
		return rc;
	}
	d->base = mimo_bdev_desc_get_bdev(d->base_desc);
	rc = mimo_bdev_module_claim_bdev(d->base, d->base_desc, &g_delay_module);
	if (rc != 0) {
		mimo_bdev_close(d->base_desc);
		free(d->bdev.name);
		free(d);
		return rc;
	}
	d->bdev.product_name = "delay";
	d->bdev.blocklen = mimo_bdev_get_block_size(d->base);
	d->bdev.blockcnt = mimo_bdev_get_num_blocks(d->base);
	d->bdev.buf_align = mimo_bdev_get_buf_align(d->base);
	if (uuid != NULL)
		memcpy(d->bdev.uuid, uuid, 16);
	d->bdev.ctxt = d;
	d->bdev.fn_table = &delay_fn_table;
	d->bdev.module = &g_delay_module;
	mimo_io_device_register(&d->io_device, channel_create, channel_destroy,
				sizeof(struct delay_channel), name);
	rc = mimo_bdev_register(&d->bdev);
	if (rc != 0) {
		mimo_io_device_unregister(&d->io_device, NULL, NULL);
		mimo_bdev_module_release_bdev(d->base);
		mimo_bdev_close(d->base_desc);
		free(d->bdev.name);
		free(d);
	}
	return rc;
}

int bdev_delay_update_latency(const char *name, enum delay_latency which, uint64_t us)
{
	struct mimo_bdev *bdev = mimo_bdev_get_by_name(name);
	struct delay_disk *d;

	if (bdev == NULL || bdev->module != &g_delay_module)
		return -ENODEV;
	d = bdev->ctxt;
	atomic_store(&d->latency_us[which], us);
	mimo_bdev_info_changed(bdev);
	return 0;
}
