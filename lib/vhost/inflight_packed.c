/* Inflight I/O tracking, packed rings (inflight_packed.h). */
#include <stdlib.h>
#include <string.h>

#include "inflight.h"
#include "inflight_packed.h"

_Static_assert(sizeof(struct vhost_inflight_pdesc) == 32, "the spec's DescStatePacked");
_Static_assert(offsetof(struct vhost_inflight_pqueue, desc) == 32, "the spec's QueueRegionPacked");

#define STORE_REL(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define WRAP_BIT	(1u << VRING_PACKED_WRAP_BIT)

size_t vhost_inflight_packed_queue_bytes(uint16_t queue_size)
{
	size_t n = sizeof(struct vhost_inflight_pqueue) +
		   (size_t)queue_size * sizeof(struct vhost_inflight_pdesc);

	return (n + VHOST_INFLIGHT_ALIGN - 1) & ~(size_t)(VHOST_INFLIGHT_ALIGN - 1);
}

struct vhost_inflight_pqueue *vhost_inflight_packed_queue_at(void *region, uint16_t queue_size,
							     uint16_t q)
{
	return (struct vhost_inflight_pqueue *)((uint8_t *)region +
						(size_t)q * vhost_inflight_packed_queue_bytes(
								    queue_size));
}

void vhost_inflight_packed_reset(struct vhost_inflight_pqueue *r, uint16_t size, uint16_t used)
{
	memset(r, 0, sizeof(*r) + (size_t)size * sizeof(r->desc[0]));
	/* Every entry free, in order; the last one's next (size) ends the list. */
	for (uint16_t i = 0; i < size; i++)
		r->desc[i].next = (uint16_t)(i + 1);
	r->desc_num = size;
	r->used_idx = r->old_used_idx = used & (WRAP_BIT - 1);
	r->used_wrap_counter = r->old_used_wrap_counter = !!(used & WRAP_BIT);
	STORE_REL(&r->version, (uint16_t)VHOST_INFLIGHT_VERSION);
}

int vhost_inflight_packed_take(struct vhost_inflight_pqueue *r, uint16_t size,
			       const struct vring_packed_desc *ring, uint16_t pos, uint16_t n,
			       uint64_t counter)
{
	uint16_t h = r->old_free_head, e = h, last = h;

	if (h >= size || n == 0)
		return -1;
	r->desc[h].counter = counter;
	r->desc[h].num = n;
	STORE_REL(&r->desc[h].inflight, 1);
	for (uint16_t i = 0; i < n; i++) {
		const struct vring_packed_desc *d = &ring[pos];
		struct vhost_inflight_pdesc *x;

		if (e >= size)
			return -1; /* the list ran out: the part was not ours alone */
		x = &r->desc[e];
		x->addr = d->addr;
		x->len = d->len;
		x->id = d->id;
		x->flags = d->flags;
		last = e;
		e = x->next;
		if (++pos == size)
			pos = 0;
	}
	r->desc[h].last = last;
	r->free_head = e;
	/* Only now is the buffer taken: a back-end dying before this leaves h on the free
	 * list, and its buffer is taken from the ring again. */
	STORE_REL(&r->old_free_head, e);
	return h;
}

void vhost_inflight_packed_give_back(struct vhost_inflight_pqueue *r, uint16_t size, uint16_t e,
				     uint16_t n)
{
	uint16_t last = r->desc[e].last;
	uint32_t used = (uint32_t)r->used_idx + n;

	if (last < size)
		r->desc[last].next = r->free_head;
	STORE_REL(&r->free_head, e);
	if (used >= size) {
		used -= size;
		STORE_REL(&r->used_wrap_counter, (uint8_t)!r->used_wrap_counter);
	}
	STORE_REL(&r->used_idx, (uint16_t)used);
}

/* The flags the driver gives a descriptor it makes available in the lap of wrap counter w. */
static uint16_t avail_flags(bool w)
{
	return w ? VRING_PACKED_DESC_F_AVAIL : VRING_PACKED_DESC_F_USED;
}

