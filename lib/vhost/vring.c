/* Split virtqueues, device side (vring.h). */
#include <errno.h>
#include <string.h>

#include "vring.h"

#define LOAD_ACQ(p)	__atomic_load_n((p), __ATOMIC_ACQUIRE)
#define LOAD(p)		__atomic_load_n((p), __ATOMIC_RELAXED)
#define STORE_REL(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define STORE(p, v)	__atomic_store_n((p), (v), __ATOMIC_RELAXED)

static inline uint16_t *used_event(const struct vring *vr)
{
	return &vr->avail->ring[vr->size];
}

static inline uint16_t *avail_event(const struct vring *vr)
{
	return (uint16_t *)&vr->used->ring[vr->size];
}

uint16_t vring_avail_count(const struct vring *vr)
{
	uint16_t n = (uint16_t)(LOAD_ACQ(&vr->avail->idx) - vr->last_avail);

	return n > vr->size ? 0 : n;
}

enum vring_pop vring_pop_head(struct vring *vr, uint16_t *head)
{
	uint16_t n = (uint16_t)(LOAD_ACQ(&vr->avail->idx) - vr->last_avail);
	uint16_t h;

	if (n == 0)
		return VRING_EMPTY;
	/* More than the ring holds: the driver's index is nonsense. */
	if (n > vr->size)
		return VRING_BROKEN;
	h = LOAD(&vr->avail->ring[vr->last_avail & (vr->size - 1)]);
	if (h >= vr->size)
		return VRING_BROKEN;
	vr->last_avail++;
	*head = h;
	return VRING_GOT;
}

static void read_desc(const struct vring_desc *src, struct vring_desc *d)
{
	/* One copy, then only the copy is looked at: the guest may change the table meanwhile. */
	memcpy(d, src, sizeof(*d));
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
}

int vring_walk(const struct vring *vr, const struct vhost_mem *mem, uint16_t head,
	       struct iovec *iov, uint16_t max, struct vring_chain *out, const char **why)
{
	const struct vring_desc *table = vr->desc;
	uint32_t table_size = vr->size, idx = head, seen = 0;
	bool in_indirect = false, writable_seen = false;
	uint64_t out_len = 0, in_len = 0;
	uint16_t cnt = 0, out_cnt = 0;
	int rc;

	*why = NULL;
	for (;;) {
		struct vring_desc d;

		if (idx >= table_size) {
			*why = "descriptor index out of range";
			return -EINVAL;
		}
		if (++seen > (in_indirect ? table_size : (uint32_t)vr->size)) {
			*why = "descriptor chain longer than its table (a cycle)";
			return -ELOOP;
		}
		read_desc(&table[idx], &d);
		if (d.flags & VRING_DESC_F_INDIRECT) {
			uint64_t got;
			uint8_t *p;

			if (!vr->indirect || in_indirect || (d.flags & VRING_DESC_F_NEXT)) {
				*why = "indirect descriptor not allowed here";
				return -EINVAL;
			}
			if (d.len == 0 || d.len % sizeof(struct vring_desc) != 0 ||
			    d.len / sizeof(struct vring_desc) > VHOST_MAX_INDIRECT) {
				*why = "indirect table length";
				return -EINVAL;
			}
			p = vhost_gpa_to_host(mem, d.addr, d.len, &got);
			if (p == NULL || got != d.len || ((uintptr_t)p & 7) != 0) {
				*why = "indirect table outside guest memory";
				return -EFAULT;
			}
			table = (const struct vring_desc *)p;
			table_size = d.len / sizeof(struct vring_desc);
			in_indirect = true;
			seen = 0;
			idx = 0;
			continue;
		}
		if (d.flags & VRING_DESC_F_WRITE) {
			writable_seen = true;
			in_len += d.len;
		} else {
			if (writable_seen) {
				*why = "device-readable descriptor after a writable one";
				return -EINVAL;
			}
			out_len += d.len;
		}
		rc = vhost_mem_add_range(mem, d.addr, d.len, iov, max, &cnt);
		if (rc != 0) {
			*why = rc == -EFAULT ? "buffer outside guest memory" : "too many segments";
			return rc;
		}
		if (!writable_seen)
			out_cnt = cnt;
		if (!(d.flags & VRING_DESC_F_NEXT))
			break;
		idx = d.next;
	}
	if (out_len > UINT32_MAX || in_len > UINT32_MAX) {
		*why = "chain longer than 4 GiB";
		return -EINVAL;
	}
	out->iovcnt = cnt;
	out->out_cnt = out_cnt;
	out->out_len = (uint32_t)out_len;
	out->in_len = (uint32_t)in_len;
	return 0;
}

void vring_push_used(struct vring *vr, uint16_t head, uint32_t len)
{
	struct vring_used_elem *e = &vr->used->ring[vr->used_idx & (vr->size - 1)];

	STORE(&e->id, (uint32_t)head);
	STORE(&e->len, len);
	vr->used_idx++;
}

bool vring_publish(struct vring *vr)
{
	uint16_t old = vr->signalled, now = vr->used_idx;
	bool valid = vr->signalled_valid;

	STORE_REL(&vr->used->idx, now);
	/* The driver's used_event (or flags) must be read after our index is visible. */
	vhost_full_barrier();
	if (!vr->event_idx)
		return !(LOAD(&vr->avail->flags) & VRING_AVAIL_F_NO_INTERRUPT);
	vr->signalled = now;
	vr->signalled_valid = true;
	if (!valid)
		return true;
	/* virtio's vring_need_event: did used_event fall in (old, now]? */
	return (uint16_t)(now - LOAD(used_event(vr)) - 1) < (uint16_t)(now - old);
}

bool vring_arm(struct vring *vr)
{
	if (vr->event_idx)
		STORE(avail_event(vr), vr->last_avail);
	vhost_full_barrier();
	return LOAD_ACQ(&vr->avail->idx) != vr->last_avail;
}
