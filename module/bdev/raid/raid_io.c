/*
 * The raid's data path: an I/O of the raid becomes child I/Os of its members.
 *
 * raid0 cuts the range at strip boundaries: strip s of the raid is strip s / n of member
 * s % n. concat cuts it at member boundaries: the members follow one another. raid1 reads
 * from one online member (round robin), and from another when that one fails; it writes,
 * unmaps and flushes to every online member, succeeds when one of them did, and takes a
 * member that failed out of the raid (degraded). Flush and reset go to every member. While a
 * raid1 is rebuilt onto a new member, its writes also go to that member below the copy's
 * progress, and wait while their range is the window being copied (raid_rebuild.c).
 *
 * A task counts its children: one extra count held while they are submitted, so that a child
 * completing at once cannot complete the raid I/O before the last one is out.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "raid_internal.h"
#include "vbdev.h"

struct raid_task {
	struct raid_channel *ch;
	uint32_t remaining;
	int status;	/* the first error */
	uint32_t ok;	/* raid1 writes: members that succeeded */
	uint64_t tried; /* raid1 reads: members tried */
	bool tracked;	/* on ch->writes (raid1 writes, for a rebuild's window) */
	TAILQ_ENTRY(raid_task) wlink;
};

struct raid_child {
	struct mimo_bdev_io *parent;
	struct raid_lease *lease;
	uint32_t slot;
	int iovcnt;
	struct iovec iov[];
};

size_t raid_task_size(void)
{
	return sizeof(struct raid_task);
}

static bool usable(struct raid_channel *ch, uint32_t slot)
{
	return ch->base[slot] != NULL && atomic_load(&ch->raid->bases[slot].online);
}

/* A raid1 write goes to a member being rebuilt too where the rebuild has already copied. */
static bool rebuilt_for(struct raid_channel *ch, uint32_t slot, struct mimo_bdev_io *io)
{
	struct raid_bdev *raid = ch->raid;

	return ch->base[slot] != NULL && atomic_load(&raid->bases[slot].rebuilding) &&
	       io->offset_blocks < atomic_load(&raid->rebuilt_upto);
}

static bool write_like(enum mimo_bdev_io_type type)
{
	return type == MIMO_BDEV_IO_WRITE || type == MIMO_BDEV_IO_UNMAP ||
	       type == MIMO_BDEV_IO_WRITE_ZEROES;
}

uint32_t raid_channel_writes_in(struct raid_channel *ch, uint64_t start, uint64_t end)
{
	struct raid_task *t;
	uint32_t n = 0;

	TAILQ_FOREACH(t, &ch->writes, wlink)
	{
		struct mimo_bdev_io *io = mimo_bdev_io_from_ctx(t);

		n += raid_overlaps(io->offset_blocks, io->num_blocks, start, end);
	}
	return n;
}

void raid_channel_release_held(struct raid_channel *ch)
{
	struct raid_io_list held = STAILQ_HEAD_INITIALIZER(held);
	struct mimo_io_channel *ioch = mimo_io_channel_from_ctx(ch);
	struct mimo_bdev_io *io;

	STAILQ_CONCAT(&held, &ch->held);
	while ((io = STAILQ_FIRST(&held)) != NULL) {
		STAILQ_REMOVE_HEAD(&held, link);
		raid_submit(ioch, io);
	}
}

struct raid_lease *raid_lease_get(struct raid_base *b)
{
	struct raid_lease *l = calloc(1, sizeof(*l));

	if (l == NULL)
		return NULL;
	l->base = b;
	l->ch = mimo_bdev_get_io_channel(b->desc);
	if (l->ch == NULL) {
		free(l);
		return NULL;
	}
	atomic_fetch_add(&b->leases, 1);
	return l;
}

static void drained_msg(void *arg)
{
	struct raid_base *b = arg;

	b->drained(b->drained_arg);
}

static void lease_free(struct raid_lease *l)
{
	struct raid_base *b = l->base;

	mimo_put_io_channel(l->ch);
	free(l);
	/* The last lease of a member waiting to be released: the owner goes on. */
	if (atomic_fetch_sub(&b->leases, 1) == 1 && atomic_exchange(&b->drain_pending, false))
		mimo_reactor_post(b->raid->owner, drained_msg, b);
}

void raid_base_when_drained(struct raid_base *b, void (*fn)(void *arg), void *arg)
{
	b->drained = fn;
	b->drained_arg = arg;
	atomic_store(&b->drain_pending, true);
	/* Whoever takes the pending flag back runs fn: here, or the last lease_free. */
	if (atomic_load(&b->leases) == 0 && atomic_exchange(&b->drain_pending, false))
		fn(arg);
}

