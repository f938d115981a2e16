/*
 * Logical block provisioning: UNMAP, WRITE SAME (10, 16) and GET LBA STATUS.
 *
 * UNMAP passes each descriptor to the bdev's unmap, one after the other. WRITE SAME of a
 * block of zeroes (or NDOB) becomes one unmap when UNMAP is set and the bdev can unmap, or
 * one write-zeroes when the bdev has it; any other block is written in 128 KiB steps from a
 * buffer that repeats it. WRITE SAME with UNMAP and a block that is not zeroes writes the
 * block: unmapping would lose it (LBPRZ is 0).
 *
 * The bdev layer does not say which blocks are mapped, so GET LBA STATUS reports the range
 * from the requested LBA to the end as "mapped or unknown" (SBC-3's status 0h), truthfully.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "scsi_internal.h"

static struct mimo_io_channel *channel(struct scsi_task_priv *p)
{
	return scsi_lun_channel(p);
}

static void finish_good(struct scsi_task_priv *p)
{
	p->task->status = MIMO_SCSI_STATUS_GOOD;
	scsi_task_set_transfer(p, p->want, (uint32_t)p->want);
	scsi_task_done(p);
}

/* --- UNMAP ------------------------------------------------------------------------------- */

#define UNMAP_HDR  8
#define UNMAP_DESC 16

static void unmap_step(struct scsi_task_priv *p);

static void unmap_done(struct mimo_bdev_io *io, bool success, void *arg)
{
	struct scsi_task_priv *p = arg;
	int rc = success ? 0 : mimo_bdev_io_get_status(io);
	const uint8_t *d = (const uint8_t *)p->buf + UNMAP_HDR + p->done * UNMAP_DESC;

	mimo_bdev_free_io(io);
	if (rc != 0) {
		scsi_task_io_failed(p, rc, true, scsi_be64(d), unmap_step);
		return;
	}
	p->done++;
	unmap_step(p);
}

static void unmap_step(struct scsi_task_priv *p)
{
	if (mimo_unlikely(p->aborted)) {
		scsi_task_done(p);
		return;
	}
	while (p->done < p->nblocks) {
		const uint8_t *d = (const uint8_t *)p->buf + UNMAP_HDR + p->done * UNMAP_DESC;
		uint64_t lba = scsi_be64(d);
		uint32_t n = scsi_be32(d + 8);
		int rc;

		if (n == 0) {
			p->done++;
			continue;
		}
		rc = mimo_bdev_unmap_blocks(p->lun->desc, channel(p), lba, n, unmap_done, p);
		if (rc != 0)
			scsi_task_io_failed(p, rc, true, lba, unmap_step);
		return;
	}
	finish_good(p);
}

void scsi_exec_unmap(struct scsi_task_priv *p)
{
	const uint8_t *cdb = p->task->cdb;
	uint32_t len = scsi_be16(cdb + 7), bdl, n;
	uint64_t nb = atomic_load(&p->lun->num_blocks), blocks = 0;
	uint8_t *buf;

	/* A LUN that cannot unmap reports LBPU 0 and has no UNMAP command. */
	if (!p->lun->can_unmap) {
		scsi_task_fail(p, MIMO_SCSI_SENSE_ILLEGAL_REQUEST, MIMO_SCSI_ASC_INVALID_OPCODE);
		return;
	}
	if (len == 0) {
		scsi_task_good(p);
		return;
	}
	if (len < UNMAP_HDR) {
		scsi_task_fail(p, MIMO_SCSI_SENSE_ILLEGAL_REQUEST,
			       MIMO_SCSI_ASC_PARAMETER_LIST_LENGTH_ERROR);
		return;
	}
	if (!scsi_task_need_data_out(p, len))
		return;
	buf = malloc(len);
	if (buf == NULL) {
		scsi_task_fail(p, MIMO_SCSI_SENSE_HARDWARE_ERROR,
			       MIMO_SCSI_ASC_INTERNAL_TARGET_FAILURE);
		return;
	}
	p->buf = buf;
	scsi_task_gather(p, buf, 0, len);
	/* Only whole descriptors that the parameter list holds count (SBC-3 5.28.2). */
	bdl = scsi_be16(buf + 2);
	n = MIMO_MIN(bdl, len - UNMAP_HDR) / UNMAP_DESC;
	if (n > SCSI_MAX_UNMAP_DESCRIPTORS) {
		scsi_task_invalid_field(p, false, 2, 7);
		scsi_task_done_later(p);
		return;
	}
	/* Check every range before unmapping any. */
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *d = buf + UNMAP_HDR + i * UNMAP_DESC;
		uint64_t lba = scsi_be64(d);
		uint32_t cnt = scsi_be32(d + 8);

		if (lba > nb || cnt > nb - lba) {
			scsi_task_fail_lba(p);
			return;
		}
		blocks += cnt;
	}
	p->want = len;
	if (blocks == 0) {
		p->task->status = MIMO_SCSI_STATUS_GOOD;
		scsi_task_set_transfer(p, len, len);
		scsi_task_done_later(p);
		return;
	}
	p->nblocks = n; /* descriptors */
	p->done = 0;
	scsi_gate(p, unmap_step);
}

/* --- WRITE SAME -------------------------------------------------------------------------- */

enum ws_how {
	WS_UNMAP,
	WS_ZEROES,
	WS_PATTERN
};

static void ws_step(struct scsi_task_priv *p);

static void ws_flushed(struct mimo_bdev_io *io, bool success, void *arg)
{
	struct scsi_task_priv *p = arg;
	int rc = success ? 0 : mimo_bdev_io_get_status(io);

	mimo_bdev_free_io(io);
	if (rc != 0) {
		scsi_task_io_failed(p, rc, true, p->lba, NULL);
		return;
	}
	finish_good(p);
}

