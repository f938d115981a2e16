/*
 * A log-linear latency histogram: values below 64 have a bucket each; above, every power of
 * two is split into 64 buckets, so any value lands in a bucket at most 1/64 (1.6%) wide. One
 * add is a count-leading-zeros and an increment: no allocation, no division.
 */
#ifndef MIMO_PERF_HISTOGRAM_H
#define MIMO_PERF_HISTOGRAM_H

#include <stdint.h>

#define HIST_SUB_BITS 6
#define HIST_SUB      (1u << HIST_SUB_BITS)
#define HIST_BUCKETS  ((64 - HIST_SUB_BITS + 1) * HIST_SUB)

struct histogram {
	uint64_t total;
	uint64_t min, max;
	uint64_t counts[HIST_BUCKETS];
};

static inline uint32_t histogram_index(uint64_t v)
{
	uint32_t m;

	if (v < HIST_SUB)
		return (uint32_t)v;
	m = 63u - (uint32_t)__builtin_clzll(v); /* >= HIST_SUB_BITS */
	return (m - HIST_SUB_BITS + 1) * HIST_SUB +
	       (uint32_t)((v >> (m - HIST_SUB_BITS)) - HIST_SUB);
}

static inline void histogram_add(struct histogram *h, uint64_t v)
{
	h->counts[histogram_index(v)]++;
	h->total++;
	if (v < h->min || h->total == 1)
		h->min = v;
	if (v > h->max)
		h->max = v;
}

void histogram_init(struct histogram *h);
/* The values bucket idx holds: [*lo, *hi). */
void histogram_bounds(uint32_t idx, uint64_t *lo, uint64_t *hi);
/* The value below which a fraction q (0..1) of the samples lie: the midpoint of the bucket
 * where the cumulative count reaches q, kept within [min, max]. 0 when empty. */
uint64_t histogram_percentile(const struct histogram *h, double q);
void histogram_merge(struct histogram *into, const struct histogram *from);

#endif
