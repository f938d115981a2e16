/*
 * Bdev files: the node table and byte-range I/O.
 *
 * Request handlers run on the export's reactor, which is every node's reactor: they submit
 * bdev I/O there through that reactor's channel and answer from the completion (fuse_aio_*).
 * Partial blocks are read, patched and written back as a small state machine under the bdev's
 * rmw lock (shared by every export of that bdev) held alone; aligned writes share it. The
 * lock never blocks: a waiter is queued and continued by the release. The notifier and
 * verify (other threads) read through a message to the reactor and wait on a semaphore.
 */
#include <errno.h>
#include <semaphore.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuse_internal.h"
#include "log.h"
#include "uuid.h"

/* --- what the exports of one bdev share ------------------------------------------------ */

static pthread_mutex_t g_shared_lock = PTHREAD_MUTEX_INITIALIZER;
static TAILQ_HEAD(, fuse_bdev_shared) g_shared = TAILQ_HEAD_INITIALIZER(g_shared);
/* Open nodes per bdev, hashed by its address: the write hook returns at once for a bdev no
 * export has open, without a lock. A collision only costs the slow path. */
#define INTEREST_SLOTS 256
static _Atomic uint32_t g_interest[INTEREST_SLOTS];

static size_t interest_slot(const struct mimo_bdev *bdev)
{
	uintptr_t p = (uintptr_t)bdev;

	return (size_t)((p >> 4) ^ (p >> 12)) % INTEREST_SLOTS;
}

bool fuse_bdev_interesting(const struct mimo_bdev *bdev)
{
	return atomic_load_explicit(&g_interest[interest_slot(bdev)], memory_order_relaxed) != 0;
}

static struct fuse_bdev_shared *shared_get(struct mimo_bdev *bdev)
{
	struct fuse_bdev_shared *sh;

	pthread_mutex_lock(&g_shared_lock);
	TAILQ_FOREACH(sh, &g_shared, link)
	{
		if (sh->bdev == bdev)
			break;
	}
	if (sh == NULL && (sh = calloc(1, sizeof(*sh))) != NULL) {
		sh->bdev = bdev;
		pthread_mutex_init(&sh->mtx, NULL);
		TAILQ_INIT(&sh->waiters);
		TAILQ_INSERT_TAIL(&g_shared, sh, link);
	}
	if (sh != NULL)
		sh->refs++;
	pthread_mutex_unlock(&g_shared_lock);
	return sh;
}

static void shared_put(struct fuse_bdev_shared *sh)
{
	if (sh == NULL)
		return;
	pthread_mutex_lock(&g_shared_lock);
	if (--sh->refs == 0) {
		TAILQ_REMOVE(&g_shared, sh, link);
		pthread_mutex_destroy(&sh->mtx);
		free(sh);
	}
	pthread_mutex_unlock(&g_shared_lock);
}

void fuse_bdev_uuid_of(const char *name, char *uuid, size_t len)
{
	json_t *info = mimo_bdev_find_json(name);
	const char *real = json_string_value(json_object_get(info, "name"));
	const char *u = json_string_value(json_object_get(info, "uuid"));

	snprintf(uuid, len, "%s", real != NULL && strcmp(real, name) == 0 && u != NULL ? u : "");
	json_decref(info);
}

bool fuse_export_allows(const struct fuse_export *exp, const char *name)
{
	if (exp->bdevs == NULL)
		return true;
	for (size_t i = 0; i < exp->num_bdevs; i++) {
		if (strcmp(exp->bdevs[i], name) == 0)
			return true;
	}
	return false;
}

static struct fuse_node *find_live_locked(struct fuse_export *exp, const char *name)
{
	struct fuse_node *n;

	TAILQ_FOREACH(n, &exp->nodes, link)
	{
		if (!atomic_load(&n->dead) && strcmp(n->name, name) == 0)
			return n;
	}
	return NULL;
}

struct fuse_node *fuse_node_get(struct fuse_export *exp, const char *name, int *err)
{
	struct fuse_node *n, *other;
	json_t *info;
	const char *real, *uuid;

