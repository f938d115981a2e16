/*
 * The bdev layer: the registry of block devices, descriptors, per-reactor channels, I/O
 * submission and completion, statistics, claims, deletion.
 *
 * The registry and each bdev's descriptor and channel lists are guarded by mutexes, taken
 * when bdevs, descriptors and channels come and go - never per I/O. On the I/O path a channel
 * is touched only by its reactor; its counters are written by that reactor alone (relaxed
 * atomics, so that other threads may read them for bdev_get_iostat).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bdev_internal.h"
#include "bdev_rpc.h"
#include "buf.h"
#include "compiler.h"
#include "log.h"
#include "mimo/bdev_module.h"
#include "mimo/events.h"
#include "ticks.h"
#include "uuid.h"

#define COMP "bdev"

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static TAILQ_HEAD(bdev_list, mimo_bdev) g_bdevs = TAILQ_HEAD_INITIALIZER(g_bdevs);
static TAILQ_HEAD(, mimo_bdev_module) g_modules = TAILQ_HEAD_INITIALIZER(g_modules);
static size_t g_io_ctx_size;

static const char *const g_io_type_names[MIMO_BDEV_IO_NUM_TYPES] = {
	[MIMO_BDEV_IO_READ] = "read",	[MIMO_BDEV_IO_WRITE] = "write",
	[MIMO_BDEV_IO_UNMAP] = "unmap", [MIMO_BDEV_IO_FLUSH] = "flush",
	[MIMO_BDEV_IO_RESET] = "reset", [MIMO_BDEV_IO_WRITE_ZEROES] = "write_zeroes",
};

MIMO_EXPORT const char *mimo_bdev_io_type_name(enum mimo_bdev_io_type type)
{
	return type < MIMO_BDEV_IO_NUM_TYPES ? g_io_type_names[type] : "unknown";
}

static bool module_registered_locked(const struct mimo_bdev_module *module)
{
	const struct mimo_bdev_module *m;

	TAILQ_FOREACH(m, &g_modules, link)
	{
		if (m == module)
			return true;
	}
	return false;
}

MIMO_EXPORT void mimo_bdev_module_register(struct mimo_bdev_module *module)
{
	pthread_mutex_lock(&g_lock);
	/* Again is nothing: a module's register function may be called more than once. */
	if (!module_registered_locked(module)) {
		TAILQ_INSERT_TAIL(&g_modules, module, link);
		if (module->ctx_size > g_io_ctx_size)
			g_io_ctx_size = module->ctx_size;
	}
	pthread_mutex_unlock(&g_lock);
}

/* --- events --------------------------------------------------------------------------- */

MIMO_EXPORT void mimo_register_bdev_layer(void)
{
	mimo_event_register_type("bdev_register");
	mimo_event_register_type("bdev_unregister");
	mimo_event_register_type("bdev_created");
	mimo_event_register_type("bdev_deleted");
	mimo_event_register_type("error_occurred");
	bdev_rpc_register();
	bdev_opts_rpc_register();
	bdev_stat_rpc_register();
}

static json_t *bdev_event_payload(const char *name, const char *product, uint32_t blocklen,
				  uint64_t blockcnt)
{
	return json_pack("{s:s, s:s, s:i, s:I, s:I}", "name", name, "product_name", product,
			 "block_size", (int)blocklen, "num_blocks", (json_int_t)blockcnt, "size",
			 (json_int_t)(blockcnt * blocklen));
}

void bdev_registry_lock(void)
{
	pthread_mutex_lock(&g_lock);
}

void bdev_registry_unlock(void)
{
	pthread_mutex_unlock(&g_lock);
}

size_t bdev_io_ctx_size(void)
{
	return g_io_ctx_size;
}

/* I/O errors are reported as events, at most ten a second. */
void bdev_report_io_error(struct mimo_bdev_io *io)
{
	static struct mimo_ratelimit rl;
	uint64_t suppressed = 0;
	json_t *p;

	if (!mimo_ratelimit_allow(&rl, 100 * 1000000LL, &suppressed))
		return;
	p = json_pack("{s:s, s:s, s:s, s:I, s:I, s:i, s:I}", "error", strerror(-io->status), "bdev",
		      io->bdev->name, "io_type", mimo_bdev_io_type_name(io->type), "offset_blocks",
		      (json_int_t)io->offset_blocks, "num_blocks", (json_int_t)io->num_blocks,
		      "status", io->status, "suppressed", (json_int_t)suppressed);
	mimo_event_emit("error_occurred", io->bdev->name, p);
}

/* The cached bdev_get_bdevs object goes stale when the claim, the size or the QoS limits
 * change, or when its module says its driver_specific part did (mimo_bdev_info_changed):
 * everything else in it is fixed for the bdev's life. */
static void invalidate_info_locked(struct mimo_bdev *bdev)
{
	free(bdev->internal.info_text);
	bdev->internal.info_text = NULL;
	bdev->internal.info_gen++;
}

