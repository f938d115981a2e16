/*
 * aio: a bdev over a file or a block device, through io_uring.
 *
 * Each reactor has one io_uring (a "group" channel) shared by every aio bdev it serves;
 * submissions are queued in the ring and handed to the kernel once per turn by the group's
 * poller, which also reaps completions - one system call for a batch. Files are opened with
 * O_DIRECT when the filesystem allows it (so the page cache is not filled twice); misaligned
 * buffers then go through a bounce buffer. Unmap and write-zeroes use fallocate (punch hole,
 * zero range) on files; on block devices write-zeroes writes zeroes and unmap is unsupported.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <liburing.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/queue.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bdev_aio.h"
#include "compiler.h"
#include "log.h"
#include "uuid.h"

#define COMP	     "aio"
#define RING_ENTRIES 256
#define REAP_BATCH   64
#define DIRECT_ALIGN 4096

struct aio_disk {
	struct mimo_bdev bdev;
	char *filename;
	int fd;
	bool readonly;
	bool direct;
	bool blockdev;
	/* The module's io_device: not the disk's address, which is the bdev's, and the bdev
	 * layer registers that one for its own channels. */
	char io_device;
};

STAILQ_HEAD(io_list, mimo_bdev_io);

/* One per reactor: the ring and the I/Os waiting for room in it. */
struct aio_group {
	struct io_uring ring;
	bool ring_ok;
	struct mimo_poller *poller;
	unsigned queued;   /* SQEs prepared but not yet submitted */
	unsigned inflight; /* submitted, not yet reaped */
	struct io_list waiting;
};

/* Per bdev and reactor. */
struct aio_channel {
	struct mimo_io_channel *group_ch;
	struct aio_group *group;
	uint32_t inflight;
	struct io_list resets; /* complete when inflight reaches 0 */
};

struct aio_task {
	struct aio_channel *ch;
	void *bounce;
	struct iovec bounce_iov;
	bool zero_fallback; /* write-zeroes retried as writes after EOPNOTSUPP */
};

struct mimo_bdev_module g_aio_module = { .name = "aio", .ctx_size = sizeof(struct aio_task) };

MIMO_EXPORT void mimo_register_bdev_aio(void)
{
	mimo_bdev_module_register(&g_aio_module);
	bdev_aio_rpc_register();
}

static pthread_once_t g_group_once = PTHREAD_ONCE_INIT;

static void aio_complete(struct mimo_bdev_io *io, int status);
static bool prepare(struct aio_group *g, struct mimo_bdev_io *io);

static int group_poll(void *arg)
{
	struct aio_group *g = arg;
	struct io_uring_cqe *cqes[REAP_BATCH];
	unsigned n, work = 0;

	if (g->queued > 0) {
		io_uring_submit(&g->ring);
		g->queued = 0;
		work = 1;
	}
	n = io_uring_peek_batch_cqe(&g->ring, cqes, REAP_BATCH);
	for (unsigned i = 0; i < n; i++) {
		struct mimo_bdev_io *io = io_uring_cqe_get_data(cqes[i]);
		int res = cqes[i]->res;

		io_uring_cqe_seen(&g->ring, cqes[i]);
		aio_complete(io, res);
	}
	/* Completions made room: I/Os that found the ring full go now. */
	while (!STAILQ_EMPTY(&g->waiting)) {
		struct mimo_bdev_io *io = STAILQ_FIRST(&g->waiting);

		if (!prepare(g, io))
			break;
		STAILQ_REMOVE_HEAD(&g->waiting, link);
	}
	/* Completions do not wake the reactor's epoll: while any I/O is in flight, count as
	 * busy so that the reactor keeps polling instead of sleeping. */
	return (int)(work + n) + (g->inflight > 0 || !STAILQ_EMPTY(&g->waiting));
}

static int group_create(void *io_device, void *ctx)
{
	struct aio_group *g = ctx;
	int rc;

	(void)io_device;
	STAILQ_INIT(&g->waiting);
	/* Cooperative task running: completions are not pushed with an interrupt of whatever
	 * the reactor is doing; it collects them on its next system call (every turn, as it
	 * polls). Kernels before 5.19 lack the flag. */
	rc = io_uring_queue_init(RING_ENTRIES, &g->ring, IORING_SETUP_COOP_TASKRUN);
	if (rc == -EINVAL)
		rc = io_uring_queue_init(RING_ENTRIES, &g->ring, 0);
	if (rc != 0) {
		MIMO_ERR(COMP, "io_uring_queue_init: %s", strerror(-rc));
		return rc;
	}
	g->ring_ok = true;
	g->poller = mimo_poller_register(group_poll, g, 0);
	return g->poller != NULL ? 0 : -ENOMEM;
}

