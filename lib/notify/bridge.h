/* The bridge's process-wide state, shared by the API (notify.c) and the sender thread. */
#ifndef MIMO_NOTIFY_BRIDGE_H
#define MIMO_NOTIFY_BRIDGE_H

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "compiler.h"
#include "config.h"
#include "overflow.h"
#include "poster.h"
#include "ring.h"
#include "spool.h"

enum bridge_state {
	BRIDGE_UNINIT = 0,
	BRIDGE_RUNNING,
	BRIDGE_DISABLED,
	BRIDGE_STOPPED,
};

struct notify_bridge {
	/* Read by every producer on every call; written rarely. */
	_Atomic int state;
	_Atomic int sleeping; /* the sender sleeps and wants a wake-up */
	_Atomic uint32_t max_payload;
	_Atomic bool strict;	/* cfg.strict, for producers */
	_Atomic int ovf_active; /* events are in the overflow: producers append there */
	_Atomic bool ts_ticks;	/* producers take the TSC for timestamps (tstamp.h) */
	/* The sender's; producers only wake it. Created once, never freed: a producer that raced
	 * a shutdown may still wake it. */
	struct mimo_http_poster *poster;

	struct notify_ring ring;

	_Alignas(MIMO_CACHELINE) _Atomic uint64_t dropped;
	struct notify_ovf ovf; /* the ring's overflow, up to queue_max_mb */

	/* Written by the sender. */
	_Alignas(MIMO_CACHELINE) _Atomic uint64_t handled; /* ring events finished, in order */
	_Atomic uint64_t ovf_handled;			   /* overflow events finished */
	_Atomic uint64_t sent, retried, failed, spooled, void_cells;
	_Atomic int flush_waiters;
	_Atomic int draining; /* the sender is delivering the spool to a receiver that answers */
	_Atomic int stop;     /* set by shutdown: abandon what is in flight */

	/* Cold: start-up, configuration, flush, shutdown. */
	pthread_mutex_t lock;	      /* start, configure, shutdown */
	pthread_cond_t shutdown_cond; /* signalled when a shutdown ends */
	_Atomic int shutting_down;    /* a shutdown is flushing or joining */
	struct notify_config cfg;
	json_t *api_overrides;
	_Atomic uint64_t cfg_gen;
	pthread_mutex_t flush_lock;
	pthread_cond_t flush_cond;
	pthread_t thread;
	uint64_t id_prefix;
	struct notify_spool spool; /* owned by the sender while it runs */
	void *sender;		   /* struct notify_sender, owned by the sender thread */
};

extern struct notify_bridge g_notify_bridge;

/* The sender thread's entry point (sender.c). */
void *notify_sender_main(void *arg);

/* Count ring and overflow events as finished and wake flush() waiters if there are any. */
void notify_bridge_handled(struct notify_bridge *b, uint64_t ring, uint64_t ovf);

/* Set or clear b->draining, waking flush() waiters. */
void notify_bridge_set_draining(struct notify_bridge *b, bool on);

/* Wake the sender if it sleeps. */
static inline void notify_bridge_wake(struct notify_bridge *b)
{
	if (atomic_exchange(&b->sleeping, 0))
		mimo_http_poster_wakeup(b->poster);
}

#endif
