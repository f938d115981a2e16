/* Packed virtqueues, device side (vring_packed.h). */
#include <errno.h>
#include <string.h>

#include "vring_packed.h"

#define LOAD_ACQ(p)	__atomic_load_n((p), __ATOMIC_ACQUIRE)
#define LOAD(p)		__atomic_load_n((p), __ATOMIC_RELAXED)
#define STORE_REL(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define STORE(p, v)	__atomic_store_n((p), (v), __ATOMIC_RELAXED)

#define F_AVAIL VRING_PACKED_DESC_F_AVAIL
#define F_USED	VRING_PACKED_DESC_F_USED

/* The driver made descriptor flags f available in the lap whose wrap counter is wrap. */
static inline bool is_avail(uint16_t f, bool wrap)
{
	return !!(f & F_AVAIL) == wrap && !!(f & F_USED) != wrap;
}

static inline void advance(uint16_t *pos, bool *wrap, uint16_t n, uint16_t size)
{
	uint32_t p = (uint32_t)*pos + n;

	if (p >= size) {
		p -= size;
		*wrap = !*wrap;
	}
	*pos = (uint16_t)p;
}

enum vring_pop vring_packed_pop(struct vring_packed *vr, struct vring_packed_buf *buf,
				const char **why)
{
	uint16_t pos = vr->last_avail, n = 0, id = 0;
	bool wrap = vr->avail_wrap;
	uint16_t f = LOAD_ACQ(&vr->desc[pos].flags);

	*why = NULL;
	if (!is_avail(f, wrap)) {
		/*
		 * Our next position only ever holds what the driver wrote in this lap or what
		 * was left there in the previous one: a descriptor used in this lap means the
		 * position is stale - a back-end started again under a running driver with the
		 * base of an earlier stop. Reading on from there could redo old requests.
		 */
		if (!!(f & F_AVAIL) == wrap && !!(f & F_USED) == wrap) {
			*why = "the ring's position is stale (its descriptor is used in this lap)";
			return VRING_BROKEN;
		}
		return VRING_EMPTY;
	}
	/*
	 * The driver makes a chain's head available last, so once the head is, every
	 * descriptor of the chain is written; each must be available in its own lap (a chain
	 * may cross the ring's end). The buffer's id is in the chain's last descriptor.
	 */
	for (;;) {
		if (++n > vr->size) {
			*why = "descriptor chain longer than the ring";
			return VRING_BROKEN;
		}
		if (n > 1) {
			f = LOAD_ACQ(&vr->desc[pos].flags);
			if (!is_avail(f, wrap)) {
				*why = "a descriptor of a chain was not made available with its "
				       "head";
				return VRING_BROKEN;
			}
		}
		id = LOAD(&vr->desc[pos].id);
		advance(&pos, &wrap, 1, vr->size);
		if (!(f & VRING_DESC_F_NEXT) || (f & VRING_DESC_F_INDIRECT))
			break;
	}
	if (id >= vr->size) {
		*why = "buffer id beyond the ring's size";
		return VRING_BROKEN;
	}
	buf->pos = vr->last_avail;
	buf->ndescs = n;
	buf->id = id;
	vr->last_avail = pos;
	vr->avail_wrap = wrap;
	return VRING_GOT;
}

static void read_desc(const struct vring_packed_desc *src, struct vring_packed_desc *d)
{
	/* One copy, then only the copy is looked at: the guest may change the ring meanwhile. */
	memcpy(d, src, sizeof(*d));
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
}

/* What walking a buffer accumulates, descriptor after descriptor. */
struct walk_state {
	struct iovec *iov;
	uint16_t max, cnt, out_cnt;
	bool writable_seen;
	uint64_t out_len, in_len;
};

