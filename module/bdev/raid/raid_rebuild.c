/*
 * The rebuild of a raid1 onto a member put into its empty slot (bdev_raid_add_base_bdev): a
 * background process on the owner reactor copies the raid's blocks from an online member to
 * the new one, one window at a time, while I/O goes on.
 *
 * Reads never go to the new member until it is whole. Writes go to it where the copy has
 * passed (below rebuilt_upto), since the copy will not come back there. The window being
 * copied is locked: every channel holds the writes that would land in it, and the copy waits
 * for the writes already in flight there to end (so the blocks it reads are final); once the
 * window is written to the new member, rebuilt_upto moves past it and the held writes go, to
 * the new member too. Writes beyond the window need nothing: the copy reads them later.
 *
 * The window is bdev_raid_set_options' process_window_size_kb, and its
 * process_max_bandwidth_mb_sec (0: none) spaces the windows out. When the new member fails or
 * leaves, the rebuild stops and it is let go; when the source fails, the next online member is
 * read; the raid's deletion stops it too.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bdev_rpc.h"
#include "log.h"
#include "raid_internal.h"

#define COMP "raid"

struct raid_rebuild {
	struct raid_bdev *raid;
	struct raid_base *target;
	uint64_t window; /* blocks */
	uint64_t max_bytes_per_sec;
	uint64_t started_us, bytes_done;
	void *buf;
	struct mimo_io_channel *dst_ch;
	struct mimo_io_channel *src_ch;
	uint32_t source;
	_Atomic int quiesce_wait; /* channels (+1 while locking) whose writes are awaited */
	bool stopping, failed, paused;
	struct mimo_poller *pause;
};

static void next_window(struct raid_rebuild *rb);
static void stop_now(struct raid_rebuild *rb);

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

struct raid_base *raid_rebuild_target(struct raid_bdev *raid)
{
	return raid->rebuild != NULL ? raid->rebuild->target : NULL;
}

json_t *raid_rebuild_json(struct raid_bdev *raid)
{
	struct raid_rebuild *rb = raid->rebuild;
	uint64_t done = atomic_load(&raid->rebuilt_upto);

	if (rb == NULL)
		return NULL;
	return json_pack("{s:s, s:s, s:{s:I, s:i}}", "type", "rebuild", "target",
			 rb->target->name != NULL ? rb->target->name : "", "progress", "blocks",
			 (json_int_t)done, "percent", (int)(done * 100 / raid->bdev.blockcnt));
}

/* --- the window's lock --------------------------------------------------------------------- */

static void quiesced_one(struct raid_rebuild *rb);

static void quiesced_msg(void *arg)
{
	struct raid_bdev *raid = arg;

	quiesced_one(raid->rebuild);
}

void raid_rebuild_quiesced(struct raid_bdev *raid)
{
	/* From a channel's reactor: the rebuild lives until it has heard from every one. */
	mimo_reactor_post(raid->owner, quiesced_msg, raid);
}

static int lock_channel(struct mimo_io_channel *ioch, void *arg)
{
	struct raid_rebuild *rb = arg;
	struct raid_channel *ch = mimo_io_channel_get_ctx(ioch);
	struct raid_bdev *raid = rb->raid;

	ch->lock_start = atomic_load(&raid->win_start);
	ch->lock_end = atomic_load(&raid->win_end);
	ch->locked = true;
	ch->quiesce_left = raid_channel_writes_in(ch, ch->lock_start, ch->lock_end);
	if (ch->quiesce_left > 0)
		atomic_fetch_add(&rb->quiesce_wait, 1);
	return 0;
}

static int unlock_channel(struct mimo_io_channel *ioch, void *arg)
{
	struct raid_channel *ch = mimo_io_channel_get_ctx(ioch);

	(void)arg;
	ch->locked = false;
	ch->quiesce_left = 0;
	raid_channel_release_held(ch);
	return 0;
}

static void unlocked(void *arg, int status)
{
	struct raid_rebuild *rb = arg;

	(void)status;
	next_window(rb);
}

static void unlock(struct raid_rebuild *rb)
{
	atomic_store(&rb->raid->win_end, 0);
	if (mimo_for_each_channel(&rb->raid->io_device, unlock_channel, rb, unlocked) != 0) {
		rb->failed = true; /* no memory to go round: give up, channels stay locked */
		next_window(rb);
	}
}

/* --- the copy ------------------------------------------------------------------------------ */