	if (!fuse_export_allows(exp, name)) {
		*err = -ENOENT;
		return NULL;
	}
	/* Only by its name: an alias or UUID would give one bdev two files. */
	info = mimo_bdev_find_json(name);
	real = info != NULL ? json_string_value(json_object_get(info, "name")) : NULL;
	uuid = json_string_value(json_object_get(info, "uuid"));
	if (real == NULL || strcmp(real, name) != 0) {
		json_decref(info);
		*err = -ENOENT;
		return NULL;
	}
	/* The node of this very bdev: one of the same name but another UUID is a deleted bdev
	 * whose deletion the notifier has not handled yet. */
	pthread_mutex_lock(&exp->lock);
	n = find_live_locked(exp, name);
	if (n != NULL && strcmp(n->uuid, uuid != NULL ? uuid : "") != 0) {
		atomic_store(&n->dead, true);
		n = NULL;
	}
	pthread_mutex_unlock(&exp->lock);
	if (n != NULL) {
		json_decref(info);
		return n;
	}
	n = calloc(1, sizeof(*n));
	if (n == NULL || (n->name = strdup(name)) == NULL) {
		free(n);
		json_decref(info);
		*err = -ENOMEM;
		return NULL;
	}
	n->exp = exp;
	snprintf(n->uuid, sizeof(n->uuid), "%s", uuid != NULL ? uuid : "");
	n->block_size = (uint32_t)json_integer_value(json_object_get(info, "block_size"));
	n->num_blocks = (uint64_t)json_integer_value(json_object_get(info, "num_blocks"));
	n->size = n->num_blocks * n->block_size;
	json_decref(info);
	pthread_mutex_lock(&exp->lock);
	other = find_live_locked(exp, name); /* another worker got there first */
	if (other == NULL) {
		n->ino = exp->next_ino++;
		n->reactor = exp->reactor; /* where its requests are served */
		TAILQ_INSERT_TAIL(&exp->nodes, n, link);
	}
	pthread_mutex_unlock(&exp->lock);
	if (other != NULL) {
		fuse_node_free(n);
		return other;
	}
	return n;
}

struct fuse_node *fuse_node_by_ino(struct fuse_export *exp, uint64_t ino)
{
	struct fuse_node *n;

	pthread_mutex_lock(&exp->lock);
	TAILQ_FOREACH(n, &exp->nodes, link)
	{
		if (n->ino == ino)
			break;
	}
	pthread_mutex_unlock(&exp->lock);
	return n;
}

void fuse_node_free(struct fuse_node *n)
{
	shared_put(n->shared);
	free(n->name);
	free(n->fname);
	free(n);
}

/* --- the rmw lock ------------------------------------------------------------------------ */

static bool rmw_can_grant(const struct fuse_bdev_shared *sh, bool excl)
{
	return excl ? !sh->writer && sh->readers == 0 : !sh->writer;
}

static void rmw_take(struct fuse_bdev_shared *sh, bool excl)
{
	if (excl)
		sh->writer = true;
	else
		sh->readers++;
}

/* Take the lock (shared, or alone with excl), then cont(a): now or once it is released. */
static void rmw_lock(struct fuse_aio *a, bool excl, void (*cont)(struct fuse_aio *a))
{
	struct fuse_bdev_shared *sh = a->n->shared;
	bool now;

	pthread_mutex_lock(&sh->mtx);
	/* Behind any waiter: a read-modify-write is not starved by a stream of aligned writes. */
	now = TAILQ_EMPTY(&sh->waiters) && rmw_can_grant(sh, excl);
	if (now) {
		rmw_take(sh, excl);
	} else {
		a->w.a = a;
		a->w.excl = excl;
		a->w.cont = cont;
		a->w.r = mimo_reactor_current();
		TAILQ_INSERT_TAIL(&sh->waiters, &a->w, link);
	}
	pthread_mutex_unlock(&sh->mtx);
	if (now) {
		a->locked = true;
		cont(a);
	}
}

static void rmw_granted(void *arg)
{
	struct fuse_aio *a = arg;

	a->w.cont(a);
}

/* Release the lock; waiters it can now go to continue. From a write hook (defer), not even a
 * waiter of this reactor continues inline: a hook must not submit I/O. */
