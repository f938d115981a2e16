/*
 * Bdev files: the node table and blocking byte-range I/O for FUSE worker threads.
 *
 * bdev I/O must be submitted on a reactor, so each request is sent as a message to the
 * node's reactor, submitted there through that reactor's channel, and the worker waits on a
 * semaphore until the completion posts it. Partial blocks are read, patched and written back
 * under the bdev's rmw_lock (shared by every export of that bdev) held alone; aligned writes
 * share it.
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
		pthread_rwlock_init(&sh->rmw_lock, NULL);
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
		pthread_rwlock_destroy(&sh->rmw_lock);
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
	pthread_mutex_init(&n->open_lock, NULL);
	TAILQ_INIT(&n->own);
	pthread_mutex_lock(&exp->lock);
	other = find_live_locked(exp, name); /* another worker got there first */
	if (other == NULL) {
		n->ino = exp->next_ino++;
		n->reactor = mimo_reactor_get(exp->next_reactor++ % mimo_reactor_count());
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
	pthread_mutex_destroy(&n->open_lock);
	shared_put(n->shared);
	free(n->name);
	free(n);
}

/* --- running on the node's reactor ------------------------------------------------------- */

/* Post a message to r and wait until the function posts sem. */
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

struct open_ctx {
	struct fuse_node *n;
	int rc;
	sem_t done;
};

static void open_here(void *arg)
{
	struct open_ctx *c = arg;
	struct fuse_node *n = c->n;

	c->rc = mimo_bdev_open(n->name, n->exp->writable, bdev_event, n, &n->desc);
	if (c->rc == -EPERM && n->exp->writable) {
		/* Claimed for write by a module: readable still; write opens get EPERM. */
		c->rc = mimo_bdev_open(n->name, false, bdev_event, n, &n->desc);
		n->read_only = c->rc == 0;
	}
	if (c->rc == 0) {
		struct mimo_bdev *b = mimo_bdev_desc_get_bdev(n->desc);
		char uuid[MIMO_UUID_STR_LEN];

		mimo_uuid_format(mimo_bdev_get_uuid(b), uuid);
		/* Deleted and re-created under the same name since we looked it up? */
		if (strcmp(uuid, n->uuid) != 0 || mimo_bdev_get_num_blocks(b) != n->num_blocks ||
		    mimo_bdev_get_block_size(b) != n->block_size)
			c->rc = -ENODEV;
		else if (n->shared == NULL && (n->shared = shared_get(b)) == NULL)
			c->rc = -ENOMEM;
		if (c->rc != 0) {
			mimo_bdev_close(n->desc);
			n->desc = NULL;
		} else {
			pthread_mutex_lock(&n->exp->lock);
			n->bdev = b;
			atomic_fetch_add(&g_interest[interest_slot(b)], 1);
			pthread_mutex_unlock(&n->exp->lock);
		}
	}
	sem_post(&c->done);
}

int fuse_node_open(struct fuse_node *n)
{
	struct open_ctx c = { .n = n };
	bool need;

	if (atomic_load(&n->dead))
		return -ENODEV;
	pthread_mutex_lock(&n->open_lock);
	need = n->desc == NULL && !n->removing;
	if (need) {
		sem_init(&c.done, 0, 0);
		run_on(n->reactor, open_here, &c, &c.done);
		sem_destroy(&c.done);
	} else if (n->removing) {
		c.rc = -ENODEV;
	}
	pthread_mutex_unlock(&n->open_lock);
	if (c.rc == -ENODEV || c.rc == -EBUSY)
		atomic_store(&n->dead, true);
	return c.rc;
}

static void close_msg(void *arg)
{
	struct open_ctx *c = arg;

	c->n->removing = true;
	close_here(c->n);
	sem_post(&c->done);
}

void fuse_node_close(struct fuse_node *n)
{
	struct open_ctx c = { .n = n };

	pthread_mutex_lock(&n->open_lock);
	if (n->desc != NULL) {
		sem_init(&c.done, 0, 0);
		run_on(n->reactor, close_msg, &c, &c.done);
		sem_destroy(&c.done);
	}
	pthread_mutex_unlock(&n->open_lock);
}

/* --- block I/O --------------------------------------------------------------------------- */

