/*
 * Appending and group commit: upq_append adds a record to the batch being filled; the writer
 * thread writes each batch and starts its write-back, the syncer covers every batch written
 * to a segment since its last fdatasync with one more, then runs their completions.
 */
#include "upq_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "file.h"
#include "log.h"

#define COMP UPQ_COMP

int upq_append(struct upq *q, const struct up_rec *r, upq_done_fn done, void *arg)
{
	size_t n = upq_rec_size(r);
	struct pend *p;
	uint32_t idx;
	int rc = 0;

	if (n > UPQ_REC_MAX)
		return -EMSGSIZE;
	pthread_mutex_lock(&q->lock);
	if (q->stop || q->broken) {
		rc = q->stop ? -ESHUTDOWN : -EIO;
		goto out;
	}
	idx = upq_dd_find(q, r->key_hi, r->key_lo);
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
		p->dedup = upq_dd_insert(q, r->key_hi, r->key_lo, true);
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
void *upq_writer_main(void *arg)
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
			if (q->cursors_dirty && mimo_now_ns() - q->saved_ns > UPQ_SAVE_EVERY_NS)
				upq_cursors_save_locked(q, false);
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
		s = upq_seg_find(q, q->wseg_no);
		if (q->broken) {
			rc = q->broken;
		} else if (s->written > 0 && s->written + b->buf.len > q->o.segment_bytes) {
			int old = q->wfd;

			q->wfd = -1;
			rc = upq_seg_open_write(q, q->wseg_no + 1);
			if (rc == 0)
				rc = upq_seg_push(q, q->wseg_no, 0);
			if (rc == 0) {
				b->close_fd = old;
				b->new_seg = true;
			} else {
				q->wfd = old;
				q->broken = rc;
			}
			s = upq_seg_find(q, q->wseg_no);
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
	s = upq_seg_find(q, b->seg_no);
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
				upq_dd_unlink(q, p->dedup);
		}
		if (rc == 0) {
			if (took != NULL && took[i])
				upq_taken_add_locked(q, b->seg_no, b->base + p->off);
			else
				s->outstanding++;
		}
	}
	if (rc == 0 && b->buf.len > 0) {
		s->size = b->base + b->buf.len;
		q->bytes += b->buf.len;
		q->st.commits++;
		q->st.bytes += b->buf.len;
		upq_segs_trim_locked(q);
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
void *upq_syncer_main(void *arg)
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
