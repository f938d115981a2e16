/*
 * A fixed set of worker threads with a bounded queue, for the HTTP requests that may wait
 * (request-reply, RETRIEVE, a NATS round trip, an fsync): the event loop hands them over and
 * keeps serving everyone else. A place in the queue is reserved before the caller commits to
 * the hand-off, so a full queue is an answer ("busy") and never a lost request.
 *
 * Threading: any thread may reserve and submit; jobs run on the pool's threads; fab_pool_stop
 * from the thread that started it. Memory: a job is the caller's, and its run function may
 * free it. Errors: 0 or a negative errno.
 */
#ifndef MIMO_FAB_HTTP_POOL_H
#define MIMO_FAB_HTTP_POOL_H

#include <stdbool.h>

struct fab_job {
	struct fab_job *next;
	void (*run)(struct fab_job *job);
};

struct fab_pool;

/* 0, or -errno (no thread could be started). */
int fab_pool_start(struct fab_pool **out, unsigned int threads, unsigned int queue_max);
/* Reserve a place: false when the queue is full or the pool is stopping. */
bool fab_pool_reserve(struct fab_pool *p);
/* Queue a job into a reserved place (never fails). */
void fab_pool_submit(struct fab_pool *p, struct fab_job *job);
/* Jobs queued or running. */
unsigned int fab_pool_busy(struct fab_pool *p);
/* Refuse new reservations, run every job already accepted, join the threads, free. */
void fab_pool_stop(struct fab_pool *p);

#endif
