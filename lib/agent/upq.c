/*
 * The durable up-queue (see upq.h for the model and docs/protocol.md for the record layout).
 */
#include "upq.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "compiler.h"
#include "crc32c.h"
#include "file.h"
#include "le.h"
#include "log.h"

#define COMP	      "upq"
#define REC_MAGIC     0x5250554du /* "MUPR" */
#define REC_HDR	      64
#define REC_MAX	      (REC_HDR + 64 + 255 + (16u << 20))
#define DEDUP_WINDOW  65536u
#define DEDUP_BUCKETS 131072u
#define READ_CHUNK    (256u << 10)
#define SAVE_EVERY_NS (200LL * 1000 * 1000)
#define CURSORS_FILE  "cursors.json"

/* --- records ------------------------------------------------------------------------------- */

size_t upq_rec_size(const struct up_rec *r)
{
	return REC_HDR + r->plugin_len + r->msg_id_len + r->content_len;
}

void upq_rec_encode(void *out, const struct up_rec *r)
{
	uint8_t *p = out;
	size_t n = upq_rec_size(r);

	st_le32(p, REC_MAGIC);
	st_le32(p + 4, (uint32_t)n);
	st_le32(p + 12, 0);
	st_le64(p + 16, r->key_hi);
	st_le64(p + 24, r->key_lo);
	st_le64(p + 32, r->slot_id);
	st_le64(p + 40, (uint64_t)r->accepted_ms);
	st_le64(p + 48, (uint64_t)r->expires_ms);
	st_le16(p + 56, (uint16_t)r->plugin_len);
	st_le16(p + 58, (uint16_t)r->msg_id_len);
	st_le32(p + 60, (uint32_t)r->content_len);
	memcpy(p + REC_HDR, r->plugin, r->plugin_len);
	memcpy(p + REC_HDR + r->plugin_len, r->msg_id, r->msg_id_len);
	if (r->content_len > 0)
		memcpy(p + REC_HDR + r->plugin_len + r->msg_id_len, r->content, r->content_len);
	st_le32(p + 8, mimo_crc32c(p + 12, n - 12));
}

long upq_rec_decode(const void *buf, size_t len, struct up_rec *r)
{
	const uint8_t *p = buf;
	uint32_t n;

	if (len < REC_HDR)
		return 0;
	n = ld_le32(p + 4);
	if (ld_le32(p) != REC_MAGIC || n < REC_HDR || n > REC_MAX)
		return -EBADMSG;
	if (len < n)
		return 0;
	r->plugin_len = ld_le16(p + 56);
	r->msg_id_len = ld_le16(p + 58);
	r->content_len = ld_le32(p + 60);
	if ((uint64_t)REC_HDR + r->plugin_len + r->msg_id_len + r->content_len != n ||
	    ld_le32(p + 12) != 0 || mimo_crc32c(p + 12, n - 12) != ld_le32(p + 8))
		return -EBADMSG;
	r->key_hi = ld_le64(p + 16);
	r->key_lo = ld_le64(p + 24);
	r->slot_id = ld_le64(p + 32);
	r->accepted_ms = (int64_t)ld_le64(p + 40);
	r->expires_ms = (int64_t)ld_le64(p + 48);
	r->plugin = (const char *)p + REC_HDR;
	r->msg_id = r->plugin + r->plugin_len;
	r->content = r->msg_id + r->msg_id_len;
	return (long)n;
}

/* --- state --------------------------------------------------------------------------------- */

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

static void seg_path(const struct upq *q, uint64_t no, char *out, size_t len)
{
	snprintf(out, len, "%s/seg-%020" PRIu64 ".log", q->dir, no);
}

static struct seg *seg_find(struct upq *q, uint64_t no)
{
	for (size_t i = 0; i < q->nsegs; i++) {
		if (q->segs[i].no == no)
			return &q->segs[i];
	}
	return NULL;
}

static int seg_push(struct upq *q, uint64_t no, uint64_t size)
{
	if (q->nsegs == q->segcap) {
		size_t cap = q->segcap ? q->segcap * 2 : 16;
		struct seg *n = realloc(q->segs, cap * sizeof(*n));

		if (n == NULL)
			return -ENOMEM;
		q->segs = n;
		q->segcap = cap;
	}
	q->segs[q->nsegs++] = (struct seg){ .no = no, .size = size, .written = size };
	return 0;
}

