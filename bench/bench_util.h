/* What the standalone C load generators under bench/ share: a clock and a cheap random
 * number (no library, so each stays one file plus this header). */
#ifndef MIMO_BENCH_UTIL_H
#define MIMO_BENCH_UTIL_H

#include <stdint.h>
#include <time.h>

/* Monotonic seconds. */
static inline double bench_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* xorshift64: offsets for random I/O, the same sequence every run. */
static inline uint64_t bench_rnd(uint64_t *state)
{
	*state ^= *state << 13;
	*state ^= *state >> 7;
	*state ^= *state << 17;
	return *state;
}

#endif
