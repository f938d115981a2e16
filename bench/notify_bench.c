/*
 * notify_bench: measurements of libmimo_notify, driven by bench/notify.py.
 *
 *   notify_bench latency --threads T --calls N --pace-us P
 *       Each of T threads calls NotifyEvent N times, one call every P microseconds, and
 *       records the cost of each call. Prints percentiles in ns (with the timer's own cost).
 *   notify_bench throughput --events N
 *       Queues N events (retrying on a full queue) and prints delivered events per second,
 *       from the first call until the receiver has acknowledged the last one.
 *   notify_bench memory
 *       Resident memory before the first call, with the bridge running and its queue empty,
 *       and with the default queue full (point MIMO_NOTIFY_URL at a receiver that hangs).
 *   notify_bench curl-loop --events N
 *       The peer for delivery: a bare libcurl loop posting the same body N times on one easy
 *       handle (curl_easy_perform), to $MIMO_NOTIFY_URL.
 */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mimo/notify.h"
#include "spdk_go_notify.h"

static const char *const k_payload = "{\"name\":\"nvme0n1\",\"size\":1073741824}";

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

static int64_t pct(const int64_t *v, size_t n, double p)
{
	size_t i = (size_t)(p * (double)(n - 1) + 0.5);

	return v[i < n ? i : n - 1];
}

struct lat_arg {
	int calls, pace_us;
	bool sleep; /* pace with clock_nanosleep instead of a busy-wait */
	int64_t *samples;
	int accepted, refused;
	pthread_barrier_t *start;
};

static void *lat_thread(void *p)
{
	struct lat_arg *a = p;
	int64_t next;

	pthread_barrier_wait(a->start);
	next = now_ns();
	for (int i = 0; i < a->calls; i++) {
		int64_t t0, t1;
		int rc;

		if (a->pace_us > 0) {
			next += (int64_t)a->pace_us * 1000;
			if (a->sleep) {
				struct timespec ts = { .tv_sec = next / 1000000000,
						       .tv_nsec = next % 1000000000 };

				while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) ==
				       EINTR)
					;
			} else {
				while (now_ns() < next)
					;
			}
		}
		t0 = now_ns();
		rc = NotifyEvent("bdev_ready", k_payload);
		t1 = now_ns();
		a->samples[i] = t1 - t0;
		if (rc == 0)
			a->accepted++;
		else
			a->refused++;
	}
	return NULL;
}

static int64_t timer_overhead(void)
{
	enum {
		N = 100000
	};
	static int64_t v[N];

	for (int i = 0; i < N; i++) {
		int64_t t0 = now_ns();

		v[i] = now_ns() - t0;
	}
	qsort(v, N, sizeof(v[0]), cmp_i64);
	return pct(v, N, 0.5);
}

static int latency(int threads, int calls, int pace_us, bool sleep)
{
	struct lat_arg args[64];
	pthread_t th[64];
	pthread_barrier_t start;
	int64_t *all = malloc(sizeof(int64_t) * (size_t)threads * (size_t)calls);
	size_t n = 0;
	int accepted = 0, refused = 0;

	/* Start the bridge outside the measurement, as a running daemon has it. */
	NotifyEvent("bench_start", NULL);
	mimo_notify_flush(1000);
	pthread_barrier_init(&start, NULL, (unsigned)threads);
	for (int t = 0; t < threads; t++) {
		args[t] = (struct lat_arg){
			.calls = calls, .pace_us = pace_us, .sleep = sleep, .start = &start
		};
		args[t].samples = malloc(sizeof(int64_t) * (size_t)calls);
		pthread_create(&th[t], NULL, lat_thread, &args[t]);
	}
	for (int t = 0; t < threads; t++) {
		pthread_join(th[t], NULL);
		memcpy(all + n, args[t].samples, sizeof(int64_t) * (size_t)calls);
		n += (size_t)calls;
		accepted += args[t].accepted;
		refused += args[t].refused;
		free(args[t].samples);
	}
	qsort(all, n, sizeof(all[0]), cmp_i64);
	printf("{\"threads\":%d,\"calls\":%zu,\"pace_us\":%d,\"pacing\":\"%s\",\"accepted\":%d,"
	       "\"refused\":%d,"
	       "\"p50_ns\":%" PRId64 ",\"p99_ns\":%" PRId64 ",\"p999_ns\":%" PRId64
	       ",\"max_ns\":%" PRId64 ",\"timer_overhead_ns\":%" PRId64 "}\n",
	       threads, n, pace_us, sleep ? "nanosleep" : "busy-wait", accepted, refused,
	       pct(all, n, 0.5), pct(all, n, 0.99), pct(all, n, 0.999), all[n - 1],
	       timer_overhead());
	fflush(stdout);
	free(all);
	/* Do not wait for a hung receiver at exit. */
	mimo_notify_configure("{\"grace_ms\":0}");
	return 0;
}