/* Delete fully released segments from the oldest on (never the one being written). */
static void segs_trim_locked(struct upq *q)
{
	char path[PATH_MAX];

	/* Not while batches written to it still wait for their fdatasync. */
	while (q->nsegs > 1 && q->segs[0].outstanding == 0 &&
	       q->segs[0].written == q->segs[0].size) {
		seg_path(q, q->segs[0].no, path, sizeof(path));
		if (unlink(path) != 0 && errno != ENOENT)
			MIMO_WARN(COMP, "cannot delete %s: %s", path, strerror(errno));
		q->bytes -= q->segs[0].size;
		/* Records of it that a request took are gone with it. */
		for (size_t i = 0; i < q->ntaken;) {
			if (q->taken[i].seg == q->segs[0].no)
				q->taken[i] = q->taken[--q->ntaken];
			else
				i++;
		}
		memmove(&q->segs[0], &q->segs[1], (q->nsegs - 1) * sizeof(struct seg));
		q->nsegs--;
	}
}

/* --- dedup window ------------------------------------------------------------------------------
 */

static uint32_t dd_bucket(uint64_t hi, uint64_t lo)
{
	uint64_t h = (hi ^ (lo * 0x9e3779b97f4a7c15ull)) * 0xff51afd7ed558ccdull;

	return (uint32_t)(h >> 40) % DEDUP_BUCKETS;
}

static uint32_t dd_find(struct upq *q, uint64_t hi, uint64_t lo)
{
	for (uint32_t i = q->buckets[dd_bucket(hi, lo)]; i != UINT32_MAX; i = q->dd[i].next) {
		if (q->dd[i].hi == hi && q->dd[i].lo == lo)
			return i;
	}
	return UINT32_MAX;
}

static void dd_unlink(struct upq *q, uint32_t idx)
{
	uint32_t *pp = &q->buckets[dd_bucket(q->dd[idx].hi, q->dd[idx].lo)];

	while (*pp != UINT32_MAX && *pp != idx)
		pp = &q->dd[*pp].next;
	if (*pp == idx)
		*pp = q->dd[idx].next;
	q->dd[idx].used = false;
}

/* Remember a key; the oldest is forgotten once the window is full. */
static uint32_t dd_insert(struct upq *q, uint64_t hi, uint64_t lo, bool pending)
{
	uint32_t idx = q->dd_next, b = dd_bucket(hi, lo);

	q->dd_next = (q->dd_next + 1) % DEDUP_WINDOW;
	if (q->dd[idx].used) {
		/* A key whose batch is still being committed stays: skip its entry. */
		if (q->dd[idx].pending)
			return UINT32_MAX;
		dd_unlink(q, idx);
	}
	q->dd[idx] = (struct dedup_ent){
		.hi = hi, .lo = lo, .next = q->buckets[b], .used = true, .pending = pending
	};
	q->buckets[b] = idx;
	return idx;
}

/* --- taken records (request-reply answers) ------------------------------------------------------
 */

static void taken_add_locked(struct upq *q, uint64_t seg, uint64_t off)
{
	if (q->ntaken == q->takencap) {
		size_t cap = q->takencap ? q->takencap * 2 : 16;
		struct taken *n = realloc(q->taken, cap * sizeof(*n));

		if (n == NULL)
			return; /* the record then also reaches the callback: harmless */
		q->taken = n;
		q->takencap = cap;
	}
	q->taken[q->ntaken++] = (struct taken){ seg, off };
}

static bool taken_remove_locked(struct upq *q, uint64_t seg, uint64_t off)
{
	for (size_t i = 0; i < q->ntaken; i++) {
		if (q->taken[i].seg == seg && q->taken[i].off == off) {
			q->taken[i] = q->taken[--q->ntaken];
			return true;
		}
	}
	return false;
}

/* --- cursors --------------------------------------------------------------------------------- */

static void consumer_name(bool single, uint64_t slot, char *out, size_t len)
{
	if (single)
		snprintf(out, len, "all");
	else
		snprintf(out, len, "slot-%" PRIu64, slot);
}

static struct cursor_ent *cursor_find(struct upq *q, const char *name)
{
	for (size_t i = 0; i < q->ncursors; i++) {
		if (strcmp(q->cursors[i].name, name) == 0)
			return &q->cursors[i];
	}
	return NULL;
}

static struct cursor_ent *cursor_get(struct upq *q, const char *name)
{
	struct cursor_ent *c = cursor_find(q, name), *n;

	if (c != NULL)
		return c;
	n = realloc(q->cursors, (q->ncursors + 1) * sizeof(*n));
	if (n == NULL)
		return NULL;
	q->cursors = n;
	c = &q->cursors[q->ncursors++];
	memset(c, 0, sizeof(*c));
	snprintf(c->name, sizeof(c->name), "%s", name);
	return c;
}

static void load_cursors(struct upq *q)
{
	char path[PATH_MAX];
	json_t *root, *v;
	const char *k;

	snprintf(path, sizeof(path), "%s/%s", q->dir, CURSORS_FILE);
	root = json_load_file(path, 0, NULL);
	if (!json_is_object(root)) {
		json_decref(root);
		return;
	}
	json_object_foreach(root, k, v)
	{
		struct cursor_ent *c;

		if (!json_is_array(v) || json_array_size(v) != 2 || strlen(k) >= 32)
			continue;
		c = cursor_get(q, k);
		if (c == NULL)
			break;
		c->pos.seg = (uint64_t)json_integer_value(json_array_get(v, 0));
		c->pos.off = (uint64_t)json_integer_value(json_array_get(v, 1));
	}
	json_decref(root);
}

