/*
 * Inflight I/O tracking for packed rings (INFLIGHT_SHMFD; inflight.h has the split layout).
 * A packed ring keeps nothing in guest memory a restarted back-end could find its positions
 * from (a split ring has its used index), and buffers completed out of order overwrite the
 * descriptors of ones still in flight; so each queue's part of the region holds, beside the
 * device's used position and wrap counter, a copy of every descriptor of every buffer in
 * flight, in entries taken from a free list. The layout and the rules are the ones of QEMU's
 * docs/interop/vhost-user.rst ("Inflight I/O tracking", packed virtqueue), which DPDK shares:
 * the old_* fields are the last consistent state, so a back-end that dies in the middle of
 * taking or giving back a buffer leaves a part the next one rolls back or forward.
 *
 * The region comes back from the front-end after a restart: every index read from it is
 * checked, and no walk over it is longer than the ring. Pure functions over mapped memory:
 * fuzzed without a socket (fuzz_vhost_inflight).
 */
#ifndef MIMO_VHOST_INFLIGHT_PACKED_H
#define MIMO_VHOST_INFLIGHT_PACKED_H

#include <stddef.h>
#include <stdint.h>

#include "vring_packed.h"

struct vhost_inflight_pdesc {
	uint8_t inflight; /* head entries: 1 taken, not yet given back */
	uint8_t padding;
	uint16_t next;	  /* the next entry of the free list, or of the buffer's chain */
	uint16_t last;	  /* head entries: the chain's last entry */
	uint16_t num;	  /* head entries: descriptors in the chain */
	uint64_t counter; /* head entries: the order in which buffers were taken */
	/* A copy of the descriptor. */
	uint16_t id;
	uint16_t flags;
	uint32_t len;
	uint64_t addr;
};

struct vhost_inflight_pqueue {
	uint64_t features; /* 0 */
	uint16_t version;  /* 1; 0: never laid out (mimo lays it out at the queue's first start) */
	uint16_t desc_num; /* the ring's size */
	uint16_t free_head;
	uint16_t old_free_head;
	uint16_t used_idx; /* the device's next used position (no wrap bit) */
	uint16_t old_used_idx;
	uint8_t used_wrap_counter;
	uint8_t old_used_wrap_counter;
	uint8_t padding[7];
	struct vhost_inflight_pdesc desc[];
};

/* Where the ring stands after recovery: positions as a vhost-user base half (bits 0-14 the
 * descriptor, bit 15 the wrap counter), and the next counter to use. */
struct vhost_inflight_packed_pos {
	uint16_t avail, used;
	uint64_t counter;
};

/* Bytes of one queue's part for a queue of queue_size entries. */
size_t vhost_inflight_packed_queue_bytes(uint16_t queue_size);
/* Queue q's part of a region of parts of queue_size entries. */
struct vhost_inflight_pqueue *vhost_inflight_packed_queue_at(void *region, uint16_t queue_size,
							     uint16_t q);
/* Lay a part out for a ring of size entries whose device position is used (a base half),
 * nothing in flight. */
void vhost_inflight_packed_reset(struct vhost_inflight_pqueue *r, uint16_t size, uint16_t used);

/*
 * A buffer taken from the ring (before it is submitted): its n descriptors from position pos
 * on are copied into entries of the free list, the first marked in flight with counter.
 * Returns the head entry, or -1 if the free list cannot hold them (a region someone else
 * wrote: the queue stops tracking).
 */
int vhost_inflight_packed_take(struct vhost_inflight_pqueue *r, uint16_t size,
			       const struct vring_packed_desc *ring, uint16_t pos, uint16_t n,
			       uint64_t counter);

/* A buffer is given back, before its used descriptor is written: head entry e's chain goes
 * back to the free list and the used position moves n descriptors on. */
void vhost_inflight_packed_give_back(struct vhost_inflight_pqueue *r, uint16_t size, uint16_t e,
				     uint16_t n);

/* Its used descriptor is written (the driver may see it): e is no longer in flight, and the
 * state is the consistent one a restart starts from. */
static inline void vhost_inflight_packed_commit(struct vhost_inflight_pqueue *r, uint16_t e)
{
	/* The head first: a process killed among the old_* stores leaves a half-updated used
	 * position, and recovery knows from the head that the used descriptor was written. */
	__atomic_store_n(&r->desc[e].inflight, 0, __ATOMIC_RELEASE);
	__atomic_store_n(&r->old_free_head, r->free_head, __ATOMIC_RELEASE);
	__atomic_store_n(&r->old_used_idx, r->used_idx, __ATOMIC_RELEASE);
	__atomic_store_n(&r->old_used_wrap_counter, r->used_wrap_counter, __ATOMIC_RELEASE);
}

/*
 * A queue starts over a part laid out before (version 1), perhaps by a back-end that died:
 * roll its last change forward (the used descriptor reached the ring) or back, free what is
 * on the free list, and list the head entries still in flight, oldest first, in heads (room
 * for size); *pos gets the ring's positions - the available one after every descriptor
 * still in flight. Returns their number; -1 if the part does not fit the ring (its size,
 * its version, an index or chain out of range).
 */
int vhost_inflight_packed_recover(struct vhost_inflight_pqueue *r, uint16_t size,
				  const struct vring_packed_desc *ring, uint16_t *heads,
				  struct vhost_inflight_packed_pos *pos);

/* The copies of head entry e's chain into descs (room for size), its buffer id (the last
 * descriptor's) in *id. Returns the number of descriptors, or -1 if the chain leaves the part. */
int vhost_inflight_packed_chain(const struct vhost_inflight_pqueue *r, uint16_t size, uint16_t e,
				struct vring_packed_desc *descs, uint16_t *id);

#endif