static void rmw_unlock(struct fuse_aio *a, bool excl, bool defer)
{
	struct fuse_bdev_shared *sh = a->n->shared;
	TAILQ_HEAD(, rmw_waiter) granted = TAILQ_HEAD_INITIALIZER(granted);
	struct rmw_waiter *w;

	pthread_mutex_lock(&sh->mtx);
	if (excl)
		sh->writer = false;
	else
		sh->readers--;
	while ((w = TAILQ_FIRST(&sh->waiters)) != NULL && rmw_can_grant(sh, w->excl)) {
		TAILQ_REMOVE(&sh->waiters, w, link);
		rmw_take(sh, w->excl);
		w->a->locked = true;
		TAILQ_INSERT_TAIL(&granted, w, link);
	}
	pthread_mutex_unlock(&sh->mtx);
	while ((w = TAILQ_FIRST(&granted)) != NULL) {
		TAILQ_REMOVE(&granted, w, link);
		if (w->r == mimo_reactor_current() && !defer)
			w->cont(w->a);
		else if (mimo_reactor_post(w->r, rmw_granted, w->a) != 0)
			/* Another reactor's export of the same bdev: continue there. Posted, not
			 * sent: spinning here on its full ring while it spins on ours would stop
			 * both. Only without memory for the overflow list is room waited for. */
			while (mimo_reactor_send_msg(w->r, rmw_granted, w->a) == -EAGAIN)
				usleep(10);
	}
}

/* --- running on the node's reactor ------------------------------------------------------- */

/* Post a message to r and wait until the function posts sem. Not on r. */
static void run_on(struct mimo_reactor *r, mimo_msg_fn fn, void *arg, sem_t *sem)
{
	while (mimo_reactor_send_msg(r, fn, arg) == -EAGAIN)
		usleep(50); /* the reactor's ring is full: it is busy draining it */
	while (sem_wait(sem) != 0)
		;
}

/* On the reactor: drop the channel and the descriptor once nothing is in flight. */
static void close_here(struct fuse_node *n)
{
	if (n->ch != NULL)
		mimo_put_io_channel(n->ch);
	n->ch = NULL;
	if (n->desc != NULL)
		mimo_bdev_close(n->desc);
	n->desc = NULL;
	pthread_mutex_lock(&n->exp->lock);
	if (n->bdev != NULL)
		atomic_fetch_sub(&g_interest[interest_slot(n->bdev)], 1);
	n->bdev = NULL;
	pthread_mutex_unlock(&n->exp->lock);
}

static void bdev_event(enum mimo_bdev_event_type type, struct mimo_bdev *bdev, void *ctx)
{
	struct fuse_node *n = ctx;

	(void)bdev;
	if (type != MIMO_BDEV_EVENT_REMOVE)
		return;
	/* The bdev is being deleted: let it go as soon as our I/O is done. */
	atomic_store(&n->dead, true);
	n->removing = true;
	if (n->inflight == 0)
		close_here(n);
}

/* On the node's reactor: open the descriptor unless it is open. 0 or -errno. */
static int open_here(struct fuse_node *n)
{
	int rc;

	if (n->desc != NULL)
		return 0;
	if (n->removing || atomic_load(&n->dead))
		return -ENODEV;
	rc = mimo_bdev_open(n->name, n->exp->writable, bdev_event, n, &n->desc);
	if (rc == -EPERM && n->exp->writable) {
		/* Claimed for write by a module: readable still; write opens get EPERM. */
		rc = mimo_bdev_open(n->name, false, bdev_event, n, &n->desc);
		atomic_store(&n->read_only, rc == 0);
	}
	if (rc == 0) {
		struct mimo_bdev *b = mimo_bdev_desc_get_bdev(n->desc);
		char uuid[MIMO_UUID_STR_LEN];

		mimo_uuid_format(mimo_bdev_get_uuid(b), uuid);
		/* Deleted and re-created under the same name since we looked it up? */
		if (strcmp(uuid, n->uuid) != 0 || mimo_bdev_get_num_blocks(b) != n->num_blocks ||
		    mimo_bdev_get_block_size(b) != n->block_size)
			rc = -ENODEV;
		else if (n->shared == NULL && (n->shared = shared_get(b)) == NULL)
			rc = -ENOMEM;
		if (rc != 0) {
			mimo_bdev_close(n->desc);
			n->desc = NULL;
		} else {
			pthread_mutex_lock(&n->exp->lock);
			n->bdev = b;
			atomic_fetch_add(&g_interest[interest_slot(b)], 1);
			pthread_mutex_unlock(&n->exp->lock);
		}
	}
	if (rc == -ENODEV || rc == -EBUSY)
		atomic_store(&n->dead, true);
	return rc;
}

struct open_ctx {
	struct fuse_node *n;
	int rc;
	sem_t done;
};

static void open_msg(void *arg)
{
	struct open_ctx *c = arg;

	c->rc = open_here(c->n);
	sem_post(&c->done);
}

