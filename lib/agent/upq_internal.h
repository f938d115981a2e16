/*
 * The up-queue's parts (upq.h is the contract for its users). One struct upq, shared by:
 *  - upq.c          open, close, statistics;
 *  - upq_record.c   the record format (pure);
 *  - upq_segment.c  segment files: names, the in-memory list, deleting released ones;
 *  - upq_dedup.c    the window of recent idempotency keys;
 *  - upq_taken.c    records a request-reply waiter took, which no consumer may see;
 *  - upq_cursor.c   consumers' saved positions (cursors.json);
 *  - upq_recover.c  reading the segments back at open;
 *  - upq_commit.c   appending, and the writer and syncer threads (group commit);
 *  - upq_read.c     consumers reading records in order.
 * Threading: the functions below touch struct upq's state, so they run with q->lock held, or
 * at open before the writer and syncer (the only threads the queue starts) exist. Errors: 0 or
 * a negative errno, as in upq.h; what cannot fail returns nothing.
 */
#ifndef MIMO_AGENT_UPQ_INTERNAL_H
#define MIMO_AGENT_UPQ_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "upq.h"

#define UPQ_COMP	  "upq"
#define UPQ_REC_MAGIC	  0x5250554du /* "MUPR" */
#define UPQ_REC_HDR	  64
#define UPQ_REC_MAX	  (UPQ_REC_HDR + 64 + 255 + (16u << 20))
#define UPQ_DEDUP_WINDOW  65536u
#define UPQ_DEDUP_BUCKETS 131072u
#define UPQ_READ_CHUNK	  (256u << 10)
#define UPQ_SAVE_EVERY_NS (200LL * 1000 * 1000)
#define UPQ_CURSORS_FILE  "cursors.json"

struct seg {
	uint64_t no;
	uint64_t size;	      /* committed bytes: consumers read up to here */
	uint64_t written;     /* bytes written (committed or being synced) */
	uint64_t outstanding; /* records not yet released */
};

struct dedup_ent {
	uint64_t hi, lo;
	uint32_t next; /* chain in the bucket, UINT32_MAX = end */
	bool used;
	bool pending; /* in the batch being built or committed */
};

struct pend {
	upq_done_fn done;
	void *arg;
	size_t off; /* in the batch buffer; SIZE_MAX for a no-op (duplicate of a pending key) */
	uint32_t dedup;
};

struct batch {
	struct mimo_buf buf;
	struct pend *v;
	size_t n, cap;
	/* Set by the writer: where the bytes went, and how that went. */
	struct batch *next;
	int fd;
	int close_fd; /* the previous segment's descriptor, closed once this batch is synced */
	bool new_seg;
	uint64_t seg_no, base;
	int rc;
};

struct taken {
	uint64_t seg, off;
};

struct upq_consumer {
	struct upq *q;
	uint64_t slot_id;
	char name[32];
	struct upq_pos read, cursor;
	int fd;
	uint64_t fd_seg;
	/* read cache: file bytes [rb_off, rb_off + rb.len) of segment rb_seg */
	struct mimo_buf rb;
	uint64_t rb_seg, rb_off;
	bool stop;
	struct upq_consumer *next;
};

/* Saved or recovered cursor of a consumer that is not open (yet). */
struct cursor_ent {
	char name[32];
	struct upq_pos pos;
	uint64_t pending; /* records after pos found at recovery */
	uint64_t slot_id;
};

struct upq {
	struct upq_opts o;
	struct upq_hooks hooks;
	char *dir;
	int dirfd, lockfd;
	pthread_mutex_t lock;
	pthread_cond_t work;	/* the committer waits for records */
	pthread_cond_t data;	/* consumers wait for commits */
	pthread_cond_t drained; /* upq_close waits for the batch to commit */
	bool stop;

	struct seg *segs; /* oldest first */
	size_t nsegs, segcap;
	int wfd; /* the newest segment, appended to */
	uint64_t wseg_no;
	uint64_t bytes; /* on disk */

	struct batch cur; /* being filled */
	uint64_t batch_bytes;
	struct batch *syncq, *syncq_tail; /* written, waiting for fdatasync (in order) */
	bool writer_done;
	int broken; /* a failed write or fdatasync: nothing more is accepted */

	struct dedup_ent *dd;
	uint32_t *buckets;
	uint32_t dd_next;

	struct taken *taken;
	size_t ntaken, takencap;

	struct upq_consumer *consumers;
	struct cursor_ent *cursors;
	size_t ncursors;
	bool cursors_dirty;
	int64_t saved_ns;

	struct upq_stats st;
	pthread_t writer, syncer;
};

/* upq_segment.c */
void upq_seg_path(const struct upq *q, uint64_t no, char *out, size_t len);
/* The segment numbered no, or NULL once it was deleted. */
struct seg *upq_seg_find(struct upq *q, uint64_t no);
/* Add a segment at the end of the list: 0 or -ENOMEM. */
int upq_seg_push(struct upq *q, uint64_t no, uint64_t size);
/* Delete fully released segments from the oldest on (never the one being written). */
void upq_segs_trim_locked(struct upq *q);
/* Create segment no and make it the one appended to (at open, or by the writer: the only
 * thread that appends). 0 or -errno. */
int upq_seg_open_write(struct upq *q, uint64_t no);

/* upq_dedup.c: a fixed window of the last UPQ_DEDUP_WINDOW keys (allocated by upq_open). */
/* The key's entry, or UINT32_MAX. */
uint32_t upq_dd_find(struct upq *q, uint64_t hi, uint64_t lo);
void upq_dd_unlink(struct upq *q, uint32_t idx);
/* Remember a key, forgetting the oldest: its entry, or UINT32_MAX when the oldest is still
 * pending (the new key is then not remembered). */
uint32_t upq_dd_insert(struct upq *q, uint64_t hi, uint64_t lo, bool pending);

/* upq_taken.c */
/* A request-reply waiter took the record at seg/off (a failed allocation forgets it: the record
 * then also reaches its consumer, which is harmless). */
void upq_taken_add_locked(struct upq *q, uint64_t seg, uint64_t off);
/* Whether the record at seg/off was taken (and forget it). */
bool upq_taken_remove_locked(struct upq *q, uint64_t seg, uint64_t off);
/* Segment seg is deleted: forget its taken records. */
void upq_taken_forget_seg_locked(struct upq *q, uint64_t seg);

/* upq_cursor.c */
/* A consumer's name: "all" (single-consumer mode) or "slot-<id>". */
void upq_consumer_name(bool single, uint64_t slot, char *out, size_t len);
struct cursor_ent *upq_cursor_find(struct upq *q, const char *name);
/* Found or added (NULL when out of memory). */
struct cursor_ent *upq_cursor_get(struct upq *q, const char *name);
/* Read cursors.json (at open; a missing or unreadable file means no cursors). */
void upq_cursors_load(struct upq *q);
/* Write the open consumers' and the saved cursors; sync: fsync too (at close). */
void upq_cursors_save_locked(struct upq *q, bool sync);

/* upq_recover.c: at open, before the threads start. Loads the cursors, reads every segment
 * (cutting a torn tail), counts what each consumer has left. 0 or -errno. */
int upq_recover(struct upq *q);

/* upq_commit.c: the two threads upq_open starts. */
void *upq_writer_main(void *arg);
void *upq_syncer_main(void *arg);

#endif
