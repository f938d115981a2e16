/*
 * The agent's durable up-queue: every message a plugin sends up is appended here, and the
 * plugin is acknowledged only once the record is on disk (write + fdatasync of its segment).
 *
 * Group commit: a writer thread appends whatever accumulated (one write, then the write-back
 * starts with sync_file_range); a syncer thread makes every batch written to a segment since
 * its last fdatasync durable with one more, then runs each record's completion (which queues
 * the plugin's ACK). Nothing waits for a timer: under load batches grow by themselves, and an
 * idle queue commits a lone record at once.
 *
 * Records live in segment files state_dir/up/seg-<20 digits>.log (64 MiB each). Consumers read
 * them in order from a cursor - one per slot in the agent (its HTTP callback deliveries), or a
 * single one when the agent forwards to NATS - and release each record once it is handled.
 * A segment is deleted when every record in it is released. Cursors are saved every 200 ms and
 * at a clean exit; after a crash a consumer restarts from its last saved cursor, so a few
 * records are delivered again (with the same webhook-id). Layout: docs/protocol.md.
 *
 * Threading: upq_append from any thread; its done, and the hooks, run on the queue's syncer
 * thread. A consumer belongs to one thread (upq_next, upq_release, upq_rewind), except
 * upq_consumer_stop, which any thread may call. Memory: the queue copies what it is given; a
 * record from upq_next points into the caller's buffer. Errors: negative errnos (upq_append's
 * 1 and upq_rec_decode's lengths are results, not errors).
 */
#ifndef MIMO_AGENT_UPQ_H
#define MIMO_AGENT_UPQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

struct up_rec {
	uint64_t key_hi, key_lo; /* idempotency key: the webhook-id */
	uint64_t slot_id;
	int64_t accepted_ms; /* Unix ms */
	int64_t expires_ms;
	const char *plugin;
	size_t plugin_len;
	const char *msg_id;
	size_t msg_id_len;
	const void *content;
	size_t content_len;
};

struct upq_pos {
	uint64_t seg;
	uint64_t off;
};

struct upq;
struct upq_consumer;

/* Completion of one append: status 0 once durable, or a negative errno. On the committer. */
typedef void (*upq_done_fn)(void *arg, int status);

struct upq_hooks {
	void *arg;
	/* Each committed record, in order, before its completion runs. Return true when the
	 * record is taken right away (a request-reply waiter had it): no consumer will see it. */
	bool (*committed)(void *arg, const struct up_rec *r);
	/* Around the completions of a group of batches: completions run between the two (the
	 * agent holds its lock there, once per group instead of once per record, and flushes
	 * the ACKs they queued in batch_end). Either may be NULL. */
	void (*batch_begin)(void *arg);
	void (*batch_end)(void *arg);
};

struct upq_opts {
	const char *dir;
	uint64_t max_bytes;	/* -ENOSPC past this (default 1 GiB) */
	uint64_t segment_bytes; /* default 64 MiB */
	bool single_consumer;	/* one consumer for every slot ("all"); else one per slot */
	bool no_sync;		/* benchmarks of the non-durable path only (documented) */
};

int upq_open(struct upq **out, const struct upq_opts *opts, const struct upq_hooks *hooks);
/* Commit what is pending, stop the committer, save cursors. Consumers must be closed. */
void upq_close(struct upq *q);

/*
 * Append a record. Returns 0 (done runs later), 1 when the same key was committed before
 * (nothing written, done will not run: acknowledge at once), -ENOSPC (queue full),
 * -EMSGSIZE, -ESHUTDOWN. A key still waiting in the current batch is appended as a no-op
 * whose done runs with that batch.
 */
int upq_append(struct upq *q, const struct up_rec *r, upq_done_fn done, void *arg);

/* Slot ids with records waiting after recovery (per-slot mode). Caller frees. */
uint64_t *upq_pending_slots(struct upq *q, size_t *n);

/* A consumer of one slot's records (slot_id 0: every record, single-consumer mode). */
struct upq_consumer *upq_consumer_open(struct upq *q, uint64_t slot_id);
/*
 * The next record: 0 (r points into buf, valid until the next call; *next is the position
 * after it), -EAGAIN (none within timeout_ms), -ESHUTDOWN (queue or consumer closing).
 */
int upq_next(struct upq_consumer *c, struct up_rec *r, struct upq_pos *next, struct mimo_buf *buf,
	     int timeout_ms);
/* Done with every record before next (delivered, expired, or refused for good). */
void upq_release(struct upq_consumer *c, struct upq_pos next);
/* Read again from pos (a window of records that must be sent again). */
void upq_rewind(struct upq_consumer *c, struct upq_pos pos);
/* Wake a consumer waiting in upq_next (it returns -ESHUTDOWN from now on). */
void upq_consumer_stop(struct upq_consumer *c);
void upq_consumer_close(struct upq_consumer *c);

struct upq_stats {
	uint64_t appended, duplicates, commits, bytes, segments, fsyncs;
	uint64_t disk_bytes; /* the segments' bytes on disk now (the bound is --up-max-mb) */
};
void upq_get_stats(struct upq *q, struct upq_stats *st);

/* Encode / decode one record (pure; the fuzz target drives decode). */
size_t upq_rec_size(const struct up_rec *r);
void upq_rec_encode(void *out, const struct up_rec *r);
/* Returns the record's length, 0 when more bytes are needed, -EBADMSG when corrupt. */
long upq_rec_decode(const void *buf, size_t len, struct up_rec *r);

#endif
