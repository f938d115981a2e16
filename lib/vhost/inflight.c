/* Inflight I/O tracking, split rings (inflight.h). */
#include <stdlib.h>
#include <string.h>

#include "inflight.h"

size_t vhost_inflight_queue_bytes(uint16_t queue_size)
{
	size_t n = sizeof(struct vhost_inflight_queue) +
		   (size_t)queue_size * sizeof(struct vhost_inflight_desc);

	return (n + VHOST_INFLIGHT_ALIGN - 1) & ~(size_t)(VHOST_INFLIGHT_ALIGN - 1);
}

struct vhost_inflight_queue *vhost_inflight_queue_at(void *region, uint16_t queue_size, uint16_t q)
{
	return (struct vhost_inflight_queue *)((uint8_t *)region +
					       (size_t)q * vhost_inflight_queue_bytes(queue_size));
}

void vhost_inflight_init(void *region, uint16_t num_queues, uint16_t queue_size)
{
	for (uint16_t q = 0; q < num_queues; q++) {
		struct vhost_inflight_queue *r = vhost_inflight_queue_at(region, queue_size, q);

		r->version = VHOST_INFLIGHT_VERSION;
		r->desc_num = queue_size;
	}
}

/* Clear the n entries of the last batch, from last_batch_head along next. */
static void clear_batch(struct vhost_inflight_queue *r, uint16_t size, uint16_t n)
{
	uint16_t i = __atomic_load_n(&r->last_batch_head, __ATOMIC_RELAXED);

	while (n-- > 0 && i < size) {
		__atomic_store_n(&r->desc[i].inflight, 0, __ATOMIC_RELAXED);
		i = r->desc[i].next;
	}
}

void vhost_inflight_published(struct vhost_inflight_queue *r, uint16_t size, uint16_t used_idx)
{
	uint16_t n = (uint16_t)(used_idx - r->used_idx);

	/* The used index is visible before the entries stop being in flight: a back-end that
	 * dies between the two leaves a region the next one completes (recover). */
	clear_batch(r, size, n > size ? size : n);
	__atomic_store_n(&r->used_idx, used_idx, __ATOMIC_RELEASE);
}

static int by_counter(const void *a, const void *b)
{
	const struct vhost_inflight_pending *x = a, *y = b;

	return x->counter < y->counter ? -1 : x->counter > y->counter;
}

uint64_t vhost_inflight_order(struct vhost_inflight_pending *p, uint16_t n, uint16_t *heads)
{
	qsort(p, n, sizeof(*p), by_counter);
	for (uint16_t i = 0; i < n; i++)
		heads[i] = p[i].head;
	return n > 0 ? p[n - 1].counter + 1 : 0;
}

int vhost_inflight_recover(struct vhost_inflight_queue *r, uint16_t size, uint16_t used_idx,
			   uint16_t *heads, uint64_t *counter)
{
	struct vhost_inflight_pending *p;
	uint16_t n = 0;

	*counter = 0;
	if (r->version != VHOST_INFLIGHT_VERSION || r->desc_num < size)
		return -1;
	if (r->used_idx != used_idx) {
		uint16_t batch = (uint16_t)(used_idx - r->used_idx);

		clear_batch(r, size, batch > size ? size : batch);
		r->used_idx = used_idx;
	}
	p = malloc(sizeof(*p) * (size ? size : 1));
	if (p == NULL)
		return -1;
	for (uint16_t i = 0; i < size; i++) {
		if (r->desc[i].inflight == 1) {
			p[n].counter = r->desc[i].counter;
			p[n].head = i;
			n++;
		} else if (r->desc[i].inflight != 0) {
			r->desc[i].inflight = 0; /* not ours: nothing is taken that way */
		}
	}
	*counter = vhost_inflight_order(p, n, heads);
	free(p);
	return n;
}
