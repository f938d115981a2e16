/*
 * raid: the raid's life. Creation opens and claims every base and registers the raid bdev;
 * each reactor's channel holds a channel of every online member. A member leaves when it is
 * deleted (its REMOVE event), when bdev_raid_remove_base_bdev asks, or, in a raid1, when it
 * fails an I/O: it is marked offline (I/O stops choosing it), every channel lets its channel
 * go (once the I/O to it has ended), then the claim is released and the descriptor closed. A
 * raid0 or concat cannot lose a member: it is deleted instead, as is a raid1 losing its last.
 *
 * Control runs on the owner reactor (the one the raid was created on: the RPC reactor); the
 * raid list and the members' names and counters are read by bdev_raid_get_bdevs and
 * bdev_get_bdevs under g_lock.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "compiler.h"
#include "log.h"
#include "raid_internal.h"
#include "uuid.h"
#include "vbdev.h"

#define COMP "raid"

struct mimo_bdev_module g_raid_module = { .name = "raid", .claims_removable = true };

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static TAILQ_HEAD(, raid_bdev) g_raids = TAILQ_HEAD_INITIALIZER(g_raids);
static uint64_t g_next_id = 1;

static const char *const g_level_names[] = {
	[RAID_LEVEL_0] = "raid0",
	[RAID_LEVEL_1] = "raid1",
	[RAID_LEVEL_CONCAT] = "concat",
};

static const char *const g_state_names[] = {
	[RAID_STATE_ONLINE] = "online",
	[RAID_STATE_CONFIGURING] = "configuring",
	[RAID_STATE_OFFLINE] = "offline",
};

MIMO_EXPORT void mimo_register_bdev_raid(void)
{
	g_raid_module.ctx_size = raid_task_size();
	mimo_bdev_module_register(&g_raid_module);
	bdev_raid_rpc_register();
}

/* --- channels ---------------------------------------------------------------------------- */

static struct raid_bdev *raid_of_device(void *io_device)
{
	return (struct raid_bdev *)((char *)io_device - offsetof(struct raid_bdev, io_device));
}

static int channel_create(void *io_device, void *ctx)
{
	struct raid_bdev *raid = raid_of_device(io_device);
	struct raid_channel *ch = ctx;

	ch->raid = raid;
	TAILQ_INIT(&ch->writes);
	STAILQ_INIT(&ch->held);
	/* A channel made while a rebuild's window is locked starts locked (it has no writes in
	 * flight for the rebuild to wait for). */
	ch->lock_end = atomic_load(&raid->win_end);
	ch->lock_start = atomic_load(&raid->win_start);
	ch->locked = ch->lock_end != 0;
	for (uint32_t s = 0; s < raid->nbases; s++) {
		if (!atomic_load(&raid->bases[s].online) &&
		    !atomic_load(&raid->bases[s].rebuilding))
			continue;
		ch->base[s] = raid_lease_get(&raid->bases[s]);
		if (ch->base[s] == NULL) {
			while (s-- > 0)
				raid_channel_drop_base(ch, s);
			return -ENOMEM;
		}
	}
	return 0;
}

static void channel_destroy(void *io_device, void *ctx)
{
	struct raid_bdev *raid = raid_of_device(io_device);
	struct raid_channel *ch = ctx;

	/* No I/O is outstanding on a channel being destroyed: every lease goes now. */
	for (uint32_t s = 0; s < raid->nbases; s++)
		raid_channel_drop_base(ch, s);
}

static struct mimo_io_channel *raid_get_io_channel(void *ctx)
{
	struct raid_bdev *raid = ctx;

	return mimo_get_io_channel(&raid->io_device);
}

/* --- members ----------------------------------------------------------------------------- */

static void base_release(struct raid_base *b)
{
	if (!b->configured)
		return;
	mimo_bdev_module_release_bdev(b->bdev);
	mimo_bdev_close(b->desc);
	pthread_mutex_lock(&g_lock);
	b->configured = false;
	b->desc = NULL;
	b->bdev = NULL;
	b->raid->discovered--;
	pthread_mutex_unlock(&g_lock);
	if (b->raid->registered)
		mimo_bdev_info_changed(&b->raid->bdev);
}

/* Released, and its slot emptied (name null, UUID zero), as SPDK shows a removed member. */
void raid_base_forget(struct raid_base *b)
{
	base_release(b);
	pthread_mutex_lock(&g_lock);
	free(b->name);
	b->name = NULL;
	memset(b->uuid, 0, sizeof(b->uuid));
	b->removing = false;
	pthread_mutex_unlock(&g_lock);
	if (b->raid->registered)
		mimo_bdev_info_changed(&b->raid->bdev);
}

