#include "spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "file.h"
#include "log.h"

#define COMP	      "notify"
#define SPOOL_MAGIC   "mimo-spool 1\n"
#define SEG_PREFIX    "seg-"
#define SEG_SUFFIX    ".log"
#define SEG_NAME_LEN  (4 + 20 + 4)
#define REC_MAX_BYTES (64u << 20)

static bool is_segment(const char *name)
{
	size_t n = strlen(name);

	return n == SEG_NAME_LEN && strncmp(name, SEG_PREFIX, 4) == 0 &&
	       strcmp(name + n - 4, SEG_SUFFIX) == 0;
}

static int seg_filter(const struct dirent *d)
{
	return is_segment(d->d_name);
}

/* The sequence number of any name derived from a segment (seg-N.log, .log.pos, .log.bad),
 * or -1. Numbers are never reused while such a name exists: a leftover .pos must not apply
 * to a new segment of the same name. */
static long long seq_of(const char *name)
{
	char *end;
	long long n;

	if (strncmp(name, SEG_PREFIX, 4) != 0 || strlen(name) < SEG_NAME_LEN)
		return -1;
	n = strtoll(name + 4, &end, 10);
	if (end != name + 4 + 20 || strncmp(end, SEG_SUFFIX, 4) != 0)
		return -1;
	return n;
}

bool notify_spool_is_open(const struct notify_spool *sp)
{
	return sp->lock_fd >= 0;
}

bool notify_spool_empty(const struct notify_spool *sp)
{
	return sp->segments == 0;
}

static void path_of(const struct notify_spool *sp, const char *name, const char *suffix, char *out)
{
	snprintf(out, PATH_MAX, "%s/%s%s", sp->dir, name, suffix);
}

