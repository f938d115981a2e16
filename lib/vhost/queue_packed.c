/*
 * A virtqueue with a packed ring (VIRTIO_F_RING_PACKED) on its reactor: queue.c's kicks,
 * completions, calls and stops are the same for both layouts; this file is what differs -
 * where the rings lie in guest memory, and taking buffers from the ring (vring_packed.c)
 * into requests. A buffer's id names its request slot, as a split chain's head does: ids
 * are below the ring's size (checked), and one still in flight may not come again.
 */
#include <errno.h>
#include <stdatomic.h>

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

static void take(struct vhost_queue *q, const struct vring_packed_buf *b)
{
	struct vhost_req *req = (struct vhost_req *)(q->reqs + (size_t)b->id * q->req_stride);
	struct vring_chain ch;
	const char *why;
	int rc;

	if (mimo_unlikely(req->inflight)) {
		vhost_queue_broken(q, "the driver made a buffer available with the id of one in "
				      "flight");
		return;
	}
	req->q = q;
	req->head = b->id;
	req->ndescs = b->ndescs;
	rc = vring_packed_walk(&q->vp, q->mem, b, req->iov, VHOST_MAX_IOVS, &ch, &why);
	if (mimo_unlikely(rc != 0)) {
		/* The buffer goes back unread: the driver sees a zero-length completion. */
		VHOST_BAD("%s: queue %u: buffer %u refused: %s", q->s->name, q->index, b->id, why);
		vring_packed_push_used(&q->vp, b->id, b->ndescs, 0);
		q->dirty = true;
		return;
	}
	vhost_req_submit(q, req, &ch);
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