/* Write the cursors (rename over the old file). fsync only at close: a lost update means
 * records delivered again, never records lost. */
static void save_cursors_locked(struct upq *q, bool sync)
{
	json_t *root = json_object();
	char *text;
	int rc;

	for (struct upq_consumer *c = q->consumers; c != NULL; c = c->next) {
		struct cursor_ent *e = cursor_get(q, c->name);

		if (e != NULL)
			e->pos = c->cursor;
	}
	for (size_t i = 0; i < q->ncursors; i++)
		json_object_set_new(root, q->cursors[i].name,
				    json_pack("[I, I]", (json_int_t)q->cursors[i].pos.seg,
					      (json_int_t)q->cursors[i].pos.off));
	text = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	if (text == NULL)
		return;
	if (sync) {
		rc = mimo_file_write_durable(q->dir, CURSORS_FILE, text, strlen(text), 0600);
	} else {
		char tmp[PATH_MAX], path[PATH_MAX];
		int fd;

		snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", q->dir, CURSORS_FILE);
		snprintf(path, sizeof(path), "%s/%s", q->dir, CURSORS_FILE);
		rc = -EIO;
		fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd >= 0) {
			if (write(fd, text, strlen(text)) == (ssize_t)strlen(text) &&
			    rename(tmp, path) == 0)
				rc = 0;
			close(fd);
		}
	}
	if (rc != 0)
		MIMO_WARN(COMP, "cannot save cursors in %s: %s", q->dir, strerror(-rc));
	free(text);
	q->cursors_dirty = false;
	q->saved_ns = mimo_now_ns();
}

/* --- recovery ------------------------------------------------------------------------------- */

static int seg_filter(const struct dirent *d)
{
	return strncmp(d->d_name, "seg-", 4) == 0 && strlen(d->d_name) == 4 + 20 + 4 &&
	       strcmp(d->d_name + 24, ".log") == 0;
}

/* Read one segment: count records per consumer after their cursors, remember keys, and cut a
 * torn tail (records whose write never completed were never acknowledged). */
static int recover_segment(struct upq *q, uint64_t no)
{
	char path[PATH_MAX];
	struct mimo_buf b = { 0 };
	uint64_t off = 0, count = 0;
	struct stat st;
	struct seg *s;
	int fd, rc = 0;

	seg_path(q, no, path, sizeof(path));
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) != 0 || mimo_buf_reserve(&b, (size_t)st.st_size + 1) != 0) {
		close(fd);
		return -ENOMEM;
	}
	while (b.len < (size_t)st.st_size) {
		ssize_t n = pread(fd, b.data + b.len, (size_t)st.st_size - b.len, (off_t)b.len);

		if (n <= 0)
			break;
		b.len += (size_t)n;
	}
	rc = seg_push(q, no, 0);
	s = &q->segs[q->nsegs - 1];
	while (rc == 0 && off < b.len) {
		struct up_rec r;
		long n = upq_rec_decode(b.data + off, b.len - off, &r);
		char name[32];
		struct cursor_ent *c;

		if (n <= 0) {
			MIMO_WARN(COMP,
				  "%s: %s record at offset %" PRIu64 "; cutting the %" PRIu64
				  " bytes after it (never acknowledged)",
				  path, n == 0 ? "truncated" : "corrupt", off, b.len - off);
			if (ftruncate(fd, (off_t)off) != 0)
				rc = -errno;
			fdatasync(fd);
			break;
		}
		dd_insert(q, r.key_hi, r.key_lo, false);
		consumer_name(q->o.single_consumer, r.slot_id, name, sizeof(name));
		c = cursor_get(q, name);
		if (c == NULL) {
			rc = -ENOMEM;
			break;
		}
		c->slot_id = r.slot_id;
		if (no > c->pos.seg || (no == c->pos.seg && off >= c->pos.off)) {
			c->pending++;
			s->outstanding++;
			count++;
		}
		off += (uint64_t)n;
	}
	s->size = s->written = off;
	q->bytes += off;
	close(fd);
	mimo_buf_free(&b);
	if (count > 0)
		MIMO_INFO(COMP, "%s: %" PRIu64 " record(s) to deliver", path, count);
	return rc;
}

static int open_write_segment(struct upq *q, uint64_t no)
{
	char path[PATH_MAX];
	int fd;

	seg_path(q, no, path, sizeof(path));
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (q->wfd >= 0)
		close(q->wfd);
	q->wfd = fd;
	q->wseg_no = no;
	return 0;
}