int notify_spool_open(struct notify_spool *sp, const char *dir, uint64_t max_bytes)
{
	char path[PATH_MAX];
	struct dirent **list = NULL;
	DIR *d;
	struct dirent *e;
	int n, rc;

	memset(sp, 0, sizeof(*sp));
	sp->lock_fd = -1;
	rc = mimo_mkdir_p(dir, 0700);
	if (rc != 0)
		return rc;
	if (snprintf(path, sizeof(path), "%s/.lock", dir) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	sp->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (sp->lock_fd < 0)
		return -errno;
	if (flock(sp->lock_fd, LOCK_EX | LOCK_NB) != 0) {
		rc = -errno;
		close(sp->lock_fd);
		sp->lock_fd = -1;
		return rc;
	}
	sp->dir = strdup(dir);
	sp->max_bytes = max_bytes;
	if (sp->dir == NULL) {
		notify_spool_close(sp);
		return -ENOMEM;
	}

	/* Temporary files are segments a crash interrupted before they counted as spooled. */
	d = opendir(dir);
	if (d != NULL) {
		while ((e = readdir(d)) != NULL) {
			long long seq = seq_of(e->d_name);

			if (strncmp(e->d_name, ".tmp-", 5) == 0) {
				path_of(sp, e->d_name, "", path);
				unlink(path);
			} else if (seq >= 0 && (uint64_t)seq >= sp->next_seq) {
				sp->next_seq = (uint64_t)seq + 1;
			}
		}
		closedir(d);
	}
	n = scandir(dir, &list, seg_filter, alphasort);
	for (int i = 0; i < n; i++) {
		struct stat st;

		path_of(sp, list[i]->d_name, "", path);
		if (stat(path, &st) == 0) {
			sp->bytes += (uint64_t)st.st_size;
			sp->segments++;
		}
		free(list[i]);
	}
	free(list);
	if (sp->segments > 0)
		MIMO_INFO(COMP, "spool %s: %" PRIu64 " segment(s) to replay", dir, sp->segments);
	return 0;
}

int notify_spool_append(struct notify_spool *sp, const struct spool_rec *recs, size_t n)
{
	struct mimo_buf b = { 0 };
	char name[SEG_NAME_LEN + 1];
	int rc = mimo_buf_append_str(&b, SPOOL_MAGIC);

	for (size_t i = 0; i < n && rc == 0; i++) {
		rc = mimo_buf_printf(&b, "%s %zu\n", recs[i].id, recs[i].len);
		if (rc == 0)
			rc = mimo_buf_append(&b, recs[i].body, recs[i].len);
		if (rc == 0)
			rc = mimo_buf_append(&b, "\n", 1);
	}
	if (rc != 0) {
		mimo_buf_free(&b);
		return rc;
	}
	if (sp->bytes + b.len > sp->max_bytes) {
		mimo_buf_free(&b);
		return -ENOSPC;
	}
	snprintf(name, sizeof(name), SEG_PREFIX "%020" PRIu64 SEG_SUFFIX, sp->next_seq);
	rc = mimo_file_write_durable(sp->dir, name, b.data, b.len, 0600);
	if (rc == 0) {
		sp->next_seq++;
		sp->segments++;
		sp->bytes += b.len;
	}
	mimo_buf_free(&b);
	return rc;
}

/* Parse the record at off. Returns the offset after it, or 0 when malformed. */
static size_t parse_record(const char *data, size_t len, size_t off, struct spool_rec *rec)
{
	const char *p = data + off, *end = data + len, *sp, *nl;
	unsigned long long body_len;
	char *e;

	nl = memchr(p, '\n', (size_t)(end - p));
	sp = memchr(p, ' ', (size_t)(end - p));
	if (nl == NULL || sp == NULL || sp > nl || (size_t)(sp - p) >= WEBHOOK_ID_LEN || sp == p)
		return 0;
	errno = 0;
	body_len = strtoull(sp + 1, &e, 10);
	if (errno != 0 || e != nl || body_len > REC_MAX_BYTES ||
	    (size_t)(end - (nl + 1)) < body_len + 1 || nl[1 + body_len] != '\n')
		return 0;
	memcpy(rec->id, p, (size_t)(sp - p));
	rec->id[sp - p] = '\0';
	rec->body = nl + 1;
	rec->len = (size_t)body_len;
	return (size_t)(nl + 1 + body_len + 1 - data);
}

static void drop_current(struct notify_spool *sp, bool delete_file)
{
	char path[PATH_MAX];

	if (sp->cur_name == NULL)
		return;
	if (delete_file) {
		/* The position first: a .pos left behind by a crash between the two must not
		 * outlive its segment. */
		path_of(sp, sp->cur_name, ".pos", path);
		unlink(path);
		path_of(sp, sp->cur_name, "", path);
		unlink(path);
		sp->bytes = sp->bytes > sp->cur_len ? sp->bytes - sp->cur_len : 0;
		if (sp->segments > 0)
			sp->segments--;
	}
	free(sp->cur_name);
	free(sp->cur_data);
	sp->cur_name = NULL;
	sp->cur_data = NULL;
	sp->cur_len = sp->cur_off = sp->cur_next = 0;
}

/* Set aside a segment that cannot be read or parsed (kept as .bad for inspection).
 * Returns 0, or -errno when it could not be moved. */
static int quarantine_current(struct notify_spool *sp, const char *why)
{
	char from[PATH_MAX], to[PATH_MAX];
	int rc = 0;

	path_of(sp, sp->cur_name, ".pos", from);
	unlink(from);
	path_of(sp, sp->cur_name, "", from);
	path_of(sp, sp->cur_name, ".bad", to);
	MIMO_ERR(COMP, "spool segment %s: %s; moved to %s", from, why, to);
	if (rename(from, to) != 0) {
		rc = -errno;
		MIMO_ERR(COMP, "spool segment %s cannot be moved aside: %s", from, strerror(errno));
	}
	sp->bytes = sp->bytes > sp->cur_len ? sp->bytes - sp->cur_len : 0;
	if (sp->segments > 0 && rc == 0)
		sp->segments--;
	drop_current(sp, false);
	return rc;
}

/* Resume where an earlier process stopped, if it left a position at a record boundary. */
static void apply_saved_position(struct notify_spool *sp)
{
	char path[PATH_MAX], buf[64];
	unsigned long long pos, size;
	struct spool_rec rec;
	size_t off = strlen(SPOOL_MAGIC);
	ssize_t n;
	int fd;

	path_of(sp, sp->cur_name, ".pos", path);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return;
	buf[n] = '\0';
	/* "<offset> <segment size>": a position for some other file of this name is ignored. */
	if (sscanf(buf, "%llu %llu", &pos, &size) != 2 || size != sp->cur_len)
		return;
	while (off < pos && off < sp->cur_len) {
		size_t next = parse_record(sp->cur_data, sp->cur_len, off, &rec);

		if (next == 0)
			return;
		off = next;
	}
	if (off == pos)
		sp->cur_off = off;
}

static int load_oldest(struct notify_spool *sp)
{
	struct dirent **list = NULL;
	char path[PATH_MAX];
	int n, rc;

	for (;;) {
		n = scandir(sp->dir, &list, seg_filter, alphasort);
		if (n <= 0) {
			free(list);
			sp->segments = 0;
			sp->bytes = 0;
			return -ENOENT;
		}
		sp->cur_name = strdup(list[0]->d_name);
		for (int i = 0; i < n; i++)
			free(list[i]);
		free(list);
		if (sp->cur_name == NULL)
			return -ENOMEM;
		path_of(sp, sp->cur_name, "", path);
		rc = mimo_file_read_all(path, SIZE_MAX / 2, &sp->cur_data, &sp->cur_len);
		if (rc == -ENOMEM) {
			free(sp->cur_name);
			sp->cur_name = NULL;
			return rc;
		}
		if (rc != 0) {
			/* Unreadable (EACCES, EIO, a dangling link): set it aside, or the spool
			 * would stall behind it for ever. */
			if (quarantine_current(sp, strerror(-rc)) != 0)
				return -EIO;
			continue;
		}
		sp->cur_off = strlen(SPOOL_MAGIC);
		if (sp->cur_len < sp->cur_off ||
		    memcmp(sp->cur_data, SPOOL_MAGIC, sp->cur_off) != 0) {
			sp->cur_off = 0;
			if (quarantine_current(sp, "not a spool segment") != 0)
				return -EIO;
			continue;
		}
		apply_saved_position(sp);
		return 0;
	}
}

int notify_spool_peek(struct notify_spool *sp, struct spool_rec *rec)
{
	for (;;) {
		if (sp->cur_name == NULL) {
			int rc = load_oldest(sp);

			if (rc != 0)
				return rc;
		}
		if (sp->cur_off >= sp->cur_len) {
			drop_current(sp, true);
			continue;
		}
		sp->cur_next = parse_record(sp->cur_data, sp->cur_len, sp->cur_off, rec);
		if (sp->cur_next != 0)
			return 0;
		if (quarantine_current(sp, "damaged record") != 0)
			return -EIO;
	}
}

void notify_spool_consume(struct notify_spool *sp)
{
	if (sp->cur_name == NULL || sp->cur_next == 0)
		return;
	sp->cur_off = sp->cur_next;
	sp->cur_next = 0;
	if (sp->cur_off >= sp->cur_len)
		drop_current(sp, true);
}

void notify_spool_close(struct notify_spool *sp)
{
	if (sp->cur_name != NULL && sp->cur_off > strlen(SPOOL_MAGIC)) {
		char path[PATH_MAX], buf[64];
		int fd;

		/* Best effort, not fsync'd: losing it only means some records are sent again
		 * (with the same webhook-id). */
		path_of(sp, sp->cur_name, ".pos", path);
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd >= 0) {
			int n = snprintf(buf, sizeof(buf), "%zu %zu\n", sp->cur_off, sp->cur_len);

			if (write(fd, buf, (size_t)n) != n)
				unlink(path);
			close(fd);
		}
	}
	drop_current(sp, false);
	if (sp->lock_fd >= 0)
		close(sp->lock_fd);
	sp->lock_fd = -1;
	free(sp->dir);
	sp->dir = NULL;
}

void notify_spool_abandon(struct notify_spool *sp)
{
	/* close() only: flock(LOCK_UN) would release the lock the parent still holds through
	 * the same open file description. */
	drop_current(sp, false);
	if (sp->lock_fd >= 0)
		close(sp->lock_fd);
	sp->lock_fd = -1;
	free(sp->dir);
	sp->dir = NULL;
}