/* Finish or undo what a back-end that died was doing: the spec's "when reconnecting" 1-3. */
static void settle(struct vhost_inflight_pqueue *r, uint16_t size,
		   const struct vring_packed_desc *ring)
{
	const uint16_t mask = VRING_PACKED_DESC_F_AVAIL | VRING_PACKED_DESC_F_USED;

	if (r->used_idx != r->old_used_idx || r->used_wrap_counter != r->old_used_wrap_counter) {
		uint16_t e = r->free_head;
		uint16_t f = __atomic_load_n(&ring[r->old_used_idx].flags, __ATOMIC_ACQUIRE);

		/* A give-back was under way (its head is the free list's). Its commit had begun
		 * if the head is no longer in flight: the used descriptor was written, and old_*
		 * may be half updated - kept. Otherwise old_* are untouched, and the spec's test
		 * holds: the slot at the old used position still shows what the driver made
		 * available if the used descriptor never reached it - undone; anything else there
		 * is ours - kept. */
		if ((e < size && r->desc[e].inflight == 0) ||
		    (f & mask) != avail_flags(r->old_used_wrap_counter)) {
			r->old_free_head = r->free_head;
			r->old_used_idx = r->used_idx;
			r->old_used_wrap_counter = r->used_wrap_counter;
		}
	}
	r->free_head = r->old_free_head;
	r->used_idx = r->old_used_idx;
	r->used_wrap_counter = r->old_used_wrap_counter;
}

/* What is on the free list is not in flight (a take cut short leaves its head there); its
 * entries are marked in owner. -1 if the list comes back on itself. */
static int free_list(struct vhost_inflight_pqueue *r, uint16_t size, uint8_t *owner)
{
	for (uint16_t e = r->free_head; e < size; e = r->desc[e].next) {
		if (owner[e]++)
			return -1;
		r->desc[e].inflight = 0;
	}
	return 0;
}

/* Head entry h's chain stays inside the part, ends where the head says, and names a buffer of
 * the ring; its length. With owner, its entries are marked there, and may be no other
 * chain's nor on the free list. */
static int chain_ok(const struct vhost_inflight_pqueue *r, uint16_t size, uint16_t h,
		    uint8_t *owner)
{
	uint16_t n = r->desc[h].num, e = h;

	if (n == 0 || n > size)
		return -1;
	for (uint16_t i = 0; i < n; i++) {
		if (i > 0 && (e = r->desc[e].next) >= size)
			return -1;
		if (owner != NULL && owner[e]++)
			return -1;
	}
	/* The buffer's id is the one of the chain's last descriptor (virtio 1.1 2.7.6). */
	return e == r->desc[h].last && r->desc[e].id < size ? n : -1;
}

int vhost_inflight_packed_recover(struct vhost_inflight_pqueue *r, uint16_t size,
				  const struct vring_packed_desc *ring, uint16_t *heads,
				  struct vhost_inflight_packed_pos *pos)
{
	struct vhost_inflight_pending *p;
	uint8_t *owner;
	uint32_t descs = 0, avail;
	uint16_t n = 0;
	bool wrap;

	if (r->version != VHOST_INFLIGHT_VERSION || r->desc_num != size || size == 0 ||
	    r->used_idx >= size || r->old_used_idx >= size || r->used_wrap_counter > 1 ||
	    r->old_used_wrap_counter > 1)
		return -1;
	settle(r, size, ring);
	p = malloc(sizeof(*p) * size);
	owner = calloc(size, 1);
	if (p == NULL || owner == NULL || free_list(r, size, owner) != 0)
		goto bad;
	for (uint16_t i = 0; i < size; i++) {
		int len;

		if (r->desc[i].inflight != 1) {
			r->desc[i].inflight = 0; /* not ours: nothing is taken that way */
			continue;
		}
		/* Chains apart from each other and from the free list: what a buffer given back
		 * or taken anew writes cannot change another's copies. */
		len = chain_ok(r, size, i, owner);
		if (len < 0 || (descs += (uint32_t)len) > size)
			goto bad;
		p[n].counter = r->desc[i].counter;
		p[n].head = i;
		n++;
	}
	free(owner);
	pos->counter = vhost_inflight_order(p, n, heads);
	free(p);
	/* The driver made available, in order, every descriptor given back and every one in
	 * flight: its next buffer lies after them all. */
	avail = r->used_idx + descs;
	wrap = r->used_wrap_counter;
	if (avail >= size) {
		avail -= size;
		wrap = !wrap;
	}
	pos->used = (uint16_t)(r->used_idx | (r->used_wrap_counter ? WRAP_BIT : 0));
	pos->avail = (uint16_t)(avail | (wrap ? WRAP_BIT : 0));
	return n;
bad:
	free(owner);
	free(p);
	return -1;
}

int vhost_inflight_packed_chain(const struct vhost_inflight_pqueue *r, uint16_t size, uint16_t e,
				struct vring_packed_desc *descs, uint16_t *id)
{
	int n;

	if (e >= size || (n = chain_ok(r, size, e, NULL)) < 0)
		return -1;
	*id = r->desc[r->desc[e].last].id;
	for (int i = 0; i < n; i++) {
		descs[i].addr = r->desc[e].addr;
		descs[i].len = r->desc[e].len;
		descs[i].id = r->desc[e].id;
		descs[i].flags = r->desc[e].flags;
		e = r->desc[e].next;
	}
	return n;
}