static int add_desc(struct walk_state *w, const struct vhost_mem *mem,
		    const struct vring_packed_desc *d, const char **why)
{
	int rc;

	if (d->flags & VRING_DESC_F_WRITE) {
		w->writable_seen = true;
		w->in_len += d->len;
	} else {
		if (w->writable_seen) {
			*why = "device-readable descriptor after a writable one";
			return -EINVAL;
		}
		w->out_len += d->len;
	}
	rc = vhost_mem_add_range(mem, d->addr, d->len, w->iov, w->max, &w->cnt);
	if (rc != 0) {
		*why = rc == -EFAULT ? "buffer outside guest memory" : "too many segments";
		return rc;
	}
	if (!w->writable_seen)
		w->out_cnt = w->cnt;
	return 0;
}

/* An indirect table: packed descriptors one after the other, all of them used; only their
 * WRITE flag means anything (the rest is ignored, as virtio says), but a table pointing to
 * another table is refused as the split walker refuses it. */
static int walk_indirect(const struct vring_packed *vr, const struct vhost_mem *mem,
			 const struct vring_packed_desc *ind, struct walk_state *w,
			 const char **why)
{
	const struct vring_packed_desc *table;
	uint32_t n;
	uint64_t got;
	uint8_t *p;

	if (!vr->indirect || (ind->flags & VRING_DESC_F_NEXT)) {
		*why = "indirect descriptor not allowed here";
		return -EINVAL;
	}
	if (ind->len == 0 || ind->len % sizeof(struct vring_packed_desc) != 0 ||
	    ind->len / sizeof(struct vring_packed_desc) > VHOST_MAX_INDIRECT) {
		*why = "indirect table length";
		return -EINVAL;
	}
	p = vhost_gpa_to_host(mem, ind->addr, ind->len, &got);
	if (p == NULL || got != ind->len || ((uintptr_t)p & 7) != 0) {
		*why = "indirect table outside guest memory";
		return -EFAULT;
	}
	table = (const struct vring_packed_desc *)p;
	n = ind->len / sizeof(struct vring_packed_desc);
	for (uint32_t i = 0; i < n; i++) {
		struct vring_packed_desc d;
		int rc;

		read_desc(&table[i], &d);
		if (d.flags & VRING_DESC_F_INDIRECT) {
			*why = "indirect descriptor inside an indirect table";
			return -EINVAL;
		}
		rc = add_desc(w, mem, &d, why);
		if (rc != 0)
			return rc;
	}
	return 0;
}

int vring_packed_walk(const struct vring_packed *vr, const struct vhost_mem *mem,
		      const struct vring_packed_buf *buf, struct iovec *iov, uint16_t max,
		      struct vring_chain *out, const char **why)
{
	struct walk_state w = { .iov = iov, .max = max };
	uint16_t pos = buf->pos;
	bool wrap = false; /* only advance()'s bookkeeping: laps do not matter here */
	int rc;

	*why = NULL;
	if (buf->pos >= vr->size || buf->ndescs == 0 || buf->ndescs > vr->size) {
		*why = "buffer position out of range";
		return -EINVAL;
	}
	for (uint16_t i = 0; i < buf->ndescs; i++) {
		struct vring_packed_desc d;

		read_desc(&vr->desc[pos], &d);
		advance(&pos, &wrap, 1, vr->size);
		if (d.flags & VRING_DESC_F_INDIRECT) {
			/* A whole buffer in a table: the only descriptor of its chain. */
			if (buf->ndescs != 1) {
				*why = "indirect descriptor inside a chain";
				return -EINVAL;
			}
			rc = walk_indirect(vr, mem, &d, &w, why);
		} else {
			rc = add_desc(&w, mem, &d, why);
		}
		if (rc != 0)
			return rc;
	}
	if (w.out_len > UINT32_MAX || w.in_len > UINT32_MAX) {
		*why = "chain longer than 4 GiB";
		return -EINVAL;
	}
	out->iovcnt = w.cnt;
	out->out_cnt = w.out_cnt;
	out->out_len = (uint32_t)w.out_len;
	out->in_len = (uint32_t)w.in_len;
	return 0;
}