static void written(struct mimo_bdev_io *io, bool success, void *arg)
{
	struct raid_rebuild *rb = arg;
	struct raid_bdev *raid = rb->raid;

	mimo_bdev_free_io(io);
	if (!success) {
		MIMO_ERR(COMP, "%s: rebuild: writing to %s failed", raid->bdev.name,
			 rb->target->name);
		rb->failed = true;
	} else {
		uint64_t end = atomic_load(&raid->win_end);

		rb->bytes_done += (end - atomic_load(&raid->win_start)) * raid->bdev.blocklen;
		atomic_store(&raid->rebuilt_upto, end);
	}
	unlock(rb);
}

static void read_done(struct mimo_bdev_io *io, bool success, void *arg)
{
	struct raid_rebuild *rb = arg;
	struct raid_bdev *raid = rb->raid;
	uint64_t start = atomic_load(&raid->win_start), end = atomic_load(&raid->win_end);
	int rc;

	mimo_bdev_free_io(io);
	mimo_put_io_channel(rb->src_ch);
	rb->src_ch = NULL;
	if (!success) {
		/* The source is taken out; the window is tried again from another member. */
		raid_base_failed(raid, rb->source);
		unlock(rb);
		return;
	}
	rc = mimo_bdev_write_blocks(rb->target->desc, rb->dst_ch, rb->buf, start, end - start,
				    written, rb);
	if (rc != 0) {
		rb->failed = true;
		unlock(rb);
	}
}

static void copy(struct raid_rebuild *rb)
{
	struct raid_bdev *raid = rb->raid;
	uint64_t start = atomic_load(&raid->win_start), end = atomic_load(&raid->win_end);
	int rc = -ENODEV;

	for (uint32_t s = 0; s < raid->nbases && rb->src_ch == NULL && !rb->stopping; s++) {
		if (!atomic_load(&raid->bases[s].online) || raid->bases[s].removing)
			continue;
		rb->source = s;
		rb->src_ch = mimo_bdev_get_io_channel(raid->bases[s].desc);
	}
	if (rb->src_ch != NULL) {
		rc = mimo_bdev_read_blocks(raid->bases[rb->source].desc, rb->src_ch, rb->buf, start,
					   end - start, read_done, rb);
		if (rc != 0) {
			mimo_put_io_channel(rb->src_ch);
			rb->src_ch = NULL;
		}
	}
	if (rc != 0) {
		if (!rb->stopping)
			MIMO_ERR(COMP, "%s: rebuild: no member to read from", raid->bdev.name);
		rb->failed = true;
		unlock(rb);
	}
}

static void quiesced_one(struct raid_rebuild *rb)
{
	if (atomic_fetch_sub(&rb->quiesce_wait, 1) == 1)
		copy(rb);
}

static void locked(void *arg, int status)
{
	(void)status;
	quiesced_one(arg);
}

static int resume(void *arg)
{
	struct raid_rebuild *rb = arg;

	mimo_poller_unregister(&rb->pause);
	rb->paused = false;
	next_window(rb);
	return 1;
}

/* --- the process --------------------------------------------------------------------------- */

static void finish(struct raid_rebuild *rb)
{
	struct raid_bdev *raid = rb->raid;

	MIMO_INFO(COMP, "%s: %s rebuilt", raid->bdev.name, rb->target->name);
	mimo_put_io_channel(rb->dst_ch);
	atomic_store(&rb->target->rebuilding, false);
	raid_base_online(rb->target);
	raid->rebuild = NULL;
	if (raid->registered)
		mimo_bdev_info_changed(&raid->bdev);
	free(rb->buf);
	free(rb);
	raid_settle(raid);
}

static void next_window(struct raid_rebuild *rb)
{
	struct raid_bdev *raid = rb->raid;
	uint64_t start = atomic_load(&raid->rebuilt_upto), end;

	if (rb->stopping || rb->failed) {
		stop_now(rb);
		return;
	}
	if (start >= raid->bdev.blockcnt) {
		finish(rb);
		return;
	}
	if (rb->max_bytes_per_sec != 0) {
		/* Not ahead of the bandwidth allowed: wait for the time the bytes so far take. */
		uint64_t due = rb->started_us + rb->bytes_done * 1000000 / rb->max_bytes_per_sec;
		uint64_t now = now_us();

		if (due > now) {
			rb->pause = mimo_poller_register(resume, rb, due - now);
			if (rb->pause != NULL) {
				rb->paused = true;
				return;
			}
		}
	}
	end = start + rb->window < raid->bdev.blockcnt ? start + rb->window : raid->bdev.blockcnt;
	atomic_store(&raid->win_start, start);
	atomic_store(&raid->win_end, end);
	atomic_store(&rb->quiesce_wait, 1); /* held while the channels are gone round */
	if (mimo_for_each_channel(&raid->io_device, lock_channel, rb, locked) != 0) {
		atomic_store(&raid->win_end, 0);
		stop_now(rb);
	}
}