MIMO_EXPORT void mimo_bdev_info_changed(struct mimo_bdev *bdev)
{
	pthread_mutex_lock(&bdev->internal.lock);
	invalidate_info_locked(bdev);
	pthread_mutex_unlock(&bdev->internal.lock);
}

/* --- accessors ------------------------------------------------------------------------- */

MIMO_EXPORT const char *mimo_bdev_get_name(const struct mimo_bdev *bdev)
{
	return bdev->name;
}

MIMO_EXPORT const char *mimo_bdev_get_product_name(const struct mimo_bdev *bdev)
{
	return bdev->product_name;
}

MIMO_EXPORT uint32_t mimo_bdev_get_block_size(const struct mimo_bdev *bdev)
{
	return bdev->blocklen;
}

MIMO_EXPORT uint64_t mimo_bdev_get_num_blocks(const struct mimo_bdev *bdev)
{
	/* A resize stores it from the module's reactor while others read it. */
	return __atomic_load_n(&bdev->blockcnt, __ATOMIC_RELAXED);
}

MIMO_EXPORT const uint8_t *mimo_bdev_get_uuid(const struct mimo_bdev *bdev)
{
	return bdev->uuid;
}

MIMO_EXPORT uint32_t mimo_bdev_get_buf_align(const struct mimo_bdev *bdev)
{
	return bdev->buf_align > 1 ? bdev->buf_align : 1;
}

MIMO_EXPORT bool mimo_bdev_io_type_supported(const struct mimo_bdev *bdev,
					     enum mimo_bdev_io_type type)
{
	return bdev->fn_table->io_type_supported(bdev->ctxt, type);
}

MIMO_EXPORT bool mimo_bdev_is_claimed(const struct mimo_bdev *bdev)
{
	bool claimed;

	pthread_mutex_lock((pthread_mutex_t *)&bdev->internal.lock);
	claimed = bdev->internal.claim_module != NULL;
	pthread_mutex_unlock((pthread_mutex_t *)&bdev->internal.lock);
	return claimed;
}

static struct mimo_bdev *find_locked(const char *name)
{
	struct mimo_bdev *b;
	uint8_t uuid[16];
	bool by_uuid = mimo_uuid_parse(name, uuid) == 0;

	TAILQ_FOREACH(b, &g_bdevs, internal.link)
	{
		if (strcmp(b->name, name) == 0 || (by_uuid && memcmp(b->uuid, uuid, 16) == 0))
			return b;
	}
	return NULL;
}

MIMO_EXPORT struct mimo_bdev *mimo_bdev_get_by_name(const char *name)
{
	struct mimo_bdev *b;

	pthread_mutex_lock(&g_lock);
	b = find_locked(name);
	pthread_mutex_unlock(&g_lock);
	return b;
}

MIMO_EXPORT char *mimo_bdev_unused_name(const char *prefix)
{
	char name[256];

	pthread_mutex_lock(&g_lock);
	for (unsigned n = 0;; n++) {
		snprintf(name, sizeof(name), "%s%u", prefix, n);
		if (find_locked(name) == NULL)
			break;
	}
	pthread_mutex_unlock(&g_lock);
	return strdup(name);
}

/* --- latency histograms ------------------------------------------------------------------ */

/* From 10 us to 2.5 s in 1-2.5-5 steps: a memory bdev's microseconds to a stalled disk's
 * seconds, in few enough buckets that a scrape of many bdevs stays small. */
MIMO_EXPORT const double mimo_bdev_lat_bounds[MIMO_BDEV_LAT_BOUNDS] = {
	10e-6, 25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3,
	10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 500e-3, 1.0,  2.5,
};
uint64_t g_bdev_lat_bounds_ticks[MIMO_BDEV_LAT_BOUNDS];
static pthread_once_t g_lat_once = PTHREAD_ONCE_INIT;

static void lat_bounds_init(void)
{
	double hz = (double)mimo_get_ticks_hz();

	for (int i = 0; i < MIMO_BDEV_LAT_BOUNDS; i++)
		g_bdev_lat_bounds_ticks[i] = (uint64_t)(mimo_bdev_lat_bounds[i] * hz);
}

/* --- channels -------------------------------------------------------------------------- */

static int channel_create(void *io_device, void *ctx)
{
	struct mimo_bdev *bdev = io_device;
	struct bdev_channel *ch = ctx;

	ch->bdev = bdev;
	STAILQ_INIT(&ch->free_ios);
	STAILQ_INIT(&ch->qos_queue);
	bdev_stat_init(ch);
	ch->module_ch = bdev->fn_table->get_io_channel(bdev->ctxt);
	if (ch->module_ch == NULL)
		return -ENOMEM;
	pthread_mutex_lock(&bdev->internal.lock);
	TAILQ_INSERT_TAIL(&bdev->internal.channels, ch, link);
	pthread_mutex_unlock(&bdev->internal.lock);
	return 0;
}

