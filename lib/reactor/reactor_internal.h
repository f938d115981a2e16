/* Private state of the reactor library. */
#ifndef MIMO_REACTOR_REACTOR_INTERNAL_H
#define MIMO_REACTOR_REACTOR_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

#include "mimo/reactor.h"
#include "msg_ring.h"

struct mimo_poller {
	mimo_poller_fn fn;
	void *arg;
	const char *name;   /* the function's name (mimo_poller_register) */
	uint64_t id;	    /* per reactor, from 1 */
	uint64_t run_count; /* only the reactor writes these, and readers run on it */
	uint64_t busy_count;
	uint64_t period_ticks; /* 0: active */
	uint64_t next_run;
	bool dead;     /* unregistered: skipped, unlinked and freed after the turn */
	bool in_timed; /* linked in the timed list (else in the active list) */
	bool late;     /* in the active list's tail part, after every ordinary poller */
	struct mimo_reactor *r;
	TAILQ_ENTRY(mimo_poller) link;
	TAILQ_ENTRY(mimo_poller) dead_link;
};
TAILQ_HEAD(poller_list, mimo_poller);

struct mimo_fd_watch {
	int fd;
	mimo_fd_fn fn;
	void *arg;
	struct mimo_reactor *r;
	uint32_t events;	    /* what the owner asked for (applied unless paused) */
	struct mimo_poller *resume; /* paused: the timer that watches again */
	bool dead;
	TAILQ_ENTRY(mimo_fd_watch) dead_link;
};
TAILQ_HEAD(watch_list, mimo_fd_watch);

struct mimo_io_channel;
TAILQ_HEAD(channel_list, mimo_io_channel);

/* A message posted while its target's ring was full (mimo_reactor_post). */
struct overflow_msg {
	struct mimo_reactor *to;
	mimo_msg_fn fn;
	void *arg;
	STAILQ_ENTRY(overflow_msg) link;
};
STAILQ_HEAD(overflow_list, overflow_msg);

struct mimo_reactor {
	uint32_t index;
	uint32_t core;
	pthread_t thread;
	int epfd;
	int evfd;
	bool poll_mode;
	uint64_t idle_spin_ticks;

	_Alignas(MIMO_CACHELINE) _Atomic int sleeping;
	_Atomic int stop;
	/* Threads that are no reactor and are inside mimo_reactor_send_msg. The message they
	 * pushed may be the one that ends the program, so the reactor is freed only once they
	 * are out (their wake-up still reads the reactor). */
	_Atomic int foreign_senders;

	struct msg_ring msgs;

	/* Owned by the reactor thread. */
	struct poller_list active;	/* ordinary pollers, then late ones */
	struct mimo_poller *first_late; /* where the late part of active begins, or NULL */
	struct poller_list timed;	/* sorted by next_run */
	struct poller_list dead;
	struct watch_list dead_watches;
	struct channel_list channels;
	struct overflow_list overflow; /* posted by this reactor, waiting for room */
	bool releasing; /* stopping: channels are destroyed at once, not from messages */
	uint64_t next_poller_id;
	uint64_t start_ticks; /* when the reactor was created (lw_threads' elapsed) */
	_Atomic int tid;      /* set by the thread itself as it starts */

	_Atomic uint64_t busy_ticks, idle_ticks, nmsgs, sleeps;
};

/* io_channel.c: destroy a reactor's remaining channels when it stops. */
void io_channels_release_all(struct mimo_reactor *r);

#endif