static void group_destroy(void *io_device, void *ctx)
{
	struct aio_group *g = ctx;

	(void)io_device;
	mimo_poller_unregister(&g->poller);
	if (g->ring_ok)
		io_uring_queue_exit(&g->ring);
}

static void register_group(void)
{
	mimo_io_device_register(&g_aio_module, group_create, group_destroy,
				sizeof(struct aio_group), "aio_group");
}

static int channel_create(void *io_device, void *ctx)
{
	struct aio_channel *ch = ctx;

	(void)io_device;
	STAILQ_INIT(&ch->resets);
	ch->group_ch = mimo_get_io_channel(&g_aio_module);
	if (ch->group_ch == NULL)
		return -ENOMEM;
	ch->group = mimo_io_channel_get_ctx(ch->group_ch);
	return 0;
}

static void channel_destroy(void *io_device, void *ctx)
{
	struct aio_channel *ch = ctx;

	(void)io_device;
	mimo_put_io_channel(ch->group_ch);
}

static bool aligned(const struct aio_disk *d, const struct mimo_bdev_io *io)
{
	if (!d->direct)
		return true;
	for (int i = 0; i < io->iovcnt; i++) {
		if ((uintptr_t)io->iovs[i].iov_base % DIRECT_ALIGN != 0 ||
		    io->iovs[i].iov_len % 512 != 0)
			return false;
	}
	return true;
}

/* Put one I/O into the ring. False when the ring is full (the caller queues it). */
static bool prepare(struct aio_group *g, struct mimo_bdev_io *io)
{
	struct aio_disk *d = io->bdev->ctxt;
	struct aio_task *t = mimo_bdev_io_driver_ctx(io);
	uint64_t off = io->offset_blocks * d->bdev.blocklen;
	uint64_t len = io->num_blocks * d->bdev.blocklen;
	struct io_uring_sqe *sqe = io_uring_get_sqe(&g->ring);
	const struct iovec *iov = io->iovs;
	int iovcnt = io->iovcnt;

	if (sqe == NULL) {
		io_uring_submit(&g->ring);
		g->queued = 0;
		sqe = io_uring_get_sqe(&g->ring);
		if (sqe == NULL)
			return false;
	}
	if (t->bounce != NULL) {
		iov = &t->bounce_iov;
		iovcnt = 1;
	}
	switch (io->type) {
	case MIMO_BDEV_IO_READ:
		io_uring_prep_readv(sqe, d->fd, iov, (unsigned)iovcnt, off);
		break;
	case MIMO_BDEV_IO_WRITE:
		io_uring_prep_writev(sqe, d->fd, iov, (unsigned)iovcnt, off);
		break;
	case MIMO_BDEV_IO_WRITE_ZEROES:
		if (t->zero_fallback)
			io_uring_prep_writev(sqe, d->fd, iov, (unsigned)iovcnt, off);
		else
			io_uring_prep_fallocate(
				sqe, d->fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, off, len);
		break;
	case MIMO_BDEV_IO_UNMAP:
		io_uring_prep_fallocate(sqe, d->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off,
					len);
		break;
	case MIMO_BDEV_IO_FLUSH:
		io_uring_prep_fsync(sqe, d->fd, IORING_FSYNC_DATASYNC);
		break;
	default:
		break;
	}
	io_uring_sqe_set_data(sqe, io);
	g->queued++;
	g->inflight++;
	t->ch->inflight++;
	return true;
}

static void queue(struct aio_group *g, struct mimo_bdev_io *io)
{
	if (!prepare(g, io))
		STAILQ_INSERT_TAIL(&g->waiting, io, link);
}

/* A zeroed, aligned buffer of the I/O's size, to write zeroes or bounce misaligned data. */
static int alloc_bounce(struct aio_task *t, size_t len)
{
	if (posix_memalign(&t->bounce, DIRECT_ALIGN, len) != 0) {
		t->bounce = NULL;
		return -ENOMEM;
	}
	memset(t->bounce, 0, len);
	t->bounce_iov.iov_base = t->bounce;
	t->bounce_iov.iov_len = len;
	return 0;
}

static void finish_resets(struct aio_channel *ch)
{
	struct mimo_bdev_io *io;

	while (ch->inflight == 0 && (io = STAILQ_FIRST(&ch->resets)) != NULL) {
		STAILQ_REMOVE_HEAD(&ch->resets, link);
		mimo_bdev_io_complete(io, 0);
	}
}