static void channel_destroy(void *io_device, void *ctx)
{
	struct mimo_bdev *bdev = io_device;
	struct bdev_channel *ch = ctx;
	struct mimo_bdev_io *io;

	if (ch_outstanding(ch) > 0)
		MIMO_ERR(COMP, "%s: channel destroyed with %u I/O outstanding", bdev->name,
			 ch_outstanding(ch));
	while ((io = STAILQ_FIRST(&ch->free_ios)) != NULL) {
		STAILQ_REMOVE_HEAD(&ch->free_ios, link);
		free(io);
	}
	bdev_qos_channel_destroy(ch);
	mimo_put_io_channel(ch->module_ch);
	bdev_stat_catch_up(ch); /* a reset it has not applied yet applies to what it retires */
	pthread_mutex_lock(&bdev->internal.lock);
	bdev_stat_add_channel(&bdev->internal.retired, ch, bdev_ext(bdev));
	bdev_hist_channel_destroy(ch);
	TAILQ_REMOVE(&bdev->internal.channels, ch, link);
	pthread_mutex_unlock(&bdev->internal.lock);
}

MIMO_EXPORT void mimo_bdev_get_io_stat(struct mimo_bdev *bdev, struct mimo_bdev_io_stat *stat)
{
	struct bdev_channel *ch;

	pthread_mutex_lock(&bdev->internal.lock);
	*stat = bdev->internal.retired;
	TAILQ_FOREACH(ch, &bdev->internal.channels, link)
	bdev_stat_add_channel(stat, ch, bdev_ext(bdev));
	pthread_mutex_unlock(&bdev->internal.lock);
}

/* --- register --------------------------------------------------------------------------- */

MIMO_EXPORT int mimo_bdev_register(struct mimo_bdev *bdev)
{
	if (bdev->name == NULL || bdev->name[0] == '\0' || bdev->blocklen == 0 ||
	    bdev->blockcnt == 0 || bdev->fn_table == NULL || bdev->module == NULL ||
	    bdev->blockcnt > MIMO_BDEV_MAX_BYTES / bdev->blocklen)
		return -EINVAL;
	if (mimo_uuid_is_null(bdev->uuid))
		mimo_uuid_generate(bdev->uuid);
	/* Before any channel of any bdev exists: their I/Os are counted in these buckets. */
	pthread_once(&g_lat_once, lat_bounds_init);
	bdev->internal.ext = calloc(1, sizeof(struct bdev_ext));
	if (bdev->internal.ext == NULL)
		return -ENOMEM;
	bdev->internal.ext->hist_io_type = -1;
	bdev_qos_init(&bdev->internal.ext->qos);
	pthread_mutex_init(&bdev->internal.lock, NULL);
	TAILQ_INIT(&bdev->internal.descs);
	TAILQ_INIT(&bdev->internal.channels);
	bdev_stat_empty(&bdev->internal.retired);
	bdev->internal.removing = false;
	bdev->internal.claim_module = NULL;
	bdev->internal.info_text = NULL;
	bdev->internal.info_gen = 0;

	pthread_mutex_lock(&g_lock);
	/* The per-I/O context the layer allocates is sized by the registered modules: a bdev of
	 * a module nobody registered could overrun it. */
	if (!module_registered_locked(bdev->module)) {
		pthread_mutex_unlock(&g_lock);
		pthread_mutex_destroy(&bdev->internal.lock);
		free(bdev->internal.ext);
		MIMO_ERR(COMP, "%s: bdev module %s is not registered", bdev->name,
			 bdev->module->name);
		return -EINVAL;
	}
	if (find_locked(bdev->name) != NULL) {
		pthread_mutex_unlock(&g_lock);
		pthread_mutex_destroy(&bdev->internal.lock);
		free(bdev->internal.ext);
		return -EEXIST;
	}
	mimo_io_device_register(bdev, channel_create, channel_destroy, sizeof(struct bdev_channel),
				bdev->name);
	TAILQ_INSERT_TAIL(&g_bdevs, bdev, internal.link);
	pthread_mutex_unlock(&g_lock);

	MIMO_INFO(COMP, "%s created: %s, %" PRIu64 " blocks of %u bytes", bdev->name,
		  bdev->product_name, bdev->blockcnt, bdev->blocklen);
	mimo_event_emit("bdev_register", bdev->name, NULL);
	mimo_event_emit(
		"bdev_created", bdev->name,
		bdev_event_payload(bdev->name, bdev->product_name, bdev->blocklen, bdev->blockcnt));
	return 0;
}

/* --- descriptors -------------------------------------------------------------------------- */

MIMO_EXPORT int mimo_bdev_open(const char *name, bool write, mimo_bdev_event_cb event_cb, void *ctx,
			       struct mimo_bdev_desc **out)
{
	struct mimo_bdev_desc *desc;
	struct mimo_bdev *bdev;
	int rc = 0;

