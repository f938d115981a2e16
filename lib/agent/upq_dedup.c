/*
 * The up-queue's dedup window: the last UPQ_DEDUP_WINDOW idempotency keys in a chained hash
 * table over a ring of entries, so that a message a plugin sends again (after a lost ACK) is
 * acknowledged without being stored twice.
 */
#include "upq_internal.h"

#include <stdbool.h>
#include <stdint.h>

static uint32_t dd_bucket(uint64_t hi, uint64_t lo)
{
	uint64_t h = (hi ^ (lo * 0x9e3779b97f4a7c15ull)) * 0xff51afd7ed558ccdull;

	return (uint32_t)(h >> 40) % UPQ_DEDUP_BUCKETS;
}

uint32_t upq_dd_find(struct upq *q, uint64_t hi, uint64_t lo)
{
	for (uint32_t i = q->buckets[dd_bucket(hi, lo)]; i != UINT32_MAX; i = q->dd[i].next) {
		if (q->dd[i].hi == hi && q->dd[i].lo == lo)
			return i;
	}
	return UINT32_MAX;
}

void upq_dd_unlink(struct upq *q, uint32_t idx)
{
	uint32_t *pp = &q->buckets[dd_bucket(q->dd[idx].hi, q->dd[idx].lo)];

	while (*pp != UINT32_MAX && *pp != idx)
		pp = &q->dd[*pp].next;
	if (*pp == idx)
		*pp = q->dd[idx].next;
	q->dd[idx].used = false;
}

uint32_t upq_dd_insert(struct upq *q, uint64_t hi, uint64_t lo, bool pending)
{
	uint32_t idx = q->dd_next, b = dd_bucket(hi, lo);

	q->dd_next = (q->dd_next + 1) % UPQ_DEDUP_WINDOW;
	if (q->dd[idx].used) {
		/* A key whose batch is still being committed stays: skip its entry. */
		if (q->dd[idx].pending)
			return UINT32_MAX;
		upq_dd_unlink(q, idx);
	}
	q->dd[idx] = (struct dedup_ent){
		.hi = hi, .lo = lo, .next = q->buckets[b], .used = true, .pending = pending
	};
	q->buckets[b] = idx;
	return idx;
}
