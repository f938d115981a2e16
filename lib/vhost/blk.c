/*
 * virtio-blk over vhost-user: the device's features and configuration space, and its requests
 * (read, write, flush, get id, discard, write zeroes) as bdev I/O on the queue's reactor,
 * through that reactor's channel of the bdev.
 *
 * Sectors are 512 bytes whatever the bdev's block size; an access that is not aligned to the
 * block size fails (the guest's driver uses blk_size as its logical block size, so it never
 * sends one). When the bdev goes away, or the controller is deleted under a running guest,
 * every request fails with VIRTIO_BLK_S_IOERR from then on.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler.h"
#include "mimo/bdev.h"
#include "mimo/vhost.h"
#include "vhost_internal.h"

#define VIRTIO_BLK_F_SIZE_MAX	  1
#define VIRTIO_BLK_F_SEG_MAX	  2
#define VIRTIO_BLK_F_RO		  5
#define VIRTIO_BLK_F_BLK_SIZE	  6
#define VIRTIO_BLK_F_FLUSH	  9
#define VIRTIO_BLK_F_MQ		  12
#define VIRTIO_BLK_F_DISCARD	  13
#define VIRTIO_BLK_F_WRITE_ZEROES 14

#define VIRTIO_BLK_T_IN		  0
#define VIRTIO_BLK_T_OUT	  1
#define VIRTIO_BLK_T_FLUSH	  4
#define VIRTIO_BLK_T_GET_ID	  8
#define VIRTIO_BLK_T_DISCARD	  11
#define VIRTIO_BLK_T_WRITE_ZEROES 13

#define VIRTIO_BLK_S_OK	    0
#define VIRTIO_BLK_S_IOERR  1
#define VIRTIO_BLK_S_UNSUPP 2

#define VIRTIO_BLK_ID_BYTES 20
#define BLK_MAX_QUEUES	    16
#define BLK_SIZE_MAX	    (128u * 1024)
/* Header, status, and one split at a region boundary: the rest is data. */
#define BLK_SEG_MAX		(VHOST_MAX_IOVS - 3)
#define BLK_MAX_DISCARD_SECTORS 32768u /* 16 MiB */
#define BLK_MAX_DISCARD_SEGS	16u    /* accepted; 1 is offered */

struct virtio_blk_outhdr {
	uint32_t type;
	uint32_t ioprio;
	uint64_t sector;
};

struct virtio_blk_range {
	uint64_t sector;
	uint32_t num_sectors;
	uint32_t flags;
};

/* virtio 1.2's struct virtio_blk_config, as far as these fields go (60 bytes). */
struct virtio_blk_config {
	uint64_t capacity;
	uint32_t size_max;
	uint32_t seg_max;
	uint16_t cylinders;
	uint8_t heads;
	uint8_t sectors;
	uint32_t blk_size;
	uint8_t physical_block_exp;
	uint8_t alignment_offset;
	uint16_t min_io_size;
	uint32_t opt_io_size;
	uint8_t wce;
	uint8_t unused;
	uint16_t num_queues;
	uint32_t max_discard_sectors;
	uint32_t max_discard_seg;
	uint32_t discard_sector_alignment;
	uint32_t max_write_zeroes_sectors;
	uint32_t max_write_zeroes_seg;
	uint8_t write_zeroes_may_unmap;
	uint8_t unused1[3];
} __attribute__((packed));

/* The bdev on one reactor: its channel, the I/O in flight there, whether it has let go. */
struct blk_reactor {
	struct mimo_io_channel *ch;
	uint32_t inflight;
	bool draining;
};

struct blk_waiter {
	void (*done)(void *arg);
	void *arg;
};

struct vhost_blk {
	char *bdev_name;
	struct mimo_bdev_desc *desc;
	bool readonly;
	bool packed_ring; /* VIRTIO_F_RING_PACKED offered */
	uint32_t block_size;
	_Atomic uint64_t num_blocks; /* grows on a resize (home reactor), read by the queues' */
	bool unmap, write_zeroes, flush;
	struct vhost_ctrlr *c;
	char id[VIRTIO_BLK_ID_BYTES];
	struct mimo_reactor *home;
	struct blk_reactor *pr;
	uint32_t nreactors;
	_Atomic int releasing; /* reactors that still hold the bdev while detaching */
	bool detaching, closed;
	struct blk_waiter waiters[4];
	uint32_t nwaiters;
};