	desc = calloc(1, sizeof(*desc));
	if (desc == NULL)
		return -ENOMEM;
	pthread_mutex_lock(&g_lock);
	bdev = find_locked(name);
	if (bdev == NULL) {
		rc = -ENODEV;
	} else {
		pthread_mutex_lock(&bdev->internal.lock);
		if (bdev->internal.removing)
			rc = -EBUSY;
		else if (write && bdev->internal.claim_module != NULL)
			rc = -EPERM;
		if (rc == 0) {
			desc->bdev = bdev;
			desc->write = write;
			desc->event_cb = event_cb;
			desc->ctx = ctx;
			desc->reactor = mimo_reactor_current();
			TAILQ_INSERT_TAIL(&bdev->internal.descs, desc, link);
		}
		pthread_mutex_unlock(&bdev->internal.lock);
	}
	pthread_mutex_unlock(&g_lock);
	if (rc != 0) {
		free(desc);
		return rc;
	}
	*out = desc;
	return 0;
}

MIMO_EXPORT struct mimo_bdev *mimo_bdev_desc_get_bdev(struct mimo_bdev_desc *desc)
{
	return desc->bdev;
}

MIMO_EXPORT void mimo_bdev_desc_set_private_buffers(struct mimo_bdev_desc *desc,
						    bool private_buffers)
{
	desc->private_bufs = private_buffers;
}

MIMO_EXPORT struct mimo_io_channel *mimo_bdev_get_io_channel(struct mimo_bdev_desc *desc)
{
	return mimo_get_io_channel(desc->bdev);
}

static void unregister_finish(void *arg);

MIMO_EXPORT void mimo_bdev_close(struct mimo_bdev_desc *desc)
{
	struct mimo_bdev *bdev = desc->bdev;
	struct mimo_reactor *here = mimo_reactor_current();
	bool last, keep;

	/* Its REMOVE notice runs on the reactor that opened it and reads closed there without
	 * the lock: a close elsewhere could free it under the notice (ARCHITECTURE.md, "Locking
	 * rules of the bdev layer"). Said loudly, for the tests that delete under I/O to see. */
	if (here != NULL && desc->reactor != NULL && here != desc->reactor)
		MIMO_ERR(COMP, "%s: a descriptor opened on reactor %u is closed on reactor %u",
			 bdev->name, mimo_reactor_index(desc->reactor), mimo_reactor_index(here));

	pthread_mutex_lock(&bdev->internal.lock);
	TAILQ_REMOVE(&bdev->internal.descs, desc, link);
	last = bdev->internal.removing && TAILQ_EMPTY(&bdev->internal.descs);
	/* A REMOVE notice still queued holds a pointer to desc: it frees it instead. The bdev
	 * itself may be gone by then, so the notice must not need it. */
	keep = desc->remove_pending;
	desc->closed = true;
	pthread_mutex_unlock(&bdev->internal.lock);
	if (!keep)
		free(desc);
	if (last)
		bdev_send(bdev->internal.unregister_reactor, unregister_finish, bdev);
}

MIMO_EXPORT int mimo_bdev_module_claim_bdev(struct mimo_bdev *bdev, struct mimo_bdev_desc *desc,
					    struct mimo_bdev_module *module)
{
	int rc = 0;

	(void)desc;
	pthread_mutex_lock(&bdev->internal.lock);
	if (bdev->internal.claim_module != NULL) {
		rc = -EPERM;
	} else {
		bdev->internal.claim_module = module;
		invalidate_info_locked(bdev);
	}
	pthread_mutex_unlock(&bdev->internal.lock);
	return rc;
}

MIMO_EXPORT void mimo_bdev_module_release_bdev(struct mimo_bdev *bdev)
{
	pthread_mutex_lock(&bdev->internal.lock);
	bdev->internal.claim_module = NULL;
	invalidate_info_locked(bdev);
	pthread_mutex_unlock(&bdev->internal.lock);
}

/* --- delete ----------------------------------------------------------------------------- */

struct removed_info {
	char *name;
	const char *product;
	uint32_t blocklen;
	uint64_t blockcnt;
	void (*cb)(void *arg, int rc);
	void *arg;
};

static void announce_removed(struct removed_info *ri, int rc)
{
	MIMO_INFO(COMP, "%s deleted", ri->name);
	mimo_event_emit("bdev_unregister", ri->name, NULL);
	mimo_event_emit("bdev_deleted", ri->name,
			bdev_event_payload(ri->name, ri->product, ri->blocklen, ri->blockcnt));
	if (ri->cb != NULL)
		ri->cb(ri->arg, rc);
	free(ri->name);
	free(ri);
}

MIMO_EXPORT void mimo_bdev_destruct_done(struct mimo_bdev *bdev, int rc)
{
	struct removed_info *ri = bdev->internal.unregister_arg;

	announce_removed(ri, rc);
}

