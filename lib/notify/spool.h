/*
 * The spool: events the bridge could not deliver, kept on disk in order until it can.
 *
 * A spool directory holds segment files seg-<20-digit sequence>.log, each written whole with
 * mimo_file_write_durable (fsync of file and directory) before the events in it count as
 * spooled, so they survive kill -9 and power loss. A segment holds one or more records in
 * queue order; segments are delivered oldest first and deleted once every record in them has
 * been delivered or has failed for good. One process owns a spool at a time (flock on .lock).
 */
#ifndef MIMO_NOTIFY_SPOOL_H
#define MIMO_NOTIFY_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "webhook.h"

struct spool_rec {
	char id[WEBHOOK_ID_LEN];
	const char *body;
	size_t len;
};

struct notify_spool {
	char *dir;
	int lock_fd; /* -1: not open */
	uint64_t max_bytes;
	uint64_t bytes;	   /* size of the segments on disk */
	uint64_t segments; /* segments on disk */
	uint64_t next_seq; /* sequence number of the next segment written */
	/* The segment being read: whole file in memory, offset of the next record. */
	char *cur_name;
	char *cur_data;
	size_t cur_len;
	size_t cur_off;
	size_t cur_next; /* offset after the record last returned by peek */
};

/* Open (creating with mode 0700) and lock dir. Returns 0, -EWOULDBLOCK when another process
 * holds the spool, or another negative errno. */
int notify_spool_open(struct notify_spool *sp, const char *dir, uint64_t max_bytes);
bool notify_spool_is_open(const struct notify_spool *sp);
bool notify_spool_empty(const struct notify_spool *sp);

/* Write recs as one durable segment. Returns 0, -ENOSPC over max_bytes, or -errno. */
int notify_spool_append(struct notify_spool *sp, const struct spool_rec *recs, size_t n);

/* The oldest record, valid until the next call. Returns 0, -ENOENT when the spool is empty,
 * -EIO when a segment can be neither read nor moved aside, -ENOMEM. */
int notify_spool_peek(struct notify_spool *sp, struct spool_rec *rec);
/* Done with the record last peeked: advance, deleting the segment at its end. */
void notify_spool_consume(struct notify_spool *sp);

/* Remember the read position, release the lock. */
void notify_spool_close(struct notify_spool *sp);
/* In a forked child: forget the spool without touching the parent's lock. */
void notify_spool_abandon(struct notify_spool *sp);

#endif
