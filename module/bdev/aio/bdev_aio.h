/* aio: a bdev over a file or a block device (io_uring). For its RPCs and for programs that
 * create one directly. */
#ifndef MIMO_BDEV_AIO_H
#define MIMO_BDEV_AIO_H

#include <stdbool.h>
#include <stdint.h>

#include "mimo/bdev_module.h"

/* block_size 0: the file's or device's logical block size (512 for files). uuid NULL:
 * generated. Returns 0 with *out set, or -errno. */
int bdev_aio_create(const char *name, const char *filename, uint32_t block_size, bool readonly,
		    const uint8_t *uuid, struct mimo_bdev **out);

/* Read the file's or device's size again; a new size is the bdev's (its users are told),
 * nothing left of it deletes the bdev. -ENODEV: no aio bdev of that name; -EBUSY: it shrank
 * while open. On a reactor. */
int bdev_aio_rescan(const char *name);

extern struct mimo_bdev_module g_aio_module;

/* Register the module and its RPC methods (mimo/jsonrpc.h, "Registration"): before any of
 * its bdevs is created. */
void mimo_register_bdev_aio(void);
/* bdev_aio_rpc.c's methods alone (mimo_register_bdev_aio registers them). */
void bdev_aio_rpc_register(void);

#endif
