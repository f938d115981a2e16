/*
 * Split virtqueues, device side: taking the driver's requests from the available ring,
 * walking their descriptor chains (direct and indirect) into iovecs of our own mappings, and
 * handing them back through the used ring, with the driver's notification suppression
 * (VIRTIO_RING_F_EVENT_IDX or the flags).
 *
 * The rings live in guest memory that the guest writes whenever it likes: every index read
 * from them is checked, every descriptor is read once into a local copy and checked before
 * it is used, and no chain can make the walk go on for longer than the queue has entries.
 * Pure functions over mapped memory: unit-tested and fuzzed without a socket.
 */
#ifndef MIMO_VHOST_VRING_H
#define MIMO_VHOST_VRING_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "memory.h"
#include "vhost_user.h"

#define VHOST_MAX_QUEUE_SIZE 1024u
/* iovecs one request may have: a chain of up to VHOST_SEG_MAX data descriptors, the header
 * and the status byte, with room for descriptors split at region boundaries. */
#define VHOST_MAX_IOVS 128u
/* The longest indirect table accepted. */
#define VHOST_MAX_INDIRECT 1024u

struct vring {
	uint16_t size; /* a power of two */
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	uint16_t last_avail; /* next entry of the available ring to take */
	uint16_t used_idx;   /* our copy of used->idx, published by vring_publish */
	uint16_t signalled;  /* used_idx when the driver was last notified */
	bool signalled_valid;
	bool event_idx;
	bool indirect;
};

/* Bytes each part of a ring of size n needs in guest memory. */
static inline uint64_t vring_desc_bytes(uint32_t n)
{
	return 16ull * n;
}
static inline uint64_t vring_avail_bytes(uint32_t n)
{
	return 4 + 2ull * n + 2;
}
static inline uint64_t vring_used_bytes(uint32_t n)
{
	return 4 + 8ull * n + 2;
}

/* The result of walking one chain. iov[0..out_cnt) are device-readable (the driver's data
 * to us), iov[out_cnt..iovcnt) device-writable. */
struct vring_chain {
	uint16_t iovcnt;
	uint16_t out_cnt;
	uint32_t out_len;
	uint32_t in_len;
};

enum vring_pop {
	VRING_EMPTY = 0,   /* nothing available */
	VRING_GOT = 1,	   /* *head is the next request's head descriptor */
	VRING_BROKEN = -1, /* the driver's available index or head is impossible */
};

/* Take the next available head, if any (advances last_avail). */
enum vring_pop vring_pop_head(struct vring *vr, uint16_t *head);
/* How many entries are available now (0 if the driver's index is impossible). */
uint16_t vring_avail_count(const struct vring *vr);

/*
 * Walk the chain starting at head into iov (max entries). Returns 0, or a negative errno
 * with a reason: -EINVAL (an index, a flag combination or a length is wrong), -EFAULT (an
 * address lies outside guest memory), -E2BIG (more iovecs than max), -ELOOP (longer than the
 * queue: a cycle).
 */
int vring_walk(const struct vring *vr, const struct vhost_mem *mem, uint16_t head,
	       struct iovec *iov, uint16_t max, struct vring_chain *out, const char **why);

/* Put (head, len) in the used ring (not yet visible: vring_publish makes it so). */
void vring_push_used(struct vring *vr, uint16_t head, uint32_t len);
/* Make every pushed entry visible to the driver. Returns true if the driver wants to be
 * notified now (its used_event, or the NO_INTERRUPT flag without EVENT_IDX). */
bool vring_publish(struct vring *vr);

/*
 * Before going idle: ask the driver to notify us of its next request (avail_event with
 * EVENT_IDX) and check, after a full barrier, that none arrived meanwhile. Returns true
 * when requests are available (process them and call this again).
 */
bool vring_arm(struct vring *vr);

#endif
