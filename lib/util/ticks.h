/* A cheap, monotonic tick counter for latency statistics on I/O paths (SPDK's "ticks"):
 * the TSC on x86-64 when it is invariant, the monotonic clock in ns elsewhere. */
#ifndef MIMO_UTIL_TICKS_H
#define MIMO_UTIL_TICKS_H

#include <stdint.h>

#include <stdbool.h>

uint64_t mimo_get_ticks(void);
/* True when the TSC runs at a constant rate through sleep states (x86-64's constant_tsc and
 * nonstop_tsc) and the kernel keeps time with it (clocksource "tsc": it found the CPUs'
 * counters in step). Reads /proc and /sys: call it once, off any hot path. */
bool mimo_tsc_usable(void);
/* Ticks per second (measured once, on first use). */
uint64_t mimo_get_ticks_hz(void);

#endif
