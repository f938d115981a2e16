/*
 * The FUSE export's private state. One export = one mount = one fuse session served on a
 * reactor (its /dev/fuse fd is a non-blocking fd watch there; handlers answer at once or from
 * the completion of the bdev I/O they submit), plus a notifier thread that alone talks to the
 * kernel unprompted (store, inval, delete, poll): notifying from inside a request handler
 * deadlocks.
 *
 * Coherence: a write to a bdev whose file an export's kernel knows is held back from its
 * submitter (mimo_bdev_io_hold) until that export's notifier has sent the STORE or INVAL of
 * the range and the kernel has applied it (the notify's write() returns once it has). The holds
 * ride on the queued items; whoever ends an item - the notifier, a stop, the watchdog
 * (hold.c) - releases them, never under exp->lock (a release sends a message to a reactor,
 * which may be waiting for that lock).
 *
 * Locks, outermost first: g_exports_lock (the list of exports; read-held by the write hook),
 * exp->lock (nodes, notify queue, events ring). Nothing waits for a reactor while holding
 * either: the write hook runs on reactors and takes both.
 */
#ifndef MIMO_FUSE_INTERNAL_H
#define MIMO_FUSE_INTERNAL_H

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/param.h>
#include <sys/queue.h>

#include "fname.h"
#include "mimo/bdev.h"
#include "mimo/fuse.h"
#include "mimo/reactor.h"

#define COMP "fuse"

enum {
	INO_ROOT = 1,
	INO_BDEVS = 2,
	INO_EVENTS = 3,
	INO_NAMES = 4,
	INO_FIRST_BDEV = 16,
};

/* Kernel caches of entries and attributes: long, because the export tells the kernel when
 * they change (a bdev is created or deleted); sizes never change while a bdev lives. */
#define FUSE_CACHE_TIMEOUT_S 3600.0
/* The largest single STORE (and RETRIEVE) request: the kernel's max_write. */
#define FUSE_MAX_XFER (1u << 20)
/* A write hook range larger than this is invalidated instead of stored: pushing a bulk
 * copy into the page cache would evict what readers use for data nobody asked for. */
#define FUSE_STORE_MAX_RANGE (8u << 20)
#define FUSE_EVENTS_RING     4096
#define FUSE_POOL_BUFS	     8

struct fuse_export;

/* How long the notifier may sit in one kernel notification before the watchdog takes it for
 * a cycle (see hold.c) and answers the writes that came through its export; how long one item
 * may take before the watchdog answers everything the export holds. */
#define FUSE_HOLD_CYCLE_MS 20
#define FUSE_HOLD_STUCK_MS 5000

/* A write held until an export's kernel shows it (on a queued item's list). */
struct fuse_hold {
	struct mimo_bdev_io *io;
	struct fuse_export *src; /* the export the write came through (compared, never used) */
	struct fuse_hold *next;
};

struct fuse_aio;

/* A waiter for the read-modify-write lock: cont(a) runs on reactor r once it is granted. */
struct rmw_waiter {
	struct fuse_aio *a;
	bool excl;
	void (*cont)(struct fuse_aio *a);
	struct mimo_reactor *r;
	TAILQ_ENTRY(rmw_waiter) link;
};

/* What every export's node of one bdev shares (node.c): the read-modify-write lock, so two
 * exports of the same bdev do not lose each other's partial-block updates. The lock never
 * blocks a reactor: a writer that cannot have it queues, and the release sends it on (to its
 * reactor, which may be another one when exports of the bdev run on several). */
struct fuse_bdev_shared {
	struct mimo_bdev *bdev;
	uint32_t refs;	     /* under the registry's lock */
	pthread_mutex_t mtx; /* held only to change what is below, never across I/O */
	uint32_t readers;    /* aligned writes holding the lock shared */
	bool writer;	     /* a read-modify-write holding it alone */
	TAILQ_HEAD(, rmw_waiter) waiters;
	TAILQ_ENTRY(fuse_bdev_shared) link;
};

/* A byte-range operation in progress on a node's reactor (node.c). The caller fills nothing:
 * the fuse_aio_* functions do, and call done(a, rc) once (possibly before they return). */
struct fuse_aio {
	struct fuse_node *n;
	void (*done)(struct fuse_aio *a, int rc);
	/* one bdev I/O */
	void (*next)(struct fuse_aio *a, int rc);
	bool own_io; /* the write hook leaves this export's file alone */
	/* a byte-range write (read-modify-write at the edges) */
	void (*wdone)(struct fuse_aio *a, int rc);
	const uint8_t *data;
	uint64_t off;
	size_t len;
	bool own, excl;
	bool locked; /* holds the rmw lock */
	uint8_t *tmp;
	struct rmw_waiter w;
	/* zero */
	uint64_t zoff, zlen, za, zb;
	uint8_t *zeros;
};

