/*
 * What the virtual bdev modules over other bdevs (split, passthru, delay, raid) share: handing
 * an I/O's operation to a base bdev, cutting a range out of an I/O's buffers, and deleting a
 * virtual bdev once its base is gone.
 *
 * Errors: 0 or a negative errno.
 */
#ifndef MIMO_VBDEV_H
#define MIMO_VBDEV_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "mimo/bdev_module.h"

/* Submit an operation of io's type to a base bdev: iov/iovcnt are the data (reads and writes
 * only), off/num the base's blocks. Returns what the mimo_bdev_* submission returned; the
 * callback runs only when that is 0. */
int vbdev_submit(struct mimo_bdev_desc *desc, struct mimo_io_channel *ch,
		 enum mimo_bdev_io_type type, struct iovec *iov, int iovcnt, uint64_t off,
		 uint64_t num, mimo_bdev_io_cb cb, void *arg);

/* The iovecs covering bytes [off, off + len) of iov: written to out (at most out_max of
 * them). Returns how many, or -EINVAL when the range is not within iov or out is too
 * small. */
int vbdev_iov_slice(const struct iovec *iov, int iovcnt, size_t off, size_t len, struct iovec *out,
		    int out_max);

/* How many iovecs of iov a range of bytes [off, off + len) touches (to size out above). */
int vbdev_iov_count(const struct iovec *iov, int iovcnt, size_t off, size_t len);

/*
 * Delete the virtual bdev named name because its base went away, on a reactor. A virtual bdev
 * that a module claims without letting go (an error bdev over it) cannot go yet: the deletion
 * is tried again every 100 ms on this reactor until it is accepted or the bdev is gone; I/O
 * to it meanwhile fails, since its base is being deleted.
 */
void vbdev_delete_after_base_removed(const char *name);

#endif
