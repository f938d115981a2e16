/*
 * The notifier: the only thread that sends the kernel notifications (store, inval_inode,
 * inval_entry, delete, poll) and answers parked reads of `events`. Request handlers never
 * notify - on this kernel that hangs both the client and the daemon thread.
 *
 * Fed by the bdev write hook (on reactors: ranges other paths wrote) and by the events
 * listener (any thread: a line for the events file; bdev_created / bdev_deleted).
 *
 * Read-after-write across paths: the hook holds each such write's completion (the NVMe-oF
 * host, the other export's writer... hear of it only then) on the queued item of its range,
 * and the notifier releases an item's writes once the kernel has applied its STORE or INVAL -
 * the notification's write() to /dev/fuse returns only then: the kernel copies STOREd bytes
 * into the pages, or drops the pages, inside it, waiting for any page locked by a read in
 * flight, whose reply then goes first and is overwritten or dropped.
 *
 * The STORE race: the notifier reads a range from the bdev and pushes it; if this export's
 * own write of that range lands in between, the kernel's pages (which hold the own write)
 * would be overwritten with older bytes. The own-write counters are sampled before the read
 * and after the store; if an own write was in flight or happened in between, the range is
 * invalidated instead, so the next read goes to the bdev.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "fuse_internal.h"
#include "log.h"

/* --- the queue --------------------------------------------------------------------------- */

void fuse_queue_push_locked(struct fuse_export *exp, struct nitem *it)
{
	TAILQ_INSERT_TAIL(&exp->queue, it, link);
	exp->queue_len++;
	pthread_cond_broadcast(&exp->cond);
}

/* A range that extends or overlaps the last one queued for the same node joins it: that item,
 * or NULL. */
static struct nitem *merge_range_locked(struct fuse_export *exp, struct fuse_node *n, uint64_t off,
					uint64_t len)
{
	struct nitem *last = TAILQ_LAST(&exp->queue, nitem_head_);

	if (last == NULL || last->kind != N_RANGE || last->node != n || last->whole)
		return NULL;
	if (off > last->off + last->len || off + len < last->off)
		return NULL;
	{
		uint64_t a = MIN(off, last->off), b = MAX(off + len, last->off + last->len);

		last->off = a;
		last->len = b - a;
	}
	return last;
}

static void add_hold(struct nitem *it, struct fuse_hold *h)
{
	if (h != NULL) {
		h->next = it->holds;
		it->holds = h;
	}
}

/* Drop the node's queued ranges for one whole-file INVAL, which takes over their writes: the
 * queue stays bounded however fast other paths write. Under exp->lock. */
static void collapse_node_locked(struct fuse_export *exp, struct fuse_node *n, struct nitem *whole)
{
	struct nitem *it, *tmp;

	for (it = TAILQ_FIRST(&exp->queue); it != NULL; it = tmp) {
		tmp = TAILQ_NEXT(it, link);
		if (it->kind == N_RANGE && it->node == n) {
			TAILQ_REMOVE(&exp->queue, it, link);
			exp->queue_len--;
			while (it->holds != NULL) {
				struct fuse_hold *h = it->holds;

				it->holds = h->next;
				add_hold(whole, h);
			}
			free(it);
		}
	}
	whole->kind = N_RANGE;
	whole->node = n;
	whole->whole = true;
	n->q_whole = true;
	n->q_whole_it = whole;
	n->q_items = 1;
	fuse_queue_push_locked(exp, whole);
}

/* Queue [off, off + len) of n; h (may be NULL) is a write to answer once it is sent. Under
 * exp->lock. False: out of memory, h is not taken. */