struct sync_io {
	struct fuse_node *n;
	enum mimo_bdev_io_type type;
	void *buf;
	uint64_t offset_blocks, num_blocks;
	bool own;
	struct own_write ow;
	int rc;
	sem_t done;
};

static void io_done(struct mimo_bdev_io *io, bool success, void *arg)
{
	struct sync_io *s = arg;
	struct fuse_node *n = s->n;

	s->rc = success ? 0 : mimo_bdev_io_get_status(io);
	if (s->rc == 0 && !success)
		s->rc = -EIO;
	mimo_bdev_free_io(io);
	if (s->own)
		TAILQ_REMOVE(&n->own, &s->ow, link);
	if (--n->inflight == 0 && n->removing)
		close_here(n);
	sem_post(&s->done);
}

static void submit_here(void *arg)
{
	struct sync_io *s = arg;
	struct fuse_node *n = s->n;
	int rc;

	if (n->desc == NULL || n->removing) {
		s->rc = -ENODEV;
		sem_post(&s->done);
		return;
	}
	if (n->ch == NULL && (n->ch = mimo_bdev_get_io_channel(n->desc)) == NULL) {
		s->rc = -ENOMEM;
		sem_post(&s->done);
		return;
	}
	n->inflight++;
	if (s->own) {
		/* The write hook runs before io_done: it finds this and skips the range. */
		s->ow.offset_blocks = s->offset_blocks;
		s->ow.num_blocks = s->num_blocks;
		TAILQ_INSERT_TAIL(&n->own, &s->ow, link);
	}
	switch (s->type) {
	case MIMO_BDEV_IO_READ:
		rc = mimo_bdev_read_blocks(n->desc, n->ch, s->buf, s->offset_blocks, s->num_blocks,
					   io_done, s);
		break;
	case MIMO_BDEV_IO_WRITE:
		rc = mimo_bdev_write_blocks(n->desc, n->ch, s->buf, s->offset_blocks, s->num_blocks,
					    io_done, s);
		break;
	case MIMO_BDEV_IO_UNMAP:
		rc = mimo_bdev_unmap_blocks(n->desc, n->ch, s->offset_blocks, s->num_blocks,
					    io_done, s);
		break;
	case MIMO_BDEV_IO_WRITE_ZEROES:
		rc = mimo_bdev_write_zeroes_blocks(n->desc, n->ch, s->offset_blocks, s->num_blocks,
						   io_done, s);
		break;
	case MIMO_BDEV_IO_FLUSH:
		rc = mimo_bdev_flush_blocks(n->desc, n->ch, s->offset_blocks, s->num_blocks,
					    io_done, s);
		break;
	default:
		rc = -ENOTSUP;
	}
	if (rc != 0) {
		if (s->own)
			TAILQ_REMOVE(&n->own, &s->ow, link);
		s->rc = rc;
		if (--n->inflight == 0 && n->removing)
			close_here(n);
		sem_post(&s->done);
	}
}

static int do_io(struct fuse_node *n, enum mimo_bdev_io_type type, void *buf, uint64_t off_blocks,
		 uint64_t num_blocks, bool own)
{
	struct sync_io s = { .n = n,
			     .type = type,
			     .buf = buf,
			     .offset_blocks = off_blocks,
			     .num_blocks = num_blocks,
			     .own = own };
	int rc;

	if (num_blocks == 0)
		return 0;
	if ((rc = fuse_node_open(n)) != 0)
		return rc;
	if (own) {
		atomic_fetch_add(&n->own_inflight, 1);
		atomic_fetch_add(&n->own_gen, 1);
	}
	sem_init(&s.done, 0, 0);
	run_on(n->reactor, submit_here, &s, &s.done);
	sem_destroy(&s.done);
	if (own) {
		atomic_fetch_add(&n->own_gen, 1);
		atomic_fetch_sub(&n->own_inflight, 1);
	}
	return s.rc;
}

static void *alloc_blocks(struct fuse_node *n, uint64_t bytes)
{
	size_t align = 4096;

	bytes = (bytes + align - 1) / align * align;
	(void)n;
	return aligned_alloc(align, bytes);
}