void raid_channel_drop_base(struct raid_channel *ch, uint32_t slot)
{
	struct raid_lease *l = ch->base[slot];

	if (l == NULL)
		return;
	ch->base[slot] = NULL;
	if (l->inflight > 0)
		l->retired = true; /* the last of its I/O frees it */
	else
		lease_free(l);
}

static void task_put(struct mimo_bdev_io *io)
{
	struct raid_task *t = mimo_bdev_io_driver_ctx(io);
	int status = t->status;

	struct raid_channel *ch = t->ch;

	if (--t->remaining > 0)
		return;
	if (ch->raid->level == RAID_LEVEL_1 && io->type != MIMO_BDEV_IO_READ)
		status = t->ok > 0 ? 0 : (status != 0 ? status : -EIO);
	if (t->tracked) {
		TAILQ_REMOVE(&ch->writes, t, wlink);
		/* A rebuild waits for the writes that were in flight in its window. */
		if (ch->quiesce_left > 0 &&
		    raid_overlaps(io->offset_blocks, io->num_blocks, ch->lock_start,
				  ch->lock_end) &&
		    --ch->quiesce_left == 0)
			raid_rebuild_quiesced(ch->raid);
	}
	mimo_bdev_io_complete(io, status);
}

static int submit_child(struct mimo_bdev_io *io, uint32_t slot, size_t byte_off, size_t byte_len,
			uint64_t base_off, uint64_t num);

static void raid1_read_next(struct mimo_bdev_io *io);

static void child_done(struct mimo_bdev_io *cio, bool success, void *arg)
{
	struct raid_child *c = arg;
	struct mimo_bdev_io *io = c->parent;
	struct raid_task *t = mimo_bdev_io_driver_ctx(io);
	struct raid_channel *ch = t->ch;
	struct raid_lease *l = c->lease;
	int status = success ? 0 : mimo_bdev_io_get_status(cio);
	uint32_t slot = c->slot;

	mimo_bdev_free_io(cio);
	free(c);
	if (--l->inflight == 0 && l->retired)
		lease_free(l);
	if (ch->raid->level == RAID_LEVEL_1 && status != 0 && status != -ENOMEM)
		raid_base_failed(ch->raid, slot);
	if (ch->raid->level == RAID_LEVEL_1 && io->type == MIMO_BDEV_IO_READ && status != 0) {
		/* Another member may have the data. */
		t->status = status;
		raid1_read_next(io);
		task_put(io);
		return;
	}
	if (status == 0 && !atomic_load(&ch->raid->bases[slot].rebuilding))
		t->ok++; /* a member being rebuilt cannot serve the data yet */
	else if (t->status == 0)
		t->status = status;
	task_put(io);
}

/* A child for member slot: bytes [byte_off, +byte_len) of the raid I/O's data (reads and
 * writes), blocks [base_off, +num) of the member. 0, or the error (nothing submitted). */
static int submit_child(struct mimo_bdev_io *io, uint32_t slot, size_t byte_off, size_t byte_len,
			uint64_t base_off, uint64_t num)
{
	struct raid_task *t = mimo_bdev_io_driver_ctx(io);
	struct raid_channel *ch = t->ch;
	struct raid_bdev *raid = ch->raid;
	bool data = io->type == MIMO_BDEV_IO_READ || io->type == MIMO_BDEV_IO_WRITE;
	int n = data ? vbdev_iov_count(io->iovs, io->iovcnt, byte_off, byte_len) : 0;
	struct raid_child *c;
	int rc;

	if (!usable(ch, slot) && !rebuilt_for(ch, slot, io))
		return -ENODEV;
	c = malloc(sizeof(*c) + (size_t)n * sizeof(struct iovec));
	if (c == NULL)
		return -ENOMEM;
	c->parent = io;
	c->slot = slot;
	c->iovcnt = data ? vbdev_iov_slice(io->iovs, io->iovcnt, byte_off, byte_len, c->iov, n) : 0;
	if (c->iovcnt < 0) {
		free(c);
		return -EINVAL;
	}
	c->lease = ch->base[slot];
	t->remaining++;
	c->lease->inflight++;
	rc = vbdev_submit(raid->bases[slot].desc, c->lease->ch, io->type, c->iov, c->iovcnt,
			  base_off, num, child_done, c);
	if (rc != 0) {
		t->remaining--;
		c->lease->inflight--;
		free(c);
	}
	return rc;
}

