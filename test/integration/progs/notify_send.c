/*
 * notify_send: drive libmimo_notify the way applications do, for the integration tests.
 *
 *   notify_send [-t THREADS] [-n EVENTS] [-e NAME] [--retry-on-full] [--flush MS]
 *               [--stats] [--fork] [--kill-when-spooled N] [--no-payload]
 *
 * Each thread sends EVENTS events named NAME with payload {"thread":T,"seq":I}, then main
 * returns (the bridge flushes at exit) unless --flush asks for an explicit flush first.
 * --stats prints the bridge's counters as JSON on stdout after the flush.
 * --fork: after one event, fork; the child sends the events and exits; the parent waits.
 * --kill-when-spooled N: wait until N events are spooled, then SIGKILL this process.
 * --shutdown-thread MS: start a thread that calls mimo_notify_shutdown(MS), and return from
 *   main at once, so that exit() runs while that shutdown is under way.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mimo/notify.h"

static int g_threads = 1, g_events = 1;
static long g_produce_ms;
static const char *g_name = "test_event";
static bool g_retry_on_full, g_no_payload;
static uint64_t g_full_retries;

static void *producer(void *arg)
{
	int t = (int)(intptr_t)arg;
	char payload[128];

	for (int i = 0; i < g_events; i++) {
		int rc;

		snprintf(payload, sizeof(payload), "{\"thread\":%d,\"seq\":%d}", t, i);
		for (;;) {
			rc = mimo_notify_event(g_name, g_no_payload ? NULL : payload);
			if (rc != -ENOBUFS || !g_retry_on_full)
				break;
			__atomic_fetch_add(&g_full_retries, 1, __ATOMIC_RELAXED);
			usleep(200);
		}
		if (rc != 0 && rc != -ENOBUFS) {
			fprintf(stderr, "notify_send: event %d of thread %d: %s\n", i, t,
				strerror(-rc));
			exit(3);
		}
	}
	return NULL;
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void run_producers(void)
{
	pthread_t th[256];
	long t0 = now_ms();

	for (int t = 0; t < g_threads; t++)
		pthread_create(&th[t], NULL, producer, (void *)(intptr_t)t);
	for (int t = 0; t < g_threads; t++)
		pthread_join(th[t], NULL);
	g_produce_ms = now_ms() - t0;
}

static atomic_bool g_shutdown_started;

static void *shutdown_thread(void *arg)
{
	atomic_store(&g_shutdown_started, true);
	mimo_notify_shutdown((uint32_t)(intptr_t)arg);
	return NULL;
}

static void print_stats(void)
{
	struct mimo_notify_stats st;

	mimo_notify_stats(&st);
	printf("{\"queued\":%" PRIu64 ",\"sent\":%" PRIu64 ",\"retried\":%" PRIu64
	       ",\"failed\":%" PRIu64 ",\"dropped\":%" PRIu64 ",\"spooled\":%" PRIu64
	       ",\"queue_depth\":%" PRIu64 ",\"full_retries\":%" PRIu64 ",\"produce_ms\":%ld}\n",
	       st.queued, st.sent, st.retried, st.failed, st.dropped, st.spooled, st.queue_depth,
	       g_full_retries, g_produce_ms);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "retry-on-full", no_argument, NULL, 'R' },
		{ "flush", required_argument, NULL, 'F' },
		{ "stats", no_argument, NULL, 'S' },
		{ "fork", no_argument, NULL, 'K' },
		{ "kill-when-spooled", required_argument, NULL, 'W' },
		{ "no-payload", no_argument, NULL, 'P' },
		{ "shutdown-thread", required_argument, NULL, 'X' },
		{ 0 },
	};
	int flush_ms = -1, shutdown_ms = -1, c;
	long kill_when = -1;
	bool stats = false, do_fork = false;

	while ((c = getopt_long(argc, argv, "t:n:e:", opts, NULL)) != -1) {
		switch (c) {
		case 't':
			g_threads = atoi(optarg);
			break;
		case 'n':
			g_events = atoi(optarg);
			break;
		case 'e':
			g_name = optarg;
			break;
		case 'R':
			g_retry_on_full = true;
			break;
		case 'F':
			flush_ms = atoi(optarg);
			break;
		case 'S':
			stats = true;
			break;
		case 'K':
			do_fork = true;
			break;
		case 'W':
			kill_when = atol(optarg);
			break;
		case 'P':
			g_no_payload = true;
			break;
		case 'X':
			shutdown_ms = atoi(optarg);
			break;
		default:
			fprintf(stderr, "usage: see the comment at the top of notify_send.c\n");
			return 2;
		}
	}
	if (g_threads < 1 || g_threads > 256)
		return 2;

	if (do_fork) {
		pid_t pid;
		int status;

		/* The parent uses the bridge first, so the child inherits a running one. */
		mimo_notify_event("parent_before_fork", "{\"pid\":1}");
		pid = fork();
		if (pid == 0) {
			run_producers();
			if (stats) {
				mimo_notify_flush(10000);
				print_stats();
			}
			exit(0);
		}
		waitpid(pid, &status, 0);
		mimo_notify_event("parent_after_fork", NULL);
		return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
	}

	run_producers();
	if (shutdown_ms >= 0) {
		pthread_t th;

		pthread_create(&th, NULL, shutdown_thread, (void *)(intptr_t)shutdown_ms);
		pthread_detach(th); /* never joined: exit() races it, on purpose */
		while (!atomic_load(&g_shutdown_started))
			sched_yield(); /* the shutdown has begun... */
		return 0;	       /* ...and exit() now races it */
	}
	if (kill_when >= 0) {
		struct mimo_notify_stats st;

		for (;;) {
			mimo_notify_stats(&st);
			if ((long)st.spooled >= kill_when)
				break;
			usleep(1000);
		}
		print_stats();
		kill(getpid(), SIGKILL);
	}
	if (flush_ms >= 0 && mimo_notify_flush((uint32_t)flush_ms) != 0)
		fprintf(stderr, "notify_send: flush timed out\n");
	if (stats)
		print_stats();
	return 0;
}
