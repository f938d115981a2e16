/* malloc: a bdev in memory. For its RPCs and for programs that create one directly. */
#ifndef MIMO_BDEV_MALLOC_H
#define MIMO_BDEV_MALLOC_H

#include <stdint.h>

#include "mimo/bdev_module.h"

/* name NULL: "Malloc<n>". uuid NULL: generated. Returns 0 with *out set, or -errno. */
int bdev_malloc_create(const char *name, uint64_t num_blocks, uint32_t block_size,
		       const uint8_t *uuid, struct mimo_bdev **out);

extern struct mimo_bdev_module g_malloc_module;

/* Register the module and its RPC methods (mimo/jsonrpc.h, "Registration"): before any of
 * its bdevs is created. */
void mimo_register_bdev_malloc(void);
/* bdev_malloc_rpc.c's methods alone (mimo_register_bdev_malloc registers them). */
void bdev_malloc_rpc_register(void);

#endif
