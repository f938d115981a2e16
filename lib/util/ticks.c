#include "ticks.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "clock.h"

#if defined(__x86_64__)
#include <x86intrin.h>
#endif

static _Atomic int g_mode = -1; /* -1 unknown, 0 clock ns, 1 TSC */
static _Atomic uint64_t g_hz;

static bool tsc_invariant(void)
{
#if defined(__x86_64__)
	char line[4096];
	bool ok = false;
	FILE *f = fopen("/proc/cpuinfo", "r");

	if (f == NULL)
		return false;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, "flags", 5) == 0) {
			ok = strstr(line, " constant_tsc") != NULL &&
			     strstr(line, " nonstop_tsc") != NULL;
			break;
		}
	}
	fclose(f);
	return ok;
#else
	return false;
#endif
}

bool mimo_tsc_usable(void)
{
	char cs[32] = "";
	FILE *f;

	if (!tsc_invariant())
		return false;
	f = fopen("/sys/devices/system/clocksource/clocksource0/current_clocksource", "r");
	if (f == NULL)
		return false;
	if (fgets(cs, sizeof(cs), f) == NULL)
		cs[0] = '\0';
	fclose(f);
	return strncmp(cs, "tsc", 3) == 0;
}

static void calibrate(void)
{
	int mode = tsc_invariant() ? 1 : 0;
	uint64_t hz = 1000000000ULL;

#if defined(__x86_64__)
	if (mode == 1) {
		/* 5 ms: the clock reads are microsecond-exact, so the error is ~0.02%. */
		struct timespec req = { 0, 5 * 1000 * 1000 };
		int64_t n0 = mimo_now_ns();
		uint64_t t0 = __rdtsc();

		nanosleep(&req, NULL);
		hz = (uint64_t)((double)(__rdtsc() - t0) * 1e9 / (double)(mimo_now_ns() - n0));
	}
#endif
	atomic_store(&g_hz, hz);
	atomic_store(&g_mode, mode);
}

uint64_t mimo_get_ticks(void)
{
	int mode = atomic_load_explicit(&g_mode, memory_order_relaxed);

	if (mode < 0) {
		calibrate();
		mode = atomic_load(&g_mode);
	}
#if defined(__x86_64__)
	if (mode == 1)
		return __rdtsc();
#endif
	return (uint64_t)mimo_now_ns();
}

uint64_t mimo_get_ticks_hz(void)
{
	if (atomic_load(&g_mode) < 0)
		calibrate();
	return atomic_load(&g_hz);
}