static void raid_free(struct raid_bdev *raid)
{
	for (uint32_t s = 0; s < raid->nbases; s++)
		free(raid->bases[s].name);
	free(raid->bases);
	free(raid->bdev.name);
	free(raid);
}

static void unlist(struct raid_bdev *raid)
{
	pthread_mutex_lock(&g_lock);
	if (raid->listed)
		TAILQ_REMOVE(&g_raids, raid, link);
	raid->listed = false;
	pthread_mutex_unlock(&g_lock);
}

/*
 * Once nothing runs on the raid any more (its bdev unregistered, its channels gone, no member
 * removal or rebuild under way), let its members go: all of them when it was deleted, those
 * that left when it went offline. An offline raid stays (listed, its other members claimed)
 * until they leave or bdev_raid_delete deletes it, as SPDK's does; then it is freed.
 */
void raid_settle(struct raid_bdev *raid)
{
	if (raid->registered || !raid->unregistered || raid->removals > 0 || raid->rebuild != NULL)
		return;
	for (uint32_t s = 0; s < raid->nbases; s++) {
		struct raid_base *b = &raid->bases[s];

		if (raid->state != RAID_STATE_OFFLINE)
			base_release(b);
		else if (b->removing)
			raid_base_forget(b);
	}
	if (raid->state == RAID_STATE_OFFLINE && raid->discovered > 0)
		return;
	unlist(raid);
	raid_free(raid);
}

static void raid_unregistered(void *arg)
{
	struct raid_bdev *raid = arg;

	raid->unregistered = true;
	raid_settle(raid);
}

static int raid_destruct(void *ctx)
{
	struct raid_bdev *raid = ctx;

	if (raid->state != RAID_STATE_OFFLINE)
		unlist(raid);
	raid->registered = false; /* the layer's part of the bdev is gone */
	for (uint32_t s = 0; s < raid->nbases; s++)
		atomic_store(&raid->bases[s].online, false);
	if (raid->rebuild != NULL)
		raid_rebuild_stop(raid);
	mimo_io_device_unregister(&raid->io_device, raid_unregistered, raid);
	return 0;
}

struct removal {
	struct raid_base *base;
	void (*cb)(void *arg, int rc);
	void *arg;
};

static int drop_base(struct mimo_io_channel *ioch, void *arg)
{
	struct removal *rm = arg;

	raid_channel_drop_base(mimo_io_channel_get_ctx(ioch), rm->base->slot);
	return 0;
}

static void removal_drained(void *arg)
{
	struct removal *rm = arg;
	struct raid_base *b = rm->base;
	struct raid_bdev *raid = b->raid;

	MIMO_INFO(COMP,
		  "%s: %s removed from slot %" PRIu32 ", %" PRIu32 " of %" PRIu32 " members left",
		  raid->bdev.name, b->name != NULL ? b->name : "?", b->slot, raid->operational,
		  raid->nbases);
	raid_base_forget(b);
	raid->removals--;
	if (rm->cb != NULL)
		rm->cb(rm->arg, 0);
	free(rm);
	raid_settle(raid);
}

/* Every channel let the member go; the I/O still running through them may hold it a little
 * longer. */
static void removal_done(void *arg, int status)
{
	struct removal *rm = arg;

	(void)status;
	raid_base_when_drained(rm->base, removal_drained, rm);
}

/* The raid cannot go on without b: offline, its bdev deleted (later, if something claims
 * it); b is let go with the bdev, the other members stay claimed. */
static void go_offline(struct raid_base *b)
{
	struct raid_bdev *raid = b->raid;

	MIMO_WARN(COMP, "%s: lost %s, which it cannot do without: offline", raid->bdev.name,
		  b->name);
	pthread_mutex_lock(&g_lock);
	raid->state = RAID_STATE_OFFLINE;
	raid->operational--;
	b->removing = true;
	pthread_mutex_unlock(&g_lock);
	atomic_store(&b->online, false);
	if (raid->registered)
		mimo_bdev_info_changed(&raid->bdev);
	vbdev_delete_after_base_removed(raid->bdev.name);
}