struct blk_req {
	uint8_t *status;
	uint32_t type;
	uint32_t used_len;
	uint64_t offset_blocks;
	uint64_t num_blocks;
	struct iovec *data;
	uint16_t datacnt;
	uint32_t data_len;
	uint32_t nsegs, seg;
	struct blk_reactor *st;
	struct vhost_blk *b;
};

static struct blk_reactor *here(struct vhost_blk *b)
{
	return &b->pr[mimo_reactor_index(mimo_reactor_current())];
}

size_t vhost_iov_copy_out(const struct iovec *iov, uint32_t cnt, size_t off, void *dst, size_t len)
{
	size_t done = 0;

	for (uint32_t i = 0; i < cnt && done < len; i++) {
		size_t n;

		if (off >= iov[i].iov_len) {
			off -= iov[i].iov_len;
			continue;
		}
		n = MIMO_MIN(iov[i].iov_len - off, len - done);
		memcpy((uint8_t *)dst + done, (uint8_t *)iov[i].iov_base + off, n);
		done += n;
		off = 0;
	}
	return done;
}

/* --- features and configuration ------------------------------------------------------------ */

static uint64_t blk_features(void *dev)
{
	struct vhost_blk *b = dev;
	uint64_t f = (1ull << VIRTIO_BLK_F_SIZE_MAX) | (1ull << VIRTIO_BLK_F_SEG_MAX) |
		     (1ull << VIRTIO_BLK_F_BLK_SIZE) | (1ull << VIRTIO_BLK_F_FLUSH) |
		     (1ull << VIRTIO_BLK_F_MQ);

	if (b->readonly)
		f |= 1ull << VIRTIO_BLK_F_RO;
	if (b->packed_ring)
		f |= 1ull << VIRTIO_F_RING_PACKED;
	if (!b->readonly && b->unmap)
		f |= 1ull << VIRTIO_BLK_F_DISCARD;
	if (!b->readonly && b->write_zeroes)
		f |= 1ull << VIRTIO_BLK_F_WRITE_ZEROES;
	return f;
}

static uint32_t blk_max_queues(void *dev)
{
	(void)dev;
	return BLK_MAX_QUEUES;
}

static void blk_get_config(void *dev, uint8_t *buf, uint32_t offset, uint32_t len)
{
	struct vhost_blk *b = dev;
	struct virtio_blk_config cfg = {
		.size_max = BLK_SIZE_MAX,
		.seg_max = BLK_SEG_MAX,
		.blk_size = b->block_size,
		.min_io_size = 1,
		.num_queues = BLK_MAX_QUEUES,
	};
	uint8_t space[VHOST_USER_MAX_CONFIG] = { 0 };

	/* A bdev that is gone shows as an empty disk (the guest's driver then makes none), not
	 * as an error: QEMU may give up on a device whose configuration it cannot read. */
	if (!b->closed && !b->detaching)
		cfg.capacity = b->num_blocks * b->block_size / 512;
	if (b->unmap) {
		cfg.max_discard_sectors = BLK_MAX_DISCARD_SECTORS;
		cfg.max_discard_seg = 1;
		cfg.discard_sector_alignment = b->block_size / 512;
	}
	if (b->write_zeroes) {
		cfg.max_write_zeroes_sectors = BLK_MAX_DISCARD_SECTORS;
		cfg.max_write_zeroes_seg = 1;
		cfg.write_zeroes_may_unmap = b->unmap;
	}
	memcpy(space, &cfg, sizeof(cfg));
	memcpy(buf, space + offset, len); /* offset + len <= 256: checked with the message */
}

/* --- requests --------------------------------------------------------------------------------- */

static void done(struct vhost_req *req, uint8_t status)
{
	struct blk_req *r = vhost_req_ctx(req);

	*r->status = status;
	vhost_req_complete(req, status == VIRTIO_BLK_S_OK ? r->used_len : 1);
}

static void release_here(struct vhost_blk *b, struct blk_reactor *st);

static void io_finished(struct blk_req *r)
{
	struct blk_reactor *st = r->st;

	if (--st->inflight == 0 && st->draining)
		release_here(r->b, st);
}

static void dispatch(struct vhost_req *req);