/* Per-node queue bounds: past them the node's queued ranges become one whole-file INVAL. */
#define FUSE_NODE_QUEUE_ITEMS 64

/* One bdev file. Lives until the export goes (the kernel may hold its ino for a while);
 * once its bdev is deleted it is dead and answers ENODEV. */
struct fuse_node {
	struct fuse_export *exp;
	uint64_t ino;
	char *name;    /* the bdev's */
	char *fname;   /* under exp->lock: its file name as last looked up (NULL: never) */
	char uuid[40]; /* the bdev's identity: a re-created bdev of the same name is another */
	uint32_t block_size;
	uint64_t num_blocks;
	uint64_t size;
	_Atomic bool dead;	  /* the bdev was deleted */
	bool looked_up;		  /* under exp->lock: the kernel knows the ino */
	_Atomic bool read_only;	  /* opened read-only: the bdev is claimed for write by a module */
	_Atomic uint32_t openers; /* open file handles: STORE only while someone has it open */
	/* Under exp->lock: this node's N_RANGE items in the queue. */
	uint32_t q_items;
	uint64_t q_bytes;
	bool q_whole;		  /* a whole-file INVAL is queued: more ranges add nothing */
	struct nitem *q_whole_it; /* that item, which holds later writes too */
	bool gone_sent;		  /* under exp->lock: its deletion was notified */

	/* The descriptor, opened on first open() on reactor `reactor` (the export's, where its
	 * requests are served) and used only there. */
	struct mimo_reactor *reactor;
	struct mimo_bdev_desc *desc; /* NULL once closed */
	struct mimo_bdev *bdev;	     /* under exp->lock, for the write hook; NULL once closed */
	struct mimo_io_channel *ch;  /* reactor-local from here down */
	bool removing;
	uint32_t inflight;

	/* Own writes, for the STORE race check (see notifier.c). */
	_Atomic uint64_t own_gen;
	_Atomic uint32_t own_inflight;
	/* Set on open: its rmw lock is shared by aligned writes and taken alone by
	 * read-modify-writes of partial blocks, across exports. */
	struct fuse_bdev_shared *shared;
	TAILQ_ENTRY(fuse_node) link;
};

enum nitem_kind {
	N_RANGE,       /* a bdev range changed by another path: store or inval (whole: all) */
	N_ENTRY_ADDED, /* a bdev appeared: inval_entry on bdevs/ */
	N_ENTRY_GONE,  /* a bdev vanished: delete on bdevs/, inval its pages */
	N_ENTRY_STALE, /* name: a file name of bdevs/ the kernel may hold for the wrong bdev */
};

struct nitem {
	enum nitem_kind kind;
	struct fuse_node *node; /* N_RANGE, N_ENTRY_GONE (may be NULL: never looked up) */
	uint64_t off, len;
	bool whole; /* N_RANGE: the node's queue overflowed: INVAL the whole file */
	char *name; /* N_ENTRY_ADDED/GONE: the bdev's name; N_ENTRY_STALE: a file name */
	struct fuse_hold *holds; /* N_RANGE: writes answered once this is sent */
	TAILQ_ENTRY(nitem) link;
};

/* An open `events` file: where it is in the ring, and what waits on it. */
struct ev_reader {
	uint64_t next;	    /* sequence number of the next line to read */
	size_t line_off;    /* bytes of that line already read */
	fuse_req_t pending; /* a blocking read waiting for a line */
	size_t pending_size;
	struct fuse_pollhandle *ph;
	TAILQ_ENTRY(ev_reader) link;
};

struct verify_wait {
	uint64_t cookie;
	bool done;
	uint64_t offset;
	size_t len;
	uint8_t *buf; /* FUSE_MAX_XFER bytes */
};

struct fuse_export {
	char *mountpoint;
	char **bdevs; /* NULL: every bdev */
	size_t num_bdevs;
	bool writable;
	bool allow_other;
	enum mimo_fuse_coherence coherence;
	time_t created;
	uid_t uid; /* the daemon's: owner of every file */
	gid_t gid;

