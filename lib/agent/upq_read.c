/*
 * Consumers: each reads its records in order from its cursor, through a read cache of the
 * segment files, skipping records of other slots and those a request-reply waiter took, and
 * releases them once handled.
 */
#include "upq_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "compiler.h"
#include "le.h"
#include "log.h"

#define COMP UPQ_COMP

struct upq_consumer *upq_consumer_open(struct upq *q, uint64_t slot_id)
{
	struct upq_consumer *c = calloc(1, sizeof(*c));
	struct cursor_ent *e;

	if (c == NULL)
		return NULL;
	c->q = q;
	c->slot_id = slot_id;
	c->fd = -1;
	upq_consumer_name(q->o.single_consumer, slot_id, c->name, sizeof(c->name));
	pthread_mutex_lock(&q->lock);
	e = upq_cursor_find(q, c->name);
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
	e = upq_cursor_get(q, c->name);
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
		upq_seg_path(c->q, no, path, sizeof(path));
		c->fd = open(path, O_RDONLY | O_CLOEXEC);
		if (c->fd < 0)
			return -errno;
		c->fd_seg = no;
	}
	want = (size_t)MIMO_MAX((uint64_t)len, (uint64_t)UPQ_READ_CHUNK);
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
		s = upq_seg_find(q, c->read.seg);
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
		rc = read_at(c, no, off, UPQ_REC_HDR, limit, &hdr);
		if (rc != 0)
			goto broken;
		n = ld_le32(hdr + 4);
		if (n < UPQ_REC_HDR || n > UPQ_REC_MAX || off + n > limit)
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
		if (mine && upq_taken_remove_locked(q, no, off))
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
		struct seg *s = upq_seg_find(q, next.seg);

		if (s != NULL && s->outstanding > 0)
			s->outstanding--;
	}
	c->cursor = next;
	q->cursors_dirty = true;
	upq_segs_trim_locked(q);
	pthread_mutex_unlock(&q->lock);
}

void upq_rewind(struct upq_consumer *c, struct upq_pos pos)
{
	pthread_mutex_lock(&c->q->lock);
	c->read = pos;
	pthread_mutex_unlock(&c->q->lock);
}