static void *writer_main(void *arg);
static void *syncer_main(void *arg);

int upq_open(struct upq **out, const struct upq_opts *opts, const struct upq_hooks *hooks)
{
	struct dirent **list = NULL;
	char path[PATH_MAX];
	struct upq *q;
	int n, rc;

	q = calloc(1, sizeof(*q));
	if (q == NULL)
		return -ENOMEM;
	q->o = *opts;
	if (q->o.max_bytes == 0)
		q->o.max_bytes = 1ull << 30;
	if (q->o.segment_bytes == 0)
		q->o.segment_bytes = 64ull << 20;
	q->hooks = *hooks;
	q->wfd = q->dirfd = q->lockfd = -1;
	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->work, NULL);
	pthread_cond_init(&q->data, NULL);
	pthread_cond_init(&q->drained, NULL);
	q->dir = strdup(opts->dir);
	q->dd = calloc(DEDUP_WINDOW, sizeof(*q->dd));
	q->buckets = malloc(DEDUP_BUCKETS * sizeof(uint32_t));
	if (q->dir == NULL || q->dd == NULL || q->buckets == NULL) {
		rc = -ENOMEM;
		goto fail;
	}
	memset(q->buckets, 0xff, DEDUP_BUCKETS * sizeof(uint32_t));
	rc = mimo_mkdir_p(q->dir, 0700);
	if (rc != 0)
		goto fail;
	snprintf(path, sizeof(path), "%s/.lock", q->dir);
	q->lockfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (q->lockfd < 0 || flock(q->lockfd, LOCK_EX | LOCK_NB) != 0) {
		rc = errno == EWOULDBLOCK ? -EBUSY : -errno;
		MIMO_ERR(COMP, "%s is used by another agent (flock on .lock)", q->dir);
		goto fail;
	}
	q->dirfd = open(q->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (q->dirfd < 0) {
		rc = -errno;
		goto fail;
	}
	load_cursors(q);
	n = scandir(q->dir, &list, seg_filter, alphasort);
	for (int i = 0; i < n; i++) {
		if (rc == 0)
			rc = recover_segment(q, strtoull(list[i]->d_name + 4, NULL, 10));
		free(list[i]);
	}
	free(list);
	if (rc != 0)
		goto fail;
	/* Consumers start at their saved cursor, or at the oldest segment. */
	for (size_t i = 0; i < q->ncursors; i++) {
		if (q->nsegs > 0 && q->cursors[i].pos.seg < q->segs[0].no)
			q->cursors[i].pos = (struct upq_pos){ q->segs[0].no, 0 };
	}
	/* Always append to a fresh segment: a recovered one may end in a cut. */
	rc = open_write_segment(q, q->nsegs > 0 ? q->segs[q->nsegs - 1].no + 1 : 1);
	if (rc == 0)
		rc = seg_push(q, q->wseg_no, 0);
	if (rc == 0 && fsync(q->dirfd) != 0)
		rc = -errno;
	if (rc != 0)
		goto fail;
	segs_trim_locked(q);
	rc = pthread_create(&q->syncer, NULL, syncer_main, q);
	if (rc == 0) {
		rc = pthread_create(&q->writer, NULL, writer_main, q);
		if (rc != 0) {
			pthread_mutex_lock(&q->lock);
			q->writer_done = true;
			pthread_cond_broadcast(&q->drained);
			pthread_mutex_unlock(&q->lock);
			pthread_join(q->syncer, NULL);
		}
	}
	if (rc != 0) {
		rc = -rc;
		goto fail;
	}
	*out = q;
	return 0;
fail:
	if (q->wfd >= 0)
		close(q->wfd);
	if (q->dirfd >= 0)
		close(q->dirfd);
	if (q->lockfd >= 0)
		close(q->lockfd);
	free(q->segs);
	free(q->cursors);
	free(q->dd);
	free(q->buckets);
	free(q->dir);
	free(q);
	return rc;
}

uint64_t *upq_pending_slots(struct upq *q, size_t *n)
{
	uint64_t *v;

	pthread_mutex_lock(&q->lock);
	v = calloc(q->ncursors + 1, sizeof(*v));
	*n = 0;
	for (size_t i = 0; v != NULL && i < q->ncursors; i++) {
		if (q->cursors[i].pending > 0)
			v[(*n)++] = q->cursors[i].slot_id;
	}
	pthread_mutex_unlock(&q->lock);
	return v;
}

/* --- appending and committing --------------------------------------------------------------- */