/* Discard and write zeroes, one range after the other (the guest sends one; up to 16 taken). */
static bool next_range(struct vhost_req *req, uint8_t *status);

static void io_done(struct mimo_bdev_io *io, bool success, void *arg)
{
	struct vhost_req *req = arg;
	struct blk_req *r = vhost_req_ctx(req);
	int status = mimo_bdev_io_get_status(io);
	uint8_t st;

	mimo_bdev_free_io(io);
	io_finished(r);
	if (!success && status == -ENOMEM) {
		vhost_req_defer(req, dispatch);
		return;
	}
	if (!success) {
		done(req, VIRTIO_BLK_S_IOERR);
		return;
	}
	if (r->type == VIRTIO_BLK_T_DISCARD || r->type == VIRTIO_BLK_T_WRITE_ZEROES) {
		r->seg++;
		if (next_range(req, &st))
			dispatch(req);
		else
			done(req, st);
		return;
	}
	done(req, VIRTIO_BLK_S_OK);
}

/* Submit the bdev I/O r describes (again, after -ENOMEM). */
static void dispatch(struct vhost_req *req)
{
	struct blk_req *r = vhost_req_ctx(req);
	struct vhost_blk *b = r->b;
	struct blk_reactor *st = here(b);
	int rc;

	if (st->draining) {
		done(req, VIRTIO_BLK_S_IOERR);
		return;
	}
	if (mimo_unlikely(st->ch == NULL) && (st->ch = mimo_bdev_get_io_channel(b->desc)) == NULL) {
		done(req, VIRTIO_BLK_S_IOERR);
		return;
	}
	r->st = st;
	st->inflight++;
	switch (r->type) {
	case VIRTIO_BLK_T_IN:
		rc = mimo_bdev_readv_blocks(b->desc, st->ch, r->data, r->datacnt, r->offset_blocks,
					    r->num_blocks, io_done, req);
		break;
	case VIRTIO_BLK_T_OUT:
		rc = mimo_bdev_writev_blocks(b->desc, st->ch, r->data, r->datacnt, r->offset_blocks,
					     r->num_blocks, io_done, req);
		break;
	case VIRTIO_BLK_T_FLUSH:
		rc = mimo_bdev_flush_blocks(b->desc, st->ch, 0, b->num_blocks, io_done, req);
		break;
	case VIRTIO_BLK_T_DISCARD:
		rc = mimo_bdev_unmap_blocks(b->desc, st->ch, r->offset_blocks, r->num_blocks,
					    io_done, req);
		break;
	default: /* write zeroes */
		rc = mimo_bdev_write_zeroes_blocks(b->desc, st->ch, r->offset_blocks, r->num_blocks,
						   io_done, req);
		break;
	}
	if (mimo_likely(rc == 0))
		return;
	io_finished(r);
	if (rc == -ENOMEM)
		vhost_req_defer(req, dispatch);
	else
		done(req, rc == -ENOTSUP ? VIRTIO_BLK_S_UNSUPP : VIRTIO_BLK_S_IOERR);
}

/* Bytes at sector for len bytes, as blocks: false if misaligned or out of range. */
static bool range(struct vhost_blk *b, uint64_t sector, uint64_t len, uint64_t *off, uint64_t *num)
{
	uint64_t bytes;

	if (sector > UINT64_MAX / 512)
		return false;
	bytes = sector * 512;
	if (bytes % b->block_size != 0 || len % b->block_size != 0)
		return false;
	*off = bytes / b->block_size;
	*num = len / b->block_size;
	return *off <= b->num_blocks && *num <= b->num_blocks - *off;
}

static bool next_range(struct vhost_req *req, uint8_t *status)
{
	struct blk_req *r = vhost_req_ctx(req);
	struct virtio_blk_range rg;

	for (; r->seg < r->nsegs; r->seg++) {
		if (vhost_iov_copy_out(r->data, r->datacnt, (size_t)r->seg * sizeof(rg), &rg,
				       sizeof(rg)) != sizeof(rg)) {
			*status = VIRTIO_BLK_S_IOERR;
			return false;
		}
		if (r->type == VIRTIO_BLK_T_DISCARD ? rg.flags != 0 : (rg.flags & ~1u) != 0) {
			*status = VIRTIO_BLK_S_UNSUPP;
			return false;
		}
		if (rg.num_sectors == 0)
			continue;
		if (rg.num_sectors > BLK_MAX_DISCARD_SECTORS ||
		    !range(r->b, rg.sector, (uint64_t)rg.num_sectors * 512, &r->offset_blocks,
			   &r->num_blocks)) {
			*status = VIRTIO_BLK_S_IOERR;
			return false;
		}
		return true;
	}
	*status = VIRTIO_BLK_S_OK;
	return false;
}

