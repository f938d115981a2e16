/*
 * The up-queue's segment files state_dir/up/seg-<20 digits>.log: their names, the list of
 * those that exist, and deleting the oldest once every record in them is released.
 */
#include "upq_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

#define COMP UPQ_COMP

void upq_seg_path(const struct upq *q, uint64_t no, char *out, size_t len)
{
	snprintf(out, len, "%s/seg-%020" PRIu64 ".log", q->dir, no);
}

struct seg *upq_seg_find(struct upq *q, uint64_t no)
{
	for (size_t i = 0; i < q->nsegs; i++) {
		if (q->segs[i].no == no)
			return &q->segs[i];
	}
	return NULL;
}

int upq_seg_push(struct upq *q, uint64_t no, uint64_t size)
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

void upq_segs_trim_locked(struct upq *q)
{
	char path[PATH_MAX];

	/* Not while batches written to it still wait for their fdatasync. */
	while (q->nsegs > 1 && q->segs[0].outstanding == 0 &&
	       q->segs[0].written == q->segs[0].size) {
		upq_seg_path(q, q->segs[0].no, path, sizeof(path));
		if (unlink(path) != 0 && errno != ENOENT)
			MIMO_WARN(COMP, "cannot delete %s: %s", path, strerror(errno));
		q->bytes -= q->segs[0].size;
		/* Records of it that a request took are gone with it. */
		upq_taken_forget_seg_locked(q, q->segs[0].no);
		memmove(&q->segs[0], &q->segs[1], (q->nsegs - 1) * sizeof(struct seg));
		q->nsegs--;
	}
}

int upq_seg_open_write(struct upq *q, uint64_t no)
{
	char path[PATH_MAX];
	int fd;

	upq_seg_path(q, no, path, sizeof(path));
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (q->wfd >= 0)
		close(q->wfd);
	q->wfd = fd;
	q->wseg_no = no;
	return 0;
}