static void after_channels(void *arg)
{
	struct mimo_bdev *bdev = arg;
	struct removed_info *ri = calloc(1, sizeof(*ri));
	int rc;

	/* Everything the announcement needs, copied: destruct may free the bdev. */
	if (ri != NULL) {
		ri->name = strdup(bdev->name);
		ri->product = bdev->product_name;
		ri->blocklen = bdev->blocklen;
		ri->blockcnt = bdev->blockcnt;
		ri->cb = bdev->internal.unregister_cb;
		ri->arg = bdev->internal.unregister_arg;
	}
	bdev->internal.unregister_arg = ri;
	pthread_mutex_lock(&g_lock);
	bdev_qd_sampler_detach(bdev);
	pthread_mutex_unlock(&g_lock);
	bdev_hist_free(&bdev->internal.ext->retired_hist);
	free(bdev->internal.ext);
	bdev->internal.ext = NULL;
	free(bdev->internal.info_text);
	bdev->internal.info_text = NULL;
	pthread_mutex_destroy(&bdev->internal.lock);
	rc = bdev->fn_table->destruct(bdev->ctxt);
	if (rc <= 0 && ri != NULL)
		announce_removed(ri, rc);
}

static void unregister_finish(void *arg)
{
	struct mimo_bdev *bdev = arg;

	mimo_io_device_unregister(bdev, after_channels, bdev);
}

static void notify_remove(void *arg)
{
	struct mimo_bdev_desc *desc = arg;

	/* Closed since the notice was queued (on this reactor, the only one that closes it):
	 * its owner no longer wants to hear, and its bdev may be freed. */
	if (desc->closed) {
		free(desc);
		return;
	}
	desc->remove_pending = false;
	if (desc->event_cb != NULL)
		desc->event_cb(MIMO_BDEV_EVENT_REMOVE, desc->bdev, desc->ctx);
}

MIMO_EXPORT int mimo_bdev_delete(const char *name, void (*cb)(void *arg, int rc), void *arg)
{
	struct mimo_bdev_desc *desc;
	struct mimo_bdev *bdev;
	bool none_open;

	pthread_mutex_lock(&g_lock);
	bdev = find_locked(name);
	if (bdev == NULL) {
		pthread_mutex_unlock(&g_lock);
		return -ENODEV;
	}
	pthread_mutex_lock(&bdev->internal.lock);
	if ((bdev->internal.claim_module != NULL &&
	     !bdev->internal.claim_module->claims_removable) ||
	    bdev->internal.removing) {
		pthread_mutex_unlock(&bdev->internal.lock);
		pthread_mutex_unlock(&g_lock);
		return -EBUSY;
	}
	bdev->internal.removing = true;
	bdev->internal.unregister_cb = cb;
	bdev->internal.unregister_arg = arg;
	bdev->internal.unregister_reactor = mimo_reactor_current();
	TAILQ_REMOVE(&g_bdevs, bdev, internal.link);
	/* Owners learn on their own reactors; the bdev goes when the last one closes. */
	TAILQ_FOREACH(desc, &bdev->internal.descs, link)
	{
		desc->remove_pending = true;
		bdev_send(desc->reactor, notify_remove, desc);
	}
	none_open = TAILQ_EMPTY(&bdev->internal.descs);
	pthread_mutex_unlock(&bdev->internal.lock);
	pthread_mutex_unlock(&g_lock);
	if (none_open)
		bdev_send(mimo_reactor_current(), unregister_finish, bdev);
	return 0;
}

struct delete_all_ctx {
	void (*cb)(void *arg);
	void *arg;
};

static void delete_next(void *arg);

static void delete_all_step(void *arg, int rc)
{
	(void)rc;
	delete_next(arg);
}

static void delete_next(void *arg)
{
	struct delete_all_ctx *ctx = arg;
	char *name = NULL;
	struct mimo_bdev *b;
	int rc = -ENOMEM;

	/* The newest unclaimed bdev first: virtual bdevs come after, and claim, their bases. The
	 * whole name is copied: names have no length limit, and a cut one names no bdev (this
	 * would retry it forever and shutdown would never end). */
	pthread_mutex_lock(&g_lock);
	TAILQ_FOREACH_REVERSE(b, &g_bdevs, bdev_list, internal.link)
	{
		if (!mimo_bdev_is_claimed(b)) {
			name = strdup(b->name);
			break;
		}
	}
	pthread_mutex_unlock(&g_lock);
	if (b == NULL) {
		ctx->cb(ctx->arg);
		free(ctx);
		return;
	}
	if (name != NULL)
		rc = mimo_bdev_delete(name, delete_all_step, ctx);
	free(name);
	if (rc != 0) /* raced (or no memory for the name): try again */
		bdev_send(mimo_reactor_current(), delete_next, ctx);
}

MIMO_EXPORT void mimo_bdev_delete_all(void (*cb)(void *arg), void *arg)
{
	struct delete_all_ctx *ctx = calloc(1, sizeof(*ctx));

	if (ctx == NULL) {
		cb(arg);
		return;
	}
	ctx->cb = cb;
	ctx->arg = arg;
	delete_next(ctx);
}

/* --- JSON views -------------------------------------------------------------------------- */