/* Drop n bytes from the front of iov[0..*cnt): returns the first iovec left. */
static struct iovec *skip(struct iovec *iov, uint16_t *cnt, size_t n)
{
	while (*cnt > 0 && n >= iov->iov_len) {
		n -= iov->iov_len;
		iov++;
		(*cnt)--;
	}
	if (*cnt > 0 && n > 0) {
		iov->iov_base = (uint8_t *)iov->iov_base + n;
		iov->iov_len -= n;
	}
	return iov;
}

static void blk_submit(void *dev, struct vhost_req *req)
{
	struct vhost_blk *b = dev;
	struct blk_req *r = vhost_req_ctx(req);
	struct virtio_blk_outhdr h;
	uint16_t in_cnt = req->iovcnt - req->out_cnt;
	struct iovec *last;
	uint8_t st;

	memset(r, 0, sizeof(*r));
	r->b = b;
	/* The status byte is the last writable byte; without one nothing can be answered. */
	while (in_cnt > 0 && req->iov[req->out_cnt + in_cnt - 1].iov_len == 0)
		in_cnt--;
	if (mimo_unlikely(in_cnt == 0)) {
		VHOST_BAD("%s: queue %u: a request without a status byte", req->q->s->name,
			  req->q->index);
		vhost_req_complete(req, 0);
		return;
	}
	last = &req->iov[req->out_cnt + in_cnt - 1];
	r->status = (uint8_t *)last->iov_base + last->iov_len - 1;
	if (--last->iov_len == 0)
		in_cnt--;
	r->used_len = 1;
	if (mimo_unlikely(vhost_iov_copy_out(req->iov, req->out_cnt, 0, &h, sizeof(h)) !=
			  sizeof(h))) {
		done(req, VIRTIO_BLK_S_IOERR);
		return;
	}
	r->type = h.type;
	switch (h.type) {
	case VIRTIO_BLK_T_IN:
		r->data = &req->iov[req->out_cnt];
		r->datacnt = in_cnt;
		r->data_len = req->in_len - 1;
		r->used_len = r->data_len + 1;
		break;
	case VIRTIO_BLK_T_OUT:
		if (b->readonly) {
			done(req, VIRTIO_BLK_S_IOERR);
			return;
		}
		r->datacnt = req->out_cnt;
		r->data = skip(req->iov, &r->datacnt, sizeof(h));
		r->data_len = req->out_len - (uint32_t)sizeof(h);
		break;
	case VIRTIO_BLK_T_FLUSH:
		if (b->readonly || !b->flush) {
			done(req, VIRTIO_BLK_S_OK); /* nothing is cached below us */
			return;
		}
		break;
	case VIRTIO_BLK_T_GET_ID: {
		uint32_t n = MIMO_MIN((uint32_t)VIRTIO_BLK_ID_BYTES, req->in_len - 1);
		uint32_t put = 0;

		for (uint16_t i = 0; i < in_cnt && put < n; i++) {
			uint32_t k =
				MIMO_MIN((uint32_t)req->iov[req->out_cnt + i].iov_len, n - put);

			memcpy(req->iov[req->out_cnt + i].iov_base, b->id + put, k);
			put += k;
		}
		r->used_len = put + 1;
		done(req, VIRTIO_BLK_S_OK);
		return;
	}
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		if (b->readonly ||
		    (h.type == VIRTIO_BLK_T_DISCARD ? !b->unmap : !b->write_zeroes)) {
			done(req, VIRTIO_BLK_S_UNSUPP);
			return;
		}
		r->datacnt = req->out_cnt;
		r->data = skip(req->iov, &r->datacnt, sizeof(h));
		r->data_len = req->out_len - (uint32_t)sizeof(h);
		r->nsegs = r->data_len / (uint32_t)sizeof(struct virtio_blk_range);
		if (r->data_len % sizeof(struct virtio_blk_range) != 0 || r->nsegs == 0 ||
		    r->nsegs > BLK_MAX_DISCARD_SEGS) {
			done(req, VIRTIO_BLK_S_IOERR);
			return;
		}
		if (!next_range(req, &st)) {
			done(req, st);
			return;
		}
		dispatch(req);
		return;
	default:
		done(req, VIRTIO_BLK_S_UNSUPP);
		return;
	}
	if (h.type == VIRTIO_BLK_T_IN || h.type == VIRTIO_BLK_T_OUT) {
		if (!range(b, h.sector, r->data_len, &r->offset_blocks, &r->num_blocks)) {
			done(req, VIRTIO_BLK_S_IOERR);
			return;
		}
		if (r->num_blocks == 0) {
			done(req, VIRTIO_BLK_S_OK);
			return;
		}
	}
	dispatch(req);
}

