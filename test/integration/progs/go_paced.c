/*
 * go_paced: the seed's usage pattern, built the way a program written for the Go bridge is
 * (-lspdk_go_notify, nothing but NotifyEvent): THREADS threads each send EVENTS events named
 * "tick" with payload {"thread":T,"seq":I}, one every INTERVAL_US microseconds (0: as fast as
 * they can), then main returns - the bridge must deliver what it accepted at exit. Prints
 * "refused N" (calls that did not return 0) on stdout.
 *
 *   go_paced THREADS EVENTS INTERVAL_US
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "spdk_go_notify.h"

static int g_events;
static long g_interval_us;
static atomic_long g_refused;

static void *producer(void *arg)
{
	int t = (int)(long)arg;
	struct timespec next;
	char payload[64];

	clock_gettime(CLOCK_MONOTONIC, &next);
	for (int i = 0; i < g_events; i++) {
		if (g_interval_us > 0) {
			next.tv_nsec += g_interval_us * 1000;
			next.tv_sec += next.tv_nsec / 1000000000;
			next.tv_nsec %= 1000000000;
			clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
		}
		snprintf(payload, sizeof(payload), "{\"thread\":%d,\"seq\":%d}", t, i);
		if (NotifyEvent("tick", payload) != 0)
			atomic_fetch_add(&g_refused, 1);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t th[64];
	int threads;

	if (argc != 4)
		return 2;
	threads = atoi(argv[1]);
	g_events = atoi(argv[2]);
	g_interval_us = atol(argv[3]);
	if (threads < 1 || threads > 64)
		return 2;
	for (int t = 0; t < threads; t++)
		pthread_create(&th[t], NULL, producer, (void *)(long)t);
	for (int t = 0; t < threads; t++)
		pthread_join(th[t], NULL);
	printf("refused %ld\n", atomic_load(&g_refused));
	fflush(stdout);
	return 0;
}
