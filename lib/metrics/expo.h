/*
 * Prometheus' text exposition format 0.0.4, written into a mimo_buf: a family's HELP and TYPE
 * lines, then its samples. Names follow Prometheus' conventions (a mimo_ prefix, base units,
 * _total for counters); label values are escaped here, so any bdev or plugin name is safe to
 * pass. docs/metrics.md lists the families each program writes.
 *
 * Threading: none of its own (a buffer belongs to one scrape). Errors: the buffer records an
 * allocation failure in expo->oom and later calls write nothing; the caller checks it once.
 */
#ifndef MIMO_METRICS_EXPO_H
#define MIMO_METRICS_EXPO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* text/plain; version=0.0.4: what Prometheus asks for and parses. */
#define MIMO_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct mimo_expo {
	struct mimo_buf b;
	bool oom;
};

enum mimo_expo_type {
	MIMO_EXPO_COUNTER,
	MIMO_EXPO_GAUGE,
	MIMO_EXPO_HISTOGRAM
};

/* "# HELP name help" and "# TYPE name counter|gauge|histogram". help must be one line. */
void mimo_expo_family(struct mimo_expo *e, const char *name, enum mimo_expo_type type,
		      const char *help);

/*
 * One sample. labels: NULL, or pairs of name and value ending with NULL, e.g.
 * (const char *[]){"bdev", "Malloc0", NULL}. Values are escaped (backslash, quote, newline).
 */
void mimo_expo_u64(struct mimo_expo *e, const char *name, const char *const *labels,
		   uint64_t value);
void mimo_expo_f64(struct mimo_expo *e, const char *name, const char *const *labels, double value);

/*
 * One histogram's samples (its family written before): name_bucket with label "le" for each
 * of bounds and +Inf, cumulative, then name_sum and name_count. counts[i] is the number within
 * bounds[i] and above bounds[i-1] (counts[nbounds]: above the last). label: one extra pair
 * (name, value) or NULL.
 */
void mimo_expo_histogram(struct mimo_expo *e, const char *name, const char *label,
			 const char *label_value, const double *bounds, size_t nbounds,
			 const uint64_t *counts, double sum);

/* A family with a single unlabelled sample. */
void mimo_expo_one_u64(struct mimo_expo *e, const char *name, enum mimo_expo_type type,
		       const char *help, uint64_t value);

/* mimo_build_info{program="...",version="..."} 1. */
void mimo_expo_build_info(struct mimo_expo *e, const char *program);

/* The process' standard families (process_cpu_seconds_total, process_resident_memory_bytes,
 * process_open_fds, process_max_fds, process_start_time_seconds), as every Prometheus client
 * library writes them, read from /proc/self. */
void mimo_expo_process(struct mimo_expo *e);

#endif