MIMO_EXPORT json_t *mimo_bdev_info_json(struct mimo_bdev *bdev)
{
	static const char *const unsupported[] = { "compare",	 "compare_and_write", "abort",
						   "nvme_admin", "nvme_io",	      "zcopy",
						   "copy" };
	char uuid[MIMO_UUID_STR_LEN];
	json_t *io_types = json_object(), *driver = json_object();
	bool claimed = mimo_bdev_is_claimed(bdev);
	uint64_t qos[QOS_NUM];
	json_t *j;

	for (int t = 0; t < MIMO_BDEV_IO_NUM_TYPES; t++)
		json_object_set_new(io_types, g_io_type_names[t],
				    json_boolean(mimo_bdev_io_type_supported(bdev, t)));
	for (size_t i = 0; i < MIMO_ARRAY_SIZE(unsupported); i++)
		json_object_set_new(io_types, unsupported[i], json_false());
	if (bdev->fn_table->dump_info_json != NULL)
		bdev->fn_table->dump_info_json(bdev->ctxt, driver);
	mimo_uuid_format(bdev->uuid, uuid);
	bdev_qos_get(bdev, qos);
	j = json_pack("{s:s, s:[], s:s, s:i, s:I, s:s, s:{s:I, s:I, s:I, s:I}, s:b, s:b, s:o, s:o}",
		      "name", bdev->name, "aliases", "product_name", bdev->product_name,
		      "block_size", (int)bdev->blocklen, "num_blocks",
		      (json_int_t)mimo_bdev_get_num_blocks(bdev), "uuid", uuid,
		      "assigned_rate_limits", "rw_ios_per_sec", (json_int_t)qos[QOS_RW_IOPS],
		      "rw_mbytes_per_sec", (json_int_t)qos[QOS_RW_BPS], "r_mbytes_per_sec",
		      (json_int_t)qos[QOS_R_BPS], "w_mbytes_per_sec", (json_int_t)qos[QOS_W_BPS],
		      "claimed", claimed, "zoned", false, "supported_io_types", io_types,
		      "driver_specific", driver);
	if (claimed)
		json_object_set_new(j, "claim_type", json_string("exclusive_write"));
	return j;
}

MIMO_EXPORT json_t *mimo_bdev_list_json(void)
{
	json_t *arr = json_array();
	struct mimo_bdev *b;

	pthread_mutex_lock(&g_lock);
	TAILQ_FOREACH(b, &g_bdevs, internal.link)
	json_array_append_new(arr, mimo_bdev_info_json(b));
	pthread_mutex_unlock(&g_lock);
	return arr;
}

MIMO_EXPORT json_t *mimo_bdev_find_json(const char *name)
{
	struct mimo_bdev *b;
	json_t *j = NULL;

	pthread_mutex_lock(&g_lock);
	b = find_locked(name);
	if (b != NULL)
		j = mimo_bdev_info_json(b);
	pthread_mutex_unlock(&g_lock);
	return j;
}

/* Append the bdev's object (from the cache, filled if stale) to out. */
static void append_info_text(struct mimo_bdev *b, struct mimo_buf *out)
{
	uint64_t gen;

	pthread_mutex_lock(&b->internal.lock);
	if (b->internal.info_text == NULL) {
		json_t *j;
		char *text;

		gen = b->internal.info_gen;
		pthread_mutex_unlock(&b->internal.lock); /* info_json takes the lock itself */
		j = mimo_bdev_info_json(b);
		text = json_dumps(j, JSON_COMPACT);
		json_decref(j);
		pthread_mutex_lock(&b->internal.lock);
		if (b->internal.info_text == NULL && b->internal.info_gen == gen && text != NULL) {
			b->internal.info_text = text;
			b->internal.info_len = strlen(text);
		} else {
			free(text);
		}
		if (b->internal.info_text == NULL) {
			/* Went stale again meanwhile: this once, serve what was computed. */
			pthread_mutex_unlock(&b->internal.lock);
			json_t *again = mimo_bdev_info_json(b);
			char *t = json_dumps(again, JSON_COMPACT);

			json_decref(again);
			if (t != NULL)
				mimo_buf_append_str(out, t);
			free(t);
			return;
		}
	}
	mimo_buf_append(out, b->internal.info_text, b->internal.info_len);
	pthread_mutex_unlock(&b->internal.lock);
}

MIMO_EXPORT char *mimo_bdev_list_text(const char *name, size_t *len)
{
	struct mimo_buf out = { 0 };
	struct mimo_bdev *b;
	bool first = true;

	/* Room for a typical list at once: growing a 50 KiB buffer doubling costs copies. */
	mimo_buf_reserve(&out, 16384);
	mimo_buf_append(&out, "[", 1);
	pthread_mutex_lock(&g_lock);
	if (name != NULL) {
		b = find_locked(name);
		if (b == NULL) {
			pthread_mutex_unlock(&g_lock);
			mimo_buf_free(&out);
			return NULL;
		}
		append_info_text(b, &out);
	} else {
		TAILQ_FOREACH(b, &g_bdevs, internal.link)
		{
			if (!first)
				mimo_buf_append(&out, ",", 1);
			first = false;
			append_info_text(b, &out);
		}
	}
	pthread_mutex_unlock(&g_lock);
	if (mimo_buf_append(&out, "]", 1) != 0) {
		mimo_buf_free(&out);
		return NULL;
	}
	*len = out.len;
	return out.data;
}