void vring_packed_push_used(struct vring_packed *vr, uint16_t id, uint16_t ndescs, uint32_t len)
{
	struct vring_packed_desc *d = &vr->desc[vr->used_pos];
	uint16_t flags = vr->used_wrap ? (F_AVAIL | F_USED) : 0;

	if (len != 0)
		flags |= VRING_DESC_F_WRITE;
	STORE(&d->id, id);
	STORE(&d->len, len);
	/* The flags last, released: the driver reads id and len once it sees them. */
	STORE_REL(&d->flags, flags);
	advance(&vr->used_pos, &vr->used_wrap, ndescs, vr->size);
}

bool vring_packed_publish(struct vring_packed *vr)
{
	uint16_t old = vr->signalled, now = vr->used_pos, flags, off_wrap, off;
	bool valid = vr->signalled_valid;
	int32_t o, e;

	/* The driver's event structure must be read after our used flags are visible. */
	vhost_full_barrier();
	flags = LOAD(&vr->driver->flags);
	/* Kept at every publish, called or not: a driver that turns DESC on again names a
	 * position after those it has seen, so only what is used from now on matters. */
	vr->signalled = now;
	vr->signalled_valid = true;
	if (flags == VRING_PACKED_EVENT_DISABLE)
		return false;
	/* ENABLE, or DESC without EVENT_IDX (which the driver may not use): call. */
	if (flags != VRING_PACKED_EVENT_DESC || !vr->event_idx || !valid)
		return true;
	off_wrap = LOAD(&vr->driver->off_wrap);
	off = off_wrap & 0x7fff;
	/*
	 * Did the descriptor the driver names fall among those used since the last call,
	 * (old, now]? Positions in one linear frame ending at now's lap: old went back a lap if
	 * we wrapped since (now <= old), the event's position if its wrap counter is not ours.
	 */
	o = now <= old ? (int32_t)old - vr->size : (int32_t)old;
	e = (!!(off_wrap >> VRING_PACKED_WRAP_BIT) != vr->used_wrap) ? (int32_t)off - vr->size
								     : (int32_t)off;
	return e >= o && e < (int32_t)now;
}

bool vring_packed_arm(struct vring_packed *vr)
{
	if (vr->event_idx)
		STORE(&vr->device->off_wrap,
		      (uint16_t)(vr->last_avail | (uint16_t)vr->avail_wrap
							  << VRING_PACKED_WRAP_BIT));
	vhost_full_barrier();
	return is_avail(LOAD_ACQ(&vr->desc[vr->last_avail].flags), vr->avail_wrap);
}

int vring_packed_resume(struct vring_packed *vr, uint16_t avail, uint16_t used)
{
	const uint16_t wrap = 1u << VRING_PACKED_WRAP_BIT;

	if (vr->size == 0 || (avail & (wrap - 1)) >= vr->size || (used & (wrap - 1)) >= vr->size)
		return -EINVAL;
	vr->last_avail = avail & (wrap - 1);
	vr->avail_wrap = !!(avail & wrap);
	vr->used_pos = used & (wrap - 1);
	vr->used_wrap = !!(used & wrap);
	vr->signalled_valid = false;
	STORE(&vr->device->off_wrap, avail);
	STORE(&vr->device->flags,
	      (uint16_t)(vr->event_idx ? VRING_PACKED_EVENT_DESC : VRING_PACKED_EVENT_ENABLE));
	return 0;
}

int vring_packed_start(struct vring_packed *vr, uint32_t base)
{
	return vring_packed_resume(vr, (uint16_t)base, (uint16_t)base);
}

uint32_t vring_packed_base(const struct vring_packed *vr)
{
	uint32_t avail = vr->last_avail | (uint32_t)vr->avail_wrap << VRING_PACKED_WRAP_BIT;
	uint32_t used = vr->used_pos | (uint32_t)vr->used_wrap << VRING_PACKED_WRAP_BIT;

	return avail | used << 16;
}
