/*
 * The FUSE request handlers, run on the export's reactor. Metadata requests are answered at
 * once; read, write, fsync and fallocate submit bdev I/O and are answered from its
 * completion. They never block and never notify the kernel (that deadlocks: the kernel holds
 * locks of the request being answered) - the notifier thread does. A blocking read of
 * `events` is parked and answered by the notifier (or EINTR when interrupted).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuse_internal.h"
#include "log.h"

#ifndef FALLOC_FL_KEEP_SIZE
#define FALLOC_FL_KEEP_SIZE 0x01
#endif
#ifndef FALLOC_FL_PUNCH_HOLE
#define FALLOC_FL_PUNCH_HOLE 0x02
#endif
#ifndef FALLOC_FL_ZERO_RANGE
#define FALLOC_FL_ZERO_RANGE 0x10
#endif

static struct fuse_export *exp_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static void fill_attr(struct fuse_export *exp, uint64_t ino, const struct fuse_node *n,
		      struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_atim.tv_sec = st->st_mtim.tv_sec = st->st_ctim.tv_sec = exp->created;
	/* As qemu-storage-daemon: only the daemon's user, and the kernel checks the modes
	 * (default_permissions). */
	st->st_uid = exp->uid;
	st->st_gid = exp->gid;
	if (ino == INO_ROOT || ino == INO_BDEVS) {
		st->st_mode = S_IFDIR | 0700;
		st->st_nlink = 2;
	} else if (ino == INO_EVENTS || ino == INO_NAMES) {
		/* Size 0, read to the end (as /proc files): what they hold is made when read. */
		st->st_mode = S_IFREG | 0400;
		st->st_nlink = 1;
	} else {
		st->st_mode = S_IFREG | (exp->writable && !n->read_only ? 0600 : 0400);
		st->st_nlink = 1;
		st->st_size = (off_t)n->size;
		st->st_blksize = n->block_size > 4096 ? n->block_size : 4096;
		st->st_blocks = (blkcnt_t)(n->size / 512);
	}
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	conn->max_write = FUSE_MAX_XFER;
	conn->max_read = 0;
	conn->max_background = 64;
	conn->congestion_threshold = 48;
	/* The export says when data changes; the kernel must not second-guess it from
	 * attributes, and must write through so the bdev always has what readers see. */
	conn->want &= ~(unsigned)(FUSE_CAP_AUTO_INVAL_DATA | FUSE_CAP_WRITEBACK_CACHE);
	/* Requests are read into memory (the loop hands a large write its buffer). */
	conn->want &= ~(unsigned)FUSE_CAP_SPLICE_READ;
	if (conn->capable & FUSE_CAP_ASYNC_DIO)
		conn->want |= FUSE_CAP_ASYNC_DIO;
	if (conn->capable & FUSE_CAP_ASYNC_READ)
		conn->want |= FUSE_CAP_ASYNC_READ;
}

/* The node behind file name of bdevs/ (a bdev's own name or its mapped one, names.c), now
 * known to the kernel under that name. */
static struct fuse_node *lookup_bdev(struct fuse_export *exp, const char *fname,
				     struct fuse_entry_param *e, int *err)
{
	struct fuse_node *n = NULL;
	struct nitem *stale = NULL;
	char *bdev, *copy;
	uint64_t gen;
	bool known;

	pthread_mutex_lock(&exp->lock);
	gen = exp->names_gen;
	pthread_mutex_unlock(&exp->lock);
	/* Its own name first: a bdev's own name always wins over any mapped one. */
	n = fuse_node_get(exp, fname, err);
	if (n == NULL && *err == -ENOENT && (*err = fuse_names_resolve(exp, fname, &bdev)) == 0) {
		n = fuse_node_get(exp, bdev, err);
		free(bdev);
	}
	if (n == NULL)
		return NULL;
	copy = strdup(fname);
	pthread_mutex_lock(&exp->lock);
	n->looked_up = true;
	known = n->fname != NULL && strcmp(n->fname, fname) == 0;
	if (!known && copy != NULL) {
		/* Found under another name than before (its name moved): the notifier drops the
		 * kernel's entry of the old one, which may be another bdev's now. */
		if (n->fname != NULL && (stale = calloc(1, sizeof(*stale))) != NULL) {
			stale->kind = N_ENTRY_STALE;
			stale->name = n->fname;
			fuse_queue_push_locked(exp, stale);
		} else {
			free(n->fname);
		}
		n->fname = copy;
		copy = NULL;
		known = true;
	}
	/* Bdevs came or went while the name was mapped, or the name is not recorded (no
	 * memory): the kernel asks again next time rather than keep the answer for an hour. */
	if (exp->names_gen != gen || !known)
		e->entry_timeout = 0;
	pthread_mutex_unlock(&exp->lock);
	free(copy);
	return n;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_export *exp = exp_of(req);
	struct fuse_entry_param e;
	struct fuse_node *n = NULL;
	int err;