	struct fuse_session *se;
	pthread_t notifier_thread;
	bool loop_started, notifier_started;
	/* Serving on `reactor`: reactor-local from here to `drained` (which posts once the watch
	 * is gone and nothing is in flight). */
	struct mimo_reactor *reactor;
	struct mimo_fd_watch *watch;
	struct fuse_buf rx; /* the receive buffer; a large write takes it (rx_taken) */
	bool rx_taken;
	/* Large buffers kept for reuse (a fresh 1 MiB costs a page fault per page): the receive
	 * buffer's replacements and large reads. pool_size: the receive buffer's capacity. */
	void *pool[FUSE_POOL_BUFS];
	uint32_t pool_count;
	size_t pool_size;
	uint32_t inflight; /* requests answered from an I/O completion, not yet answered */
	bool draining;
	sem_t drained;
	bool listening;	       /* the events listener is registered */
	bool mounted;	       /* conn_id is known: stop aborts and unmounts */
	uint32_t users;	       /* under lock: verify_cache calls holding it */
	unsigned long conn_id; /* the connection's name under /sys/fs/fuse/connections */

	pthread_mutex_t lock;
	pthread_cond_t cond; /* the notifier's queue and events, stop; verify replies */
	TAILQ_HEAD(fuse_node_head_, fuse_node) nodes;
	uint64_t next_ino;
	TAILQ_HEAD(nitem_head_, nitem) queue;
	size_t queue_len;
	/* The notifier's batch and the item it is on (under lock: the watchdog looks at holds). */
	struct nitem_head_ work;
	struct nitem *cur;
	/* CLOCK_MONOTONIC ns since the notifier is inside a kernel notification / on its item; 0:
	 * it is not (hold.c's watchdog). */
	_Atomic uint64_t kcall_since, item_since;
	_Atomic bool stopping; /* set under lock; read without it between notifications */
	/* Under lock: bumped before the notifier acts on a bdev created or deleted, whose file
	 * names (ours and others', see names.c) may change. A lookup that saw it change while it
	 * mapped a name does not let the kernel cache its answer. */
	uint64_t names_gen;

	/* The events ring: lines [ev_head - ev_count, ev_head). */
	char *ev_lines[FUSE_EVENTS_RING];
	size_t ev_lens[FUSE_EVENTS_RING];
	uint64_t ev_head, ev_count, ev_seen; /* ev_seen: lines the notifier has acted on */
	TAILQ_HEAD(, ev_reader) readers;

	/* fuse_export_verify_cache: one at a time. */
	pthread_mutex_t verify_lock;
	struct verify_wait *verify;
	uint64_t next_cookie;

	/* counters for fuse_get_exports */
	_Atomic uint64_t n_store, n_store_bytes, n_inval, n_entry, n_poll, n_store_race;
	_Atomic uint64_t n_held, n_held_early;
	uint64_t wd_logged, wd_quiet; /* the watchdog's alone: its last line, answers since */

	TAILQ_ENTRY(fuse_export) link;
};

/* export.c: every export, for the write hook. */
TAILQ_HEAD(fuse_export_list, fuse_export);
extern struct fuse_export_list g_fuse_exports;
extern pthread_rwlock_t g_fuse_exports_lock;

/* fuse_rpc.c: register its methods (mimo_register_fuse does). */
void fuse_rpc_register(void);

/* node.c */
/* Whether any export has bdev open (no lock: the write hook's fast path). */
bool fuse_bdev_interesting(const struct mimo_bdev *bdev);
/* Resolve bdev name now: its UUID into uuid (empty when there is none). */
void fuse_bdev_uuid_of(const char *name, char *uuid, size_t len);
bool fuse_export_allows(const struct fuse_export *exp, const char *name);
/* The node for a bdev name (created on first sight, with a new ino), or NULL with *err. */
struct fuse_node *fuse_node_get(struct fuse_export *exp, const char *name, int *err);
struct fuse_node *fuse_node_by_ino(struct fuse_export *exp, uint64_t ino);
/* Open the bdev for I/O (once): 0 or a negative errno. On the node's reactor, or (waiting
 * for it) on another thread. */
int fuse_node_open(struct fuse_node *n);
/* Not on a reactor. */
void fuse_node_close(struct fuse_node *n);
void fuse_node_free(struct fuse_node *n);
/* Blocking byte-range read from a non-reactor thread (the notifier, verify). 0 or -errno. */
int fuse_node_read(struct fuse_node *n, void *buf, uint64_t off, size_t len);
/*
 * Asynchronous I/O on the node's reactor (request handlers): done(a, rc) runs there once,
 * maybe before the call returns. read: the blocks covering [off, off+len) into buf (which
 * holds them: fuse_node_span), the bytes then start at buf + off % block_size. write: own =
 * this export's own write (the kernel's cache already agrees: the write hook leaves it
 * alone); data must live until done.
 */
void fuse_node_span(const struct fuse_node *n, uint64_t off, size_t len, uint64_t *first,
		    uint64_t *count);
