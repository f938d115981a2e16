/*
 * notify_peer: drives an event bridge through nothing but the Go bridge's interface
 * (spdk_go_notify.h, linked -lspdk_go_notify), so that one binary measures mimo's library and
 * the original Go bridge alike: LD_LIBRARY_PATH picks which libspdk_go_notify.so is loaded.
 * bench/notify.py runs it; each mode prints one JSON object and then returns from main, so
 * that whatever the bridge does at exit is part of the measurement.
 *
 *   notify_peer latency --calls N --pace-us P [--sleep]
 *       One thread calls NotifyEvent N times, one call every P us: busy-waiting, or with
 *       --sleep in clock_nanosleep between calls (a thread that has other work or sleeps, as
 *       real callers do). Each call is timed with the TSC (calibrated against
 *       CLOCK_MONOTONIC), so the harness does not warm the clock code the bridge may use.
 *       --floor: call strchr in libc instead of NotifyEvent (through a pointer the compiler
 *       cannot see through) - what any call into a shared library costs after the same pause,
 *       the floor under the bridge's figures on this machine at this moment.
 *       --evict-kib K: before each call, write K KiB of a buffer of the harness's own (as
 *       other work on the CPU would): with K past the last-level cache every call starts
 *       with cold caches and TLB - the worst case of a caller that sleeps, reproducible on
 *       a machine whose other tenants come and go.
 *   notify_peer burst --threads T --events N
 *       T threads call as fast as they can, N calls each; then main returns.
 *   notify_peer paced --events N --pace-us P
 *       One call every P us (clock_nanosleep), then main returns.
 *   notify_peer fill --events N
 *       Calls as fast as possible, N calls or until one is refused; prints the resident memory
 *       then (point the bridge at a receiver that never answers to measure it at its cap).
 * Every mode reports refused calls and resident memory (VmRSS, KiB) after its calls;
 * "rss_idle_kib" is measured after one event and a 300 ms pause, before the rest.
 */
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <x86intrin.h>

#include "spdk_go_notify.h"

static const char *const k_payload = "{\"name\":\"nvme0n1\",\"size\":1073741824}";
static atomic_long g_refused;
static int g_events = 1000;

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static long rss_kib(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	long pages = 0, rss = 0;

	if (f != NULL) {
		if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
			rss = 0;
		fclose(f);
	}
	return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

static void sleep_until(int64_t t)
{
	struct timespec ts = { .tv_sec = t / 1000000000, .tv_nsec = t % 1000000000 };

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) != 0)
		;
}

static long g_rss_idle;

/* One event first (the bridge starts), then a pause: resident memory of a running, idle
 * bridge. */
static void warm_up(void)
{
	if (NotifyEvent("bench_start", NULL) != 0)
		atomic_fetch_add(&g_refused, 1);
	usleep(300000);
	g_rss_idle = rss_kib();
}

static char *(*volatile g_strchr)(const char *, int) = strchr;

static int latency(int calls, int pace_us, bool sleep, size_t evict_kib, bool floor)
{
	uint64_t *v = malloc(sizeof(*v) * (size_t)calls);
	volatile char *junk = evict_kib > 0 ? malloc(evict_kib * 1024) : NULL;
	int64_t n0, next;
	uint64_t t0;
	double ns_per_tick;

	warm_up();
	n0 = now_ns();
	t0 = __rdtsc();
	usleep(50000);
	ns_per_tick = (double)(now_ns() - n0) / (double)(__rdtsc() - t0);
	next = now_ns();
	for (int i = 0; i < calls; i++) {
		uint64_t a, b;

		next += (int64_t)pace_us * 1000;
		if (sleep) {
			sleep_until(next);
		} else {
			while (now_ns() < next)
				;
		}
		for (size_t j = 0; junk != NULL && j < evict_kib * 1024; j += 64)
			junk[j]++;
		a = __rdtsc();
		if (floor) {
			if (g_strchr(k_payload, '}') == NULL)
				atomic_fetch_add(&g_refused, 1);
		} else if (NotifyEvent("bdev_ready", k_payload) != 0) {
			atomic_fetch_add(&g_refused, 1);
		}
		b = __rdtsc();
		v[i] = b - a;
	}
	qsort(v, (size_t)calls, sizeof(v[0]), cmp_u64);
#define NS(i) ((uint64_t)((double)v[(i)] * ns_per_tick + 0.5))
	printf("{\"calls\":%d,\"pace_us\":%d,\"pacing\":\"%s\",\"evict_kib\":%zu,\"floor\":%s,"
	       "\"refused\":%ld,\"p50_ns\":%" PRIu64 ",\"p99_ns\":%" PRIu64 ",\"p999_ns\":%" PRIu64
	       ",\"max_ns\":%" PRIu64 ",\"rss_idle_kib\":%ld,\"rss_kib\":%ld}\n",
	       calls, pace_us, sleep ? "nanosleep" : "busy-wait", evict_kib,
	       floor ? "true" : "false", atomic_load(&g_refused), NS((size_t)calls / 2),
	       NS((size_t)calls * 99 / 100), NS((size_t)calls * 999 / 1000), NS((size_t)calls - 1),
	       g_rss_idle, rss_kib());
	fflush(stdout);
	free(v);
	free((void *)junk);
	return 0;
}