static void aio_complete(struct mimo_bdev_io *io, int res)
{
	struct aio_task *t = mimo_bdev_io_driver_ctx(io);
	struct aio_channel *ch = t->ch;
	uint64_t len = io->num_blocks * io->bdev->blocklen;
	int status = 0;

	ch->inflight--;
	ch->group->inflight--;
	if (res < 0) {
		if (io->type == MIMO_BDEV_IO_WRITE_ZEROES && !t->zero_fallback &&
		    (res == -EOPNOTSUPP || res == -EINVAL || res == -ENODEV)) {
			/* No zero-range here (a block device, an old filesystem): write zeroes. */
			t->zero_fallback = true;
			if (alloc_bounce(t, len) == 0) {
				queue(ch->group, io);
				return;
			}
			res = -ENOMEM;
		}
		status = res;
	} else if ((io->type == MIMO_BDEV_IO_READ || io->type == MIMO_BDEV_IO_WRITE ||
		    t->zero_fallback) &&
		   (uint64_t)res != len) {
		status = -EIO; /* a short transfer inside the device's bounds */
	}
	if (t->bounce != NULL) {
		if (status == 0 && io->type == MIMO_BDEV_IO_READ)
			mimo_iov_from_buf(io->iovs, io->iovcnt, t->bounce, len);
		free(t->bounce);
		t->bounce = NULL;
	}
	mimo_bdev_io_complete(io, status);
	finish_resets(ch);
}

static void aio_submit(struct mimo_io_channel *ioch, struct mimo_bdev_io *io)
{
	struct aio_channel *ch = mimo_io_channel_get_ctx(ioch);
	struct aio_disk *d = io->bdev->ctxt;
	struct aio_task *t = mimo_bdev_io_driver_ctx(io);
	size_t len = io->num_blocks * d->bdev.blocklen;

	memset(t, 0, sizeof(*t));
	t->ch = ch;
	switch (io->type) {
	case MIMO_BDEV_IO_RESET:
		/* Done once what is in flight on this channel has completed. */
		STAILQ_INSERT_TAIL(&ch->resets, io, link);
		finish_resets(ch);
		return;
	case MIMO_BDEV_IO_READ:
	case MIMO_BDEV_IO_WRITE:
		if (!aligned(d, io)) {
			if (alloc_bounce(t, len) != 0) {
				mimo_bdev_io_complete(io, -ENOMEM);
				return;
			}
			if (io->type == MIMO_BDEV_IO_WRITE)
				mimo_iov_to_buf(io->iovs, io->iovcnt, t->bounce, len);
		}
		break;
	case MIMO_BDEV_IO_WRITE_ZEROES:
		if (d->blockdev) {
			t->zero_fallback = true;
			if (alloc_bounce(t, len) != 0) {
				mimo_bdev_io_complete(io, -ENOMEM);
				return;
			}
		}
		break;
	default:
		break;
	}
	queue(ch->group, io);
}

static bool aio_io_type_supported(void *ctx, enum mimo_bdev_io_type type)
{
	struct aio_disk *d = ctx;

	switch (type) {
	case MIMO_BDEV_IO_READ:
	case MIMO_BDEV_IO_RESET:
	case MIMO_BDEV_IO_FLUSH:
		return true;
	case MIMO_BDEV_IO_WRITE:
	case MIMO_BDEV_IO_WRITE_ZEROES:
		return !d->readonly;
	case MIMO_BDEV_IO_UNMAP:
		return !d->readonly && !d->blockdev;
	default:
		return false;
	}
}

static struct mimo_io_channel *aio_get_io_channel(void *ctx)
{
	struct aio_disk *d = ctx;

	return mimo_get_io_channel(&d->io_device);
}

static void aio_unregistered(void *arg)
{
	struct aio_disk *d = arg;

	close(d->fd);
	free(d->filename);
	free(d->bdev.name);
	free(d);
}

static int aio_destruct(void *ctx)
{
	struct aio_disk *d = ctx;

	/* The disk is its own io_device (per-reactor channels): forget it, then free. */
	mimo_io_device_unregister(&d->io_device, aio_unregistered, d);
	return 0;
}

static void aio_dump_info(void *ctx, json_t *driver)
{
	struct aio_disk *d = ctx;

	json_object_set_new(driver, "aio",
			    json_pack("{s:s, s:b, s:b, s:b}", "filename", d->filename,
				      "block_size_override", false, "readonly", d->readonly,
				      "direct_io", d->direct));
}

static void aio_write_config(struct mimo_bdev *bdev, json_t *config)
{
	struct aio_disk *d = bdev->ctxt;
	char uuid[MIMO_UUID_STR_LEN];

	mimo_uuid_format(bdev->uuid, uuid);
	json_array_append_new(config,
			      json_pack("{s:s, s:{s:s, s:s, s:i, s:b, s:s}}", "method",
					"bdev_aio_create", "params", "name", bdev->name, "filename",
					d->filename, "block_size", (int)bdev->blocklen, "readonly",
					d->readonly, "uuid", uuid));
}

static const struct mimo_bdev_fn_table aio_fn_table = {
	.destruct = aio_destruct,
	.submit_request = aio_submit,
	.io_type_supported = aio_io_type_supported,
	.get_io_channel = aio_get_io_channel,
	.dump_info_json = aio_dump_info,
	.write_config_json = aio_write_config,
};

