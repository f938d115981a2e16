/* passthru: a bdev of another name over a base bdev, passing every I/O through unchanged, as
 * SPDK's vbdev_passthru (the smallest stackable module: a name, a UUID and a claim). */
#ifndef MIMO_BDEV_PASSTHRU_H
#define MIMO_BDEV_PASSTHRU_H

#include <stdint.h>

#include "mimo/bdev_module.h"

/* Create name over base_name (which must exist; it is claimed). uuid NULL: generated. On a
 * reactor. Returns 0, -ENODEV, -EEXIST, -EPERM (base claimed). */
int bdev_passthru_create(const char *base_name, const char *name, const uint8_t *uuid);

extern struct mimo_bdev_module g_passthru_module;

/* Register the module and its RPC methods (mimo/jsonrpc.h, "Registration"). */
void mimo_register_bdev_passthru(void);
void bdev_passthru_rpc_register(void);

#endif
