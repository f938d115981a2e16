/*
 * Recovery at open: the cursors, then every segment read back in order - keys into the dedup
 * window, records after each consumer's cursor counted, a torn tail (a write that never
 * completed, so was never acknowledged) cut off.
 */
#include "upq_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

#define COMP UPQ_COMP

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

	upq_seg_path(q, no, path, sizeof(path));
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
	rc = upq_seg_push(q, no, 0);
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
		upq_dd_insert(q, r.key_hi, r.key_lo, false);
		upq_consumer_name(q->o.single_consumer, r.slot_id, name, sizeof(name));
		c = upq_cursor_get(q, name);
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

int upq_recover(struct upq *q)
{
	struct dirent **list = NULL;
	int n, rc = 0;

	upq_cursors_load(q);
	n = scandir(q->dir, &list, seg_filter, alphasort);
	for (int i = 0; i < n; i++) {
		if (rc == 0)
			rc = recover_segment(q, strtoull(list[i]->d_name + 4, NULL, 10));
		free(list[i]);
	}
	free(list);
	if (rc != 0)
		return rc;
	/* Consumers start at their saved cursor, or at the oldest segment. */
	for (size_t i = 0; i < q->ncursors; i++) {
		if (q->nsegs > 0 && q->cursors[i].pos.seg < q->segs[0].no)
			q->cursors[i].pos = (struct upq_pos){ q->segs[0].no, 0 };
	}
	return 0;
}
