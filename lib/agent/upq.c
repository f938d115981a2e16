/*
 * The durable up-queue (see upq.h for the model and docs/protocol.md for the record layout):
 * opening it (recovery, then the writer and syncer threads), closing it, and its figures. The
 * parts are listed in upq_internal.h.
 */
#include "upq_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "file.h"
#include "log.h"

#define COMP UPQ_COMP

int upq_open(struct upq **out, const struct upq_opts *opts, const struct upq_hooks *hooks)
{
	char path[PATH_MAX];
	struct upq *q;
	int rc;

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
	q->dd = calloc(UPQ_DEDUP_WINDOW, sizeof(*q->dd));
	q->buckets = malloc(UPQ_DEDUP_BUCKETS * sizeof(uint32_t));
	if (q->dir == NULL || q->dd == NULL || q->buckets == NULL) {
		rc = -ENOMEM;
		goto fail;
	}
	memset(q->buckets, 0xff, UPQ_DEDUP_BUCKETS * sizeof(uint32_t));
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
	rc = upq_recover(q);
	if (rc != 0)
		goto fail;
	/* Always append to a fresh segment: a recovered one may end in a cut. */
	rc = upq_seg_open_write(q, q->nsegs > 0 ? q->segs[q->nsegs - 1].no + 1 : 1);
	if (rc == 0)
		rc = upq_seg_push(q, q->wseg_no, 0);
	if (rc == 0 && fsync(q->dirfd) != 0)
		rc = -errno;
	if (rc != 0)
		goto fail;
	upq_segs_trim_locked(q);
	rc = pthread_create(&q->syncer, NULL, upq_syncer_main, q);
	if (rc == 0) {
		rc = pthread_create(&q->writer, NULL, upq_writer_main, q);
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
	upq_cursors_save_locked(q, true);
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
	st->disk_bytes = q->bytes;
	pthread_mutex_unlock(&q->lock);
}
