/*
 * Which threads are inside mimo_notify_event right now, without a counter every producer
 * would contend on: each producer thread owns a slot on its own cache line with an "inside"
 * flag. Shutdown publishes BRIDGE_STOPPED, then waits until no flag is set; after that no
 * producer can touch the ring, so the sender may take the last events from it.
 *
 * The producer stores inside = 1 (seq_cst) before it reads the state (seq_cst); shutdown
 * stores the state before it reads the flags. Either shutdown sees the flag and waits, or the
 * producer sees STOPPED and stays out.
 */
#ifndef MIMO_NOTIFY_PRODUCERS_H
#define MIMO_NOTIFY_PRODUCERS_H

#include <stdatomic.h>
#include <stddef.h>

#include "compiler.h"

struct producer_slot {
	_Atomic int inside;
	_Atomic int in_use; /* owned by a live thread */
	struct producer_slot *next;
} __attribute__((aligned(MIMO_CACHELINE)));

/* The calling thread's slot; initial-exec TLS keeps the access to one instruction. */
extern __thread struct producer_slot *notify_t_slot __attribute__((tls_model("initial-exec")));

struct producer_slot *notify_producer_slot_acquire(void);

static inline struct producer_slot *notify_producer_enter(void)
{
	struct producer_slot *s = notify_t_slot;

	if (mimo_unlikely(s == NULL))
		s = notify_producer_slot_acquire();
	if (s != NULL)
		atomic_store(&s->inside, 1);
	return s;
}

static inline void notify_producer_leave(struct producer_slot *s)
{
	if (s != NULL)
		atomic_store_explicit(&s->inside, 0, memory_order_release);
}

/* Wait until no producer is inside (after the state left RUNNING). */
void notify_producers_wait_quiescent(void);

/* In a forked child: only the calling thread exists; free every other slot. */
void notify_producers_after_fork(void);

#endif