int upq_append(struct upq *q, const struct up_rec *r, upq_done_fn done, void *arg)
{
	size_t n = upq_rec_size(r);
	struct pend *p;
	uint32_t idx;
	int rc = 0;

	if (n > REC_MAX)
		return -EMSGSIZE;
	pthread_mutex_lock(&q->lock);
	if (q->stop || q->broken) {
		rc = q->stop ? -ESHUTDOWN : -EIO;
		goto out;
	}
	idx = dd_find(q, r->key_hi, r->key_lo);
	if (idx != UINT32_MAX && !q->dd[idx].pending) {
		q->st.duplicates++;
		rc = 1;
		goto out;
	}
	if (idx == UINT32_MAX && q->bytes + q->batch_bytes + n > q->o.max_bytes) {
		rc = -ENOSPC;
		goto out;
	}
	if (q->cur.n == q->cur.cap) {
		size_t cap = q->cur.cap ? q->cur.cap * 2 : 256;
		struct pend *v = realloc(q->cur.v, cap * sizeof(*v));

		if (v == NULL) {
			rc = -ENOMEM;
			goto out;
		}
		q->cur.v = v;
		q->cur.cap = cap;
	}
	p = &q->cur.v[q->cur.n];
	p->done = done;
	p->arg = arg;
	if (idx != UINT32_MAX) {
		/* The same message is in a batch not yet durable: answer with that batch. */
		p->off = SIZE_MAX;
		p->dedup = UINT32_MAX;
		q->st.duplicates++;
	} else {
		if (mimo_buf_reserve(&q->cur.buf, n) != 0) {
			rc = -ENOMEM;
			goto out;
		}
		p->off = q->cur.buf.len;
		upq_rec_encode(q->cur.buf.data + q->cur.buf.len, r);
		q->cur.buf.len += n;
		q->batch_bytes += n;
		p->dedup = dd_insert(q, r->key_hi, r->key_lo, true);
		q->st.appended++;
	}
	q->cur.n++;
	if (q->cur.n == 1)
		pthread_cond_signal(&q->work);
out:
	pthread_mutex_unlock(&q->lock);
	return rc;
}

/*
 * The writer: takes what accumulated, appends it to the segment, starts its write-back
 * (sync_file_range) and queues it for the syncer. While the syncer waits for one fdatasync the
 * writer already streams the next batch to the disk, so the disk never idles between them.
 */
static void *writer_main(void *arg)
{
	struct upq *q = arg;
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	for (;;) {
		struct batch *b;
		struct seg *s;
		int rc = 0;

		pthread_mutex_lock(&q->lock);
		for (;;) {
			struct timespec ts;

			/* Busy or idle, cursors reach the disk every 200 ms while they move. */
			if (q->cursors_dirty && mimo_now_ns() - q->saved_ns > SAVE_EVERY_NS)
				save_cursors_locked(q, false);
			if (q->cur.n != 0 || q->stop)
				break;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 200 * 1000000;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			pthread_cond_timedwait(&q->work, &q->lock, &ts);
		}
		if (q->cur.n == 0 && q->stop) {
			q->writer_done = true;
			pthread_cond_broadcast(&q->drained);
			pthread_mutex_unlock(&q->lock);
			break;
		}
		b = malloc(sizeof(*b));
		if (b == NULL) {
			pthread_mutex_unlock(&q->lock);
			usleep(1000);
			continue;
		}
		/* Take the batch: appends go on into an empty one while this one is written. */
		*b = q->cur;
		memset(&q->cur, 0, sizeof(q->cur));
		q->batch_bytes = 0;
		b->next = NULL;
		b->close_fd = -1;
		b->new_seg = false;
		s = seg_find(q, q->wseg_no);
		if (q->broken) {
			rc = q->broken;
		} else if (s->written > 0 && s->written + b->buf.len > q->o.segment_bytes) {
			int old = q->wfd;

			q->wfd = -1;
			rc = open_write_segment(q, q->wseg_no + 1);
			if (rc == 0)
				rc = seg_push(q, q->wseg_no, 0);
			if (rc == 0) {
				b->close_fd = old;
				b->new_seg = true;
			} else {
				q->wfd = old;
				q->broken = rc;
			}
			s = seg_find(q, q->wseg_no);
		}
		b->fd = q->wfd;
		b->seg_no = q->wseg_no;
		b->base = s->written;
		if (rc == 0)
			s->written += b->buf.len;
		pthread_mutex_unlock(&q->lock);

		if (rc == 0 && b->buf.len > 0) {
			rc = mimo_write_all(b->fd, b->buf.data, b->buf.len);
			if (rc == 0 && !q->o.no_sync)
				sync_file_range(b->fd, (off64_t)b->base, (off64_t)b->buf.len,
						SYNC_FILE_RANGE_WRITE);
		}
		b->rc = rc;
		pthread_mutex_lock(&q->lock);
		if (rc != 0 && q->broken == 0) {
			q->broken = rc;
			MIMO_ERR(COMP, "cannot write to %s: %s; no more messages are accepted",
				 q->dir, strerror(-rc));
		}
		if (q->syncq_tail != NULL)
			q->syncq_tail->next = b;
		else
			q->syncq = b;
		q->syncq_tail = b;
		pthread_cond_broadcast(&q->drained);
		pthread_mutex_unlock(&q->lock);
	}
	return NULL;
}