int fuse_node_open(struct fuse_node *n)
{
	struct open_ctx c = { .n = n };

	if (atomic_load(&n->dead))
		return -ENODEV;
	if (mimo_reactor_current() == n->reactor)
		return open_here(n);
	sem_init(&c.done, 0, 0);
	run_on(n->reactor, open_msg, &c, &c.done);
	sem_destroy(&c.done);
	return c.rc;
}

static void close_msg(void *arg)
{
	struct open_ctx *c = arg;

	c->n->removing = true;
	if (c->n->inflight == 0)
		close_here(c->n);
	sem_post(&c->done);
}

void fuse_node_close(struct fuse_node *n)
{
	struct open_ctx c = { .n = n };

	/* Always through the reactor: the descriptor is its to look at. */
	sem_init(&c.done, 0, 0);
	run_on(n->reactor, close_msg, &c, &c.done);
	sem_destroy(&c.done);
}

/* --- block I/O --------------------------------------------------------------------------- */

static void aio_io_done(struct mimo_bdev_io *io, bool success, void *arg)
{
	struct fuse_aio *a = arg;
	struct fuse_node *n = a->n;
	int rc = success ? 0 : mimo_bdev_io_get_status(io);

	if (rc == 0 && !success)
		rc = -EIO;
	mimo_bdev_free_io(io);
	if (a->own_io) {
		atomic_fetch_add(&n->own_gen, 1);
		atomic_fetch_sub(&n->own_inflight, 1);
	}
	if (--n->inflight == 0 && n->removing)
		close_here(n);
	a->next(a, rc);
}

struct fuse_aio *fuse_aio_of(const struct mimo_bdev_io *io)
{
	return mimo_bdev_io_cb_arg_if(io, aio_io_done);
}

void fuse_aio_landed(struct fuse_aio *a)
{
	/* The write is on the bdev: the read-modify-write lock has done its job. Held until the
	 * write's completion, it would make every writer of the bdev wait for other exports'
	 * notifiers - and one of those may be waiting for a page that such a writer's request
	 * keeps locked in its kernel. */
	if (a->locked) {
		a->locked = false;
		rmw_unlock(a, a->excl, true);
	}
}

/* On the node's reactor: one bdev I/O, then next(a, rc). */
static void aio_submit(struct fuse_aio *a, enum mimo_bdev_io_type type, void *buf,
		       uint64_t offset_blocks, uint64_t num_blocks, bool own,
		       void (*next)(struct fuse_aio *a, int rc))
{
	struct fuse_node *n = a->n;
	int rc;

	a->next = next;
	if (num_blocks == 0) {
		next(a, 0);
		return;
	}
	if ((rc = open_here(n)) != 0) {
		next(a, rc);
		return;
	}
	if (n->removing) {
		next(a, -ENODEV);
		return;
	}
	if (n->ch == NULL && (n->ch = mimo_bdev_get_io_channel(n->desc)) == NULL) {
		next(a, -ENOMEM);
		return;
	}
	n->inflight++;
	a->own_io = own;
	if (own) {
		/* The write hook knows this I/O by its callback (fuse_aio_of) and leaves this
		 * export's file alone. The counters tell the notifier's STORE an own write raced
		 * it. */
		atomic_fetch_add(&n->own_inflight, 1);
		atomic_fetch_add(&n->own_gen, 1);
	}
	switch (type) {
	case MIMO_BDEV_IO_READ:
		rc = mimo_bdev_read_blocks(n->desc, n->ch, buf, offset_blocks, num_blocks,
					   aio_io_done, a);
		break;
	case MIMO_BDEV_IO_WRITE:
		rc = mimo_bdev_write_blocks(n->desc, n->ch, buf, offset_blocks, num_blocks,
					    aio_io_done, a);
		break;
	case MIMO_BDEV_IO_WRITE_ZEROES:
		rc = mimo_bdev_write_zeroes_blocks(n->desc, n->ch, offset_blocks, num_blocks,
						   aio_io_done, a);
		break;
	case MIMO_BDEV_IO_FLUSH:
		rc = mimo_bdev_flush_blocks(n->desc, n->ch, offset_blocks, num_blocks, aio_io_done,
					    a);
		break;
	default:
		rc = -ENOTSUP;
	}
	if (rc != 0) {
		if (own) {
			atomic_fetch_add(&n->own_gen, 1);
			atomic_fetch_sub(&n->own_inflight, 1);
		}
		if (--n->inflight == 0 && n->removing)
			close_here(n);
		next(a, rc);
	}
}

void fuse_node_span(const struct fuse_node *n, uint64_t off, size_t len, uint64_t *first,
		    uint64_t *count)
{
	uint64_t bs = n->block_size;

	*first = off / bs;
	*count = (off + len + bs - 1) / bs - *first;
}

