/*
 * Event timestamps. The producer's path stores the TSC when it is usable (one instruction,
 * no memory touched: clock_gettime would bring in a libc page, the vDSO's code and its data
 * page - four more cold pages for a caller that has just woken up), otherwise Unix seconds
 * from the coarse realtime clock. The sender turns ticks into Unix seconds when it builds the
 * envelope: the wall clock now, less the event's age measured in ticks.
 */
#ifndef MIMO_NOTIFY_TSTAMP_H
#define MIMO_NOTIFY_TSTAMP_H

#include <stdbool.h>
#include <stdint.h>

#if defined(__x86_64__)
#include <x86intrin.h>
#endif

#include "clock.h"

/* Whether producers may store ticks (see mimo_tsc_usable). Once, at start. */
bool notify_tstamp_use_ticks(void);

/* Producer: ticks when use_ticks, else Unix seconds. */
static inline int64_t notify_tstamp_now(bool ticks)
{
#if defined(__x86_64__)
	if (ticks)
		return (int64_t)__rdtsc();
#else
	(void)ticks;
#endif
	return mimo_unix_seconds();
}

/* Sender (one thread): the Unix seconds of a tick count taken by a producer. */
int64_t notify_tstamp_to_unix(uint64_t ticks);

#endif
