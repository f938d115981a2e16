/*
 * Which threads are inside mimo_notify_event right now, without a counter every producer
 * would contend on: each producer thread has a slot of its own - in its thread-local storage,
 * on its own cache line, next to the thread's control block that the C library touches anyway
 * - with an "inside" flag. Shutdown publishes BRIDGE_STOPPED, then waits until no flag is set;
 * after that no producer can touch the ring, so the sender may take the last events from it.
 *
 * The producer stores inside = 1 (seq_cst) before it reads the state (seq_cst); shutdown
 * stores the state before it reads the flags. Either shutdown sees the flag and waits, or the
 * producer sees STOPPED and stays out.
 *
 * A slot is linked into the registry on its thread's first call and unlinked when the thread
 * exits (a thread-specific key's destructor), under a mutex that the scan holds too: the scan
 * never reads the storage of a thread that is gone.
 */
#ifndef MIMO_NOTIFY_PRODUCERS_H
#define MIMO_NOTIFY_PRODUCERS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "compiler.h"

struct producer_slot {
	_Atomic int inside;
	bool registered;
	struct producer_slot *prev, *next;
} __attribute__((aligned(MIMO_CACHELINE)));

/* The calling thread's slot; initial-exec TLS keeps the access to one instruction. */
extern __thread struct producer_slot notify_t_slot __attribute__((tls_model("initial-exec")));

/* Link the calling thread's slot into the registry. Returns false without memory for the
 * thread-specific key. */
bool notify_producer_register(void);

static inline struct producer_slot *notify_producer_enter(void)
{
	struct producer_slot *s = &notify_t_slot;

	if (mimo_unlikely(!s->registered) && !notify_producer_register())
		return NULL;
	atomic_store(&s->inside, 1);
	return s;
}

static inline void notify_producer_leave(struct producer_slot *s)
{
	atomic_store_explicit(&s->inside, 0, memory_order_release);
}

/* Wait until no producer is inside (after the state left RUNNING). */
void notify_producers_wait_quiescent(void);

/* In a forked child: only the calling thread exists; forget every other slot. */
void notify_producers_after_fork(void);

#endif
