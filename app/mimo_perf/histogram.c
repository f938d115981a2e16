/* The log-linear latency histogram's slow parts: bounds, percentiles, merging. */
#include <string.h>

#include "histogram.h"

void histogram_init(struct histogram *h)
{
	memset(h, 0, sizeof(*h));
}

void histogram_bounds(uint32_t idx, uint64_t *lo, uint64_t *hi)
{
	uint32_t m, sub;

	if (idx < HIST_SUB) {
		*lo = idx;
		*hi = (uint64_t)idx + 1;
		return;
	}
	m = idx / HIST_SUB - 1 + HIST_SUB_BITS;
	sub = idx % HIST_SUB;
	*lo = ((uint64_t)HIST_SUB + sub) << (m - HIST_SUB_BITS);
	/* The last bucket's end does not fit in 64 bits: saturate. */
	*hi = *lo + ((uint64_t)1 << (m - HIST_SUB_BITS));
	if (*hi < *lo)
		*hi = UINT64_MAX;
}

uint64_t histogram_percentile(const struct histogram *h, double q)
{
	uint64_t want, seen = 0;

	if (h->total == 0)
		return 0;
	if (q <= 0)
		return h->min;
	if (q >= 1)
		return h->max;
	/* Nearest rank: the smallest sample with at least q of them at or below it. */
	want = (uint64_t)(q * (double)h->total);
	if ((double)want < q * (double)h->total)
		want++;
	if (want == 0)
		want = 1;
	for (uint32_t i = 0; i < HIST_BUCKETS; i++) {
		seen += h->counts[i];
		if (seen >= want) {
			uint64_t lo, hi, mid;

			histogram_bounds(i, &lo, &hi);
			mid = lo + (hi - lo) / 2;
			if (mid < h->min)
				mid = h->min;
			if (mid > h->max)
				mid = h->max;
			return mid;
		}
	}
	return h->max;
}

void histogram_merge(struct histogram *into, const struct histogram *from)
{
	if (from->total == 0)
		return;
	if (into->total == 0 || from->min < into->min)
		into->min = from->min;
	if (from->max > into->max)
		into->max = from->max;
	into->total += from->total;
	for (uint32_t i = 0; i < HIST_BUCKETS; i++)
		into->counts[i] += from->counts[i];
}
