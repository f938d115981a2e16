/* null: a bdev that stores nothing. For its RPCs and for programs that create one directly. */
#ifndef MIMO_BDEV_NULL_H
#define MIMO_BDEV_NULL_H

#include <stdint.h>

#include "mimo/bdev_module.h"

/* uuid NULL: generated. Returns 0 with *out set, or -errno. */
int bdev_null_create(const char *name, uint64_t num_blocks, uint32_t block_size,
		     const uint8_t *uuid, struct mimo_bdev **out);

/* Grow the bdev to new_size_mib MiB and tell its users (SPDK's bdev_null_resize). -ENODEV: no
 * such bdev; -EINVAL: not a null bdev, or smaller than it is. On a reactor. */
int bdev_null_resize(const char *name, uint64_t new_size_mib);

extern struct mimo_bdev_module g_null_module;

/* Register the module and its RPC methods (mimo/jsonrpc.h, "Registration"): before any of
 * its bdevs is created. */
void mimo_register_bdev_null(void);
/* bdev_null_rpc.c's methods alone (mimo_register_bdev_null registers them). */
void bdev_null_rpc_register(void);

#endif
