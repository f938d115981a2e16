/*
 * malloc: a bdev in memory. The memory is mapped lazily, so a large malloc bdev costs only
 * the pages written to it; unmap and write-zeroes of whole pages give memory back.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bdev_malloc.h"
#include "compiler.h"
#include "uuid.h"

struct malloc_disk {
	struct mimo_bdev bdev;
	uint8_t *buf;
	size_t len;
};

struct mimo_bdev_module g_malloc_module = { .name = "malloc" };

MIMO_EXPORT void mimo_register_bdev_malloc(void)
{
	mimo_bdev_module_register(&g_malloc_module);
	bdev_malloc_rpc_register();
}

/* The module needs no per-reactor state, but channels are how the layer reaches it. */
static pthread_once_t g_device_once = PTHREAD_ONCE_INIT;

static void register_device(void)
{
	mimo_io_device_register(&g_malloc_module, NULL, NULL, 0, "malloc");
}

static void zero_range(struct malloc_disk *d, size_t off, size_t len)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t first = (off + page - 1) / page * page, last = (off + len) / page * page;

	if (last > first) {
		/* Whole pages: drop them (they read back as zeroes); memset the edges. */
		memset(d->buf + off, 0, first - off);
		madvise(d->buf + first, last - first, MADV_DONTNEED);
		memset(d->buf + last, 0, off + len - last);
	} else {
		memset(d->buf + off, 0, len);
	}
}

static void malloc_submit(struct mimo_io_channel *ch, struct mimo_bdev_io *io)
{
	struct malloc_disk *d = io->bdev->ctxt;
	size_t off = io->offset_blocks * d->bdev.blocklen, len = io->num_blocks * d->bdev.blocklen;

	(void)ch;
	switch (io->type) {
	case MIMO_BDEV_IO_READ:
		mimo_iov_from_buf(io->iovs, io->iovcnt, d->buf + off, len);
		break;
	case MIMO_BDEV_IO_WRITE:
		mimo_iov_to_buf(io->iovs, io->iovcnt, d->buf + off, len);
		break;
	case MIMO_BDEV_IO_UNMAP:
	case MIMO_BDEV_IO_WRITE_ZEROES:
		zero_range(d, off, len);
		break;
	default: /* flush, reset: memory has nothing to do */
		break;
	}
	mimo_bdev_io_complete(io, 0);
}

/* The disk is this process's memory: a reader may send from it directly. The layer checked
 * the range; the mapping lives until destruct (unmap only replaces pages with zero pages). */
static void *malloc_zcopy_addr(void *ctx, uint64_t off, uint64_t len)
{
	struct malloc_disk *d = ctx;

	(void)len;
	return d->buf + off;
}

static bool malloc_io_type_supported(void *ctx, enum mimo_bdev_io_type type)
{
	(void)ctx;
	(void)type;
	return true;
}

static struct mimo_io_channel *malloc_get_io_channel(void *ctx)
{
	(void)ctx;
	return mimo_get_io_channel(&g_malloc_module);
}

static int malloc_destruct(void *ctx)
{
	struct malloc_disk *d = ctx;

	munmap(d->buf, d->len);
	free(d->bdev.name);
	free(d);
	return 0;
}

static void malloc_write_config(struct mimo_bdev *bdev, json_t *config)
{
	char uuid[MIMO_UUID_STR_LEN];

	mimo_uuid_format(bdev->uuid, uuid);
	json_array_append_new(config, json_pack("{s:s, s:{s:s, s:I, s:i, s:s}}", "method",
						"bdev_malloc_create", "params", "name", bdev->name,
						"num_blocks", (json_int_t)bdev->blockcnt,
						"block_size", (int)bdev->blocklen, "uuid", uuid));
}

static const struct mimo_bdev_fn_table malloc_fn_table = {
	.destruct = malloc_destruct,
	.submit_request = malloc_submit,
	.io_type_supported = malloc_io_type_supported,
	.get_io_channel = malloc_get_io_channel,
	.write_config_json = malloc_write_config,
	.zcopy_addr = malloc_zcopy_addr,
};

int bdev_malloc_create(const char *name, uint64_t num_blocks, uint32_t block_size,
		       const uint8_t *uuid, struct mimo_bdev **out)
{
	struct malloc_disk *d;
	int rc;

	if (!mimo_bdev_block_size_ok(block_size) || num_blocks == 0 ||
	    num_blocks > SIZE_MAX / block_size)
		return -EINVAL;
	pthread_once(&g_device_once, register_device);
	d = calloc(1, sizeof(*d));
	if (d == NULL)
		return -ENOMEM;
	d->len = num_blocks * block_size;
	d->buf = mmap(NULL, d->len, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (d->buf == MAP_FAILED) {
		free(d);
		return -ENOMEM;
	}
	d->bdev.name = name != NULL ? strdup(name) : mimo_bdev_unused_name("Malloc");
	d->bdev.product_name = "Malloc disk";
	d->bdev.blocklen = block_size;
	d->bdev.blockcnt = num_blocks;
	if (uuid != NULL)
		memcpy(d->bdev.uuid, uuid, 16);
	d->bdev.ctxt = d;
	d->bdev.fn_table = &malloc_fn_table;
	d->bdev.module = &g_malloc_module;
	rc = d->bdev.name != NULL ? mimo_bdev_register(&d->bdev) : -ENOMEM;
	if (rc != 0) {
		munmap(d->buf, d->len);
		free(d->bdev.name);
		free(d);
		return rc;
	}
	*out = &d->bdev;
	return 0;
}
