/*
 * The event-loop thread of mimo's libmicrohttpd servers (the agent's and gateway's HTTP front,
 * the metrics endpoint). libmicrohttpd runs in epoll mode without a thread of its own, so the
 * application waits on its epoll descriptor, runs it, and wakes for two more reasons: a stop
 * signal, and a connection resumed by another thread (MHD_resume_connection does not wake an
 * external loop). The loop also sweeps the request deadlines (http_guard.h) on time, which
 * libmicrohttpd's idle timeout alone cannot enforce.
 *
 * Threading: start and stop from the owner's thread; fab_mhd_loop_wake from any thread.
 * Errors: start returns a negative errno (descriptors or the thread could not be made); the
 * loop itself does not fail.
 */
#ifndef MIMO_FAB_MHD_LOOP_H
#define MIMO_FAB_MHD_LOOP_H

#include <pthread.h>
#include <stdbool.h>

struct MHD_Daemon;
struct fab_guard;

struct fab_mhd_loop {
	struct MHD_Daemon *d;
	struct fab_guard *guard;
	int epfd, stopfd, wakefd;
	pthread_t thread;
	bool started;
};

/* Before start, so that stop is safe whatever start did. */
void fab_mhd_loop_init(struct fab_mhd_loop *l);
/* Serve d (started with MHD_USE_EPOLL and no internal thread) on a new thread, sweeping
 * guard's deadlines. All signals are blocked on that thread. */
int fab_mhd_loop_start(struct fab_mhd_loop *l, struct MHD_Daemon *d, struct fab_guard *guard);
/* After MHD_resume_connection from another thread: the loop runs libmicrohttpd again. */
void fab_mhd_loop_wake(struct fab_mhd_loop *l);
/* Stop the thread and close the loop's descriptors; the daemon and the guard stay the
 * caller's. */
void fab_mhd_loop_stop(struct fab_mhd_loop *l);

#endif