static int throughput(int events)
{
	struct mimo_notify_stats st;
	int64_t t0, t1;

	NotifyEvent("bench_start", NULL);
	mimo_notify_flush(5000);
	/* notify.py sizes the queue to hold every event, so that the producer does not compete
	 * with the sender for the CPU while it waits; counters are read every 5 ms. */
	t0 = now_ns();
	for (int i = 0; i < events; i++) {
		while (NotifyEvent("bdev_ready", k_payload) == -ENOBUFS)
			usleep(1000);
	}
	do {
		mimo_notify_stats(&st);
		if (st.sent >= (uint64_t)events + 1)
			break;
		usleep(5000);
	} while (now_ns() - t0 < 120LL * 1000000000);
	t1 = now_ns();
	printf("{\"events\":%d,\"delivered\":%" PRIu64 ",\"seconds\":%.3f,\"events_per_s\":%.0f}\n",
	       events, st.sent - 1, (double)(t1 - t0) / 1e9,
	       (double)(st.sent - 1) / ((double)(t1 - t0) / 1e9));
	return 0;
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

static int memory(void)
{
	long before = rss_kib(), empty, full;
	int queued = 0;

	NotifyEvent("bench_start", NULL);
	usleep(300000);
	empty = rss_kib();
	while (NotifyEvent("bdev_ready", k_payload) == 0)
		queued++;
	full = rss_kib();
	printf("{\"rss_before_kib\":%ld,\"rss_empty_queue_kib\":%ld,\"rss_full_queue_kib\":%ld,"
	       "\"events_in_full_queue\":%d}\n",
	       before, empty, full, queued);
	fflush(stdout);
	mimo_notify_configure("{\"grace_ms\":0}");
	return 0;
}

static size_t discard(char *p, size_t size, size_t n, void *u)
{
	(void)p;
	(void)u;
	return size * n;
}

static int curl_loop(int events)
{
	static const char body[] = "{\"event\":\"bdev_ready\",\"payload\":{\"name\":\"nvme0n1\","
				   "\"size\":1073741824},\"timestamp\":1795241640}";
	struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
	CURL *e = curl_easy_init();
	int64_t t0, t1;
	int ok = 0;

	h = curl_slist_append(h, "Expect:");
	curl_easy_setopt(e, CURLOPT_URL, getenv("MIMO_NOTIFY_URL"));
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
	t0 = now_ns();
	for (int i = 0; i < events; i++)
		ok += curl_easy_perform(e) == CURLE_OK;
	t1 = now_ns();
	printf("{\"events\":%d,\"delivered\":%d,\"seconds\":%.3f,\"events_per_s\":%.0f}\n", events,
	       ok, (double)(t1 - t0) / 1e9, (double)ok / ((double)(t1 - t0) / 1e9));
	curl_easy_cleanup(e);
	curl_slist_free_all(h);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = { { "threads", required_argument, NULL, 't' },
					      { "calls", required_argument, NULL, 'c' },
					      { "pace-us", required_argument, NULL, 'p' },
					      { "events", required_argument, NULL, 'e' },
					      { "sleep", no_argument, NULL, 's' },
					      { 0 } };
	int threads = 1, calls = 20000, pace_us = 0, events = 100000, c;
	bool sleep = false;

	if (argc < 2) {
		fprintf(stderr,
			"usage: notify_bench latency|throughput|memory|curl-loop [options]\n");
		return 2;
	}
	optind = 2;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 't':
			threads = atoi(optarg);
			break;
		case 'c':
			calls = atoi(optarg);
			break;
		case 'p':
			pace_us = atoi(optarg);
			break;
		case 'e':
			events = atoi(optarg);
			break;
		case 's':
			sleep = true;
			break;
		default:
			return 2;
		}
	}
	if (threads < 1 || threads > 64)
		return 2;
	if (strcmp(argv[1], "latency") == 0)
		return latency(threads, calls, pace_us, sleep);
	if (strcmp(argv[1], "throughput") == 0)
		return throughput(events);
	if (strcmp(argv[1], "memory") == 0)
		return memory();
	if (strcmp(argv[1], "curl-loop") == 0)
		return curl_loop(events);
	return 2;
}
