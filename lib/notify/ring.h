/*
 * A bounded lock-free multi-producer, single-consumer queue of events.
 *
 * Each cell carries a sequence number (D. Vyukov's bounded queue): a producer claims a cell with
 * one CAS on the enqueue position, copies the event in and publishes it by storing the sequence;
 * the consumer copies the event out and hands the cell back. No locks, no system calls, and no
 * allocation for events that fit in a cell (name + payload up to NOTIFY_CELL_INLINE bytes).
 */
#ifndef MIMO_NOTIFY_RING_H
#define MIMO_NOTIFY_RING_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "compiler.h"

#define NOTIFY_CELL_SIZE   256
#define NOTIFY_CELL_HEADER 32
#define NOTIFY_CELL_INLINE (NOTIFY_CELL_SIZE - NOTIFY_CELL_HEADER)

struct notify_cell {
	/* Vyukov's sequence minus the cell's index, so that zero-filled memory is a valid empty
	 * ring without a pass over every cell. */
	_Atomic uint64_t seq;
	int64_t timestamp;
	uint16_t name_len;
	uint16_t flags; /* NOTIFY_F_* (envelope.h) */
	uint32_t payload_len;
	char *heap; /* name + payload when they do not fit inline */
	char data[NOTIFY_CELL_INLINE];
};

_Static_assert(sizeof(struct notify_cell) == NOTIFY_CELL_SIZE, "cell layout");

struct notify_ring {
	struct notify_cell *cells;
	uint64_t mask;
	/* Producers contend on enq; the consumer owns deq. Separate lines avoid false sharing. */
	_Alignas(MIMO_CACHELINE) _Atomic uint64_t enq;
	_Alignas(MIMO_CACHELINE) _Atomic uint64_t deq;
};

/* capacity is rounded up to a power of two (at least 2); cells are 256 bytes each and
 * resident from the start. Returns 0 or -ENOMEM. */
int notify_ring_init(struct notify_ring *r, uint32_t capacity);
/* Frees cells and any event still queued. Only when no producer can run. */
void notify_ring_fini(struct notify_ring *r);
/* In a forked child: unmap the cells without freeing events (a cell may be half-popped). */
void notify_ring_abandon(struct notify_ring *r);

static inline uint64_t notify_ring_capacity(const struct notify_ring *r)
{
	return r->mask + 1;
}

/* Producer side, any thread. Returns 0, -ENOBUFS when full, -ENOMEM. */
int notify_ring_push(struct notify_ring *r, int64_t timestamp, const char *name, uint16_t name_len,
		     const char *payload, uint32_t payload_len, unsigned flags);

/*
 * Consumer side, one thread. Append the oldest event's JSON envelope to out and free its cell.
 * Returns 1 when an event was taken, 0 when the queue is empty, -EAGAIN when a producer has
 * claimed the next cell but not yet filled it, -ENODATA when the cell held no event (its
 * producer failed to allocate and returned -ENOMEM), -ENOMEM when out cannot grow (the event
 * is lost).
 */
int notify_ring_pop_envelope(struct notify_ring *r, struct mimo_buf *out);

/* Events claimed by producers and not yet taken by the consumer. */
static inline uint64_t notify_ring_depth(struct notify_ring *r)
{
	uint64_t d = atomic_load_explicit(&r->deq, memory_order_relaxed);
	uint64_t e = atomic_load_explicit(&r->enq, memory_order_relaxed);

	return e > d ? e - d : 0;
}

#endif
