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
	char io_device; /* the module's io_device (the bdev's address is the layer's) */
	TAILQ_ENTRY(raid_bdev) link;
};

struct raid_channel_base {
	struct mimo_io_channel *ch; /* NULL: not (or no longer) used from this channel */
	uint32_t inflight;
	bool put_when_idle; /* removed while I/O to it ran: put once it is done */
};

struct raid_channel {
	struct raid_bdev *raid;
	uint32_t next_read; /* raid1: round robin over the members */
	struct raid_channel_base base[];
};

/* raid_io.c */
void raid_submit(struct mimo_io_channel *ch, struct mimo_bdev_io *io);
size_t raid_task_size(void);
/* A member's channel is no longer needed on this channel (put now or when idle). */
void raid_channel_drop_base(struct raid_channel *ch, uint32_t slot);

/* bdev_raid.c: a raid1 member failed an I/O; from any reactor. */
void raid_base_failed(struct raid_bdev *raid, uint32_t slot);

#endif