/* On the owner reactor. */
static int remove_base(struct raid_base *b, void (*cb)(void *arg, int rc), void *arg)
{
	struct raid_bdev *raid = b->raid;
	struct removal *rm;

	if (!b->configured || b->removing)
		return -ENODEV;
	if (raid->rebuild != NULL && raid_rebuild_target(raid) == b) {
		raid_rebuild_stop(raid); /* the member being rebuilt: the rebuild ends, it goes */
	} else if (raid->state == RAID_STATE_OFFLINE || !raid->registered) {
		/* No I/O any more: let it go now, or with the bdev when that is still here. */
		if (raid->registered) {
			b->removing = true;
			atomic_store(&b->online, false);
		} else {
			raid_base_forget(b);
			raid_settle(raid);
		}
	} else if (raid->level != RAID_LEVEL_1 || raid->operational <= 1) {
		go_offline(b);
	} else {
		rm = calloc(1, sizeof(*rm));
		if (rm == NULL)
			return -ENOMEM;
		rm->base = b;
		rm->cb = cb;
		rm->arg = arg;
		pthread_mutex_lock(&g_lock);
		b->removing = true;
		raid->operational--;
		pthread_mutex_unlock(&g_lock);
		mimo_bdev_info_changed(&raid->bdev);
		raid->removals++;
		atomic_store(&b->online, false);
		if (mimo_for_each_channel(&raid->io_device, drop_base, rm, removal_done) != 0)
			removal_done(rm, 0); /* no memory to go round: the channels keep theirs */
		return 0;
	}
	if (cb != NULL)
		cb(arg, 0);
	return 0;
}

int bdev_raid_delete_offline(const char *name)
{
	struct raid_bdev *raid, *found = NULL;

	pthread_mutex_lock(&g_lock);
	TAILQ_FOREACH(raid, &g_raids, link)
	{
		if (strcmp(raid->bdev.name, name) == 0)
			found = raid;
	}
	pthread_mutex_unlock(&g_lock);
	if (found == NULL)
		return -ENODEV;
	if (found->registered || !found->unregistered)
		return -EAGAIN; /* its bdev is still there: deleting that deletes the raid */
	for (uint32_t s = 0; s < found->nbases; s++)
		raid_base_forget(&found->bases[s]);
	raid_settle(found);
	return 0;
}

struct failure {
	uint64_t id;
	uint32_t slot;
};

static void failure_msg(void *arg)
{
	struct failure *f = arg;
	struct raid_bdev *raid;

	pthread_mutex_lock(&g_lock);
	TAILQ_FOREACH(raid, &g_raids, link)
	{
		if (raid->id == f->id)
			break;
	}
	pthread_mutex_unlock(&g_lock);
	if (raid != NULL && raid->bases[f->slot].configured && !raid->bases[f->slot].removing) {
		MIMO_WARN(COMP, "%s: member %s failed an I/O: taking it out", raid->bdev.name,
			  raid->bases[f->slot].name);
		remove_base(&raid->bases[f->slot], NULL, NULL);
	}
	free(f);
}

void raid_base_failed(struct raid_bdev *raid, uint32_t slot)
{
	struct failure *f;

	/* Once is enough: the member is already on its way out when it is offline (or, being
	 * rebuilt, no longer rebuilding). */
	if (!atomic_exchange(&raid->bases[slot].online, false) &&
	    !atomic_exchange(&raid->bases[slot].rebuilding, false))
		return;
	f = malloc(sizeof(*f));
	if (f == NULL)
		return;
	f->id = raid->id;
	f->slot = slot;
	if (mimo_reactor_post(raid->owner, failure_msg, f) != 0)
		free(f);
}

static void base_event(enum mimo_bdev_event_type type, struct mimo_bdev *bdev, void *ctx)
{
	struct raid_base *b = ctx;

	(void)bdev;
	if (type != MIMO_BDEV_EVENT_REMOVE)
		return;
	MIMO_INFO(COMP, "%s: member %s is being deleted", b->raid->bdev.name, b->name);
	remove_base(b, NULL, NULL);
}

