#include "tstamp.h"

#include <time.h>

#include "ticks.h"

bool notify_tstamp_use_ticks(void)
{
#if defined(__x86_64__)
	return mimo_tsc_usable();
#else
	return false;
#endif
}

/* The sender's reference: the first conversion's TSC and monotonic clock, and the tick length
 * in ns - calibrated over 5 ms (0.02 %), then measured again against the monotonic clock over
 * the whole time since, once that is more than 10 s (then parts per million at most). */
static uint64_t g_tsc0;
static int64_t g_mono0;
static double g_ns_per_tick;

int64_t notify_tstamp_to_unix(uint64_t ticks)
{
#if defined(__x86_64__)
	struct timespec rt;
	uint64_t tsc;
	int64_t mono, age_ns;

	if (g_ns_per_tick == 0) {
		g_ns_per_tick = 1e9 / (double)mimo_get_ticks_hz();
		g_tsc0 = __rdtsc();
		g_mono0 = mimo_now_ns();
	}
	clock_gettime(CLOCK_REALTIME, &rt);
	mono = mimo_now_ns();
	tsc = __rdtsc();
	if (mono - g_mono0 > 10LL * 1000000000 && tsc > g_tsc0)
		g_ns_per_tick = (double)(mono - g_mono0) / (double)(tsc - g_tsc0);
	/* A count from a CPU whose TSC runs a little ahead reads as the future: age 0. */
	age_ns = tsc > ticks ? (int64_t)((double)(tsc - ticks) * g_ns_per_tick) : 0;
	return ((int64_t)rt.tv_sec * 1000000000 + rt.tv_nsec - age_ns) / 1000000000;
#else
	return (int64_t)ticks;
#endif
}