MIMO_EXPORT json_t *mimo_bdev_config_json(void)
{
	json_t *arr = bdev_examine_config_json();
	struct mimo_bdev *b;
	uint32_t window_kb, max_mb;

	/* The raid module's options, first (as SPDK's module entries), when not the defaults. */
	bdev_raid_process_opts(&window_kb, &max_mb);
	if (window_kb != 1024 || max_mb != 0)
		json_array_append_new(arr, json_pack("{s:s, s:{s:i, s:i}}", "method",
						     "bdev_raid_set_options", "params",
						     "process_window_size_kb", (int)window_kb,
						     "process_max_bandwidth_mb_sec", (int)max_mb));

	pthread_mutex_lock(&g_lock);
	TAILQ_FOREACH(b, &g_bdevs, internal.link)
	{
		if (b->fn_table->write_config_json != NULL)
			b->fn_table->write_config_json(b, arr);
		bdev_layer_config_json(b, arr);
	}
	pthread_mutex_unlock(&g_lock);
	return arr;
}

/* Read a bdev's statistics and reset what mode says, in one hold of its lock. */
static void stat_read_reset(struct mimo_bdev *b, struct mimo_bdev_io_stat *st,
			    enum bdev_reset_mode mode)
{
	struct bdev_channel *ch;

	pthread_mutex_lock(&b->internal.lock);
	*st = b->internal.retired;
	TAILQ_FOREACH(ch, &b->internal.channels, link)
	bdev_stat_add_channel(st, ch, bdev_ext(b));
	pthread_mutex_unlock(&b->internal.lock);
	bdev_reset_io_stat(b, mode);
}

static json_t *iostat_entry(struct mimo_bdev *b, enum bdev_reset_mode mode)
{
	struct bdev_ext *ext = bdev_ext(b);
	struct mimo_bdev_io_stat st;
	json_t *o = json_pack("{s:s}", "name", b->name);

	stat_read_reset(b, &st, mode);
	bdev_stat_to_json(&st, o);
	/* SPDK adds the sampled figures only while sampling is on. */
	if (ext->qd_period_us > 0) {
		json_object_set_new(o, "queue_depth_polling_period",
				    json_integer((json_int_t)ext->qd_period_us));
		json_object_set_new(o, "queue_depth",
				    json_integer((json_int_t)atomic_load(&ext->queue_depth)));
		json_object_set_new(o, "io_time",
				    json_integer((json_int_t)atomic_load(&ext->io_time)));
		json_object_set_new(o, "weighted_io_time",
				    json_integer((json_int_t)atomic_load(&ext->weighted_io_time)));
	}
	return o;
}

MIMO_EXPORT void mimo_bdev_foreach_io_stat(mimo_bdev_stat_fn fn, void *arg)
{
	struct mimo_bdev *b;

	/* Under the registry's lock, as bdev_get_iostat: no bdev goes while it is read. */
	bdev_registry_lock();
	TAILQ_FOREACH(b, &g_bdevs, internal.link)
	{
		struct mimo_bdev_io_stat st;

		mimo_bdev_get_io_stat(b, &st);
		fn(arg, b->name, &st);
	}
	bdev_registry_unlock();
}

json_t *bdev_iostat_json(char *const *names, size_t n, enum bdev_reset_mode mode, int *rc)
{
	json_t *arr = json_array();
	struct mimo_bdev *b;

	*rc = 0;
	bdev_registry_lock();
	if (names == NULL) {
		TAILQ_FOREACH(b, &g_bdevs, internal.link)
		json_array_append_new(arr, iostat_entry(b, mode));
	} else {
		for (size_t i = 0; i < n && *rc == 0; i++) {
			b = find_locked(names[i]);
			if (b == NULL)
				*rc = -ENODEV;
			else
				json_array_append_new(arr, iostat_entry(b, mode));
		}
	}
	bdev_registry_unlock();
	if (*rc != 0) {
		json_decref(arr);
		return NULL;
	}
	return arr;
}

json_t *bdev_iostat_channels_json(const char *name, enum bdev_reset_mode mode, int *rc)
{
	struct mimo_bdev *b;
	struct bdev_channel *ch;
	json_t *chans = json_array(), *o = NULL;

	bdev_registry_lock();
	b = find_locked(name);
	if (b == NULL) {
		*rc = -ENODEV;
		json_decref(chans);
	} else {
		*rc = 0;
		pthread_mutex_lock(&b->internal.lock);
		TAILQ_FOREACH(ch, &b->internal.channels, link)
		{
			struct mimo_bdev_io_stat st;
			json_t *c = json_pack("{s:I}", "thread_id", (json_int_t)ch->tid);

			bdev_stat_empty(&st);
			bdev_stat_add_channel(&st, ch, bdev_ext(b));
			bdev_stat_to_json(&st, c);
			json_array_append_new(chans, c);
		}
		pthread_mutex_unlock(&b->internal.lock);
		bdev_reset_io_stat(b, mode);
		o = json_pack("{s:s, s:o}", "name", b->name, "channels", chans);
	}
	bdev_registry_unlock();
	return o;
}