int raid_base_attach(struct raid_base *b, const char *name)
{
	struct raid_bdev *raid = b->raid;
	struct mimo_bdev_desc *desc;
	struct mimo_bdev *bdev;
	char *copy = strdup(name);
	int rc;

	if (copy == NULL)
		return -ENOMEM;
	rc = mimo_bdev_open(name, true, base_event, b, &desc);
	if (rc != 0) {
		free(copy);
		return rc;
	}
	bdev = mimo_bdev_desc_get_bdev(desc);
	if (mimo_bdev_get_block_size(bdev) != raid->bdev.blocklen ||
	    mimo_bdev_get_num_blocks(bdev) < raid->bdev.blockcnt)
		rc = -EINVAL;
	else
		rc = mimo_bdev_module_claim_bdev(bdev, desc, &g_raid_module);
	if (rc != 0) {
		mimo_bdev_close(desc);
		free(copy);
		return rc;
	}
	pthread_mutex_lock(&g_lock);
	b->name = copy;
	b->desc = desc;
	b->bdev = bdev;
	memcpy(b->uuid, mimo_bdev_get_uuid(bdev), 16);
	b->data_size = raid->bdev.blockcnt;
	b->configured = true;
	raid->discovered++;
	pthread_mutex_unlock(&g_lock);
	return 0;
}

void raid_base_online(struct raid_base *b)
{
	pthread_mutex_lock(&g_lock);
	b->raid->operational++;
	pthread_mutex_unlock(&g_lock);
	atomic_store(&b->online, true);
}

int bdev_raid_add_base(const char *raid_name, const char *base_name)
{
	struct raid_bdev *raid, *found = NULL;

	pthread_mutex_lock(&g_lock);
	TAILQ_FOREACH(raid, &g_raids, link)
	{
		if (strcmp(raid->bdev.name, raid_name) == 0)
			found = raid;
	}
	pthread_mutex_unlock(&g_lock);
	if (found == NULL)
		return -ENODEV;
	if (found->state != RAID_STATE_ONLINE || !found->registered || found->level != RAID_LEVEL_1)
		return -EINVAL;
	return raid_rebuild_start(found, base_name);
}

int bdev_raid_remove_base(const char *base_name, void (*cb)(void *arg, int rc), void *arg)
{
	struct raid_base *found = NULL;
	struct raid_bdev *raid;

	pthread_mutex_lock(&g_lock);
	TAILQ_FOREACH(raid, &g_raids, link)
	{
		for (uint32_t s = 0; s < raid->nbases && found == NULL; s++) {
			struct raid_base *b = &raid->bases[s];

			if (b->configured && b->name != NULL && strcmp(b->name, base_name) == 0)
				found = b;
		}
	}
	pthread_mutex_unlock(&g_lock);
	return found != NULL ? remove_base(found, cb, arg) : -ENODEV;
}

int bdev_raid_free_slot(const char *name, enum raid_state *state)
{
	struct raid_bdev *raid;
	int rc = -ENODEV;

	pthread_mutex_lock(&g_lock);
	TAILQ_FOREACH(raid, &g_raids, link)
	{
		if (strcmp(raid->bdev.name, name) != 0)
			continue;
		*state = raid->state;
		rc = -ENOSPC;
		for (uint32_t s = 0; s < raid->nbases; s++) {
			if (raid->bases[s].name == NULL)
				rc = 0;
		}
	}
	pthread_mutex_unlock(&g_lock);
	return rc;
}

/* --- JSON -------------------------------------------------------------------------------- */

static json_t *info_json_locked(struct raid_bdev *raid)
{
	char uuid[MIMO_UUID_STR_LEN];
	json_t *list = json_array(), *info;

	for (uint32_t s = 0; s < raid->nbases; s++) {
		struct raid_base *b = &raid->bases[s];

		mimo_uuid_format(b->uuid, uuid);
		json_array_append_new(
			list, json_pack("{s:o, s:s, s:b, s:I, s:I}", "name",
					b->name != NULL ? json_string(b->name) : json_null(),
					"uuid", uuid, "is_configured", b->configured, "data_offset",
					(json_int_t)0, "data_size",
					(json_int_t)(b->configured ? b->data_size : 0)));
	}
	mimo_uuid_format(raid->bdev.uuid, uuid);
	info = json_pack("{s:s, s:s, s:i, s:s, s:s, s:b, s:i, s:i, s:i}", "name", raid->bdev.name,
			 "uuid", uuid, "strip_size_kb", (int)raid->strip_size_kb, "state",
			 g_state_names[raid->state], "raid_level", g_level_names[raid->level],
			 "superblock", false, "num_base_bdevs", (int)raid->nbases,
			 "num_base_bdevs_discovered", (int)raid->discovered,
			 "num_base_bdevs_operational", (int)raid->operational);
	if (raid->rebuild != NULL)
		json_object_set_new(info, "process", raid_rebuild_json(raid));
	json_object_set_new(info, "base_bdevs_list", list);
	return info;
}