/* --- letting go of the bdev ------------------------------------------------------------------ */

static void closed_home(void *arg)
{
	struct vhost_blk *b = arg;
	struct blk_waiter w[MIMO_ARRAY_SIZE(b->waiters)];
	uint32_t n = b->nwaiters;

	mimo_bdev_close(b->desc);
	b->desc = NULL;
	b->closed = true;
	/* A waiter may free the device (the controller's last reference): copy them first. */
	memcpy(w, b->waiters, sizeof(w));
	b->nwaiters = 0;
	for (uint32_t i = 0; i < n; i++)
		w[i].done(w[i].arg);
}

static void release_here(struct vhost_blk *b, struct blk_reactor *st)
{
	if (st->ch != NULL)
		mimo_put_io_channel(st->ch);
	st->ch = NULL;
	if (atomic_fetch_sub(&b->releasing, 1) == 1)
		mimo_reactor_post(b->home, closed_home, b);
}

static void drain_here(void *arg)
{
	struct vhost_blk *b = arg;
	struct blk_reactor *st = here(b);

	st->draining = true;
	if (st->inflight == 0)
		release_here(b, st);
}

static void blk_detach(void *dev, void (*cb)(void *arg), void *arg)
{
	struct vhost_blk *b = dev;

	if (b->closed) {
		cb(arg);
		return;
	}
	if (b->nwaiters < MIMO_ARRAY_SIZE(b->waiters))
		b->waiters[b->nwaiters++] = (struct blk_waiter){ cb, arg };
	if (b->detaching)
		return;
	b->detaching = true;
	atomic_store(&b->releasing, (int)b->nreactors);
	for (uint32_t i = 0; i < b->nreactors; i++)
		mimo_reactor_post(mimo_reactor_get(i), drain_here, b);
}

static void noop(void *arg)
{
	(void)arg;
}

static void on_bdev_event(enum mimo_bdev_event_type type, struct mimo_bdev *bdev, void *ctx)
{
	struct vhost_blk *b = ctx;

	if (type == MIMO_BDEV_EVENT_RESIZE) {
		/* The layer only lets an open bdev grow: requests in flight stay in range. */
		atomic_store(&b->num_blocks, mimo_bdev_get_num_blocks(bdev));
		MIMO_INFO(COMP, "bdev %s resized to %llu blocks: telling the front-ends",
			  b->bdev_name, (unsigned long long)atomic_load(&b->num_blocks));
		if (b->c != NULL)
			vhost_ctrlr_config_changed(b->c);
		return;
	}
	if (type != MIMO_BDEV_EVENT_REMOVE)
		return;
	MIMO_WARN(COMP, "bdev %s is being deleted: its vhost-blk controller fails I/O from now on",
		  b->bdev_name);
	blk_detach(b, noop, NULL);
}

/* --- JSON --------------------------------------------------------------------------------------
 */

static json_t *blk_info_json(void *dev)
{
	struct vhost_blk *b = dev;

	return json_pack("{s:{s:b, s:o, s:s}}", "block", "readonly", b->readonly, "bdev",
			 b->closed || b->detaching ? json_null() : json_string(b->bdev_name),
			 "transport", "vhost_user_blk");
}