static void *burst_thread(void *arg)
{
	int t = (int)(intptr_t)arg;
	char payload[64];

	for (int i = 0; i < g_events; i++) {
		snprintf(payload, sizeof(payload), "{\"thread\":%d,\"seq\":%d}", t, i);
		if (NotifyEvent("tick", payload) != 0)
			atomic_fetch_add(&g_refused, 1);
	}
	return NULL;
}

static int burst(int threads)
{
	pthread_t th[64];
	int64_t t0;

	warm_up();
	t0 = now_ns();
	for (int t = 0; t < threads; t++)
		pthread_create(&th[t], NULL, burst_thread, (void *)(intptr_t)t);
	for (int t = 0; t < threads; t++)
		pthread_join(th[t], NULL);
	printf("{\"threads\":%d,\"events\":%d,\"refused\":%ld,\"produce_ms\":%.1f,"
	       "\"rss_idle_kib\":%ld,\"rss_kib\":%ld}\n",
	       threads, g_events, atomic_load(&g_refused), (double)(now_ns() - t0) / 1e6,
	       g_rss_idle, rss_kib());
	fflush(stdout);
	return 0;
}

static int paced(int pace_us)
{
	char payload[64];
	int64_t next;

	warm_up();
	next = now_ns();
	for (int i = 0; i < g_events; i++) {
		next += (int64_t)pace_us * 1000;
		sleep_until(next);
		snprintf(payload, sizeof(payload), "{\"thread\":0,\"seq\":%d}", i);
		if (NotifyEvent("tick", payload) != 0)
			atomic_fetch_add(&g_refused, 1);
	}
	printf("{\"events\":%d,\"pace_us\":%d,\"refused\":%ld,\"rss_idle_kib\":%ld,"
	       "\"rss_kib\":%ld}\n",
	       g_events, pace_us, atomic_load(&g_refused), g_rss_idle, rss_kib());
	fflush(stdout);
	return 0;
}

static int fill(void)
{
	int accepted = 0;

	warm_up();
	for (int i = 0; i < g_events; i++) {
		if (NotifyEvent("bdev_ready", k_payload) != 0) {
			atomic_fetch_add(&g_refused, 1);
			break;
		}
		accepted++;
	}
	printf("{\"accepted\":%d,\"refused\":%ld,\"rss_idle_kib\":%ld,\"rss_kib\":%ld}\n", accepted,
	       atomic_load(&g_refused), g_rss_idle, rss_kib());
	fflush(stdout);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = { { "calls", required_argument, NULL, 'c' },
					      { "pace-us", required_argument, NULL, 'p' },
					      { "sleep", no_argument, NULL, 's' },
					      { "threads", required_argument, NULL, 't' },
					      { "events", required_argument, NULL, 'e' },
					      { "evict-kib", required_argument, NULL, 'k' },
					      { "floor", no_argument, NULL, 'f' },
					      { 0 } };
	int calls = 5000, pace_us = 1000, threads = 1, c;
	size_t evict_kib = 0;
	bool floor = false;
	bool sleep = false;

	if (argc < 2) {
		fprintf(stderr, "usage: notify_peer latency|burst|paced|fill [options]\n");
		return 2;
	}
	optind = 2;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			calls = atoi(optarg);
			break;
		case 'p':
			pace_us = atoi(optarg);
			break;
		case 's':
			sleep = true;
			break;
		case 't':
			threads = atoi(optarg);
			break;
		case 'e':
			g_events = atoi(optarg);
			break;
		case 'k':
			evict_kib = (size_t)atol(optarg);
			break;
		case 'f':
			floor = true;
			break;
		default:
			return 2;
		}
	}
	if (calls < 1 || threads < 1 || threads > 64)
		return 2;
	if (strcmp(argv[1], "latency") == 0)
		return latency(calls, pace_us, sleep, evict_kib, floor);
	if (strcmp(argv[1], "burst") == 0)
		return burst(threads);
	if (strcmp(argv[1], "paced") == 0)
		return paced(pace_us);
	if (strcmp(argv[1], "fill") == 0)
		return fill();
	return 2;
}
