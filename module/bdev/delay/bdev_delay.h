/* delay: a bdev over a base that completes each I/O only after a set latency, as SPDK's
 * vbdev_delay: an average latency for most reads and writes, a "p99" one for about one I/O
 * in a hundred. For its RPCs and for programs that create one directly. */
#ifndef MIMO_BDEV_DELAY_H
#define MIMO_BDEV_DELAY_H

#include <stdint.h>

#include "mimo/bdev_module.h"

enum delay_latency {
	DELAY_AVG_READ,
	DELAY_P99_READ,
	DELAY_AVG_WRITE,
	DELAY_P99_WRITE,
	DELAY_NUM_LATENCIES,
};

/* Create name over base_name (which must exist; it is claimed); latencies in microseconds,
 * indexed by enum delay_latency. uuid NULL: generated. On a reactor. Returns 0, -ENODEV,
 * -EEXIST, -EPERM (base claimed), -EINVAL (a p99 latency below its average). */
int bdev_delay_create(const char *base_name, const char *name, const uint8_t *uuid,
		      const uint64_t latency_us[DELAY_NUM_LATENCIES]);
/* Change one latency of name from the next I/O on. Returns 0 or -ENODEV (no delay bdev of
 * that name). */
int bdev_delay_update_latency(const char *name, enum delay_latency which, uint64_t us);

extern struct mimo_bdev_module g_delay_module;

/* Register the module and its RPC methods (mimo/jsonrpc.h, "Registration"). */
void mimo_register_bdev_delay(void);
void bdev_delay_rpc_register(void);

#endif