static bool queue_range_locked(struct fuse_export *exp, struct fuse_node *n, uint64_t off,
			       uint64_t len, struct fuse_hold *h)
{
	struct nitem *it;

	if (n->q_whole) { /* the whole file is invalidated anyway */
		add_hold(n->q_whole_it, h);
		return true;
	}
	if ((it = merge_range_locked(exp, n, off, len)) != NULL) {
		n->q_bytes += len;
		add_hold(it, h);
		return true;
	}
	if ((it = calloc(1, sizeof(*it))) == NULL) {
		MIMO_ERR(COMP, "out of memory: %s may serve stale data", n->name);
		return false; /* nothing will notify it: the caller answers the write */
	}
	add_hold(it, h);
	if (n->q_items >= FUSE_NODE_QUEUE_ITEMS || n->q_bytes + len > FUSE_STORE_MAX_RANGE) {
		collapse_node_locked(exp, n, it);
		return true;
	}
	it->kind = N_RANGE;
	it->node = n;
	it->off = off;
	it->len = len;
	n->q_items++;
	n->q_bytes += len;
	fuse_queue_push_locked(exp, it);
	return true;
}

void fuse_write_hook(void *arg, struct mimo_bdev_io *io, struct mimo_bdev *bdev,
		     uint64_t offset_blocks, uint64_t num_blocks)
{
	struct fuse_aio *a;
	struct fuse_export *exp, *src;
	struct fuse_hold *undo = NULL;
	bool held = false;

	(void)arg;
	/* Every completed write of every bdev comes here: one atomic load for a bdev that no
	 * export has open. */
	if (!fuse_bdev_interesting(bdev))
		return;
	/* A write through an export: its own file already shows it (FUSE writes through; an
	 * O_DIRECT write drops the cached pages itself), the others do not. */
	a = fuse_aio_of(io);
	src = a != NULL ? a->n->exp : NULL;
	pthread_rwlock_rdlock(&g_fuse_exports_lock);
	TAILQ_FOREACH(exp, &g_fuse_exports, link)
	{
		struct fuse_node *n;
		struct fuse_hold *h;

		if (exp->coherence == MIMO_FUSE_COHERENCE_NONE)
			continue;
		pthread_mutex_lock(&exp->lock);
		TAILQ_FOREACH(n, &exp->nodes, link)
		{
			if (n->bdev == bdev)
				break;
		}
		/* Only a file the kernel has looked up can have cached pages. */
		if (n != NULL && n->looked_up && !exp->stopping &&
		    !(a != NULL && a->own_io && a->n == n)) {
			/* Held until this export's kernel shows it (if memory allows: otherwise
			 * it is only notified, as before). */
			if ((h = malloc(sizeof(*h))) != NULL) {
				h->io = io;
				h->src = src;
				h->next = NULL;
				mimo_bdev_io_hold(io);
				held = true;
				atomic_fetch_add_explicit(&exp->n_held, 1, memory_order_relaxed);
			}
			if (!queue_range_locked(exp, n, offset_blocks * n->block_size,
						num_blocks * n->block_size, h) &&
			    h != NULL) {
				h->next = undo;
				undo = h;
			}
		}
		pthread_mutex_unlock(&exp->lock);
	}
	pthread_rwlock_unlock(&g_fuse_exports_lock);
	fuse_holds_release(undo);
	if (held && a != NULL)
		fuse_aio_landed(a);
}

/* --- the events ring ----------------------------------------------------------------------- */

void fuse_events_listener(void *arg, const char *line)
{
	struct fuse_export *exp = arg;
	size_t len = strlen(line);
	char *copy = malloc(len + 1);
	uint64_t slot;

	if (copy == NULL)
		return;
	memcpy(copy, line, len);
	copy[len] = '\n';
	pthread_mutex_lock(&exp->lock);
	slot = exp->ev_head % FUSE_EVENTS_RING;
	if (exp->ev_count == FUSE_EVENTS_RING)
		free(exp->ev_lines[slot]); /* the oldest goes; slow readers skip it */
	else
		exp->ev_count++;
	exp->ev_lines[slot] = copy;
	exp->ev_lens[slot] = len + 1;
	exp->ev_head++;
	pthread_cond_broadcast(&exp->cond);
	pthread_mutex_unlock(&exp->lock);
}

static void reader_catch_up_locked(struct fuse_export *exp, struct ev_reader *r)
{
	uint64_t oldest = exp->ev_head - exp->ev_count;

	if (r->next < oldest) {
		r->next = oldest;
		r->line_off = 0;
	}
}

