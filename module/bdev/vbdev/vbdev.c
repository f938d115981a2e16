/* Helpers of the virtual bdev modules (vbdev.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "vbdev.h"

#define COMP	 "vbdev"
#define RETRY_US 100000

int vbdev_submit(struct mimo_bdev_desc *desc, struct mimo_io_channel *ch,
		 enum mimo_bdev_io_type type, struct iovec *iov, int iovcnt, uint64_t off,
		 uint64_t num, mimo_bdev_io_cb cb, void *arg)
{
	switch (type) {
	case MIMO_BDEV_IO_READ:
		return mimo_bdev_readv_blocks(desc, ch, iov, iovcnt, off, num, cb, arg);
	case MIMO_BDEV_IO_WRITE:
		return mimo_bdev_writev_blocks(desc, ch, iov, iovcnt, off, num, cb, arg);
	case MIMO_BDEV_IO_UNMAP:
		return mimo_bdev_unmap_blocks(desc, ch, off, num, cb, arg);
	case MIMO_BDEV_IO_WRITE_ZEROES:
		return mimo_bdev_write_zeroes_blocks(desc, ch, off, num, cb, arg);
	case MIMO_BDEV_IO_FLUSH:
		return mimo_bdev_flush_blocks(desc, ch, off, num, cb, arg);
	case MIMO_BDEV_IO_RESET:
		return mimo_bdev_reset(desc, ch, cb, arg);
	default:
		return -ENOTSUP;
	}
}

int vbdev_iov_count(const struct iovec *iov, int iovcnt, size_t off, size_t len)
{
	int n = 0;

	for (int i = 0; i < iovcnt && len > 0; i++) {
		size_t l = iov[i].iov_len;

		if (off >= l) {
			off -= l;
			continue;
		}
		l -= off;
		off = 0;
		len -= l < len ? l : len;
		n++;
	}
	return n;
}

int vbdev_iov_slice(const struct iovec *iov, int iovcnt, size_t off, size_t len, struct iovec *out,
		    int out_max)
{
	int n = 0;

	for (int i = 0; i < iovcnt && len > 0; i++) {
		size_t l = iov[i].iov_len;

		if (off >= l) {
			off -= l;
			continue;
		}
		if (n == out_max)
			return -EINVAL;
		l -= off;
		if (l > len)
			l = len;
		out[n].iov_base = (char *)iov[i].iov_base + off;
		out[n].iov_len = l;
		n++;
		off = 0;
		len -= l;
	}
	return len == 0 ? n : -EINVAL;
}

struct delete_retry {
	char *name;
	struct mimo_poller *poller;
	bool warned;
};

/* 0: done (deleted, or gone already); 1: refused, try again. */
static int try_delete(struct delete_retry *r)
{
	int rc = mimo_bdev_delete(r->name, NULL, NULL);

	if (rc != -EBUSY)
		return 0;
	if (!r->warned)
		MIMO_WARN(COMP, "%s: its base is gone but it is claimed: deleting it once released",
			  r->name);
	r->warned = true;
	return 1;
}

static int retry_poll(void *arg)
{
	struct delete_retry *r = arg;

	if (try_delete(r) != 0)
		return 0;
	mimo_poller_unregister(&r->poller);
	free(r->name);
	free(r);
	return 1;
}

void vbdev_delete_after_base_removed(const char *name)
{
	struct delete_retry *r = calloc(1, sizeof(*r));

	if (r == NULL || (r->name = strdup(name)) == NULL) {
		free(r);
		MIMO_ERR(COMP, "%s: no memory to delete it after its base went", name);
		return;
	}
	if (try_delete(r) == 0) {
		free(r->name);
		free(r);
		return;
	}
	r->poller = mimo_poller_register(retry_poll, r, RETRY_US);
	if (r->poller == NULL) {
		MIMO_ERR(COMP, "%s: no memory to retry its deletion", name);
		free(r->name);
		free(r);
	}
}