static void blk_config_json(void *dev, struct vhost_ctrlr *c, json_t *arr)
{
	struct vhost_blk *b = dev;
	char mask[32];
	json_t *call;

	if (b->closed || b->detaching)
		return;
	snprintf(mask, sizeof(mask), "0x%llx", (unsigned long long)c->cpumask);
	call = json_pack("{s:s, s:{s:s, s:s, s:s, s:b, s:s}}", "method",
			 "vhost_create_blk_controller", "params", "ctrlr", c->name, "dev_name",
			 b->bdev_name, "cpumask", mask, "readonly", b->readonly, "transport",
			 "vhost_user_blk");
	/* SPDK's save_config leaves packed_ring out, so its replay loses it; mimo writes it when
	 * set (SPDK's decoder takes it), so that a replayed controller offers what it did. */
	if (b->packed_ring)
		json_object_set_new(json_object_get(call, "params"), "packed_ring", json_true());
	/* Written only when it differs from mimo's default (true; SPDK's is false). */
	if (c->packed_untracked)
		json_object_set_new(json_object_get(call, "params"), "packed_ring_recovery",
				    json_false());
	json_array_append_new(arr, call);
}

static void blk_free(void *dev)
{
	struct vhost_blk *b = dev;

	free(b->pr);
	free(b->bdev_name);
	free(b);
}

static const struct vhost_dev_ops g_blk_ops = {
	.type = "blk",
	.req_ctx_size = sizeof(struct blk_req),
	.features = blk_features,
	.max_queues = blk_max_queues,
	.get_config = blk_get_config,
	.submit = blk_submit,
	.info_json = blk_info_json,
	.config_json = blk_config_json,
	.detach = blk_detach,
	.free = blk_free,
};

MIMO_EXPORT int mimo_vhost_blk_create(const char *name, const char *bdev_name, const char *cpumask,
				      bool readonly, bool packed_ring, bool packed_recovery,
				      char *err, size_t err_len)
{
	struct vhost_blk *b = calloc(1, sizeof(*b));
	struct vhost_ctrlr *c;
	struct mimo_bdev *bdev;
	int rc;

	if (b == NULL || (b->bdev_name = strdup(bdev_name)) == NULL ||
	    (b->pr = calloc(mimo_reactor_count(), sizeof(*b->pr))) == NULL) {
		if (b != NULL)
			free(b->bdev_name);
		free(b);
		return -ENOMEM;
	}
	b->nreactors = mimo_reactor_count();
	b->readonly = readonly;
	b->packed_ring = packed_ring;
	b->home = mimo_reactor_current();
	rc = mimo_bdev_open(bdev_name, !readonly, on_bdev_event, b, &b->desc);
	if (rc != 0) {
		snprintf(err, err_len, "bdev %s: %s", bdev_name,
			 rc == -ENODEV	? "no such bdev"
			 : rc == -EPERM ? "claimed by a module: it can only be opened read-only"
					: strerror(-rc));
		blk_free(b);
		return rc;
	}
	/* Reads land in the guest's memory, its own: a null bdev need not zero them. */
	mimo_bdev_desc_set_private_buffers(b->desc, true);
	bdev = mimo_bdev_desc_get_bdev(b->desc);
	b->block_size = mimo_bdev_get_block_size(bdev);
	b->num_blocks = mimo_bdev_get_num_blocks(bdev);
	b->unmap = mimo_bdev_io_type_supported(bdev, MIMO_BDEV_IO_UNMAP);
	b->write_zeroes = mimo_bdev_io_type_supported(bdev, MIMO_BDEV_IO_WRITE_ZEROES);
	b->flush = mimo_bdev_io_type_supported(bdev, MIMO_BDEV_IO_FLUSH);
	/* virtio's id: 20 bytes, NUL-padded, not terminated when the name fills them. */
	memcpy(b->id, bdev_name, MIMO_MIN(strlen(bdev_name), sizeof(b->id)));
	rc = vhost_ctrlr_create(name, cpumask, &g_blk_ops, b, false, &c, err, err_len);
	if (rc != 0) {
		mimo_bdev_close(b->desc);
		blk_free(b);
		return rc;
	}
	b->c = c;
	/* Set before the reactor turns again: no front-end can have connected yet. */
	c->packed_untracked = !packed_recovery;
	vhost_emit("vhost_controller_created", name,
		   json_pack("{s:s, s:s, s:s, s:s, s:b, s:b}", "ctrlr", name, "socket",
			     c->socket_path, "type", "blk", "bdev", bdev_name, "readonly", readonly,
			     "packed_ring", packed_ring));
	return 0;
}
