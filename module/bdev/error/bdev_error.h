/* error: a bdev over another that injects errors. For its RPCs and for programs that create
 * one directly. */
#ifndef MIMO_BDEV_ERROR_H
#define MIMO_BDEV_ERROR_H

#include <stdint.h>

#include "mimo/bdev_module.h"

/* Creates "EE_<base_name>" over base_name, which it claims. uuid NULL: generated. */
int bdev_error_create(const char *base_name, const uint8_t *uuid, struct mimo_bdev **out);

enum error_inject_type {
	ERROR_INJECT_NONE,
	ERROR_INJECT_FAILURE,
	ERROR_INJECT_PENDING,
	ERROR_INJECT_CORRUPT_DATA,
	ERROR_INJECT_NOMEM,
	ERROR_INJECT_NVME_FAILURE, /* -EIO with an NVMe status (SCT << 8 | SC) */
};
/* io_type: a MIMO_BDEV_IO_* value, or -1 for all; type NONE clears. */
int bdev_error_inject(const char *name, int io_type, enum error_inject_type type, uint32_t num,
		      uint64_t corrupt_offset, uint8_t corrupt_value);
/* The same, taking effect only for an I/O that finds at least queue_depth I/Os of its
 * channel at the base (SPDK's queue_depth; 0: always). */
int bdev_error_inject_at_depth(const char *name, int io_type, enum error_inject_type type,
			       uint32_t num, uint64_t corrupt_offset, uint8_t corrupt_value,
			       uint64_t queue_depth);
/* nvme_failure: the next num I/Os of io_type fail with NVMe status sct/sc (SPDK's
 * nvme_sct/nvme_sc), at queue_depth as above. */
int bdev_error_inject_nvme(const char *name, int io_type, uint32_t num, uint64_t queue_depth,
			   uint8_t sct, uint8_t sc);

/* SPDK's bdev_error_resume_pending: the pending injections end, and the I/Os they hold go on
 * to the base. done(arg, 0) once every channel has sent its own on. -ENODEV: no error bdev of
 * that name. On a reactor. */
int bdev_error_resume_pending(const char *name, void (*done)(void *arg, int status), void *arg);

extern struct mimo_bdev_module g_error_module;

/* Register the module and its RPC methods (mimo/jsonrpc.h, "Registration"): before any of
 * its bdevs is created. */
void mimo_register_bdev_error(void);
/* bdev_error_rpc.c's methods alone (mimo_register_bdev_error registers them). */
void bdev_error_rpc_register(void);

#endif