static void ws_done(struct mimo_bdev_io *io, bool success, void *arg)
{
	struct scsi_task_priv *p = arg;
	int rc = success ? 0 : mimo_bdev_io_get_status(io);

	mimo_bdev_free_io(io);
	if (rc != 0) {
		scsi_task_io_failed(p, rc, true, p->lba + p->done, ws_step);
		return;
	}
	p->done += p->how == WS_PATTERN ? MIMO_MIN(p->chunk, p->nblocks - p->done)
					: p->nblocks - p->done;
	ws_step(p);
}

static void ws_step(struct scsi_task_priv *p)
{
	struct mimo_bdev_desc *desc = p->lun->desc;
	uint64_t lba = p->lba + p->done, left = p->nblocks - p->done;
	int rc;

	if (mimo_unlikely(p->aborted)) {
		scsi_task_done(p);
		return;
	}
	if (left == 0) {
		if (!p->fua) {
			finish_good(p);
			return;
		}
		rc = mimo_bdev_flush_blocks(desc, channel(p), p->lba, p->nblocks, ws_flushed, p);
		if (rc != 0)
			scsi_task_io_failed(p, rc, true, p->lba, NULL);
		return;
	}
	switch (p->how) {
	case WS_UNMAP:
		rc = mimo_bdev_unmap_blocks(desc, channel(p), lba, left, ws_done, p);
		break;
	case WS_ZEROES:
		rc = mimo_bdev_write_zeroes_blocks(desc, channel(p), lba, left, ws_done, p);
		break;
	default:
		rc = mimo_bdev_write_blocks(desc, channel(p), p->buf, lba, MIMO_MIN(p->chunk, left),
					    ws_done, p);
		break;
	}
	if (rc != 0)
		scsi_task_io_failed(p, rc, true, lba, ws_step);
}

static bool all_zero(const uint8_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (b[i] != 0)
			return false;
	}
	return true;
}

void scsi_exec_write_same(struct scsi_task_priv *p)
{
	const uint8_t *cdb = p->task->cdb;
	struct scsi_lun *lun = p->lun;
	bool sixteen = cdb[0] == MIMO_SCSI_OP_WRITE_SAME16;
	bool unmap = cdb[1] & 0x08, ndob = sixteen && (cdb[1] & 0x01), zero = true;
	uint32_t bs = lun->block_size;
	uint64_t nb = atomic_load(&lun->num_blocks), chunk;
	uint8_t *block = NULL;

	p->lba = sixteen ? scsi_be64(cdb + 2) : scsi_be32(cdb + 2);
	p->nblocks = sixteen ? scsi_be32(cdb + 10) : scsi_be16(cdb + 7);
	/* WSNZ is 0: 0 blocks means from the LBA to the end of the medium. */
	if (p->nblocks == 0 && p->lba <= nb)
		p->nblocks = nb - p->lba;
	if (!scsi_task_range_ok(p, p->lba, p->nblocks))
		return;
	p->want = ndob ? 0 : bs;
	if (!scsi_task_need_data_out(p, p->want))
		return;
	if (!ndob) {
		block = malloc(bs);
		if (block == NULL)
			goto nomem;
		scsi_task_gather(p, block, 0, bs);
		zero = all_zero(block, bs);
	}
	if (p->nblocks == 0) {
		free(block);
		p->task->status = MIMO_SCSI_STATUS_GOOD;
		scsi_task_set_transfer(p, p->want, (uint32_t)p->want);
		scsi_task_done_later(p);
		return;
	}
	if (zero && unmap && lun->can_unmap) {
		p->how = WS_UNMAP;
	} else if (zero && lun->can_write_zeroes) {
		p->how = WS_ZEROES;
	} else {
		p->how = WS_PATTERN;
		chunk = MIMO_MIN(p->nblocks, MIMO_MAX((uint64_t)1, SCSI_CHUNK_BYTES / bs));
		p->buf = malloc(chunk * bs);
		if (p->buf == NULL)
			goto nomem;
		for (uint64_t i = 0; i < chunk; i++) {
			if (block != NULL)
				memcpy((uint8_t *)p->buf + i * bs, block, bs);
			else
				memset((uint8_t *)p->buf + i * bs, 0, bs);
		}
		p->chunk = chunk;
	}
	free(block);
	p->fua = lun->can_flush &&
		 !(atomic_load_explicit(&lun->mode, memory_order_relaxed) & SCSI_MODE_WCE);
	p->done = 0;
	scsi_gate(p, ws_step);
	return;
nomem:
	free(block);
	scsi_task_fail(p, MIMO_SCSI_SENSE_HARDWARE_ERROR, MIMO_SCSI_ASC_INTERNAL_TARGET_FAILURE);
}

/* --- GET LBA STATUS ------------------------------------------------------------------------ */

void scsi_exec_get_lba_status(struct scsi_task_priv *p)
{
	const uint8_t *cdb = p->task->cdb;
	uint64_t lba = scsi_be64(cdb + 2), nb = atomic_load(&p->lun->num_blocks);
	uint8_t buf[24];

	if (lba >= nb) {
		scsi_task_fail_lba(p);
		return;
	}
	memset(buf, 0, sizeof(buf));
	scsi_put32(buf, sizeof(buf) - 4); /* PARAMETER DATA LENGTH */
	scsi_put64(buf + 8, lba);
	scsi_put32(buf + 16, (uint32_t)MIMO_MIN(nb - lba, (uint64_t)UINT32_MAX));
	buf[20] = 0x00; /* PROVISIONING STATUS: mapped or unknown */
	scsi_task_data_in(p, buf, sizeof(buf), scsi_be32(cdb + 10));
}
