/*
 * The inflight region as a front-end hands it back after a restart (SET_INFLIGHT_FD): any
 * bytes, a ring size and a used index from the input, in the split layout or (the first
 * byte's top bit) the packed one with a descriptor ring beside it. Recovery must stay inside
 * the queue's part (an exact-size allocation ASan watches), list each head once and below the
 * ring's size, oldest first, with positions inside the ring; then taking, giving back and
 * publishing on the result must stay inside too, and leave nothing in flight.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "inflight.h"
#include "inflight_packed.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Packed: recover, check what comes back, give it all back, then take and give back a buffer
 * of every length the free list allows. */
static void packed(const uint8_t *data, size_t size, uint16_t qsize)
{
	uint16_t heads[1024], id;
	uint8_t seen[1024] = { 0 };
	struct vhost_inflight_packed_pos pos;
	struct vring_packed_desc *ring, *descs;
	struct vhost_inflight_pqueue *r;
	size_t bytes = vhost_inflight_packed_queue_bytes(qsize), ring_bytes = 16u * qsize;
	int n;

	r = calloc(1, bytes);
	ring = calloc(1, ring_bytes);
	descs = calloc(1, ring_bytes);
	if (r == NULL || ring == NULL || descs == NULL)
		goto out;
	memcpy(ring, data, size < ring_bytes ? size : ring_bytes);
	if (size > ring_bytes)
		memcpy(r, data + ring_bytes, size - ring_bytes < bytes ? size - ring_bytes : bytes);
	if (data[0] & 1) { /* often a region of the right shape, so recovery goes further */
		r->version = VHOST_INFLIGHT_VERSION;
		r->desc_num = qsize;
		r->used_idx %= qsize;
		r->old_used_idx %= qsize;
		r->used_wrap_counter &= 1;
		r->old_used_wrap_counter &= 1;
	}
	n = vhost_inflight_packed_recover(r, qsize, ring, heads, &pos);
	if (n < 0)
		goto out;
	if (n > qsize || (pos.avail & 0x7fff) >= qsize || (pos.used & 0x7fff) >= qsize)
		abort();
	for (int i = 0; i < n; i++) {
		int k = vhost_inflight_packed_chain(r, qsize, heads[i], descs, &id);

		if (heads[i] >= qsize || seen[heads[i]]++ || k <= 0 || k > qsize || id >= qsize)
			abort();
		if (i > 0 && r->desc[heads[i - 1]].counter > r->desc[heads[i]].counter)
			abort();
		vhost_inflight_packed_give_back(r, qsize, heads[i], (uint16_t)k);
		vhost_inflight_packed_commit(r, heads[i]);
		if (r->desc[heads[i]].inflight || r->used_idx >= qsize)
			abort();
	}
	for (uint16_t i = 0; i < qsize; i++)
		ring[i].id %= qsize; /* ids the ring walker let through */
	for (uint16_t len = 1; len <= qsize; len++) {
		int e = vhost_inflight_packed_take(r, qsize, ring, (uint16_t)(len % qsize), len,
						   pos.counter++);

		if (e < 0)
			break; /* a free list someone else wrote */
		if (e >= qsize ||
		    vhost_inflight_packed_chain(r, qsize, (uint16_t)e, descs, &id) != len)
			abort();
		vhost_inflight_packed_give_back(r, qsize, (uint16_t)e, len);
		vhost_inflight_packed_commit(r, (uint16_t)e);
	}
out:
	free(descs);
	free(ring);
	free(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint16_t heads[1024], qsize, used;
	uint8_t seen[1024] = { 0 };
	struct vhost_inflight_queue *r;
	uint64_t counter;
	size_t bytes;
	int n;

	if (size < 4)
		return 0;
	qsize = (uint16_t)(1u << (data[0] % 11)); /* 1..1024 */
	if (data[0] & 0x80) {
		packed(data + 1, size - 1, qsize);
		return 0;
	}
	used = (uint16_t)(data[1] | data[2] << 8);
	bytes = vhost_inflight_queue_bytes(qsize);
	r = calloc(1, bytes);
	if (r == NULL)
		return 0;
	memcpy(r, data + 3, size - 3 < bytes ? size - 3 : bytes);
	if (data[3] & 1) { /* often a region of the right shape, so recovery goes further */
		r->version = VHOST_INFLIGHT_VERSION;
		r->desc_num = qsize;
	}
	n = vhost_inflight_recover(r, qsize, used, heads, &counter);
	if (n > qsize)
		abort();
	for (int i = 0; i < n; i++) {
		if (heads[i] >= qsize || seen[heads[i]]++)
			abort();
		if (i > 0 && r->desc[heads[i - 1]].counter > r->desc[heads[i]].counter)
			abort();
	}
	if (n >= 0) {
		for (int i = 0; i < n; i++) {
			vhost_inflight_take(r, heads[i], counter++);
			vhost_inflight_push(r, heads[i]);
		}
		vhost_inflight_published(r, qsize, (uint16_t)(used + n));
		for (int i = 0; i < n; i++)
			if (r->desc[heads[i]].inflight)
				abort();
	}
	free(r);
	return 0;
}
