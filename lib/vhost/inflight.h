/*
 * Inflight I/O tracking (vhost-user's INFLIGHT_SHMFD, split rings): a shared region, one part
 * per queue, in which the back-end notes each request it takes from a ring and each it gives
 * back. The front-end keeps the region (GET_INFLIGHT_FD made it; SET_INFLIGHT_FD hands it to
 * the next back-end process), so a back-end that died with requests in flight is followed
 * by one that finds them there and submits them again: the guest sees them complete instead
 * of waiting forever. The layout is the one of QEMU's docs/interop/vhost-user.rst ("Inflight
 * I/O tracking"), which libvhost-user and DPDK use too.
 *
 * The region comes back from the front-end after a restart: every index read from it is
 * checked, and no walk over it is longer than the queue. Pure functions over mapped memory:
 * unit-tested and fuzzed without a socket.
 */
#ifndef MIMO_VHOST_INFLIGHT_H
#define MIMO_VHOST_INFLIGHT_H

#include <stddef.h>
#include <stdint.h>

#define VHOST_INFLIGHT_VERSION 1u
#define VHOST_INFLIGHT_ALIGN   64u

struct vhost_inflight_desc {
	uint8_t inflight; /* 1: taken, not yet given back */
	uint8_t padding[5];
	uint16_t next;	  /* the previous entry of the last batch given back */
	uint64_t counter; /* the order in which requests were taken */
};

struct vhost_inflight_queue {
	uint64_t features; /* 0 */
	uint16_t version;  /* 1 */
	uint16_t desc_num; /* the queue size the region was made for */
	uint16_t last_batch_head;
	uint16_t used_idx; /* the used index once the last batch was cleared */
	struct vhost_inflight_desc desc[];
};

/* GET_INFLIGHT_FD and SET_INFLIGHT_FD's payload. */
struct vhost_user_inflight {
	uint64_t mmap_size;
	uint64_t mmap_offset;
	uint16_t num_queues;
	uint16_t queue_size;
	uint8_t padding[4]; /* QEMU sends the struct with its padding: 24 bytes */
};

/* Bytes of one queue's part for a queue of queue_size entries. */
size_t vhost_inflight_queue_bytes(uint16_t queue_size);
/* Lay out a fresh region of num_queues parts (zeroed memory). */
void vhost_inflight_init(void *region, uint16_t num_queues, uint16_t queue_size);
/* Queue q's part of a region of parts of queue_size entries. */
struct vhost_inflight_queue *vhost_inflight_queue_at(void *region, uint16_t queue_size, uint16_t q);

/* A request taken from the ring (before it is submitted). */
static inline void vhost_inflight_take(struct vhost_inflight_queue *r, uint16_t head,
				       uint64_t counter)
{
	r->desc[head].counter = counter;
	__atomic_store_n(&r->desc[head].inflight, 1, __ATOMIC_RELEASE);
}

/* A request put in the used ring (not yet published): into the batch. */
static inline void vhost_inflight_push(struct vhost_inflight_queue *r, uint16_t head)
{
	r->desc[head].next = r->last_batch_head;
	__atomic_store_n(&r->last_batch_head, head, __ATOMIC_RELEASE);
}

/* The used index (used_idx) was published: the batch is no longer in flight. size is the
 * ring's size (every head below it). */
void vhost_inflight_published(struct vhost_inflight_queue *r, uint16_t size, uint16_t used_idx);

/* A head found in flight by recovery, and its counter. */
struct vhost_inflight_pending {
	uint64_t counter;
	uint16_t head;
};

/* Recovery, both layouts: the n heads of p into heads, oldest first (p is sorted); returns
 * the next counter to use. */
uint64_t vhost_inflight_order(struct vhost_inflight_pending *p, uint16_t n, uint16_t *heads);

/*
 * A queue starts over a region that may come from a back-end that died: finish its last
 * batch if the used index went further than the region says, then list the requests still
 * in flight, oldest first, in heads (room for size). Returns their number, and in *counter
 * the next counter to use; -1 if the region does not fit the ring (its size, its version).
 */
int vhost_inflight_recover(struct vhost_inflight_queue *r, uint16_t size, uint16_t used_idx,
			   uint16_t *heads, uint64_t *counter);

#endif