size_t fuse_events_available_locked(struct fuse_export *exp, struct ev_reader *r)
{
	reader_catch_up_locked(exp, r);
	return r->next < exp->ev_head ? 1 : 0;
}

size_t fuse_events_copy_locked(struct fuse_export *exp, struct ev_reader *r, char *buf, size_t size)
{
	size_t n = 0;

	reader_catch_up_locked(exp, r);
	while (n < size && r->next < exp->ev_head) {
		uint64_t slot = r->next % FUSE_EVENTS_RING;
		size_t left = exp->ev_lens[slot] - r->line_off, take = MIN(left, size - n);

		memcpy(buf + n, exp->ev_lines[slot] + r->line_off, take);
		n += take;
		r->line_off += take;
		if (r->line_off == exp->ev_lens[slot]) {
			r->next++;
			r->line_off = 0;
		}
	}
	return n;
}

/* --- the thread --------------------------------------------------------------------------- */

struct wakeup {
	fuse_req_t req; /* a parked read to answer with buf */
	char *buf;
	size_t len;
	struct fuse_pollhandle *ph;
	struct wakeup *next;
};

/* New lines: bdev_created / bdev_deleted become entry notifications. Under exp->lock. */
static void scan_events_locked(struct fuse_export *exp)
{
	uint64_t oldest = exp->ev_head - exp->ev_count;

	for (uint64_t i = MAX(exp->ev_seen, oldest); i < exp->ev_head; i++) {
		uint64_t slot = i % FUSE_EVENTS_RING;
		json_t *j = json_loadb(exp->ev_lines[slot], exp->ev_lens[slot], 0, NULL);
		const char *type = json_string_value(json_object_get(j, "type"));
		const char *name = json_string_value(json_object_get(j, "ctx"));
		bool added = type != NULL && strcmp(type, "bdev_created") == 0;
		bool gone = type != NULL && strcmp(type, "bdev_deleted") == 0;

		if ((added || gone) && name != NULL && fuse_export_allows(exp, name)) {
			struct nitem *it = calloc(1, sizeof(*it));

			if (it != NULL && (it->name = strdup(name)) != NULL) {
				/* Gone: which nodes is decided by UUID when it is sent. */
				it->kind = added ? N_ENTRY_ADDED : N_ENTRY_GONE;
				fuse_queue_push_locked(exp, it);
				exp->names_gen++; /* file names may move: see lookup_bdev */
			} else {
				free(it);
			}
		}
		json_decref(j);
	}
	exp->ev_seen = exp->ev_head;
}

/* Parked reads and poll handles of readers that now have lines. Under exp->lock. */
static struct wakeup *collect_wakeups_locked(struct fuse_export *exp)
{
	struct wakeup *list = NULL;
	struct ev_reader *r;

	TAILQ_FOREACH(r, &exp->readers, link)
	{
		struct wakeup *w;

		if (fuse_events_available_locked(exp, r) == 0 ||
		    (r->pending == NULL && r->ph == NULL))
			continue;
		if ((w = calloc(1, sizeof(*w))) == NULL)
			continue;
		if (r->pending != NULL && (w->buf = malloc(r->pending_size)) != NULL) {
			w->len = fuse_events_copy_locked(exp, r, w->buf, r->pending_size);
			w->req = r->pending;
			r->pending = NULL;
		}
		w->ph = r->ph;
		r->ph = NULL;
		w->next = list;
		list = w;
	}
	return list;
}

/* The kernel calls that can block (on a page or inode lock), timed for the watchdog. */
static void kcall_begin(struct fuse_export *exp)
{
	atomic_store_explicit(&exp->kcall_since, fuse_now_ns(), memory_order_relaxed);
}

static int kcall_end(struct fuse_export *exp, int rc)
{
	atomic_store_explicit(&exp->kcall_since, 0, memory_order_relaxed);
	return rc;
}

