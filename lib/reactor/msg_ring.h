/*
 * A bounded lock-free MPSC queue of (function, argument) messages for one reactor:
 * Vyukov's sequence-numbered cells, one CAS per send, no allocation.
 */
#ifndef MIMO_REACTOR_MSG_RING_H
#define MIMO_REACTOR_MSG_RING_H

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "compiler.h"
#include "mimo/reactor.h"

struct msg_cell {
	_Atomic uint64_t seq;
	mimo_msg_fn fn;
	void *arg;
	uint64_t pad;
};

struct msg_ring {
	struct msg_cell *cells;
	uint64_t mask;
	_Alignas(MIMO_CACHELINE) _Atomic uint64_t enq;
	_Alignas(MIMO_CACHELINE) _Atomic uint64_t deq;
};

static inline int msg_ring_init(struct msg_ring *q, uint32_t size)
{
	uint64_t cap = 2;

	while (cap < size)
		cap <<= 1;
	q->cells = calloc(cap, sizeof(*q->cells));
	if (q->cells == NULL)
		return -ENOMEM;
	for (uint64_t i = 0; i < cap; i++)
		atomic_init(&q->cells[i].seq, i);
	q->mask = cap - 1;
	atomic_init(&q->enq, 0);
	atomic_init(&q->deq, 0);
	return 0;
}

static inline void msg_ring_fini(struct msg_ring *q)
{
	free(q->cells);
	q->cells = NULL;
}

/* Any thread. 0 or -EAGAIN when full. The CAS is seq_cst: see reactor.c on sleeping. */
static inline int msg_ring_push(struct msg_ring *q, mimo_msg_fn fn, void *arg)
{
	uint64_t pos = atomic_load_explicit(&q->enq, memory_order_relaxed);
	struct msg_cell *c;

	for (;;) {
		c = &q->cells[pos & q->mask];
		uint64_t seq = atomic_load_explicit(&c->seq, memory_order_acquire);
		int64_t dif = (int64_t)(seq - pos);

		if (dif == 0) {
			if (atomic_compare_exchange_weak_explicit(&q->enq, &pos, pos + 1,
								  memory_order_seq_cst,
								  memory_order_relaxed))
				break;
		} else if (dif < 0) {
			return -EAGAIN;
		} else {
			pos = atomic_load_explicit(&q->enq, memory_order_relaxed);
		}
	}
	c->fn = fn;
	c->arg = arg;
	atomic_store_explicit(&c->seq, pos + 1, memory_order_release);
	return 0;
}

/* Owner only. true with *fn and *arg set; false when empty or the next cell is not yet filled. */
static inline bool msg_ring_pop(struct msg_ring *q, mimo_msg_fn *fn, void **arg)
{
	uint64_t pos = atomic_load_explicit(&q->deq, memory_order_relaxed);
	struct msg_cell *c = &q->cells[pos & q->mask];

	if (atomic_load_explicit(&c->seq, memory_order_acquire) != pos + 1)
		return false;
	*fn = c->fn;
	*arg = c->arg;
	atomic_store_explicit(&c->seq, pos + q->mask + 1, memory_order_release);
	atomic_store_explicit(&q->deq, pos + 1, memory_order_release);
	return true;
}

static inline bool msg_ring_pending(struct msg_ring *q)
{
	return atomic_load(&q->enq) != atomic_load(&q->deq);
}

#endif
