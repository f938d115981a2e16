/*
 * A virtqueue with a packed ring (VIRTIO_F_RING_PACKED) on its reactor: queue.c's kicks,
 * completions, calls and stops are the same for both layouts; this file is what differs -
 * where the rings lie in guest memory, and taking buffers from the ring (vring_packed.c)
 * into requests. A buffer's id names its request slot, as a split chain's head does: ids
 * are below the ring's size (checked), and one still in flight may not come again.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "compiler.h"
#include "vhost_internal.h"

int vhost_queue_translate_packed(struct vhost_queue *q)
{
	const struct vhost_mem *mem = q->s->mem;
	const struct vhost_vring_addr *a = &q->addr;
	/* vhost-user keeps the split names: the "avail" address is the driver area (its event
	 * structure), the "used" one the device area (ours). */
	uint8_t *d = vhost_uva_to_host(mem, a->desc_user_addr, vring_packed_desc_bytes(q->num));
	uint8_t *drv = vhost_uva_to_host(mem, a->avail_user_addr, VRING_PACKED_EVENT_BYTES);
	uint8_t *dev = vhost_uva_to_host(mem, a->used_user_addr, VRING_PACKED_EVENT_BYTES);

	if (d == NULL || drv == NULL || dev == NULL || ((uintptr_t)d & 15) ||
	    ((uintptr_t)drv & 3) || ((uintptr_t)dev & 3))
		return -EFAULT;
	q->vp.desc = (struct vring_packed_desc *)d;
	q->vp.driver = (struct vring_packed_event *)drv;
	q->vp.device = (struct vring_packed_event *)dev;
	return 0;
}

/* The queue's part of the inflight region could not be kept (someone else wrote it): the
 * ring goes on, untracked. */
static void stop_tracking(struct vhost_queue *q)
{
	VHOST_BAD("%s: queue %u: the inflight region's free list is broken: not tracked any more",
		  q->s->name, q->index);
	q->ptrack = NULL;
}

void vhost_queue_push_used_packed(struct vhost_queue *q, const struct vhost_req *req, uint32_t len)
{
	struct vhost_inflight_pqueue *r = q->ptrack;

	/* The spec's order: the entries back on the free list and the used position moved,
	 * then the used descriptor, then the state committed (a restart in between rolls the
	 * part back or forward by what it finds in the ring). */
	if (r != NULL)
		vhost_inflight_packed_give_back(r, q->vp.size, req->slot, req->ndescs);
	vring_packed_push_used(&q->vp, req->head, req->ndescs, len);
	if (r != NULL)
		vhost_inflight_packed_commit(r, req->slot);
}

/* Walk descs (the ring, or the copies of a buffer the region kept) and submit the request;
 * a buffer that cannot be walked goes back unread (the driver sees a zero-length
 * completion). */
static void walk_and_submit(struct vhost_queue *q, struct vhost_req *req,
			    const struct vring_packed *vr, const struct vring_packed_buf *b)
{
	struct vring_chain ch;
	const char *why;

	if (mimo_unlikely(vring_packed_walk(vr, q->mem, b, req->iov, VHOST_MAX_IOVS, &ch, &why) !=
			  0)) {
		VHOST_BAD("%s: queue %u: buffer %u refused: %s", q->s->name, q->index, b->id, why);
		vhost_queue_push_used_packed(q, req, 0);
		q->dirty = true;
		return;
	}
	vhost_req_submit(q, req, &ch);
}

static struct vhost_req *claim(struct vhost_queue *q, uint16_t id, uint16_t ndescs)
{
	struct vhost_req *req = (struct vhost_req *)(q->reqs + (size_t)id * q->req_stride);

	if (mimo_unlikely(req->inflight)) {
		vhost_queue_broken(q, "the driver made a buffer available with the id of one in "
				      "flight");
		return NULL;
	}
	req->q = q;
	req->head = id;
	req->ndescs = ndescs;
	return req;
}

static void take(struct vhost_queue *q, const struct vring_packed_buf *b)
{
	struct vhost_req *req = claim(q, b->id, b->ndescs);
	int e;

	if (req == NULL)
		return;
	/* Noted before anything is done with it: a back-end that dies from here on leaves it
	 * to the next one to submit again, from the copies (the ring's may be overwritten). */
	if (q->ptrack != NULL) {
		e = vhost_inflight_packed_take(q->ptrack, q->vp.size, q->vp.desc, b->pos, b->ndescs,
					       q->track_counter++);
		if (mimo_unlikely(e < 0))
			stop_tracking(q);
		else
			req->slot = (uint16_t)e;
	}
	walk_and_submit(q, req, &q->vp, b);
}