	memset(&e, 0, sizeof(e));
	e.attr_timeout = e.entry_timeout = FUSE_CACHE_TIMEOUT_S;
	if (parent == INO_ROOT && strcmp(name, "bdevs") == 0) {
		e.ino = INO_BDEVS;
	} else if (parent == INO_ROOT && strcmp(name, "events") == 0) {
		e.ino = INO_EVENTS;
	} else if (parent == INO_ROOT && strcmp(name, "names") == 0) {
		e.ino = INO_NAMES;
	} else if (parent == INO_BDEVS) {
		if ((n = lookup_bdev(exp, name, &e, &err)) == NULL) {
			fuse_reply_err(req, -err);
			return;
		}
		e.ino = n->ino;
	} else {
		fuse_reply_err(req, ENOENT);
		return;
	}
	fill_attr(exp, e.ino, n, &e.attr);
	fuse_reply_entry(req, &e);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fuse_export *exp = exp_of(req);
	struct fuse_node *n = NULL;
	struct stat st;

	(void)fi;
	if (ino >= INO_FIRST_BDEV && (n = fuse_node_by_ino(exp, ino)) == NULL) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	if (ino != INO_ROOT && ino != INO_BDEVS && ino != INO_EVENTS && ino != INO_NAMES &&
	    n == NULL) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	fill_attr(exp, ino, n, &st);
	fuse_reply_attr(req, &st, FUSE_CACHE_TIMEOUT_S);
}

/* Block devices ignore O_TRUNC and cannot be resized; chmod and utimes mean nothing here. So
 * setattr answers the attributes unchanged (dd without conv=notrunc works, as on /dev/sdX). */
static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		       struct fuse_file_info *fi)
{
	(void)attr;
	(void)to_set;
	op_getattr(req, ino, fi);
}

struct dirbuf {
	char *p;
	size_t size;
};

static void dirbuf_add(fuse_req_t req, struct dirbuf *b, const char *name, uint64_t ino,
		       mode_t mode)
{
	struct stat st = { .st_ino = ino, .st_mode = mode };
	size_t old = b->size;
	char *np;

	b->size += fuse_add_direntry(req, NULL, 0, name, NULL, 0);
	np = realloc(b->p, b->size);
	if (np == NULL) {
		b->size = old;
		return;
	}
	b->p = np;
	fuse_add_direntry(req, b->p + old, b->size - old, name, &st, (off_t)b->size);
}

/* The whole listing of a directory, built by the READDIR at offset 0 of an open directory (its
 * first, or a rewinddir) and served from there by the calls that continue it: rebuilding it per
 * call (one call per ~4 KiB of entries) would cost O(bdevs^2) on the reactor for one `ls`. */
