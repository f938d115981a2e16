/* A cheap, monotonic tick counter for latency statistics on I/O paths (SPDK's "ticks"):
 * the TSC on x86-64 when it is invariant, the monotonic clock in ns elsewhere. */
#ifndef MIMO_UTIL_TICKS_H
#define MIMO_UTIL_TICKS_H

#include <stdint.h>

uint64_t mimo_get_ticks(void);
/* Ticks per second (measured once, on first use). */
uint64_t mimo_get_ticks_hz(void);

#endif
