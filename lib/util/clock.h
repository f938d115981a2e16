/* Clocks: monotonic nanoseconds for intervals, coarse wall-clock seconds for timestamps.
 * Both are vDSO calls on Linux: no system call. */
#ifndef MIMO_UTIL_CLOCK_H
#define MIMO_UTIL_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline int64_t mimo_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Unix seconds. The coarse clock is read from the vDSO page without touching the TSC;
 * its tick (a few ms) is far below the one-second resolution callers need. */
static inline int64_t mimo_unix_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME_COARSE, &ts);
	return ts.tv_sec;
}

#endif