static int dir_build(fuse_req_t req, fuse_ino_t ino, struct dirbuf *b)
{
	struct fuse_export *exp = exp_of(req);
	struct fuse_names_snap s;
	char fname[FUSE_FNAME_MAX + 1];
	size_t i;
	json_t *bd;

	dirbuf_add(req, b, ".", ino, S_IFDIR);
	dirbuf_add(req, b, "..", INO_ROOT, S_IFDIR);
	if (ino == INO_ROOT) {
		dirbuf_add(req, b, "bdevs", INO_BDEVS, S_IFDIR);
		dirbuf_add(req, b, "events", INO_EVENTS, S_IFREG);
		dirbuf_add(req, b, "names", INO_NAMES, S_IFREG);
	} else {
		/* Every bdev under its file name: no name can make the kernel reject the listing
		 * (it fails all of it, EIO, for one entry with a '/' or over 255 bytes). */
		if (fuse_names_snapshot(exp, &s) != 0)
			return -ENOMEM;
		json_array_foreach(s.bdevs, i, bd)
		{
			const char *name = json_string_value(json_object_get(bd, "name"));
			struct fuse_node *n;
			int err;

			if ((n = fuse_node_get(exp, name, &err)) == NULL)
				continue;
			fuse_names_snap_file_of(&s, name, fname);
			dirbuf_add(req, b, fname, n->ino, S_IFREG);
		}
		fuse_names_snap_free(&s);
	}
	return b->p != NULL ? 0 : -ENOMEM;
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct dirbuf *b;

	if (ino != INO_ROOT && ino != INO_BDEVS) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	if ((b = calloc(1, sizeof(*b))) == NULL) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	fi->fh = (uint64_t)(uintptr_t)b;
	if (fuse_reply_open(req, fi) != 0) { /* the opener is gone: no releasedir follows */
		free(b->p);
		free(b);
	}
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	struct dirbuf *b = (struct dirbuf *)(uintptr_t)fi->fh;
	int rc;

	if (off == 0) {
		free(b->p);
		*b = (struct dirbuf){ 0 };
		if ((rc = dir_build(req, ino, b)) != 0) {
			fuse_reply_err(req, -rc);
			return;
		}
	}
	if ((size_t)off < b->size)
		fuse_reply_buf(req, b->p + off, MIN(b->size - (size_t)off, size));
	else
		fuse_reply_buf(req, NULL, 0);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct dirbuf *b = (struct dirbuf *)(uintptr_t)fi->fh;

	(void)ino;
	free(b->p);
	free(b);
	fuse_reply_err(req, 0);
}

/* --- names ------------------------------------------------------------------------------- */

/* An open `names` file: the text made at open, so a reader sees one consistent listing. */
struct names_file {
	char *text;
	size_t len;
};

