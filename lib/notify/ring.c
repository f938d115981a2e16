#include "ring.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "envelope.h"

#define HUGE_PAGE (2u << 20)

/*
 * Zero-filled and populated now: a page fault on a producer's first touch of a cell costs
 * microseconds, which would dominate the call's tail latency. A ring of 2 MiB or more is
 * aligned to 2 MiB and offered to transparent huge pages, so that all its cells sit under one
 * TLB entry per 2 MiB instead of one per 16 cells (a producer that has just woken up misses
 * the TLB for the cell it writes otherwise). Without huge pages it is the same memory in
 * 4 KiB pages.
 */
static void *map_cells(size_t size)
{
	uint8_t *p, *aligned;
	size_t lead;

	if (size < HUGE_PAGE)
		goto small;
	p = mmap(NULL, size + HUGE_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
		 0);
	if (p == MAP_FAILED)
		goto small;
	aligned = (uint8_t *)(((uintptr_t)p + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1));
	lead = (size_t)(aligned - p);
	if (lead > 0)
		munmap(p, lead);
	munmap(aligned + size, HUGE_PAGE - lead);
	madvise(aligned, size, MADV_HUGEPAGE);
	for (size_t off = 0; off < size; off += 4096)
		aligned[off] = 0;
	return aligned;
small:
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1,
		 0);
	return p == MAP_FAILED ? NULL : p;
}

int notify_ring_init(struct notify_ring *r, uint32_t capacity)
{
	uint64_t cap = 2;
	void *p;

	while (cap < capacity)
		cap <<= 1;
	p = map_cells(cap * sizeof(struct notify_cell));
	if (p == NULL)
		return -ENOMEM;
	r->cells = p;
	r->mask = cap - 1;
	atomic_init(&r->enq, 0);
	atomic_init(&r->deq, 0);
	return 0;
}

void notify_ring_fini(struct notify_ring *r)
{
	uint64_t d, e;

	if (r->cells == NULL)
		return;
	d = atomic_load(&r->deq);
	e = atomic_load(&r->enq);
	for (uint64_t pos = d; pos != e; pos++) {
		struct notify_cell *c = &r->cells[pos & r->mask];

		if (atomic_load(&c->seq) + (pos & r->mask) == pos + 1)
			free(c->heap);
	}
	munmap(r->cells, (r->mask + 1) * sizeof(struct notify_cell));
	r->cells = NULL;
}

void notify_ring_abandon(struct notify_ring *r)
{
	if (r->cells != NULL)
		munmap(r->cells, (r->mask + 1) * sizeof(struct notify_cell));
	r->cells = NULL;
}

int notify_ring_fill_large(struct notify_ring *r, struct notify_cell *c, uint64_t pos,
			   int64_t timestamp, const char *name, uint16_t name_len,
			   const char *payload, uint32_t payload_len, unsigned flags)
{
	c->heap = malloc((size_t)name_len + payload_len);
	if (c->heap == NULL) {
		/* The cell is claimed and must be published; an empty name marks it void. */
		c->name_len = 0;
		atomic_store_explicit(&c->seq, pos + 1 - (pos & r->mask), memory_order_release);
		return -ENOMEM;
	}
	memcpy(c->heap, name, name_len);
	if (payload_len > 0)
		memcpy(c->heap + name_len, payload, payload_len);
	c->timestamp = timestamp;
	c->name_len = name_len;
	c->payload_len = payload_len;
	c->flags = (uint16_t)flags;
	atomic_store_explicit(&c->seq, pos + 1 - (pos & r->mask), memory_order_release);
	return 0;
}

int notify_ring_pop_envelope(struct notify_ring *r, struct mimo_buf *out)
{
	uint64_t pos = atomic_load_explicit(&r->deq, memory_order_relaxed);
	struct notify_cell *c = &r->cells[pos & r->mask];
	uint64_t idx = pos & r->mask;
	uint64_t seq = atomic_load_explicit(&c->seq, memory_order_acquire) + idx;
	const char *src;
	int rc = 1;

	/* Nothing published at the head: empty, or a producer is still filling the cell (it
	 * takes nanoseconds; the caller looks again). enq is not read here: the sender polls
	 * while it is idle, and a line it reads is a line the next producer must take back -
	 * this way producers pay for the cell's line only, not for enq's as well. */
	if (seq != pos + 1)
		return 0;

	src = c->heap != NULL ? c->heap : c->data;
	if (c->name_len == 0)
		rc = -ENODATA; /* a void cell: the producer could not allocate */
	else if (notify_envelope_build(out, src, c->name_len, src + c->name_len, c->payload_len,
				       c->flags, c->timestamp) != 0)
		rc = -ENOMEM;
	free(c->heap);
	c->heap = NULL;
	atomic_store_explicit(&c->seq, pos + r->mask + 1 - idx, memory_order_release);
	atomic_store_explicit(&r->deq, pos + 1, memory_order_release);
	return rc;
}