static int k_inval_inode(struct fuse_export *exp, uint64_t ino, off_t off, off_t len)
{
	kcall_begin(exp);
	return kcall_end(exp, fuse_lowlevel_notify_inval_inode(exp->se, ino, off, len));
}

static int k_store(struct fuse_export *exp, uint64_t ino, off_t off, struct fuse_bufvec *bv)
{
	kcall_begin(exp);
	return kcall_end(exp, fuse_lowlevel_notify_store(exp->se, ino, off, bv, 0));
}

static int k_inval_entry(struct fuse_export *exp, const char *fname)
{
	kcall_begin(exp);
	return kcall_end(
		exp, fuse_lowlevel_notify_inval_entry(exp->se, INO_BDEVS, fname, strlen(fname)));
}

static int k_delete(struct fuse_export *exp, uint64_t ino, const char *fname)
{
	kcall_begin(exp);
	return kcall_end(
		exp, fuse_lowlevel_notify_delete(exp->se, INO_BDEVS, ino, fname, strlen(fname)));
}

static void inval_range(struct fuse_export *exp, uint64_t ino, uint64_t off, uint64_t len)
{
	if (k_inval_inode(exp, ino, (off_t)off, (off_t)len) == 0)
		atomic_fetch_add(&exp->n_inval, 1);
}

/* *bufp: the notifier's STORE buffer, made on first use and kept (a fresh 1 MiB is a mapping
 * of its own here - mimo_tgt fixes the mmap threshold - and costs a page fault per page and an
 * munmap per STORE, paid by the held writes). */
static void notify_range(struct fuse_export *exp, struct nitem *it, uint8_t **bufp)
{
	struct fuse_node *n = it->node;
	uint64_t ino = n->ino, end = it->off + it->len;
	uint8_t *buf;
	int rc;

	if (atomic_load(&n->dead))
		return;
	if (it->whole) {
		inval_range(exp, ino, 0, 0);
		return;
	}
	/* STORE only into a file somebody has open (the bytes are wanted); otherwise INVAL is
	 * cheaper: at most cached pages are dropped. */
	if (exp->coherence != MIMO_FUSE_COHERENCE_STORE || it->len > FUSE_STORE_MAX_RANGE ||
	    atomic_load(&n->openers) == 0 ||
	    (*bufp == NULL && (*bufp = aligned_alloc(4096, FUSE_MAX_XFER)) == NULL)) {
		inval_range(exp, ino, it->off, it->len);
		return;
	}
	buf = *bufp;
	for (uint64_t off = it->off; off < end;) {
		size_t len = (size_t)MIN((uint64_t)FUSE_MAX_XFER, end - off);
		uint64_t gen0 = atomic_load(&n->own_gen);
		uint32_t busy0 = atomic_load(&n->own_inflight);
		struct fuse_bufvec bv = FUSE_BUFVEC_INIT(len);

		if (atomic_load(&exp->stopping))
			break;
		/* A failure leaves the rest of the range to INVAL: never stale pages. */
		if ((rc = fuse_node_read(n, buf, off, len)) != 0) {
			MIMO_DEBUG(COMP, "store %s +%" PRIu64 ": read: %s", n->name, off,
				   strerror(-rc));
			inval_range(exp, ino, off, end - off);
			break;
		}
		bv.buf[0].mem = buf;
		rc = k_store(exp, ino, (off_t)off, &bv);
		if (rc == -ENOENT)
			break; /* the kernel has no inode: nothing is cached */
		if (rc != 0) {
			MIMO_DEBUG(COMP, "store %s +%" PRIu64 ": %s", n->name, off, strerror(-rc));
			inval_range(exp, ino, off, end - off);
			break;
		}
		atomic_fetch_add(&exp->n_store, 1);
		atomic_fetch_add(&exp->n_store_bytes, len);
		if (busy0 != 0 || atomic_load(&n->own_gen) != gen0) {
			/* An own write raced the store: let the next read go to the bdev. */
			k_inval_inode(exp, ino, (off_t)off, (off_t)len);
			atomic_fetch_add(&exp->n_store_race, 1);
		}
		off += len;
	}
}