/* After a batch is durable (or failed): hooks, then visibility to consumers. */
static void finish_batch(struct upq *q, struct batch *b)
{
	bool *took = calloc(b->n + 1, sizeof(bool));
	struct seg *s;
	int rc = b->rc;

	/* Request-reply waiters first: a record they take is never delivered. */
	for (size_t i = 0; rc == 0 && i < b->n; i++) {
		struct up_rec r;

		if (b->v[i].off == SIZE_MAX)
			continue;
		if (upq_rec_decode(b->buf.data + b->v[i].off, b->buf.len - b->v[i].off, &r) > 0 &&
		    q->hooks.committed != NULL && took != NULL)
			took[i] = q->hooks.committed(q->hooks.arg, &r);
	}
	pthread_mutex_lock(&q->lock);
	/* Segments with unsynced batches are never trimmed: s exists when rc is 0. */
	s = seg_find(q, b->seg_no);
	if (s == NULL && rc == 0)
		rc = b->rc = -EIO;
	for (size_t i = 0; i < b->n; i++) {
		struct pend *p = &b->v[i];

		if (p->off == SIZE_MAX)
			continue;
		if (p->dedup != UINT32_MAX && q->dd[p->dedup].used) {
			if (rc == 0)
				q->dd[p->dedup].pending = false;
			else
				dd_unlink(q, p->dedup);
		}
		if (rc == 0) {
			if (took != NULL && took[i])
				taken_add_locked(q, b->seg_no, b->base + p->off);
			else
				s->outstanding++;
		}
	}
	if (rc == 0 && b->buf.len > 0) {
		s->size = b->base + b->buf.len;
		q->bytes += b->buf.len;
		q->st.commits++;
		q->st.bytes += b->buf.len;
		segs_trim_locked(q);
		pthread_cond_broadcast(&q->data);
	}
	pthread_mutex_unlock(&q->lock);
	free(took);
}

/* Run a finished batch's completions and free it (between batch_begin and batch_end). */
static void complete_batch(struct batch *b)
{
	for (size_t i = 0; i < b->n; i++)
		b->v[i].done(b->v[i].arg, b->rc);
	mimo_buf_free(&b->buf);
	free(b->v);
	free(b);
}

/*
 * The syncer: one fdatasync covers every batch written to a segment since the last one (group
 * commit), then their records count and their completions run - in the order written.
 */
static void *syncer_main(void *arg)
{
	struct upq *q = arg;
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	for (;;) {
		struct batch *list, *b;

		pthread_mutex_lock(&q->lock);
		while (q->syncq == NULL && !q->writer_done)
			pthread_cond_wait(&q->drained, &q->lock);
		if (q->syncq == NULL) {
			pthread_mutex_unlock(&q->lock);
			break;
		}
		list = q->syncq;
		q->syncq = q->syncq_tail = NULL;
		pthread_mutex_unlock(&q->lock);

		while (list != NULL) {
			struct batch *end = list;
			int rc = 0;
			bool new_seg = list->new_seg;

			/* The run of batches in one segment: one fdatasync for all. */
			if (list->close_fd >= 0)
				close(list->close_fd);
			while (end->next != NULL && end->next->fd == list->fd &&
			       end->next->close_fd < 0)
				end = end->next;
			for (b = list; rc == 0; b = b->next) {
				rc = b->rc;
				if (b == end)
					break;
			}
			if (rc == 0 && !q->o.no_sync) {
				if (fdatasync(list->fd) != 0)
					rc = -errno;
				/* Counted under the lock: upq_get_stats reads it there. */
				pthread_mutex_lock(&q->lock);
				q->st.fsyncs++;
				pthread_mutex_unlock(&q->lock);
				/* A new segment's name must be durable before its records count. */
				if (rc == 0 && new_seg && fsync(q->dirfd) != 0)
					rc = -errno;
			}
			if (rc != 0) {
				pthread_mutex_lock(&q->lock);
				if (q->broken == 0)
					MIMO_ERR(COMP,
						 "cannot make records durable in %s: %s; no more "
						 "messages are accepted",
						 q->dir, strerror(-rc));
				q->broken = rc;
				pthread_mutex_unlock(&q->lock);
			}
			for (b = list;; b = b->next) {
				if (rc != 0)
					b->rc = rc;
				finish_batch(q, b);
				if (b == end)
					break;
			}
			/* The completions of the whole group under one hold of the caller's lock.
			 */
			b = list;
			list = end->next;
			if (q->hooks.batch_begin != NULL)
				q->hooks.batch_begin(q->hooks.arg);
			for (;;) {
				struct batch *next = b->next;
				bool last = b == end;

				complete_batch(b);
				if (last)
					break;
				b = next;
			}
			if (q->hooks.batch_end != NULL)
				q->hooks.batch_end(q->hooks.arg);
		}
	}
	return NULL;
}