int fuse_node_read(struct fuse_node *n, void *buf, uint64_t off, size_t len)
{
	uint64_t bs = n->block_size, first = off / bs, last = (off + len + bs - 1) / bs;
	uint8_t *tmp;
	int rc;

	if (off % bs == 0 && len % bs == 0)
		return do_io(n, MIMO_BDEV_IO_READ, buf, first, last - first, false);
	tmp = alloc_blocks(n, (last - first) * bs);
	if (tmp == NULL)
		return -ENOMEM;
	rc = do_io(n, MIMO_BDEV_IO_READ, tmp, first, last - first, false);
	if (rc == 0)
		memcpy(buf, tmp + (off - first * bs), len);
	free(tmp);
	return rc;
}

static int write_bytes(struct fuse_node *n, const void *buf, uint64_t off, size_t len, bool own)
{
	uint64_t bs = n->block_size, first = off / bs, last = (off + len + bs - 1) / bs;
	uint8_t *tmp;
	int rc;

	if ((rc = fuse_node_open(n)) != 0) /* sets n->shared */
		return rc;
	if (off % bs == 0 && len % bs == 0) {
		pthread_rwlock_rdlock(&n->shared->rmw_lock);
		/* The bdev API takes a non-const buffer; a write does not change it. */
		rc = do_io(n, MIMO_BDEV_IO_WRITE, (void *)(uintptr_t)buf, first, last - first, own);
		pthread_rwlock_unlock(&n->shared->rmw_lock);
		return rc;
	}
	tmp = alloc_blocks(n, (last - first) * bs);
	if (tmp == NULL)
		return -ENOMEM;
	pthread_rwlock_wrlock(&n->shared->rmw_lock);
	rc = 0;
	/* Only the partial head and tail blocks need their old contents. */
	if (off % bs != 0)
		rc = do_io(n, MIMO_BDEV_IO_READ, tmp, first, 1, false);
	if (rc == 0 && (off + len) % bs != 0 && (last - 1 != first || off % bs == 0))
		rc = do_io(n, MIMO_BDEV_IO_READ, tmp + (last - 1 - first) * bs, last - 1, 1, false);
	if (rc == 0) {
		memcpy(tmp + (off - first * bs), buf, len);
		rc = do_io(n, MIMO_BDEV_IO_WRITE, tmp, first, last - first, own);
	}
	pthread_rwlock_unlock(&n->shared->rmw_lock);
	free(tmp);
	return rc;
}

int fuse_node_write(struct fuse_node *n, const void *buf, uint64_t off, size_t len)
{
	return write_bytes(n, buf, off, len, true);
}

int fuse_node_flush(struct fuse_node *n)
{
	int rc = do_io(n, MIMO_BDEV_IO_FLUSH, NULL, 0, n->num_blocks, false);

	return rc == -ENOTSUP ? 0 : rc; /* nothing volatile to flush */
}

/* Zero a byte range (fallocate PUNCH_HOLE and ZERO_RANGE alike: unmap does not promise that
 * the blocks read back as zeroes). The whole blocks go first with one write-zeroes, so when
 * the bdev cannot do it nothing has changed; the partial blocks at the edges are then zeroed
 * by writing zeroes over those bytes - not as own writes: the kernel need not have those bytes
 * cached as zeroes, so the hook updates them. 0 or -errno; an error may leave the range
 * partly zeroed (it is reported, never hidden). */
int fuse_node_zero(struct fuse_node *n, uint64_t off, uint64_t len)
{
	uint64_t bs = n->block_size;
	uint64_t a = (off + bs - 1) / bs * bs, b = (off + len) / bs * bs;
	int rc = 0;

	if (a >= b) /* within one block */
		a = b = off;
	if (a < b &&
	    (rc = do_io(n, MIMO_BDEV_IO_WRITE_ZEROES, NULL, a / bs, (b - a) / bs, false)) != 0)
		return rc;
	if (a > off || b < off + len) {
		size_t head = a - off, tail = off + len - b, sz = head > tail ? head : tail;
		void *z = calloc(1, sz ? sz : 1);

		if (z == NULL)
			return -ENOMEM;
		if (a == b && a == off)
			rc = write_bytes(n, z, off, len, false); /* < 2 blocks */
		else {
			if (head != 0)
				rc = write_bytes(n, z, off, head, false);
			if (rc == 0 && tail != 0)
				rc = write_bytes(n, z, b, tail, false);
		}
		free(z);
	}
	return rc;
}