static void names_open(fuse_req_t req, struct fuse_export *exp, struct fuse_file_info *fi, bool wr)
{
	struct names_file *f;

	if (wr) {
		fuse_reply_err(req, EACCES);
		return;
	}
	if ((f = calloc(1, sizeof(*f))) == NULL ||
	    (f->text = fuse_names_index(exp, &f->len)) == NULL) {
		free(f);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	fi->fh = (uintptr_t)f;
	fi->direct_io = 1;		     /* size 0 in its attributes: reads must come here */
	if (fuse_reply_open(req, fi) != 0) { /* the opener is gone: no release follows */
		free(f->text);
		free(f);
	}
}

static void names_read(fuse_req_t req, struct names_file *f, size_t size, off_t off)
{
	if (off < 0 || (size_t)off >= f->len)
		fuse_reply_buf(req, NULL, 0);
	else
		fuse_reply_buf(req, f->text + off, MIN(f->len - (size_t)off, size));
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fuse_export *exp = exp_of(req);
	bool wr = (fi->flags & O_ACCMODE) != O_RDONLY;
	struct fuse_node *n;
	int rc;

	if (ino == INO_EVENTS) {
		struct ev_reader *r;

		if (wr) {
			fuse_reply_err(req, EACCES);
			return;
		}
		if ((r = calloc(1, sizeof(*r))) == NULL) {
			fuse_reply_err(req, ENOMEM);
			return;
		}
		pthread_mutex_lock(&exp->lock);
		r->next = exp->ev_head; /* a reader sees events from its open on, as tail -f */
		TAILQ_INSERT_TAIL(&exp->readers, r, link);
		pthread_mutex_unlock(&exp->lock);
		fi->fh = (uintptr_t)r;
		fi->direct_io = 1;
		fi->nonseekable = 1;
		fuse_reply_open(req, fi);
		return;
	}
	if (ino == INO_NAMES) {
		names_open(req, exp, fi, wr);
		return;
	}
	if (ino < INO_FIRST_BDEV) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	if ((n = fuse_node_by_ino(exp, ino)) == NULL) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	if (wr && !exp->writable) {
		fuse_reply_err(req, EROFS);
		return;
	}
	if ((rc = fuse_node_open(n)) != 0) {
		fuse_reply_err(req, -rc);
		return;
	}
	if (wr && n->read_only) { /* claimed for write by a module (an NVMe-oF subsystem...) */
		fuse_reply_err(req, EPERM);
		return;
	}
	atomic_fetch_add(&n->openers, 1);
	fi->fh = (uintptr_t)n;
	fi->keep_cache = 1; /* the point of this export: the notifier keeps the cache right */
	fuse_reply_open(req, fi);
}

/* --- events ------------------------------------------------------------------------------- */

static void events_interrupted(fuse_req_t req, void *data)
{
	struct ev_reader *r = data;
	struct fuse_export *exp = exp_of(req);
	bool mine;

	pthread_mutex_lock(&exp->lock);
	mine = r->pending == req;
	if (mine)
		r->pending = NULL;
	pthread_mutex_unlock(&exp->lock);
	if (mine)
		fuse_reply_err(req, EINTR);
}

static void events_read(fuse_req_t req, struct fuse_export *exp, struct ev_reader *r, size_t size,
			bool nonblock)
{
	char *buf = malloc(size ? size : 1);
	size_t n = 0;

	if (buf == NULL) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	if (!nonblock)
		fuse_req_interrupt_func(req, events_interrupted, r);
	/* Checked before taking exp->lock: the interrupt callback takes it while libfuse holds
	 * the request's lock, which fuse_req_interrupted also takes. */
	if (!nonblock && fuse_req_interrupted(req)) {
		free(buf);
		fuse_reply_err(req, EINTR);
		return;
	}
	pthread_mutex_lock(&exp->lock);
	if (exp->stopping) {
		n = 0;
	} else if (fuse_events_available_locked(exp, r) > 0) {
		n = fuse_events_copy_locked(exp, r, buf, size);
	} else if (!nonblock && r->pending == NULL) {
		r->pending = req; /* the notifier answers it when a line arrives */
		r->pending_size = size;
		pthread_mutex_unlock(&exp->lock);
		free(buf);
		return;
	} else {
		pthread_mutex_unlock(&exp->lock);
		free(buf);
		fuse_reply_err(req, EAGAIN);
		return;
	}
	pthread_mutex_unlock(&exp->lock);
	fuse_reply_buf(req, buf, n);
	free(buf);
}

/* A request answered from an I/O completion. */
struct freq {
	struct fuse_aio a; /* first: the completion's argument is the freq */
	fuse_req_t req;
	struct fuse_export *exp;
	void *buf;   /* read: the blocks; write: the data (copied, or the receive buffer) */
	size_t len;  /* the bytes answered */
	size_t skip; /* read: where they start in buf */
	bool pooled; /* buf goes back to the export's pool */
};

/* Writes at least this large take the receive buffer instead of copying it. */
#define TAKE_RX_MIN (64u << 10)

static struct freq *freq_new(fuse_req_t req)
{
	struct freq *f = calloc(1, sizeof(*f));

	if (f == NULL) {
		fuse_reply_err(req, ENOMEM);
		return NULL;
	}
	f->req = req;
	f->exp = exp_of(req);
	fuse_export_io_get(f->exp);
	return f;
}

static void freq_end(struct freq *f)
{
	struct fuse_export *exp = f->exp;

	if (f->pooled)
		fuse_export_buf_put(exp, f->buf);
	else
		free(f->buf);
	free(f);
	fuse_export_io_put(exp);
}

static void read_done(struct fuse_aio *a, int rc)
{
	struct freq *f = (struct freq *)a;

	if (rc != 0)
		fuse_reply_err(f->req, -rc);
	else
		fuse_reply_buf(f->req, (char *)f->buf + f->skip, f->len);
	freq_end(f);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct fuse_export *exp = exp_of(req);
	struct fuse_node *n;
	struct freq *f;
	uint64_t first, count;

	if (ino == INO_EVENTS) {
		events_read(req, exp, (struct ev_reader *)(uintptr_t)fi->fh, size,
			    (fi->flags & O_NONBLOCK) != 0);
		return;
	}
	if (ino == INO_NAMES) {
		names_read(req, (struct names_file *)(uintptr_t)fi->fh, size, off);
		return;
	}
	n = (struct fuse_node *)(uintptr_t)fi->fh;
	if (off < 0 || (uint64_t)off >= n->size || size == 0) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	size = (size_t)MIN((uint64_t)size, n->size - (uint64_t)off);
	if ((f = freq_new(req)) == NULL)
		return;
	fuse_node_span(n, (uint64_t)off, size, &first, &count);
	f->len = size;
	f->skip = (size_t)((uint64_t)off - first * n->block_size);
	if (count * n->block_size >= TAKE_RX_MIN && count * n->block_size <= exp->pool_size)
		f->pooled = (f->buf = fuse_export_buf_get(exp)) != NULL;
	if (f->buf == NULL &&
	    (f->buf = aligned_alloc(4096, (count * n->block_size + 4095) / 4096 * 4096)) == NULL) {
		read_done(&f->a, -ENOMEM);
		return;
	}
	fuse_aio_read(&f->a, n, f->buf, (uint64_t)off, size, read_done);
}

static void write_done(struct fuse_aio *a, int rc)
{
	struct freq *f = (struct freq *)a;

	if (rc != 0)
		fuse_reply_err(f->req, -rc);
	else
		fuse_reply_write(f->req, f->len);
	freq_end(f);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	struct fuse_export *exp = exp_of(req);
	struct fuse_node *n = (struct fuse_node *)(uintptr_t)fi->fh;
	const char *rx = exp->rx.mem;
	const void *data;
	struct freq *f;

	if (ino < INO_FIRST_BDEV) {
		fuse_reply_err(req, EBADF);
		return;
	}
	/* As a block device: nothing can be written at or past the end. */
	if (off < 0 || (uint64_t)off >= n->size) {
		fuse_reply_err(req, ENOSPC);
		return;
	}
	size = (size_t)MIN((uint64_t)size, n->size - (uint64_t)off);
	if ((f = freq_new(req)) == NULL)
		return;
	f->len = size;
	/* The data lives in the receive buffer only until this handler returns: a large write
	 * takes the buffer (the loop receives into a new one), a small one is copied. Only if
	 * the data sits where the bdev can take it: behind FUSE's header it is not 512-aligned,
	 * and an O_DIRECT (aio) bdev would bounce it - more work than the copy saved. */
	if (size >= TAKE_RX_MIN && !exp->rx_taken && rx != NULL && buf >= rx &&
	    buf + size <= rx + exp->rx.size && n->bdev != NULL &&
	    (uintptr_t)buf % mimo_bdev_get_buf_align(n->bdev) == 0) {
		exp->rx_taken = true;
		f->buf = exp->rx.mem;
		f->pooled = true; /* at least pool_size bytes, as every receive buffer */
		data = buf;
	} else if ((f->buf = aligned_alloc(4096, (size + 4095) / 4096 * 4096)) != NULL) {
		memcpy(f->buf, buf, size);
		data = f->buf;
	} else {
		write_done(&f->a, -ENOMEM);
		return;
	}
	fuse_aio_write(&f->a, n, data, (uint64_t)off, size, write_done);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, 0); /* close(): fsync is what reaches the bdev */
}