void fuse_aio_read(struct fuse_aio *a, struct fuse_node *n, void *buf, uint64_t off, size_t len,
		   void (*done)(struct fuse_aio *a, int rc))
{
	uint64_t first, count;

	a->n = n;
	a->done = done;
	fuse_node_span(n, off, len, &first, &count);
	aio_submit(a, MIMO_BDEV_IO_READ, buf, first, count, false, done);
}

/* The blocking read, for threads that are not reactors. */
struct sync_io {
	struct fuse_aio a;
	void *buf;
	uint64_t off;
	size_t len;
	int rc;
	sem_t done;
};

static void sync_done(struct fuse_aio *a, int rc)
{
	struct sync_io *s = (struct sync_io *)a;

	s->rc = rc;
	sem_post(&s->done);
}

static void sync_read_msg(void *arg)
{
	struct sync_io *s = arg;

	fuse_aio_read(&s->a, s->a.n, s->buf, s->off, s->len, sync_done);
}

static void *alloc_blocks(uint64_t bytes)
{
	size_t align = 4096;

	bytes = (bytes + align - 1) / align * align;
	return aligned_alloc(align, bytes ? bytes : align);
}

int fuse_node_read(struct fuse_node *n, void *buf, uint64_t off, size_t len)
{
	uint64_t first, count, bs = n->block_size;
	struct sync_io s = { .a.n = n, .off = off, .len = len };
	bool aligned = off % bs == 0 && len % bs == 0;

	if (len == 0)
		return 0;
	if (atomic_load(&n->dead))
		return -ENODEV;
	fuse_node_span(n, off, len, &first, &count);
	s.buf = aligned ? buf : alloc_blocks(count * bs);
	if (s.buf == NULL)
		return -ENOMEM;
	sem_init(&s.done, 0, 0);
	run_on(n->reactor, sync_read_msg, &s, &s.done);
	sem_destroy(&s.done);
	if (!aligned) {
		if (s.rc == 0)
			memcpy(buf, (uint8_t *)s.buf + (off - first * bs), len);
		free(s.buf);
	}
	return s.rc;
}

/* --- writes: aligned under the shared lock, partial blocks read-modify-written alone --- */

static void wr_finish(struct fuse_aio *a, int rc)
{
	if (a->locked) { /* not yet let go by fuse_aio_landed */
		a->locked = false;
		rmw_unlock(a, a->excl, false);
	}
	free(a->tmp);
	a->tmp = NULL;
	a->wdone(a, rc);
}

static void wr_aligned_go(struct fuse_aio *a)
{
	uint64_t first, count;

	fuse_node_span(a->n, a->off, a->len, &first, &count);
	/* The bdev API takes a non-const buffer; a write does not change it. */
	aio_submit(a, MIMO_BDEV_IO_WRITE, (void *)(uintptr_t)a->data, first, count, a->own,
		   wr_finish);
}

static void wr_rmw_write(struct fuse_aio *a, int rc)
{
	uint64_t first, count, bs = a->n->block_size;

	if (rc != 0) {
		wr_finish(a, rc);
		return;
	}
	fuse_node_span(a->n, a->off, a->len, &first, &count);
	memcpy(a->tmp + (a->off - first * bs), a->data, a->len);
	aio_submit(a, MIMO_BDEV_IO_WRITE, a->tmp, first, count, a->own, wr_finish);
}

static void wr_rmw_tail(struct fuse_aio *a, int rc)
{
	uint64_t first, count, last, bs = a->n->block_size;

	if (rc != 0) {
		wr_finish(a, rc);
		return;
	}
	fuse_node_span(a->n, a->off, a->len, &first, &count);
	last = first + count;
	/* Only the partial head and tail blocks need their old contents. */
	if ((a->off + a->len) % bs != 0 && (last - 1 != first || a->off % bs == 0))
		aio_submit(a, MIMO_BDEV_IO_READ, a->tmp + (last - 1 - first) * bs, last - 1, 1,
			   false, wr_rmw_write);
	else
		wr_rmw_write(a, 0);
}

static void wr_rmw_head(struct fuse_aio *a)
{
	uint64_t first, count;

	fuse_node_span(a->n, a->off, a->len, &first, &count);
	if (a->off % a->n->block_size != 0)
		aio_submit(a, MIMO_BDEV_IO_READ, a->tmp, first, 1, false, wr_rmw_tail);
	else
		wr_rmw_tail(a, 0);
}