static int drop_target(struct mimo_io_channel *ioch, void *arg)
{
	struct raid_rebuild *rb = arg;

	raid_channel_drop_base(mimo_io_channel_get_ctx(ioch), rb->target->slot);
	return 0;
}

static void target_drained(void *arg)
{
	struct raid_rebuild *rb = arg;
	struct raid_bdev *raid = rb->raid;

	mimo_put_io_channel(rb->dst_ch);
	raid->rebuild = NULL;
	raid_base_forget(rb->target);
	free(rb->buf);
	free(rb);
	raid_settle(raid);
}

static void target_dropped(void *arg, int status)
{
	struct raid_rebuild *rb = arg;

	(void)status;
	raid_base_when_drained(rb->target, target_drained, rb);
}

/* The rebuild ends without the new member: every channel lets it go, then it is released. */
static void stop_now(struct raid_rebuild *rb)
{
	MIMO_WARN(COMP, "%s: rebuild onto %s stopped", rb->raid->bdev.name, rb->target->name);
	atomic_store(&rb->target->rebuilding, false);
	/* A raid whose bdev is gone has no channels left to hold the member. */
	if (!rb->raid->registered ||
	    mimo_for_each_channel(&rb->raid->io_device, drop_target, rb, target_dropped) != 0)
		target_dropped(rb, 0);
}

void raid_rebuild_stop(struct raid_bdev *raid)
{
	struct raid_rebuild *rb = raid->rebuild;

	if (rb == NULL || rb->stopping)
		return;
	rb->stopping = true;
	atomic_store(&rb->target->rebuilding, false);
	if (rb->paused) { /* between windows: nothing in flight to wait for */
		mimo_poller_unregister(&rb->pause);
		rb->paused = false;
		stop_now(rb);
	}
	/* Otherwise the step under way sees it when it ends. */
}

static int add_target(struct mimo_io_channel *ioch, void *arg)
{
	struct raid_rebuild *rb = arg;
	struct raid_channel *ch = mimo_io_channel_get_ctx(ioch);
	uint32_t slot = rb->target->slot;

	/* The member that left the slot let it go already (its lease may still be retiring). */
	if (ch->base[slot] == NULL)
		ch->base[slot] = raid_lease_get(rb->target);
	/* A channel that cannot write to the new member would leave it with stale blocks. */
	return ch->base[slot] != NULL ? 0 : -ENOMEM;
}

static void target_added(void *arg, int status)
{
	struct raid_rebuild *rb = arg;

	if (status != 0)
		rb->failed = true;
	next_window(rb);
}

int raid_rebuild_start(struct raid_bdev *raid, const char *base_name)
{
	struct raid_base *slot = NULL;
	struct raid_rebuild *rb;
	uint32_t window_kb, max_mb;
	int rc;

	if (raid->rebuild != NULL)
		return -EBUSY;
	for (uint32_t s = 0; s < raid->nbases && slot == NULL; s++) {
		struct raid_base *b = &raid->bases[s];

		if (b->name == NULL && !b->configured && !b->removing)
			slot = b;
	}
	if (slot == NULL)
		return -ENOSPC;
	rb = calloc(1, sizeof(*rb));
	if (rb == NULL)
		return -ENOMEM;
	bdev_raid_process_opts(&window_kb, &max_mb);
	rb->window = (uint64_t)window_kb * 1024 / raid->bdev.blocklen;
	if (rb->window == 0)
		rb->window = 1;
	rb->max_bytes_per_sec = (uint64_t)max_mb << 20;
	rb->buf = malloc(rb->window * raid->bdev.blocklen);
	if (rb->buf == NULL) {
		free(rb);
		return -ENOMEM;
	}
	rc = raid_base_attach(slot, base_name);
	if (rc != 0) {
		free(rb->buf);
		free(rb);
		return rc;
	}
	rb->dst_ch = mimo_bdev_get_io_channel(slot->desc);
	if (rb->dst_ch == NULL) {
		raid_base_forget(slot);
		free(rb->buf);
		free(rb);
		return -ENOMEM;
	}
	rb->raid = raid;
	rb->target = slot;
	rb->started_us = now_us();
	raid->rebuild = rb;
	atomic_store(&raid->rebuilt_upto, 0);
	atomic_store(&slot->rebuilding, true);
	MIMO_INFO(COMP, "%s: rebuilding onto %s (slot %" PRIu32 ")", raid->bdev.name, base_name,
		  slot->slot);
	if (raid->registered)
		mimo_bdev_info_changed(&raid->bdev);
	if (mimo_for_each_channel(&raid->io_device, add_target, rb, target_added) != 0) {
		rb->failed = true;
		target_added(rb, 0);
	}
	return 0;
}
