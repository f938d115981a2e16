/*
 * split: parts of a base bdev. The base is opened and claimed once for all its parts; each
 * part is a bdev whose I/O goes to the base at the part's offset, on the base's own channel
 * (a part needs no per-reactor state of its own). When the base is deleted, or
 * bdev_split_delete asks, every part is deleted; the last one to go releases and closes the
 * base.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bdev_split.h"
#include "compiler.h"
#include "log.h"
#include "vbdev.h"

#define COMP "split"

struct split_part;

/* One split base: the parts made of it. Touched on the RPC reactor only, under g_lock. */
struct split_base {
	char *name;
	struct mimo_bdev *bdev;
	struct mimo_bdev_desc *desc;
	uint32_t requested_count; /* as asked, for save_config */
	uint64_t split_size_mb;
	uint32_t count;
	uint32_t alive; /* parts not yet destructed */
	bool deleting;
	struct split_part **parts;
	TAILQ_ENTRY(split_base) link;
};

struct split_part {
	struct mimo_bdev bdev;
	struct split_base *base;
	uint32_t index;
	uint64_t offset_blocks;
};

struct mimo_bdev_module g_split_module = { .name = "split", .claims_removable = true };

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static TAILQ_HEAD(, split_base) g_bases = TAILQ_HEAD_INITIALIZER(g_bases);

MIMO_EXPORT void mimo_register_bdev_split(void)
{
	mimo_bdev_module_register(&g_split_module);
	bdev_split_rpc_register();
}

static struct split_base *find_base_locked(const char *name)
{
	struct split_base *b;

	TAILQ_FOREACH(b, &g_bases, link)
	{
		if (strcmp(b->name, name) == 0)
			return b;
	}
	return NULL;
}

static void part_done(struct mimo_bdev_io *child, bool success, void *arg)
{
	struct mimo_bdev_io *io = arg;
	int status = success ? 0 : mimo_bdev_io_get_status(child);

	mimo_bdev_free_io(child);
	mimo_bdev_io_complete(io, status);
}

static void split_submit(struct mimo_io_channel *ch, struct mimo_bdev_io *io)
{
	struct split_part *p = io->bdev->ctxt;
	int rc;

	/* The layer checked the range against the part; the base sees it shifted. */
	rc = vbdev_submit(p->base->desc, ch, io->type, io->iovs, io->iovcnt,
			  io->offset_blocks + p->offset_blocks, io->num_blocks, part_done, io);
	if (rc != 0)
		mimo_bdev_io_complete(io, rc);
}

static bool split_io_type_supported(void *ctx, enum mimo_bdev_io_type type)
{
	struct split_part *p = ctx;

	return mimo_bdev_io_type_supported(p->base->bdev, type);
}

static struct mimo_io_channel *split_get_io_channel(void *ctx)
{
	struct split_part *p = ctx;

	return mimo_bdev_get_io_channel(p->base->desc);
}

static void base_free(struct split_base *b)
{
	free(b->parts);
	free(b->name);
	free(b);
}

static int split_destruct(void *ctx)
{
	struct split_part *p = ctx;
	struct split_base *b = p->base;
	bool last;

	pthread_mutex_lock(&g_lock);
	b->parts[p->index] = NULL;
	last = --b->alive == 0;
	if (last)
		TAILQ_REMOVE(&g_bases, b, link);
	pthread_mutex_unlock(&g_lock);
	free(p->bdev.name);
	free(p);
	if (last) {
		mimo_bdev_module_release_bdev(b->bdev);
		mimo_bdev_close(b->desc);
		base_free(b);
	}
	return 0;
}

static void split_dump_info(void *ctx, json_t *driver)
{
	struct split_part *p = ctx;

	json_object_set_new(driver, "split",
			    json_pack("{s:s, s:I}", "base_bdev", p->base->name, "offset_blocks",
				      (json_int_t)p->offset_blocks));
}

/* One bdev_split_create per base, written by its first part: the parts come after the base
 * in the registry, so a replay finds the base first. */
static void split_write_config(struct mimo_bdev *bdev, json_t *config)
{
	struct split_part *p = bdev->ctxt;

	if (p->index != 0)
		return;
	json_array_append_new(config,
			      json_pack("{s:s, s:{s:s, s:i, s:I}}", "method", "bdev_split_create",
					"params", "base_bdev", p->base->name, "split_count",
					(int)p->base->requested_count, "split_size_mb",
					(json_int_t)p->base->split_size_mb));
}

static const struct mimo_bdev_fn_table split_fn_table = {
	.destruct = split_destruct,
	.submit_request = split_submit,
	.io_type_supported = split_io_type_supported,
	.get_io_channel = split_get_io_channel,
	.dump_info_json = split_dump_info,
	.write_config_json = split_write_config,
};

/* Delete every part still registered (their destructs release the base). */
static void delete_parts(struct split_base *b)
{
	char **names;
	uint32_t n = 0;

	pthread_mutex_lock(&g_lock);
	b->deleting = true;
	names = calloc(b->count, sizeof(*names));
	for (uint32_t i = 0; names != NULL && i < b->count; i++) {
		if (b->parts[i] != NULL)
			names[n++] = strdup(b->parts[i]->bdev.name);
	}
	pthread_mutex_unlock(&g_lock);
	for (uint32_t i = 0; i < n; i++) {
		if (names[i] != NULL)
			vbdev_delete_after_base_removed(names[i]);
		free(names[i]);
	}
	free(names);
}

static void base_event(enum mimo_bdev_event_type type, struct mimo_bdev *bdev, void *ctx)
{
	struct split_base *b = ctx;

	(void)bdev;
	if (type == MIMO_BDEV_EVENT_REMOVE) {
		MIMO_INFO(COMP, "%s is being deleted: deleting its parts", b->name);
		delete_parts(b);
	}
}