static void err_done(struct fuse_aio *a, int rc)
{
	struct freq *f = (struct freq *)a;

	fuse_reply_err(f->req, rc == -ENOTSUP ? EOPNOTSUPP : -rc);
	freq_end(f);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct freq *f;

	(void)datasync;
	if (ino < INO_FIRST_BDEV) {
		fuse_reply_err(req, 0);
		return;
	}
	if ((f = freq_new(req)) != NULL)
		fuse_aio_flush(&f->a, (struct fuse_node *)(uintptr_t)fi->fh, err_done);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fuse_export *exp = exp_of(req);

	if (ino == INO_EVENTS) {
		struct ev_reader *r = (struct ev_reader *)(uintptr_t)fi->fh;
		fuse_req_t pending;

		struct fuse_pollhandle *ph;

		pthread_mutex_lock(&exp->lock);
		TAILQ_REMOVE(&exp->readers, r, link);
		pending = r->pending;
		r->pending = NULL;
		ph = r->ph;
		r->ph = NULL;
		pthread_mutex_unlock(&exp->lock);
		if (pending != NULL)
			fuse_reply_buf(pending, NULL, 0);
		if (ph != NULL)
			fuse_pollhandle_destroy(ph);
		free(r);
	} else if (ino == INO_NAMES) {
		struct names_file *f = (struct names_file *)(uintptr_t)fi->fh;

		free(f->text);
		free(f);
	} else if (ino >= INO_FIRST_BDEV) {
		atomic_fetch_sub(&((struct fuse_node *)(uintptr_t)fi->fh)->openers, 1);
	}
	fuse_reply_err(req, 0);
}