static int inval_entry(struct fuse_export *exp, const char *fname)
{
	return k_inval_entry(exp, fname);
}

/* Entries are notified by file name (names.c), never by bdev name: the kernel knows only the
 * former, and a bdev name with a '/' or over 255 bytes is no name it could hold. */
static void notify_entry(struct fuse_export *exp, struct nitem *it)
{
	char fname[FUSE_FNAME_MAX + 1];
	int rc = -ENOENT;

	if (it->kind == N_ENTRY_GONE) {
		char uuid[40];
		struct {
			uint64_t ino;
			char *fname; /* the name the kernel looked it up by; NULL: none */
		} gone[16];
		size_t k = 0;
		struct fuse_node *n;

		/* The nodes of that name that are not the bdev that has it now (a bdev of the
		 * same name may have been created since): those are gone. */
		fuse_bdev_uuid_of(it->name, uuid, sizeof(uuid));
		pthread_mutex_lock(&exp->lock);
		TAILQ_FOREACH(n, &exp->nodes, link)
		{
			if (strcmp(n->name, it->name) != 0 || strcmp(n->uuid, uuid) == 0 ||
			    n->gone_sent)
				continue;
			atomic_store(&n->dead, true);
			n->gone_sent = true;
			if (k < sizeof(gone) / sizeof(gone[0])) {
				gone[k].ino = n->ino;
				gone[k++].fname = n->fname; /* dead: nobody sets it again */
				n->fname = NULL;
			}
		}
		pthread_mutex_unlock(&exp->lock);
		for (size_t i = 0; i < k; i++) {
			/* Drop the name and the cached pages: a reader that still holds the file
			 * open must get an error from the bdev, not its old contents. */
			if (gone[i].fname != NULL)
				rc = k_delete(exp, gone[i].ino, gone[i].fname);
			k_inval_inode(exp, gone[i].ino, 0, 0);
			free(gone[i].fname);
		}
		if (rc != 0) {
			fuse_names_file_of(exp, it->name, fname);
			rc = inval_entry(exp, fname);
		}
	} else if (it->kind == N_ENTRY_STALE) {
		rc = inval_entry(exp, it->name);
	} else {
		/* Its file name: a negative entry, or another bdev's that this one takes over. */
		fuse_names_file_of(exp, it->name, fname);
		rc = inval_entry(exp, fname);
	}
	if (rc == 0)
		atomic_fetch_add(&exp->n_entry, 1);
	/* The directory's own attributes (and any readdir cache) change too. */
	k_inval_inode(exp, INO_BDEVS, 0, 0);
}

/*
 * After bdevs came or went: a bdev's mapped file name may have moved (a bdev now has it as its
 * own name, or gave it up; names.c). The kernel must not keep finding the old name: its entry
 * is dropped, and the node forgets it until the next lookup. Bdevs named plainly never move.
 */
static void remap_nodes(struct fuse_export *exp)
{
	struct moved {
		struct fuse_node *n;
		char *old;
	} *v = NULL;
	size_t cnt = 0, cap = 0;
	char now[FUSE_FNAME_MAX + 1];
	struct fuse_node *n;

	pthread_mutex_lock(&exp->lock);
	TAILQ_FOREACH(n, &exp->nodes, link)
	{
		if (n->fname == NULL || atomic_load(&n->dead) || fuse_fname_is_plain(n->name))
			continue;
		if (cnt == cap) {
			struct moved *nv = realloc(v, (cap = cap ? 2 * cap : 16) * sizeof(*v));

			if (nv == NULL)
				break;
			v = nv;
		}
		if ((v[cnt].old = strdup(n->fname)) != NULL)
			v[cnt++].n = n;
	}
	pthread_mutex_unlock(&exp->lock);
	for (size_t i = 0; i < cnt; i++) {
		bool moved;

		/* Nodes live as long as the export; a node's bdev name never changes. */
		fuse_names_file_of(exp, v[i].n->name, now);
		pthread_mutex_lock(&exp->lock);
		moved = strcmp(now, v[i].old) != 0 && v[i].n->fname != NULL &&
			strcmp(v[i].n->fname, v[i].old) == 0;
		if (moved) {
			free(v[i].n->fname);
			v[i].n->fname = NULL;
		}
		pthread_mutex_unlock(&exp->lock);
		if (moved && !atomic_load(&exp->stopping) && inval_entry(exp, v[i].old) == 0)
			atomic_fetch_add(&exp->n_entry, 1);
		free(v[i].old);
	}
	free(v);
}