static int open_backing(struct aio_disk *d)
{
	int flags = (d->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC;

	d->fd = open(d->filename, flags | O_DIRECT);
	if (d->fd >= 0) {
		d->direct = true;
		return 0;
	}
	if (errno != EINVAL)
		return -errno;
	/* tmpfs and some others refuse O_DIRECT: buffered I/O still works. */
	d->fd = open(d->filename, flags);
	if (d->fd < 0)
		return -errno;
	MIMO_INFO(COMP, "%s: O_DIRECT not supported here; using buffered I/O", d->filename);
	return 0;
}

/* The size of the file or device in bytes, and its logical block size (512 for files). */
static int backing_size(struct aio_disk *d, uint64_t *size, uint32_t *sector)
{
	struct stat st;

	if (fstat(d->fd, &st) != 0)
		return -errno;
	if (S_ISBLK(st.st_mode)) {
		int ss = 0;

		d->blockdev = true;
		if (ioctl(d->fd, BLKGETSIZE64, size) != 0)
			return -errno;
		if (ioctl(d->fd, BLKSSZGET, &ss) == 0 && ss > 0)
			*sector = (uint32_t)ss;
		return 0;
	}
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	*size = (uint64_t)st.st_size;
	return 0;
}

/* SPDK's bdev_aio_rescan: the size read again; a file or device now empty is hot-removed
 * (the bdev deleted), as SPDK does. */
int bdev_aio_rescan(const char *name)
{
	struct mimo_bdev *bdev = mimo_bdev_get_by_name(name);
	struct aio_disk *d;
	uint64_t size = 0, blockcnt;
	uint32_t sector = 512;
	int rc;

	if (bdev == NULL || bdev->module != &g_aio_module)
		return -ENODEV;
	d = bdev->ctxt;
	rc = backing_size(d, &size, &sector);
	if (rc != 0)
		return rc;
	blockcnt = size / bdev->blocklen;
	if (blockcnt == 0) {
		MIMO_WARN(COMP, "%s: %s is now smaller than one block: removing the bdev", name,
			  d->filename);
		return mimo_bdev_delete(name, NULL, NULL);
	}
	if (blockcnt == mimo_bdev_get_num_blocks(bdev))
		return 0;
	return mimo_bdev_notify_blockcnt_change(bdev, blockcnt);
}

int bdev_aio_create(const char *name, const char *filename, uint32_t block_size, bool readonly,
		    const uint8_t *uuid, struct mimo_bdev **out)
{
	struct aio_disk *d;
	uint64_t size = 0;
	uint32_t sector = 512;
	int rc;

	if (name == NULL || filename == NULL ||
	    (block_size != 0 && !mimo_bdev_block_size_ok(block_size)))
		return -EINVAL;
	pthread_once(&g_group_once, register_group);
	d = calloc(1, sizeof(*d));
	if (d == NULL)
		return -ENOMEM;
	d->fd = -1;
	d->readonly = readonly;
	d->filename = strdup(filename);
	d->bdev.name = strdup(name);
	if (d->filename == NULL || d->bdev.name == NULL) {
		rc = -ENOMEM;
		goto fail;
	}
	rc = open_backing(d);
	if (rc != 0)
		goto fail;
	rc = backing_size(d, &size, &sector);
	if (rc != 0)
		goto fail;
	if (block_size == 0)
		block_size = sector;
	if (block_size < sector && d->direct) {
		MIMO_ERR(COMP, "%s: block size %u is below the device's %u", filename, block_size,
			 sector);
		rc = -EINVAL;
		goto fail;
	}
	if (size / block_size == 0) {
		MIMO_ERR(COMP, "%s: smaller than one block", filename);
		rc = -EINVAL;
		goto fail;
	}
	d->bdev.product_name = "AIO disk";
	d->bdev.blocklen = block_size;
	d->bdev.blockcnt = size / block_size;
	d->bdev.buf_align = d->direct ? DIRECT_ALIGN : 1;
	if (uuid != NULL)
		memcpy(d->bdev.uuid, uuid, 16);
	d->bdev.ctxt = d;
	d->bdev.fn_table = &aio_fn_table;
	d->bdev.module = &g_aio_module;
	mimo_io_device_register(&d->io_device, channel_create, channel_destroy,
				sizeof(struct aio_channel), name);
	rc = mimo_bdev_register(&d->bdev);
	if (rc != 0) {
		mimo_io_device_unregister(&d->io_device, NULL, NULL);
		goto fail;
	}
	*out = &d->bdev;
	return 0;
fail:
	if (d->fd >= 0)
		close(d->fd);
	free(d->filename);
	free(d->bdev.name);
	free(d);
	return rc;
}