static int register_parts(struct split_base *b, uint64_t part_blocks)
{
	for (uint32_t i = 0; i < b->count; i++) {
		struct split_part *p = calloc(1, sizeof(*p));
		size_t len = strlen(b->name) + 16;
		int rc;

		if (p == NULL || (p->bdev.name = malloc(len)) == NULL) {
			free(p);
			return -ENOMEM;
		}
		snprintf(p->bdev.name, len, "%sp%" PRIu32, b->name, i);
		p->base = b;
		p->index = i;
		p->offset_blocks = (uint64_t)i * part_blocks;
		p->bdev.product_name = "Split Disk";
		p->bdev.blocklen = mimo_bdev_get_block_size(b->bdev);
		p->bdev.blockcnt = part_blocks;
		p->bdev.buf_align = mimo_bdev_get_buf_align(b->bdev);
		p->bdev.ctxt = p;
		p->bdev.fn_table = &split_fn_table;
		p->bdev.module = &g_split_module;
		pthread_mutex_lock(&g_lock);
		b->parts[i] = p;
		b->alive++;
		pthread_mutex_unlock(&g_lock);
		rc = mimo_bdev_register(&p->bdev);
		if (rc != 0) {
			pthread_mutex_lock(&g_lock);
			b->parts[i] = NULL;
			b->alive--;
			pthread_mutex_unlock(&g_lock);
			free(p->bdev.name);
			free(p);
			return rc;
		}
	}
	return 0;
}

int bdev_split_create(const char *base_name, uint32_t split_count, uint64_t split_size_mb)
{
	struct split_base *b;
	uint64_t part_blocks, max_count, blocks;
	uint32_t bs;
	int rc;

	if (split_count == 0)
		return -EINVAL;
	b = calloc(1, sizeof(*b));
	if (b == NULL || (b->name = strdup(base_name)) == NULL) {
		free(b);
		return -ENOMEM;
	}
	pthread_mutex_lock(&g_lock);
	rc = find_base_locked(base_name) != NULL ? -EEXIST : 0;
	pthread_mutex_unlock(&g_lock);
	if (rc == 0)
		rc = mimo_bdev_open(base_name, true, base_event, b, &b->desc);
	if (rc != 0) {
		base_free(b);
		return rc;
	}
	b->bdev = mimo_bdev_desc_get_bdev(b->desc);
	rc = mimo_bdev_module_claim_bdev(b->bdev, b->desc, &g_split_module);
	if (rc != 0) {
		mimo_bdev_close(b->desc);
		base_free(b);
		return rc;
	}
	bs = mimo_bdev_get_block_size(b->bdev);
	blocks = mimo_bdev_get_num_blocks(b->bdev);
	if (split_size_mb != 0) {
		if (split_size_mb > UINT64_MAX / (1024 * 1024) || (split_size_mb << 20) % bs != 0)
			rc = -EINVAL;
		part_blocks = rc == 0 ? (split_size_mb << 20) / bs : 0;
	} else {
		part_blocks = blocks / split_count;
	}
	if (rc == 0 && (part_blocks == 0 || part_blocks > blocks))
		rc = -EINVAL;
	if (rc != 0) {
		mimo_bdev_module_release_bdev(b->bdev);
		mimo_bdev_close(b->desc);
		base_free(b);
		return rc;
	}
	max_count = blocks / part_blocks;
	b->requested_count = split_count;
	b->split_size_mb = split_size_mb;
	b->count = split_count > max_count ? (uint32_t)max_count : split_count;
	if (b->count < split_count)
		MIMO_WARN(COMP, "%s: split count %" PRIu32 " clamped to %" PRIu32, base_name,
			  split_count, b->count);
	b->parts = calloc(b->count, sizeof(*b->parts));
	if (b->parts == NULL) {
		mimo_bdev_module_release_bdev(b->bdev);
		mimo_bdev_close(b->desc);
		base_free(b);
		return -ENOMEM;
	}
	pthread_mutex_lock(&g_lock);
	TAILQ_INSERT_TAIL(&g_bases, b, link);
	pthread_mutex_unlock(&g_lock);
	rc = register_parts(b, part_blocks);
	if (rc != 0) {
		/* The parts registered go (their destructs release the base); with none, now. */
		bool none;

		pthread_mutex_lock(&g_lock);
		none = b->alive == 0;
		if (none)
			TAILQ_REMOVE(&g_bases, b, link);
		pthread_mutex_unlock(&g_lock);
		if (none) {
			mimo_bdev_module_release_bdev(b->bdev);
			mimo_bdev_close(b->desc);
			base_free(b);
		} else {
			delete_parts(b);
		}
	}
	return rc;
}

int bdev_split_delete(const char *base_name)
{
	struct split_base *b;

	pthread_mutex_lock(&g_lock);
	b = find_base_locked(base_name);
	if (b != NULL && b->deleting)
		b = NULL;
	pthread_mutex_unlock(&g_lock);
	if (b == NULL)
		return -ENODEV;
	delete_parts(b);
	return 0;
}

json_t *bdev_split_part_names(const char *base_name)
{
	struct split_base *b;
	json_t *names = NULL;

	pthread_mutex_lock(&g_lock);
	b = find_base_locked(base_name);
	if (b != NULL) {
		names = json_array();
		for (uint32_t i = 0; i < b->count; i++) {
			if (b->parts[i] != NULL)
				json_array_append_new(names, json_string(b->parts[i]->bdev.name));
		}
	}
	pthread_mutex_unlock(&g_lock);
	return names;
}
