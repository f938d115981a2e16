/*
 * Records taken at commit by a request-reply waiter (the reply went to the HTTP request that
 * waited for it): remembered by position so that no consumer delivers them again.
 */
#include "upq_internal.h"

#include <stdlib.h>

void upq_taken_add_locked(struct upq *q, uint64_t seg, uint64_t off)
{
	if (q->ntaken == q->takencap) {
		size_t cap = q->takencap ? q->takencap * 2 : 16;
		struct taken *n = realloc(q->taken, cap * sizeof(*n));

		if (n == NULL)
			return; /* the record then also reaches the callback: harmless */
		q->taken = n;
		q->takencap = cap;
	}
	q->taken[q->ntaken++] = (struct taken){ seg, off };
}

bool upq_taken_remove_locked(struct upq *q, uint64_t seg, uint64_t off)
{
	for (size_t i = 0; i < q->ntaken; i++) {
		if (q->taken[i].seg == seg && q->taken[i].off == off) {
			q->taken[i] = q->taken[--q->ntaken];
			return true;
		}
	}
	return false;
}

void upq_taken_forget_seg_locked(struct upq *q, uint64_t seg)
{
	for (size_t i = 0; i < q->ntaken;) {
		if (q->taken[i].seg == seg)
			q->taken[i] = q->taken[--q->ntaken];
		else
			i++;
	}
}
