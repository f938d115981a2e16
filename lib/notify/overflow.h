/*
 * The overflow: where events go when the ring is full, so that a burst is taken whole
 * instead of refused. A list of mapped chunks (1 MiB each, populated when mapped, unmapped as
 * soon as the sender has read them) appended to under a mutex, up to a memory
 * cap; past the cap producers get -ENOBUFS. The ring stays the fast path: producers come here
 * only when it is full, or while the overflow holds events.
 *
 * Order. While the overflow holds events every producer appends here (the active flag), so
 * a thread's events never overtake each other: an event that found active set goes behind the
 * ones already here, and active is cleared only once the sender has taken them all. The sender
 * takes from the ring first and from the overflow only when the ring is empty *after* it has
 * seen the overflow's record: a thread's earlier event claimed a ring cell before its later
 * one was published here (release/acquire on the chunk's committed end), so the sender sees
 * that cell claimed and takes it first.
 */
#ifndef MIMO_NOTIFY_OVERFLOW_H
#define MIMO_NOTIFY_OVERFLOW_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define NOTIFY_OVF_CHUNK (1u << 20)

struct notify_ovf_chunk;

struct notify_ovf {
	pthread_mutex_t lock;
	_Atomic int *active; /* the flag producers read on every call (in the bridge's hot line) */
	_Atomic uint64_t max_bytes; /* 0: no overflow, a full ring refuses */
	_Atomic uint64_t bytes;	    /* mapped now */
	_Atomic uint64_t peak_bytes;
	_Atomic uint64_t pushed; /* events appended, ever (under lock) */
	_Atomic uint64_t popped; /* events the consumer has taken */
	_Atomic(struct notify_ovf_chunk *) first;
	/* Producers', under lock. */
	struct notify_ovf_chunk *tail;
	size_t tail_used;
	/* The consumer's. */
	struct notify_ovf_chunk *head;
	size_t head_off;
};

void notify_ovf_init(struct notify_ovf *o, _Atomic int *active, uint64_t max_bytes);
/* Unmap everything (no producer or consumer may run). */
void notify_ovf_fini(struct notify_ovf *o);
/* In a forked child: forget the parent's chunks (copy-on-write, left mapped). */
void notify_ovf_abandon(struct notify_ovf *o);

/* Producer: append an event. 0, -ENOBUFS past the cap (or with no overflow), -ENOMEM. */
__attribute__((cold)) int notify_ovf_push(struct notify_ovf *o, int64_t timestamp, const char *name,
					  uint16_t name_len, const char *payload,
					  uint32_t payload_len, unsigned flags);

/*
 * Consumer: append the oldest event's envelope to out and take it. 1: taken; 0: empty;
 * -ENOMEM: out could not grow (the event is taken and lost). Order with the ring is the
 * caller's business (notify_queue_pop in sender.c).
 */
int notify_ovf_pop_envelope(struct notify_ovf *o, struct mimo_buf *out);
/* Consumer: is an event ready to be taken? (acquire: see the order comment above) */
bool notify_ovf_ready(struct notify_ovf *o);
/* Consumer: when everything appended has been taken, clear active and give the last chunk
 * back. Cheap when active is not set. */
void notify_ovf_settle(struct notify_ovf *o);

static inline uint64_t notify_ovf_depth(struct notify_ovf *o)
{
	uint64_t p = atomic_load(&o->pushed), q = atomic_load(&o->popped);

	return p > q ? p - q : 0;
}

#endif