void vhost_queue_resubmit_packed(struct vhost_queue *q, uint16_t e)
{
	struct vring_packed copy = q->vp;
	struct vring_packed_buf b = { .pos = 0 };
	struct vhost_req *req;
	int n;

	if (q->ptrack == NULL)
		return;
	copy.desc = malloc(sizeof(*copy.desc) * q->vp.size);
	if (copy.desc == NULL) {
		vhost_queue_broken(q, "out of memory for a request to submit again");
		return;
	}
	n = vhost_inflight_packed_chain(q->ptrack, q->vp.size, e, copy.desc, &b.id);
	if (n > 0 && (req = claim(q, b.id, (uint16_t)n)) != NULL) {
		copy.size = b.ndescs = (uint16_t)n;
		req->slot = e;
		walk_and_submit(q, req, &copy, &b);
	}
	free(copy.desc);
}

/*
 * The ring's positions, and the queue's part of the session's inflight region when it has
 * the packed layout. A part never laid out (the region is new) is laid out from the base the
 * front-end set; one laid out before says where the ring stands - a back-end that died had
 * taken buffers QEMU cannot know of, and the base QEMU sends then is the one of the ring's
 * last stop: the buffers still in flight are submitted again at start, and the ring goes on
 * after them. After a clean stop nothing is in flight and the part agrees with the base.
 */
int vhost_queue_start_packed(struct vhost_queue *q)
{
	struct vhost_session *s = q->s;
	struct vhost_inflight_pqueue *r = NULL;
	struct vhost_inflight_packed_pos pos;
	uint16_t *heads;
	int n;

	q->track = NULL;
	q->ptrack = NULL;
	q->nresubmit = 0;
	q->vp.size = (uint16_t)q->num;
	q->vp.event_idx = s->features & (1ull << VIRTIO_RING_F_EVENT_IDX);
	q->vp.indirect = s->features & (1ull << VIRTIO_RING_F_INDIRECT_DESC);
	if (s->inflight != NULL && s->inflight_packed && q->index < s->inflight_queues &&
	    q->num <= s->inflight_qsize)
		r = vhost_inflight_packed_queue_at(s->inflight, s->inflight_qsize, q->index);
	if (r != NULL && __atomic_load_n(&r->version, __ATOMIC_ACQUIRE) != 0) {
		heads = realloc(q->resubmit, sizeof(*heads) * q->num);
		if (heads == NULL)
			return -ENOMEM;
		q->resubmit = heads;
		n = vhost_inflight_packed_recover(r, q->vp.size, q->vp.desc, heads, &pos);
		if (n >= 0 && vring_packed_resume(&q->vp, pos.avail, pos.used) == 0) {
			q->ptrack = r;
			q->track_counter = pos.counter;
			q->nresubmit = (uint16_t)n;
			if (n > 0) /* a warning: it means a back-end died under a guest */
				MIMO_WARN(COMP,
					  "%s: queue %u: %d request(s) left in flight by the last "
					  "back-end are submitted again",
					  s->name, q->index, n);
			return 0;
		}
		VHOST_BAD("%s: queue %u: the inflight region does not fit the ring (%u entries): "
			  "laid out again from the ring base",
			  s->name, q->index, q->num);
	}
	if (vring_packed_start(&q->vp, q->base) != 0)
		return -ERANGE; /* a ring base beyond the ring */
	if (r != NULL) {
		vhost_inflight_packed_reset(r, q->vp.size, (uint16_t)q->base);
		q->ptrack = r;
		q->track_counter = 0;
	}
	return 0;
}

void vhost_queue_process_packed(struct vhost_queue *q)
{
	struct vring_packed_buf b;
	const char *why;

	do {
		enum vring_pop p;

		while ((p = vring_packed_pop(&q->vp, &b, &why)) == VRING_GOT) {
			take(q, &b);
			if (atomic_load_explicit(&q->broken, memory_order_relaxed))
				return;
		}
		if (p == VRING_BROKEN) {
			vhost_queue_broken(q, why);
			return;
		}
	} while (vring_packed_arm(&q->vp));
}