void fuse_aio_read(struct fuse_aio *a, struct fuse_node *n, void *buf, uint64_t off, size_t len,
		   void (*done)(struct fuse_aio *a, int rc));
void fuse_aio_write(struct fuse_aio *a, struct fuse_node *n, const void *data, uint64_t off,
		    size_t len, void (*done)(struct fuse_aio *a, int rc));
void fuse_aio_flush(struct fuse_aio *a, struct fuse_node *n,
		    void (*done)(struct fuse_aio *a, int rc));
void fuse_aio_zero(struct fuse_aio *a, struct fuse_node *n, uint64_t off, uint64_t len,
		   void (*done)(struct fuse_aio *a, int rc));
/* The fuse_aio that submitted io, or NULL when it came from elsewhere (NVMe-oF, ...). */
struct fuse_aio *fuse_aio_of(const struct mimo_bdev_io *io);
/* From the write hook, once a's write has landed and its completion is held: release the
 * read-modify-write lock now, not at the completion. */
void fuse_aio_landed(struct fuse_aio *a);

/* export.c: a request answered later (from an I/O completion) starts and ends. */
void fuse_export_io_get(struct fuse_export *exp);
void fuse_export_io_put(struct fuse_export *exp);
/* On the export's reactor: a buffer of exp->pool_size bytes (4 KiB aligned) or NULL; give it
 * back with fuse_export_buf_put (or free it). */
void *fuse_export_buf_get(struct fuse_export *exp);
void fuse_export_buf_put(struct fuse_export *exp, void *buf);

/* names.c: file names under bdevs/ (fname.h's rules against the bdevs the export shows). */
/* A snapshot of the bdevs exp shows: their objects in order, and a set of their names. */
struct fuse_names_snap {
	json_t *bdevs;
	json_t *set;
};
int fuse_names_snapshot(struct fuse_export *exp, struct fuse_names_snap *s);
void fuse_names_snap_free(struct fuse_names_snap *s);
void fuse_names_snap_file_of(const struct fuse_names_snap *s, const char *name,
			     char out[FUSE_FNAME_MAX + 1]);
/* The file name of bdev name now (not under exp->lock: it asks the bdev layer). */
void fuse_names_file_of(struct fuse_export *exp, const char *name, char out[FUSE_FNAME_MAX + 1]);
/* The bdev whose mapped file name (not its own name: the caller looks that up first) is fname:
 * 0 with *name malloc'd, -ENOENT or -ENOMEM. */
int fuse_names_resolve(struct fuse_export *exp, const char *fname, char **name);
/* The names file: a JSON line {file, bdev, uuid} per bdev shown. malloc'd; NULL: no memory. */
char *fuse_names_index(struct fuse_export *exp, size_t *len);

/* ops.c */
extern const struct fuse_lowlevel_ops g_fuse_ops;

/* notifier.c */
void *fuse_notifier_main(void *arg);
void fuse_write_hook(void *arg, struct mimo_bdev_io *io, struct mimo_bdev *bdev,
		     uint64_t offset_blocks, uint64_t num_blocks);
void fuse_events_listener(void *arg, const char *line);
/* Under exp->lock. */
void fuse_queue_push_locked(struct fuse_export *exp, struct nitem *it);
/* events file, under exp->lock: bytes readable by r; copy up to size into buf. */
size_t fuse_events_available_locked(struct fuse_export *exp, struct ev_reader *r);
size_t fuse_events_copy_locked(struct fuse_export *exp, struct ev_reader *r, char *buf,
			       size_t size);

/* hold.c */
/* A thread on any CPU the process may use (not the creating thread's: a reactor's). */
int fuse_thread_create(pthread_t *t, void *(*fn)(void *), void *arg);
uint64_t fuse_now_ns(void);
/* Answer the writes of a list (not under exp->lock) and free it. */
void fuse_holds_release(struct fuse_hold *list);
/* Under exp->lock: take every hold of the export's items (queue, batch, current); with src
 * not NULL, only those of writes that came through src. Returns them as one list. */
struct fuse_hold *fuse_holds_take_locked(struct fuse_export *exp, const struct fuse_export *src,
					 bool all);
/* The watchdog thread, while any export exists (under the admin lock). */
int fuse_watchdog_start(void);
void fuse_watchdog_stop(void);

/* verify.c */
int fuse_export_verify_node(struct fuse_export *exp, struct fuse_node *n, uint64_t *checked,
			    uint64_t *mismatched);
void fuse_verify_reply(struct fuse_export *exp, uint64_t cookie, uint64_t offset,
		       struct fuse_bufvec *bufv);

#endif
