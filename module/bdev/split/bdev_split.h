/* split: a base bdev cut into equal consecutive parts "<base>p0".."<base>pN-1", as SPDK's
 * vbdev_split. For its RPCs and for programs that split a bdev directly. */
#ifndef MIMO_BDEV_SPLIT_H
#define MIMO_BDEV_SPLIT_H

#include <stdint.h>

#include "mimo/bdev_module.h"

/*
 * Split base_name (which must exist; it is claimed) into split_count parts of split_size_mb
 * MiB each, or of an equal share of the base when split_size_mb is 0; a count the base cannot
 * hold is clamped, as SPDK does. On a reactor. Returns 0, -ENODEV (no such base), -EEXIST
 * (already split, or a part's name taken), -EPERM (base claimed), -EINVAL (count 0, a size
 * not a whole number of blocks or larger than the base).
 */
int bdev_split_create(const char *base_name, uint32_t split_count, uint64_t split_size_mb);
/* Delete every part of base_name's split (the base is released when the last goes). Returns
 * 0 or -ENODEV (base_name is not split). */
int bdev_split_delete(const char *base_name);
/* The parts' names, in order (a JSON array of strings; NULL when base_name is not split). */
json_t *bdev_split_part_names(const char *base_name);

extern struct mimo_bdev_module g_split_module;

/* Register the module and its RPC methods (mimo/jsonrpc.h, "Registration"). */
void mimo_register_bdev_split(void);
void bdev_split_rpc_register(void);

#endif