void upq_close(struct upq *q)
{
	if (q == NULL)
		return;
	pthread_mutex_lock(&q->lock);
	q->stop = true;
	pthread_cond_broadcast(&q->work);
	pthread_cond_broadcast(&q->data);
	pthread_mutex_unlock(&q->lock);
	pthread_join(q->writer, NULL);
	pthread_join(q->syncer, NULL);
	pthread_mutex_lock(&q->lock);
	save_cursors_locked(q, true);
	pthread_mutex_unlock(&q->lock);
	if (q->wfd >= 0)
		close(q->wfd);
	close(q->dirfd);
	close(q->lockfd);
	free(q->segs);
	free(q->cursors);
	free(q->taken);
	free(q->dd);
	free(q->buckets);
	free(q->cur.v);
	mimo_buf_free(&q->cur.buf);
	pthread_cond_destroy(&q->work);
	pthread_cond_destroy(&q->data);
	pthread_cond_destroy(&q->drained);
	pthread_mutex_destroy(&q->lock);
	free(q->dir);
	free(q);
}

void upq_get_stats(struct upq *q, struct upq_stats *st)
{
	pthread_mutex_lock(&q->lock);
	*st = q->st;
	st->segments = q->nsegs;
	pthread_mutex_unlock(&q->lock);
}

/* --- consumers ----------------------------------------------------------------------------------
 */

struct upq_consumer *upq_consumer_open(struct upq *q, uint64_t slot_id)
{
	struct upq_consumer *c = calloc(1, sizeof(*c));
	struct cursor_ent *e;

	if (c == NULL)
		return NULL;
	c->q = q;
	c->slot_id = slot_id;
	c->fd = -1;
	consumer_name(q->o.single_consumer, slot_id, c->name, sizeof(c->name));
	pthread_mutex_lock(&q->lock);
	e = cursor_find(q, c->name);
	if (e != NULL)
		c->cursor = e->pos;
	else if (q->nsegs > 0)
		/* A consumer new to this queue owns nothing written before it existed. */
		c->cursor = (struct upq_pos){ q->segs[0].no, 0 };
	if (q->nsegs > 0 && c->cursor.seg < q->segs[0].no)
		c->cursor = (struct upq_pos){ q->segs[0].no, 0 };
	c->read = c->cursor;
	c->next = q->consumers;
	q->consumers = c;
	pthread_mutex_unlock(&q->lock);
	return c;
}

void upq_consumer_stop(struct upq_consumer *c)
{
	pthread_mutex_lock(&c->q->lock);
	c->stop = true;
	pthread_cond_broadcast(&c->q->data);
	pthread_mutex_unlock(&c->q->lock);
}

