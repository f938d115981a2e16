/* What bdev_raid.c (the raid's life) and raid_io.c (its data path) share. */
#ifndef MIMO_RAID_INTERNAL_H
#define MIMO_RAID_INTERNAL_H

#include <stdatomic.h>
#include <sys/queue.h>

#include "bdev_raid.h"

struct raid_bdev;

struct raid_base {
	struct raid_bdev *raid;
	uint32_t slot;
	char *name; /* NULL once removed */
	uint8_t uuid[16];
	struct mimo_bdev *bdev;
	struct mimo_bdev_desc *desc;
	/* I/O may go to it: cleared first when it is removed, then the channels let go. */
	_Atomic bool online;
	bool configured; /* open and claimed */
	bool removing;
	/* A raid1 member being rebuilt (raid_rebuild.c): not online, so never read; written
	 * below the rebuild's progress, where its data is already whole. */
	_Atomic bool rebuilding;
	/* Leases of its channel still out (raid_lease), from any reactor; a release waits for
	 * them (raid_base_when_drained). */
	_Atomic uint32_t leases;
	_Atomic bool drain_pending;
	void (*drained)(void *arg);
	void *drained_arg;
	uint64_t data_size; /* blocks of it the raid uses */
	uint64_t start;	    /* concat: the raid block it begins at */
};

struct raid_bdev {
	struct mimo_bdev bdev;
	enum raid_level level;
	uint32_t strip_size_kb;
	uint64_t strip_blocks; /* raid0, concat: a power of two */
	uint32_t strip_shift;
	uint32_t nbases;
	struct raid_base *bases;
	uint32_t discovered, operational;
	uint32_t removals; /* raid1 member removals going round the channels */
	enum raid_state state;
	bool registered;   /* the bdev layer knows it (from registration to destruct) */
	bool unregistered; /* destructed and its channels gone */
	bool listed;	   /* in the raid list (bdev_raid_get_bdevs) */
	uint64_t id;	   /* how messages from I/O find it again, if it still exists */
	struct mimo_reactor *owner;
	bool io_supported[MIMO_BDEV_IO_NUM_TYPES];
	/* The rebuild under way (raid1), NULL when none: owner reactor only. What I/O reads of
	 * it is atomic: the blocks already copied, and the window being copied, in which writes
	 * wait (win_end 0: none). */
	struct raid_rebuild *rebuild;
	_Atomic uint64_t rebuilt_upto;
	_Atomic uint64_t win_start, win_end;
	char io_device; /* the module's io_device (the bdev's address is the layer's) */
	TAILQ_ENTRY(raid_bdev) link;
};

/* A channel's use of one member's channel. When the member leaves, the slot lets go of it at
 * once (a new member may take the slot); the lease itself lives on, retired, until the I/O
 * submitted through it has ended, then puts the member's channel. */
struct raid_lease {
	struct raid_base *base;
	struct mimo_io_channel *ch;
	uint32_t inflight;
	bool retired;
};

/* A lease of member b's channel on this reactor, or NULL (no memory). */
struct raid_lease *raid_lease_get(struct raid_base *b);
/* Owner reactor: fn(arg) there once no lease of b's channel is out (at once if none is): a
 * member's descriptor is closed only after every channel to it is put. */
void raid_base_when_drained(struct raid_base *b, void (*fn)(void *arg), void *arg);

STAILQ_HEAD(raid_io_list, mimo_bdev_io);
TAILQ_HEAD(raid_task_list, raid_task);

struct raid_channel {
	struct raid_bdev *raid;
	uint32_t next_read; /* raid1: round robin over the members */
	/* raid1 with a rebuild: the writes in flight (to wait for those in a window about to be
	 * copied), the writes held while their window is copied, and how many of those in flight
	 * the rebuild still waits for. */
	struct raid_task_list writes;
	struct raid_io_list held;
	bool locked;
	uint64_t lock_start, lock_end;
	uint32_t quiesce_left;
	struct raid_lease *base[]; /* by slot; NULL: not used from this channel */
};

/* raid_io.c */
void raid_submit(struct mimo_io_channel *ch, struct mimo_bdev_io *io);
size_t raid_task_size(void);
/* A member's channel is no longer needed on this channel (put now or when idle). */
void raid_channel_drop_base(struct raid_channel *ch, uint32_t slot);

/* Whether [off, off + num) meets [start, end). */
static inline bool raid_overlaps(uint64_t off, uint64_t num, uint64_t start, uint64_t end)
{
	return off < end && start < off + num;
}

/* bdev_raid.c: a raid1 member failed an I/O; from any reactor. */
void raid_base_failed(struct raid_bdev *raid, uint32_t slot);
/* bdev_raid.c: a member's slot emptied (released, name null); owner reactor. */
void raid_base_forget(struct raid_base *b);
/* bdev_raid.c: the raid may be freed now (what kept it has ended); owner reactor. */
void raid_settle(struct raid_bdev *raid);

/* bdev_raid.c: open and claim name into the empty slot b (not online yet). 0, -ENODEV,
 * -EPERM (claimed), -EINVAL (another block size, smaller than the raid). */
int raid_base_attach(struct raid_base *b, const char *name);
/* bdev_raid.c: a rebuilt member serves reads from now on. */
void raid_base_online(struct raid_base *b);
/* raid_rebuild.c: the member being rebuilt, or NULL. */
struct raid_base *raid_rebuild_target(struct raid_bdev *raid);

/* raid_rebuild.c: start rebuilding the degraded raid1 onto base_name, put in an empty slot.
 * Returns 0 (the copy runs in the background), -ENODEV, -EBUSY (a rebuild runs), -EPERM
 * (claimed), -EINVAL (block size, too small). */
int raid_rebuild_start(struct raid_bdev *raid, const char *base_name);
/* Stop it (the target failed or left, the raid goes): the target is let go, then done(raid)
 * runs on the owner reactor. */
void raid_rebuild_stop(struct raid_bdev *raid);
/* bdev_raid_get_bdevs' "process" object, or NULL. Under the raid list's lock. */
json_t *raid_rebuild_json(struct raid_bdev *raid);
/* raid_io.c: a channel's held writes go again (their window is copied). */
void raid_channel_release_held(struct raid_channel *ch);
/* raid_io.c: writes in flight on ch overlapping [start, end). */
uint32_t raid_channel_writes_in(struct raid_channel *ch, uint64_t start, uint64_t end);
/* raid_rebuild.c: a channel's last write in the locked window ended (from any reactor). */
void raid_rebuild_quiesced(struct raid_bdev *raid);

#endif