/* raid0 and concat: the range cut where it changes member. */
static void submit_striped(struct mimo_bdev_io *io)
{
	struct raid_task *t = mimo_bdev_io_driver_ctx(io);
	struct raid_bdev *raid = t->ch->raid;
	uint64_t off = io->offset_blocks, left = io->num_blocks;
	uint32_t bs = raid->bdev.blocklen;

	while (left > 0 && t->status == 0) {
		uint64_t len, base_off;
		uint32_t slot;
		int rc;

		if (raid->level == RAID_LEVEL_0) {
			uint64_t strip = off >> raid->strip_shift;
			uint64_t in_strip = off & (raid->strip_blocks - 1);

			slot = (uint32_t)(strip % raid->nbases);
			base_off = ((strip / raid->nbases) << raid->strip_shift) + in_strip;
			len = raid->strip_blocks - in_strip;
		} else {
			slot = 0;
			while (slot + 1 < raid->nbases && off >= raid->bases[slot + 1].start)
				slot++;
			base_off = off - raid->bases[slot].start;
			len = raid->bases[slot].data_size - base_off;
		}
		if (len > left)
			len = left;
		rc = submit_child(io, slot, (off - io->offset_blocks) * bs, len * bs, base_off,
				  len);
		if (rc != 0)
			t->status = rc;
		off += len;
		left -= len;
	}
}

/* Every online member gets the same range (raid1 writes; flush and reset everywhere). */
static void submit_to_all(struct mimo_bdev_io *io)
{
	struct raid_task *t = mimo_bdev_io_driver_ctx(io);
	struct raid_bdev *raid = t->ch->raid;
	uint32_t bs = raid->bdev.blocklen;

	for (uint32_t s = 0; s < raid->nbases; s++) {
		uint64_t off = io->offset_blocks, num = io->num_blocks;
		int rc;

		if (!usable(t->ch, s) && !rebuilt_for(t->ch, s, io))
			continue;
		if (raid->level != RAID_LEVEL_1 && io->type == MIMO_BDEV_IO_FLUSH) {
			/* A flush of the raid flushes each member whole. */
			off = 0;
			num = raid->bases[s].data_size;
		}
		rc = submit_child(io, s, 0, io->num_blocks * bs, off, num);
		if (rc == 0)
			continue;
		if (raid->level == RAID_LEVEL_1 && rc != -ENOMEM)
			raid_base_failed(raid, s);
		if (t->status == 0)
			t->status = rc;
	}
}

/* raid1: read from the next online member not tried yet; the status stays when none is
 * left. */
static void raid1_read_next(struct mimo_bdev_io *io)
{
	struct raid_task *t = mimo_bdev_io_driver_ctx(io);
	struct raid_channel *ch = t->ch;
	uint32_t n = ch->raid->nbases;

	for (uint32_t i = 0; i < n; i++) {
		uint32_t s = (ch->next_read + i) % n;

		if ((t->tried & (1ULL << s)) || !usable(ch, s))
			continue;
		t->tried |= 1ULL << s;
		if (submit_child(io, s, 0, io->num_blocks * ch->raid->bdev.blocklen,
				 io->offset_blocks, io->num_blocks) == 0) {
			ch->next_read = s + 1;
			t->status = 0;
			return;
		}
	}
	if (t->status == 0)
		t->status = -EIO;
}

void raid_submit(struct mimo_io_channel *ioch, struct mimo_bdev_io *io)
{
	struct raid_channel *ch = mimo_io_channel_get_ctx(ioch);
	struct raid_task *t = mimo_bdev_io_driver_ctx(io);
	struct raid_bdev *raid = ch->raid;

	memset(t, 0, sizeof(*t));
	t->ch = ch;
	t->remaining = 1; /* held while the children are submitted */
	if (raid->level == RAID_LEVEL_1 && write_like(io->type)) {
		/* Into the window a rebuild copies now: wait until it is copied. */
		if (ch->locked && raid_overlaps(io->offset_blocks, io->num_blocks, ch->lock_start,
						ch->lock_end)) {
			STAILQ_INSERT_TAIL(&ch->held, io, link);
			return;
		}
		TAILQ_INSERT_TAIL(&ch->writes, t, wlink);
		t->tracked = true;
	}
	if (raid->level == RAID_LEVEL_1 && io->type == MIMO_BDEV_IO_READ) {
		raid1_read_next(io);
	} else if (raid->level == RAID_LEVEL_1 || io->type == MIMO_BDEV_IO_FLUSH ||
		   io->type == MIMO_BDEV_IO_RESET) {
		submit_to_all(io);
	} else {
		submit_striped(io);
	}
	task_put(io);
}
