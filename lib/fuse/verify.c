/*
 * fuse_export_verify_cache: read the kernel's cached pages of a file back with
 * NOTIFY_RETRIEVE and compare them with the bdev.
 *
 * The retrieve is sent from the calling thread (never a request handler); the kernel answers
 * with a NOTIFY_REPLY request, which a worker hands to fuse_verify_reply. The kernel returns
 * only the contiguous up-to-date pages from the offset asked, so the walk moves on by what
 * came back, or by one page when nothing did.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fuse_internal.h"
#include "log.h"

#define PAGE		4096u
#define REPLY_TIMEOUT_S 5

void fuse_verify_reply(struct fuse_export *exp, uint64_t cookie, uint64_t offset,
		       struct fuse_bufvec *bufv)
{
	struct verify_wait *w;

	pthread_mutex_lock(&exp->lock);
	w = exp->verify;
	/* A late answer to a retrieve that timed out finds another cookie, or none. */
	if (w != NULL && w->cookie == cookie && !w->done) {
		size_t len = MIN(fuse_buf_size(bufv), (size_t)FUSE_MAX_XFER);
		struct fuse_bufvec dst = FUSE_BUFVEC_INIT(len);

		dst.buf[0].mem = w->buf;
		w->len = (size_t)fuse_buf_copy(&dst, bufv, 0);
		w->offset = offset;
		w->done = true;
		pthread_cond_broadcast(&exp->cond);
	}
	pthread_mutex_unlock(&exp->lock);
}

/* Ask for [off, off+len) and wait for the answer: 0 with w filled, or a negative errno. */
static int retrieve(struct fuse_export *exp, struct fuse_node *n, struct verify_wait *w,
		    uint64_t off, size_t len)
{
	struct timespec ts;
	int rc;

	pthread_mutex_lock(&exp->lock);
	w->cookie = ++exp->next_cookie;
	w->done = false;
	w->len = 0;
	exp->verify = w;
	pthread_mutex_unlock(&exp->lock);
	rc = fuse_lowlevel_notify_retrieve(exp->se, n->ino, len, (off_t)off,
					   (void *)(uintptr_t)w->cookie);
	if (rc != 0)
		goto out;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += REPLY_TIMEOUT_S;
	pthread_mutex_lock(&exp->lock);
	while (!w->done && !exp->stopping && rc == 0)
		rc = -pthread_cond_timedwait(&exp->cond, &exp->lock, &ts);
	if (w->done)
		rc = 0;
	else if (exp->stopping)
		rc = -ESHUTDOWN;
	pthread_mutex_unlock(&exp->lock);
out:
	pthread_mutex_lock(&exp->lock);
	exp->verify = NULL;
	pthread_mutex_unlock(&exp->lock);
	return rc;
}

int fuse_export_verify_node(struct fuse_export *exp, struct fuse_node *n, uint64_t *checked,
			    uint64_t *mismatched)
{
	struct verify_wait w = { 0 };
	uint8_t *disk;
	uint64_t off = 0;
	int rc = 0;

	*checked = *mismatched = 0;
	w.buf = aligned_alloc(PAGE, FUSE_MAX_XFER);
	disk = aligned_alloc(PAGE, FUSE_MAX_XFER);
	if (w.buf == NULL || disk == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	pthread_mutex_lock(&exp->verify_lock);
	while (off < n->size) {
		size_t want = (size_t)MIN((uint64_t)FUSE_MAX_XFER, n->size - off);

		rc = retrieve(exp, n, &w, off, want);
		if (rc == -ENOENT) { /* the kernel has no inode: nothing cached at all */
			rc = 0;
			break;
		}
		if (rc != 0)
			break;
		if (w.len == 0) {
			off += PAGE; /* not cached here; look at the next page */
			continue;
		}
		if ((rc = fuse_node_read(n, disk, w.offset, w.len)) != 0)
			break;
		for (size_t p = 0; p < w.len; p += PAGE) {
			size_t l = MIN((size_t)PAGE, w.len - p);

			(*checked)++;
			if (memcmp(w.buf + p, disk + p, l) != 0)
				(*mismatched)++;
		}
		off = w.offset + (w.len + PAGE - 1) / PAGE * PAGE;
	}
	pthread_mutex_unlock(&exp->verify_lock);
out:
	free(w.buf);
	free(disk);
	return rc;
}