int bdev_reset_iostat_named(const char *name, enum bdev_reset_mode mode)
{
	struct mimo_bdev *b;
	int rc = 0;

	bdev_registry_lock();
	if (name != NULL) {
		b = find_locked(name);
		if (b == NULL)
			rc = -ENODEV;
		else
			bdev_reset_io_stat(b, mode);
	} else {
		TAILQ_FOREACH(b, &g_bdevs, internal.link)
		bdev_reset_io_stat(b, mode);
	}
	bdev_registry_unlock();
	return rc;
}

/* bdev_set_qos_limit and bdev_enable_histogram for b, as SPDK saves them after the bdev. */
void bdev_layer_config_json(struct mimo_bdev *b, json_t *arr)
{
	struct bdev_ext *ext = bdev_ext(b);
	static const char *const names[QOS_NUM] = { "rw_ios_per_sec", "rw_mbytes_per_sec",
						    "r_mbytes_per_sec", "w_mbytes_per_sec" };
	uint64_t qos[QOS_NUM];
	json_t *p = NULL;

	bdev_qos_get(b, qos);
	for (int i = 0; i < QOS_NUM; i++) {
		if (qos[i] == 0)
			continue;
		if (p == NULL)
			p = json_pack("{s:s}", "name", b->name);
		json_object_set_new(p, names[i], json_integer((json_int_t)qos[i]));
	}
	if (p != NULL)
		json_array_append_new(
			arr, json_pack("{s:s, s:o}", "method", "bdev_set_qos_limit", "params", p));
	pthread_mutex_lock(&b->internal.lock);
	if (ext->hist_enabled) {
		p = json_pack("{s:s, s:b}", "name", b->name, "enable", true);
		if (ext->hist_io_type >= 0)
			json_object_set_new(p, "opc",
					    json_string(mimo_bdev_io_type_name(ext->hist_io_type)));
		json_array_append_new(arr, json_pack("{s:s, s:o}", "method",
						     "bdev_enable_histogram", "params", p));
	}
	pthread_mutex_unlock(&b->internal.lock);
}

/* --- resize ------------------------------------------------------------------------------- */

struct resize_note {
	char *name;
	struct mimo_bdev_desc *desc;
};

/* On the descriptor's reactor: tell its owner, if it still has the descriptor open (it may
 * have closed it since, or the bdev may be gone). */
static void notify_resize(void *arg)
{
	struct resize_note *n = arg;
	struct mimo_bdev_desc *d, *found = NULL;
	struct mimo_bdev *b;

	pthread_mutex_lock(&g_lock);
	b = find_locked(n->name);
	if (b != NULL) {
		pthread_mutex_lock(&b->internal.lock);
		TAILQ_FOREACH(d, &b->internal.descs, link)
		{
			if (d == n->desc)
				found = d;
		}
		pthread_mutex_unlock(&b->internal.lock);
	}
	pthread_mutex_unlock(&g_lock);
	/* Only this reactor closes the descriptor, so it stays open while its owner hears. */
	if (found != NULL && found->event_cb != NULL)
		found->event_cb(MIMO_BDEV_EVENT_RESIZE, b, found->ctx);
	free(n->name);
	free(n);
}

MIMO_EXPORT int mimo_bdev_notify_blockcnt_change(struct mimo_bdev *bdev, uint64_t blockcnt)
{
	struct mimo_bdev_desc *d;

	if (blockcnt == 0 || blockcnt > MIMO_BDEV_MAX_BYTES / bdev->blocklen)
		return -EINVAL;
	pthread_mutex_lock(&bdev->internal.lock);
	if (blockcnt < bdev->blockcnt && !TAILQ_EMPTY(&bdev->internal.descs)) {
		pthread_mutex_unlock(&bdev->internal.lock);
		return -EBUSY;
	}
	__atomic_store_n(&bdev->blockcnt, blockcnt, __ATOMIC_RELAXED);
	invalidate_info_locked(bdev);
	TAILQ_FOREACH(d, &bdev->internal.descs, link)
	{
		struct resize_note *n = calloc(1, sizeof(*n));

		if (n == NULL || (n->name = strdup(bdev->name)) == NULL) {
			free(n);
			MIMO_ERR(COMP, "%s: no memory to tell a user of the new size", bdev->name);
			continue;
		}
		n->desc = d;
		bdev_send(d->reactor, notify_resize, n);
	}
	pthread_mutex_unlock(&bdev->internal.lock);
	MIMO_INFO(COMP, "%s resized to %" PRIu64 " blocks", bdev->name, blockcnt);
	return 0;
}