/* The next item of the batch, now the current one (the watchdog sees its holds). */
static struct nitem *next_item(struct fuse_export *exp)
{
	struct nitem *it;

	pthread_mutex_lock(&exp->lock);
	if ((it = TAILQ_FIRST(&exp->work)) != NULL)
		TAILQ_REMOVE(&exp->work, it, link);
	exp->cur = it;
	pthread_mutex_unlock(&exp->lock);
	return it;
}

/* The current item is done: its writes are answered (those the watchdog has not answered). */
static void item_done(struct fuse_export *exp, struct nitem *it)
{
	struct fuse_hold *holds;

	pthread_mutex_lock(&exp->lock);
	holds = it->holds;
	it->holds = NULL;
	exp->cur = NULL;
	pthread_mutex_unlock(&exp->lock);
	fuse_holds_release(holds);
	free(it->name);
	free(it);
}

void *fuse_notifier_main(void *arg)
{
	struct fuse_export *exp = arg;
	struct fuse_hold *left;
	struct nitem *it;
	uint8_t *buf = NULL;
	bool renamed;

	pthread_setname_np(pthread_self(), "fuse_notify");
	pthread_mutex_lock(&exp->lock);
	while (!exp->stopping) {
		struct wakeup *wake;

		if (TAILQ_EMPTY(&exp->queue) && exp->ev_seen == exp->ev_head) {
			pthread_cond_wait(&exp->cond, &exp->lock);
			continue;
		}
		scan_events_locked(exp);
		wake = collect_wakeups_locked(exp);
		TAILQ_CONCAT(&exp->work, &exp->queue, link);
		exp->queue_len = 0;
		TAILQ_FOREACH(it, &exp->work, link)
		{
			if (it->kind == N_RANGE) { /* new writes queue anew from here */
				it->node->q_items = 0;
				it->node->q_bytes = 0;
				it->node->q_whole = false;
				it->node->q_whole_it = NULL;
			}
		}
		pthread_mutex_unlock(&exp->lock);

		while (wake != NULL) {
			struct wakeup *w = wake;

			wake = w->next;
			if (w->req != NULL)
				fuse_reply_buf(w->req, w->buf, w->len);
			if (w->ph != NULL) {
				fuse_lowlevel_notify_poll(w->ph);
				fuse_pollhandle_destroy(w->ph);
				atomic_fetch_add(&exp->n_poll, 1);
			}
			free(w->buf);
			free(w);
		}
		renamed = false;
		while ((it = next_item(exp)) != NULL) {
			renamed |= it->kind == N_ENTRY_ADDED || it->kind == N_ENTRY_GONE;
			atomic_store_explicit(&exp->item_since, fuse_now_ns(),
					      memory_order_relaxed);
			/* A backlog does not hold up delete or shutdown: the rest is dropped (and
			 * its writes answered: the mount goes). */
			if (atomic_load(&exp->stopping))
				;
			else if (it->kind == N_RANGE)
				notify_range(exp, it, &buf);
			else
				notify_entry(exp, it);
			atomic_store_explicit(&exp->item_since, 0, memory_order_relaxed);
			item_done(exp, it);
		}
		if (renamed && !atomic_load(&exp->stopping))
			remap_nodes(exp);
		pthread_mutex_lock(&exp->lock);
	}
	/* Stopping: no write waits for a mount that goes. */
	left = fuse_holds_take_locked(exp, NULL, true);
	pthread_mutex_unlock(&exp->lock);
	fuse_holds_release(left);
	free(buf);
	return NULL;
}