json_t *bdev_raid_list_json(int state)
{
	json_t *arr = json_array();
	struct raid_bdev *raid;

	pthread_mutex_lock(&g_lock);
	TAILQ_FOREACH(raid, &g_raids, link)
	{
		if (state < 0 || state == (int)raid->state)
			json_array_append_new(arr, info_json_locked(raid));
	}
	pthread_mutex_unlock(&g_lock);
	return arr;
}

static void raid_dump_info(void *ctx, json_t *driver)
{
	struct raid_bdev *raid = ctx;
	json_t *info;

	pthread_mutex_lock(&g_lock);
	info = info_json_locked(raid);
	pthread_mutex_unlock(&g_lock);
	/* SPDK's driver_specific.raid has everything but the name. */
	json_object_del(info, "name");
	json_object_set_new(driver, "raid", info);
}

static void raid_write_config(struct mimo_bdev *bdev, json_t *config)
{
	struct raid_bdev *raid = bdev->ctxt;
	char uuid[MIMO_UUID_STR_LEN];
	json_t *bases = json_array(), *params;

	pthread_mutex_lock(&g_lock);
	for (uint32_t s = 0; s < raid->nbases; s++) {
		char removed[32];

		/* SPDK's name for an empty slot: a replay waits for it in vain, as SPDK's does. */
		snprintf(removed, sizeof(removed), "removed_base_bdev_%" PRIu32, s);
		json_array_append_new(
			bases,
			json_string(raid->bases[s].name != NULL ? raid->bases[s].name : removed));
	}
	pthread_mutex_unlock(&g_lock);
	mimo_uuid_format(bdev->uuid, uuid);
	params = json_pack("{s:s, s:s}", "name", bdev->name, "uuid", uuid);
	if (raid->strip_size_kb != 0)
		json_object_set_new(params, "strip_size_kb", json_integer(raid->strip_size_kb));
	json_object_set_new(params, "raid_level", json_string(g_level_names[raid->level]));
	json_object_set_new(params, "base_bdevs", bases);
	json_array_append_new(
		config, json_pack("{s:s, s:o}", "method", "bdev_raid_create", "params", params));
}

static bool raid_io_type_supported(void *ctx, enum mimo_bdev_io_type type)
{
	struct raid_bdev *raid = ctx;

	return type < MIMO_BDEV_IO_NUM_TYPES && raid->io_supported[type];
}

static const struct mimo_bdev_fn_table raid_fn_table = {
	.destruct = raid_destruct,
	.submit_request = raid_submit,
	.io_type_supported = raid_io_type_supported,
	.get_io_channel = raid_get_io_channel,
	.dump_info_json = raid_dump_info,
	.write_config_json = raid_write_config,
};

/* --- creation ---------------------------------------------------------------------------- */

static int open_bases(struct raid_bdev *raid, char *const *names, const char **bad)
{
	for (uint32_t s = 0; s < raid->nbases; s++) {
		struct raid_base *b = &raid->bases[s];
		int rc;

		b->raid = raid;
		b->slot = s;
		*bad = names[s];
		for (uint32_t o = 0; o < s; o++) {
			if (strcmp(names[o], names[s]) == 0)
				return -EINVAL;
		}
		b->name = strdup(names[s]);
		if (b->name == NULL)
			return -ENOMEM;
		rc = mimo_bdev_open(names[s], true, base_event, b, &b->desc);
		if (rc != 0)
			return rc;
		b->bdev = mimo_bdev_desc_get_bdev(b->desc);
		rc = mimo_bdev_module_claim_bdev(b->bdev, b->desc, &g_raid_module);
		if (rc != 0) {
			mimo_bdev_close(b->desc);
			return rc;
		}
		b->configured = true;
		raid->discovered++;
		memcpy(b->uuid, mimo_bdev_get_uuid(b->bdev), 16);
		if (mimo_bdev_get_block_size(b->bdev) !=
		    mimo_bdev_get_block_size(raid->bases[0].bdev))
			return -EINVAL;
	}
	*bad = NULL;
	return 0;
}

