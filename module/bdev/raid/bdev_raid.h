/*
 * raid: a bdev over several base bdevs, as SPDK's bdev_raid: raid0 (striping), raid1
 * (mirroring) and concat. For its RPCs and for programs that create one directly.
 *
 * Control (create, delete, base removal) runs on the reactor the raid was created on (the RPC
 * reactor); I/O on any.
 */
#ifndef MIMO_BDEV_RAID_H
#define MIMO_BDEV_RAID_H

#include <stdint.h>

#include "mimo/bdev_module.h"

enum raid_level {
	RAID_LEVEL_0,
	RAID_LEVEL_1,
	RAID_LEVEL_CONCAT,
};

/* SPDK's states: online from creation; offline once it lost a member it cannot do without
 * (its bdev deleted, its other members still claimed until bdev_raid_delete). mimo has no
 * "configuring" raid: every member must exist at creation. */
enum raid_state {
	RAID_STATE_ONLINE,
	RAID_STATE_CONFIGURING,
	RAID_STATE_OFFLINE,
};

/* The most base bdevs a raid has in mimo (SPDK: 255). */
#define RAID_MAX_BASES 64

/*
 * Create name over the bases (each must exist, unclaimed; each is claimed). strip_size_kb: a
 * power of two of at least a block for raid0 and concat, 0 for raid1. uuid NULL: generated.
 * On a reactor. Returns 0, -ENODEV (a base missing: *bad names it), -EEXIST, -EPERM (a base
 * claimed), -EINVAL (strip size, base count, block sizes that differ, a base named twice).
 */
int bdev_raid_create(const char *name, uint32_t strip_size_kb, enum raid_level level,
		     char *const *bases, uint32_t nbases, const uint8_t *uuid, const char **bad);

/* Take base_name out of its raid: a raid1 goes on degraded (while another member is left);
 * a raid0 or concat, which cannot, goes offline (its bdev deleted). cb(arg, rc) when done. Returns
 * 0 or -ENODEV (base_name is no raid's member). */
int bdev_raid_remove_base(const char *base_name, void (*cb)(void *arg, int rc), void *arg);

/* Delete an offline raid (its bdev already gone): its remaining members are released.
 * Returns 0, -ENODEV (no such raid), -EAGAIN (its bdev is still there: delete that). */
int bdev_raid_delete_offline(const char *name);

/* bdev_raid_get_bdevs' list: the raids in state (or all when state < 0). */
json_t *bdev_raid_list_json(int state);

/* Put base_name into the empty slot of the degraded raid1 raid_name and rebuild it there in
 * the background (bdev_raid_get_bdevs shows the progress as "process"). Returns 0, -ENODEV (no
 * such raid or bdev), -EINVAL (not an online raid1; block size; too small), -ENOSPC (no empty
 * slot), -EBUSY (a rebuild runs), -EPERM (base claimed). */
int bdev_raid_add_base(const char *raid_name, const char *base_name);

/* Whether name is a raid (its state in *state) with a free slot (a removed member's): 0,
 * -ENODEV (no such raid) or -ENOSPC (no free slot). */
int bdev_raid_free_slot(const char *name, enum raid_state *state);

extern struct mimo_bdev_module g_raid_module;

/* Register the module and its RPC methods (mimo/jsonrpc.h, "Registration"). */
void mimo_register_bdev_raid(void);
void bdev_raid_rpc_register(void);

#endif