static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
			 struct fuse_file_info *fi)
{
	struct fuse_export *exp = exp_of(req);
	struct fuse_node *n = (struct fuse_node *)(uintptr_t)fi->fh;
	struct freq *f;
	uint64_t end;
	int rc;

	if (ino < INO_FIRST_BDEV) {
		fuse_reply_err(req, EBADF);
		return;
	}
	if (!exp->writable) {
		fuse_reply_err(req, EROFS);
		return;
	}
	if (off < 0 || len <= 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	end = (uint64_t)off + (uint64_t)len;
	if (mode & FALLOC_FL_PUNCH_HOLE) {
		if (!(mode & FALLOC_FL_KEEP_SIZE) ||
		    (mode & ~(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE)))
			rc = -EOPNOTSUPP;
		else
			rc = (uint64_t)off >= n->size ? 0 : 1;
	} else if (mode & FALLOC_FL_ZERO_RANGE) {
		if (end > n->size && !(mode & FALLOC_FL_KEEP_SIZE))
			rc = -ENOSPC;
		else
			rc = (uint64_t)off >= n->size ? 0 : 1;
	} else if ((mode & ~FALLOC_FL_KEEP_SIZE) == 0) {
		/* Every block of a bdev is allocated; it cannot grow. */
		rc = end > n->size && !(mode & FALLOC_FL_KEEP_SIZE) ? -ENOSPC : 0;
	} else {
		rc = -EOPNOTSUPP;
	}
	if (rc != 1) {
		fuse_reply_err(req, -rc);
		return;
	}
	/* Zero [off, min(end, size)): whole blocks, then the partial edges. */
	if ((f = freq_new(req)) != NULL)
		fuse_aio_zero(&f->a, n, (uint64_t)off, MIN(end, n->size) - (uint64_t)off, err_done);
}

static void op_poll(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
		    struct fuse_pollhandle *ph)
{
	struct fuse_export *exp = exp_of(req);
	struct ev_reader *r;
	unsigned revents = 0;

	if (ino != INO_EVENTS) {
		if (ph != NULL)
			fuse_pollhandle_destroy(ph);
		fuse_reply_poll(req, POLLIN | POLLRDNORM | POLLOUT | POLLWRNORM);
		return;
	}
	r = (struct ev_reader *)(uintptr_t)fi->fh;
	pthread_mutex_lock(&exp->lock);
	if (fuse_events_available_locked(exp, r) > 0 || exp->stopping)
		revents = POLLIN | POLLRDNORM;
	if (ph != NULL) {
		/* Keep the newest handle; the notifier wakes it on the next event. */
		if (r->ph != NULL)
			fuse_pollhandle_destroy(r->ph);
		r->ph = ph;
	}
	pthread_mutex_unlock(&exp->lock);
	fuse_reply_poll(req, revents);
}

static void op_retrieve_reply(fuse_req_t req, void *cookie, fuse_ino_t ino, off_t offset,
			      struct fuse_bufvec *bufv)
{
	(void)ino;
	fuse_verify_reply(exp_of(req), (uint64_t)(uintptr_t)cookie, (uint64_t)offset, bufv);
	fuse_reply_none(req);
}

const struct fuse_lowlevel_ops g_fuse_ops = {
	.init = op_init,
	.lookup = op_lookup,
	.getattr = op_getattr,
	.setattr = op_setattr,
	.opendir = op_opendir,
	.readdir = op_readdir,
	.releasedir = op_releasedir,
	.open = op_open,
	.read = op_read,
	.write = op_write,
	.flush = op_flush,
	.fsync = op_fsync,
	.release = op_release,
	.fallocate = op_fallocate,
	.poll = op_poll,
	.retrieve_reply = op_retrieve_reply,
};