/* The raid's geometry from its members'. */
static int lay_out(struct raid_bdev *raid)
{
	uint32_t bs = mimo_bdev_get_block_size(raid->bases[0].bdev);
	uint64_t min = UINT64_MAX, total = 0;

	if (raid->level != RAID_LEVEL_1) {
		raid->strip_blocks = (uint64_t)raid->strip_size_kb * 1024 / bs;
		if (raid->strip_blocks == 0)
			return -EINVAL; /* a strip smaller than a block */
		raid->strip_shift = (uint32_t)__builtin_ctzll(raid->strip_blocks);
	}
	for (uint32_t s = 0; s < raid->nbases; s++) {
		uint64_t n = mimo_bdev_get_num_blocks(raid->bases[s].bdev);

		if (n < min)
			min = n;
	}
	for (uint32_t s = 0; s < raid->nbases; s++) {
		struct raid_base *b = &raid->bases[s];
		uint64_t n = mimo_bdev_get_num_blocks(b->bdev);

		switch (raid->level) {
		case RAID_LEVEL_0: /* every member as large as the smallest, in whole strips */
			b->data_size = (min >> raid->strip_shift) << raid->strip_shift;
			break;
		case RAID_LEVEL_1:
			b->data_size = min;
			break;
		case RAID_LEVEL_CONCAT: /* each member whole, in whole strips */
			b->data_size = (n >> raid->strip_shift) << raid->strip_shift;
			b->start = total;
			break;
		}
		total += b->data_size;
	}
	raid->bdev.blocklen = bs;
	raid->bdev.blockcnt = raid->level == RAID_LEVEL_1 ? min : total;
	for (int t = 0; t < MIMO_BDEV_IO_NUM_TYPES; t++) {
		raid->io_supported[t] = true;
		for (uint32_t s = 0; s < raid->nbases; s++)
			raid->io_supported[t] &=
				mimo_bdev_io_type_supported(raid->bases[s].bdev, t);
	}
	return raid->bdev.blockcnt > 0 ? 0 : -EINVAL;
}

static void unwind(struct raid_bdev *raid)
{
	for (uint32_t s = 0; s < raid->nbases; s++)
		base_release(&raid->bases[s]);
	raid_free(raid);
}

int bdev_raid_create(const char *name, uint32_t strip_size_kb, enum raid_level level,
		     char *const *bases, uint32_t nbases, const uint8_t *uuid, const char **bad)
{
	struct raid_bdev *raid;
	int rc;

	*bad = NULL;
	if (nbases == 0 || nbases > RAID_MAX_BASES || (level == RAID_LEVEL_1 && nbases < 2))
		return -EINVAL;
	if (level == RAID_LEVEL_1 ? strip_size_kb != 0
				  : strip_size_kb == 0 || (strip_size_kb & (strip_size_kb - 1)))
		return -EINVAL;
	if (mimo_bdev_get_by_name(name) != NULL)
		return -EEXIST;
	raid = calloc(1, sizeof(*raid));
	if (raid == NULL)
		return -ENOMEM;
	raid->bases = calloc(nbases, sizeof(*raid->bases));
	raid->bdev.name = strdup(name);
	if (raid->bases == NULL || raid->bdev.name == NULL) {
		free(raid->bases);
		free(raid->bdev.name);
		free(raid);
		return -ENOMEM;
	}
	raid->level = level;
	raid->strip_size_kb = strip_size_kb;
	raid->nbases = nbases;
	raid->owner = mimo_reactor_current();
	rc = open_bases(raid, bases, bad);
	if (rc == 0)
		rc = lay_out(raid);
	if (rc != 0) {
		unwind(raid);
		return rc;
	}
	for (uint32_t s = 0; s < nbases; s++)
		atomic_store(&raid->bases[s].online, true);
	raid->operational = nbases;
	raid->bdev.product_name = "Raid Volume";
	raid->bdev.buf_align = mimo_bdev_get_buf_align(raid->bases[0].bdev);
	if (uuid != NULL)
		memcpy(raid->bdev.uuid, uuid, 16);
	raid->bdev.ctxt = raid;
	raid->bdev.fn_table = &raid_fn_table;
	raid->bdev.module = &g_raid_module;
	mimo_io_device_register(&raid->io_device, channel_create, channel_destroy,
				sizeof(struct raid_channel) + nbases * sizeof(struct raid_lease *),
				name);
	pthread_mutex_lock(&g_lock);
	raid->id = g_next_id++;
	raid->listed = true;
	TAILQ_INSERT_TAIL(&g_raids, raid, link);
	pthread_mutex_unlock(&g_lock);
	rc = mimo_bdev_register(&raid->bdev);
	raid->registered = rc == 0;
	if (rc != 0) {
		unlist(raid);
		mimo_io_device_unregister(&raid->io_device, NULL, NULL);
		unwind(raid);
	}
	return rc;
}