static void write_bytes(struct fuse_aio *a, const void *data, uint64_t off, size_t len, bool own,
			void (*wdone)(struct fuse_aio *a, int rc))
{
	struct fuse_node *n = a->n;
	uint64_t bs = n->block_size, first, count;
	int rc;

	a->wdone = wdone;
	a->data = data;
	a->off = off;
	a->len = len;
	a->own = own;
	a->tmp = NULL;
	if (len == 0) {
		wdone(a, 0);
		return;
	}
	if ((rc = open_here(n)) != 0) { /* sets n->shared */
		wdone(a, rc);
		return;
	}
	a->excl = off % bs != 0 || len % bs != 0;
	if (!a->excl) {
		rmw_lock(a, false, wr_aligned_go);
		return;
	}
	fuse_node_span(n, off, len, &first, &count);
	if ((a->tmp = alloc_blocks(count * bs)) == NULL) {
		wdone(a, -ENOMEM);
		return;
	}
	rmw_lock(a, true, wr_rmw_head);
}

void fuse_aio_write(struct fuse_aio *a, struct fuse_node *n, const void *data, uint64_t off,
		    size_t len, void (*done)(struct fuse_aio *a, int rc))
{
	a->n = n;
	a->done = done;
	write_bytes(a, data, off, len, true, done);
}

static void flush_done(struct fuse_aio *a, int rc)
{
	a->done(a, rc == -ENOTSUP ? 0 : rc); /* nothing volatile to flush */
}

void fuse_aio_flush(struct fuse_aio *a, struct fuse_node *n,
		    void (*done)(struct fuse_aio *a, int rc))
{
	a->n = n;
	a->done = done;
	aio_submit(a, MIMO_BDEV_IO_FLUSH, NULL, 0, n->num_blocks, false, flush_done);
}

/* Zero a byte range (fallocate PUNCH_HOLE and ZERO_RANGE alike: unmap does not promise that
 * the blocks read back as zeroes). The whole blocks go first with one write-zeroes, so when
 * the bdev cannot do it nothing has changed; the partial blocks at the edges are then zeroed
 * by writing zeroes over those bytes - not as own writes: the kernel need not have those bytes
 * cached as zeroes, so the hook updates them. An error may leave the range partly zeroed (it
 * is reported, never hidden). */
static void zero_fin(struct fuse_aio *a, int rc)
{
	free(a->zeros);
	a->zeros = NULL;
	a->done(a, rc);
}

static void zero_tail(struct fuse_aio *a, int rc)
{
	uint64_t tail = a->zoff + a->zlen - a->zb;

	if (rc == 0 && tail != 0)
		write_bytes(a, a->zeros, a->zb, tail, false, zero_fin);
	else
		zero_fin(a, rc);
}

static void zero_edges(struct fuse_aio *a, int rc)
{
	uint64_t head = a->za - a->zoff, tail = a->zoff + a->zlen - a->zb;
	size_t sz = head > tail ? head : tail;

	if (rc != 0 || (a->za <= a->zoff && a->zb >= a->zoff + a->zlen)) {
		a->done(a, rc);
		return;
	}
	if (a->za == a->zb && a->za == a->zoff)
		sz = a->zlen; /* < 2 blocks */
	if ((a->zeros = calloc(1, sz ? sz : 1)) == NULL) {
		a->done(a, -ENOMEM);
		return;
	}
	if (a->za == a->zb && a->za == a->zoff)
		write_bytes(a, a->zeros, a->zoff, a->zlen, false, zero_fin);
	else if (head != 0)
		write_bytes(a, a->zeros, a->zoff, head, false, zero_tail);
	else
		zero_tail(a, 0);
}

void fuse_aio_zero(struct fuse_aio *a, struct fuse_node *n, uint64_t off, uint64_t len,
		   void (*done)(struct fuse_aio *a, int rc))
{
	uint64_t bs = n->block_size;

	a->n = n;
	a->done = done;
	a->zoff = off;
	a->zlen = len;
	a->za = (off + bs - 1) / bs * bs;
	a->zb = (off + len) / bs * bs;
	if (a->za >= a->zb) /* within one block */
		a->za = a->zb = off;
	if (a->za < a->zb)
		aio_submit(a, MIMO_BDEV_IO_WRITE_ZEROES, NULL, a->za / bs, (a->zb - a->za) / bs,
			   false, zero_edges);
	else
		zero_edges(a, 0);
}