void upq_consumer_close(struct upq_consumer *c)
{
	struct upq *q;
	struct upq_consumer **pp;
	struct cursor_ent *e;

	if (c == NULL)
		return;
	q = c->q;
	pthread_mutex_lock(&q->lock);
	for (pp = &q->consumers; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	e = cursor_get(q, c->name);
	if (e != NULL)
		e->pos = c->cursor;
	q->cursors_dirty = true;
	pthread_mutex_unlock(&q->lock);
	if (c->fd >= 0)
		close(c->fd);
	mimo_buf_free(&c->rb);
	free(c);
}

/* Bytes [off, off + len) of segment no, through the consumer's read cache. */
static int read_at(struct upq_consumer *c, uint64_t no, uint64_t off, size_t len, uint64_t limit,
		   const uint8_t **out)
{
	char path[PATH_MAX];
	size_t want;

	if (c->rb_seg == no && off >= c->rb_off && off + len <= c->rb_off + c->rb.len) {
		*out = (const uint8_t *)c->rb.data + (off - c->rb_off);
		return 0;
	}
	if (c->fd < 0 || c->fd_seg != no) {
		if (c->fd >= 0)
			close(c->fd);
		seg_path(c->q, no, path, sizeof(path));
		c->fd = open(path, O_RDONLY | O_CLOEXEC);
		if (c->fd < 0)
			return -errno;
		c->fd_seg = no;
	}
	want = (size_t)MIMO_MAX((uint64_t)len, (uint64_t)READ_CHUNK);
	if (off + want > limit)
		want = (size_t)(limit - off);
	if (want < len)
		return -EIO;
	mimo_buf_reset(&c->rb);
	if (mimo_buf_reserve(&c->rb, want) != 0)
		return -ENOMEM;
	while (c->rb.len < want) {
		ssize_t n = pread(c->fd, c->rb.data + c->rb.len, want - c->rb.len,
				  (off_t)(off + c->rb.len));

		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		c->rb.len += (size_t)n;
	}
	c->rb_seg = no;
	c->rb_off = off;
	*out = (const uint8_t *)c->rb.data;
	return 0;
}

int upq_next(struct upq_consumer *c, struct up_rec *r, struct upq_pos *next, struct mimo_buf *buf,
	     int timeout_ms)
{
	struct upq *q = c->q;
	int64_t deadline = mimo_now_ns() + (int64_t)timeout_ms * 1000000;

	for (;;) {
		uint64_t limit, no, off;
		const uint8_t *hdr, *data;
		bool last, mine;
		struct seg *s;
		uint32_t n;
		long rn;
		int rc;

		pthread_mutex_lock(&q->lock);
		if (c->stop || q->stop) {
			pthread_mutex_unlock(&q->lock);
			return -ESHUTDOWN;
		}
		if (q->nsegs > 0 && c->read.seg < q->segs[0].no)
			c->read = (struct upq_pos){ q->segs[0].no, 0 };
		s = seg_find(q, c->read.seg);
		last = s == NULL || s == &q->segs[q->nsegs - 1];
		if (s == NULL || c->read.off >= s->size) {
			if (!last) {
				/* Done with this segment: on to the next one. */
				size_t i = (size_t)(s - q->segs);

				c->read = (struct upq_pos){ q->segs[i + 1].no, 0 };
				pthread_mutex_unlock(&q->lock);
				continue;
			}
			if (s == NULL && q->nsegs > 0 && c->read.seg > q->segs[q->nsegs - 1].no) {
				c->read = (struct upq_pos){ q->segs[q->nsegs - 1].no, 0 };
				pthread_mutex_unlock(&q->lock);
				continue;
			}
			if (timeout_ms <= 0 || mimo_now_ns() >= deadline) {
				pthread_mutex_unlock(&q->lock);
				return -EAGAIN;
			}
			{
				struct timespec ts;
				int64_t left = deadline - mimo_now_ns();

				clock_gettime(CLOCK_REALTIME, &ts);
				left = left > 100000000 ? 100000000 : left;
				ts.tv_nsec += (long)left;
				while (ts.tv_nsec >= 1000000000) {
					ts.tv_sec++;
					ts.tv_nsec -= 1000000000;
				}
				pthread_cond_timedwait(&q->data, &q->lock, &ts);
			}
			pthread_mutex_unlock(&q->lock);
			continue;
		}
		no = c->read.seg;
		off = c->read.off;
		limit = s->size;
		pthread_mutex_unlock(&q->lock);

		/* Committed bytes never change: read them without the lock. */
		rc = read_at(c, no, off, REC_HDR, limit, &hdr);
		if (rc != 0)
			goto broken;
		n = ld_le32(hdr + 4);
		if (n < REC_HDR || n > REC_MAX || off + n > limit)
			goto broken;
		rc = read_at(c, no, off, n, limit, &data);
		if (rc != 0)
			goto broken;
		mimo_buf_reset(buf);
		if (mimo_buf_append(buf, data, n) != 0)
			return -ENOMEM;
		rn = upq_rec_decode(buf->data, buf->len, r);
		if (rn != (long)n)
			goto broken;
		pthread_mutex_lock(&q->lock);
		c->read.off = off + n;
		mine = c->slot_id == 0 || r->slot_id == c->slot_id;
		if (mine && taken_remove_locked(q, no, off))
			mine = false;
		pthread_mutex_unlock(&q->lock);
		if (!mine)
			continue;
		*next = c->read;
		return 0;
	broken:
		MIMO_ERR(COMP,
			 "%s: segment %" PRIu64 " unreadable at %" PRIu64
			 "; skipping the rest of it",
			 q->dir, no, off);
		pthread_mutex_lock(&q->lock);
		c->read = (struct upq_pos){ no, limit };
		pthread_mutex_unlock(&q->lock);
	}
}

void upq_release(struct upq_consumer *c, struct upq_pos next)
{
	struct upq *q = c->q;

	pthread_mutex_lock(&q->lock);
	/* Count down every record of ours between the cursor and next: the segment that held
	 * the record just handled is the one before next.off (or next's own). */
	{
		struct seg *s = seg_find(q, next.seg);

		if (s != NULL && s->outstanding > 0)
			s->outstanding--;
	}
	c->cursor = next;
	q->cursors_dirty = true;
	segs_trim_locked(q);
	pthread_mutex_unlock(&q->lock);
}

void upq_rewind(struct upq_consumer *c, struct upq_pos pos)
{
	pthread_mutex_lock(&c->q->lock);
	c->read = pos;
	pthread_mutex_unlock(&c->q->lock);
}
