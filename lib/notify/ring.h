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

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
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

/*
 * Copy n bytes without calling into libc: on the producer's path every library page touched
 * is one more cache and TLB miss for a thread that has just woken up. Overlapping 16-byte
 * moves; never reads or writes outside [src, src + n) and [dst, dst + n).
 */
static inline void notify_copy(char *dst, const char *src, size_t n)
{
	if (n >= 16) {
		size_t i = 0;

		for (; i + 16 < n; i += 16)
			__builtin_memcpy(dst + i, src + i, 16);
		__builtin_memcpy(dst + n - 16, src + n - 16, 16);
	} else if (n >= 8) {
		__builtin_memcpy(dst, src, 8);
		__builtin_memcpy(dst + n - 8, src + n - 8, 8);
	} else if (n >= 4) {
		__builtin_memcpy(dst, src, 4);
		__builtin_memcpy(dst + n - 4, src + n - 4, 4);
	} else {
		for (size_t i = 0; i < n; i++)
			dst[i] = src[i];
	}
}

/* The slow part of a push: an event too large for the cell goes to the heap. Returns 0, or
 * -ENOMEM after publishing the cell as void. */
int notify_ring_fill_large(struct notify_ring *r, struct notify_cell *c, uint64_t pos,
			   int64_t timestamp, const char *name, uint16_t name_len,
			   const char *payload, uint32_t payload_len, unsigned flags);

/* Producer side, any thread. Returns 0, -ENOBUFS when full, -ENOMEM. */
static inline int notify_ring_push(struct notify_ring *r, int64_t timestamp, const char *name,
				   uint16_t name_len, const char *payload, uint32_t payload_len,
				   unsigned flags)
{
	uint64_t pos = atomic_load_explicit(&r->enq, memory_order_relaxed);
	size_t total = (size_t)name_len + payload_len;
	struct notify_cell *c;

	for (;;) {
		c = &r->cells[pos & r->mask];
		uint64_t seq =
			atomic_load_explicit(&c->seq, memory_order_acquire) + (pos & r->mask);
		int64_t dif = (int64_t)(seq - pos);

		if (dif == 0) {
			/* seq_cst: the sender reads enq after announcing it sleeps (see sender.c).
			 */
			if (atomic_compare_exchange_weak_explicit(&r->enq, &pos, pos + 1,
								  memory_order_seq_cst,
								  memory_order_relaxed))
				break;
		} else if (dif < 0) {
			return -ENOBUFS;
		} else {
			pos = atomic_load_explicit(&r->enq, memory_order_relaxed);
		}
	}
	if (mimo_unlikely(total > NOTIFY_CELL_INLINE))
		return notify_ring_fill_large(r, c, pos, timestamp, name, name_len, payload,
					      payload_len, flags);
	c->heap = NULL;
	notify_copy(c->data, name, name_len);
	notify_copy(c->data + name_len, payload, payload_len);
	c->timestamp = timestamp;
	c->name_len = name_len;
	c->payload_len = payload_len;
	c->flags = (uint16_t)flags;
	atomic_store_explicit(&c->seq, pos + 1 - (pos & r->mask), memory_order_release);
	return 0;
}

/*
 * Consumer side, one thread. Append the oldest event's JSON envelope to out and free its cell.
 * Returns 1 when an event was taken, 0 when the queue is empty or a producer has claimed the
 * next cell but not yet filled it (compare enq with deq to tell them apart), -ENODATA when the cell
 * held no event (its producer failed to allocate and returned -ENOMEM), -ENOMEM when out cannot
 * grow (the event is lost).
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
