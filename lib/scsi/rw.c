/*
 * The data path: READ and WRITE (6, 10, 12, 16), VERIFY and WRITE AND VERIFY (10, 12, 16),
 * SYNCHRONIZE CACHE (10, 16).
 *
 * A read or write of exactly the task's buffers goes to the bdev as one I/O on the task's
 * own iovecs. FUA, and every write while the write cache is disabled (WCE 0), is followed
 * by a flush of the range when the bdev has one. DPO is accepted and ignored: there is no
 * cache in this layer for it to spare. Verification reads the medium in 128 KiB steps and
 * compares with the data-out, so that its memory does not grow with the range.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "scsi_internal.h"

/* LBA and transfer length of the READ/WRITE/VERIFY family, by CDB group. */
static void decode(const uint8_t *cdb, uint64_t *lba, uint64_t *n)
{
	switch (cdb[0] >> 5) {
	case 0: /* READ(6), WRITE(6): 21-bit LBA, 0 blocks means 256 */
		*lba = (uint64_t)(cdb[1] & 0x1f) << 16 | scsi_be16(cdb + 2);
		*n = cdb[4] != 0 ? cdb[4] : 256;
		break;
	case 1:
	case 2:
		*lba = scsi_be32(cdb + 2);
		*n = scsi_be16(cdb + 7);
		break;
	case 4:
		*lba = scsi_be64(cdb + 2);
		*n = scsi_be32(cdb + 10);
		break;
	default: /* 5: the 12-byte commands */
		*lba = scsi_be32(cdb + 2);
		*n = scsi_be32(cdb + 6);
		break;
	}
}

static bool decode_checked(struct scsi_task_priv *p)
{
	const uint8_t *cdb = p->task->cdb;

	decode(cdb, &p->lba, &p->nblocks);
	/* The 6-byte commands have no flags byte: byte 1 is the LBA's top. */
	p->byte1 = (cdb[0] >> 5) == 0 ? 0 : cdb[1];
	return scsi_task_range_ok(p, p->lba, p->nblocks);
}

static struct mimo_io_channel *channel(struct scsi_task_priv *p)
{
	return scsi_lun_channel(p);
}

static void finish_good(struct scsi_task_priv *p, uint32_t moved)
{
	p->task->status = MIMO_SCSI_STATUS_GOOD;
	scsi_task_set_transfer(p, p->want, moved);
	scsi_task_done(p);
}

static void no_memory(struct scsi_task_priv *p)
{
	scsi_task_fail(p, MIMO_SCSI_SENSE_HARDWARE_ERROR, MIMO_SCSI_ASC_INTERNAL_TARGET_FAILURE);
}

/* --- READ -------------------------------------------------------------------------------- */

static void read_submit(struct scsi_task_priv *p);

static void read_done(struct mimo_bdev_io *io, bool success, void *arg)
{
	struct scsi_task_priv *p = arg;
	int rc = success ? 0 : mimo_bdev_io_get_status(io);

	mimo_bdev_free_io(io);
	if (mimo_unlikely(rc != 0)) {
		scsi_task_io_failed(p, rc, false, p->lba, read_submit);
		return;
	}
	if (p->buf == NULL) {
		finish_good(p, (uint32_t)p->want);
		return;
	}
	/* Overflow: the bounce buffer holds the whole blocks the transfer length reaches. */
	{
		const uint8_t *src = p->buf;
		size_t left = p->edtl;

		for (int i = 0; i < p->task->iovcnt && left > 0; i++) {
			size_t n = MIMO_MIN(p->task->iovs[i].iov_len, left);

			memcpy(p->task->iovs[i].iov_base, src, n);
			src += n;
			left -= n;
		}
	}
	finish_good(p, p->edtl);
}

static void read_submit(struct scsi_task_priv *p)
{
	int rc;

	if (p->buf != NULL)
		rc = mimo_bdev_read_blocks(p->lun->desc, channel(p), p->buf, p->lba, p->nblocks,
					   read_done, p);
	else
		rc = mimo_bdev_readv_blocks(p->lun->desc, channel(p), p->iov, p->iovcnt, p->lba,
					    p->nblocks, read_done, p);
	if (mimo_unlikely(rc != 0))
		scsi_task_io_failed(p, rc, false, p->lba, read_submit);
}

void scsi_exec_read(struct scsi_task_priv *p)
{
	uint32_t bs = p->lun->block_size;

	if (!decode_checked(p))
		return;
	p->want = p->nblocks * bs;
	if (p->nblocks == 0) {
		scsi_task_good(p);
		return;
	}
	if (mimo_likely(p->want <= p->edtl)) {
		if (mimo_unlikely(scsi_task_sub_iov(p, 0, p->want) != 0)) {
			no_memory(p);
			return;
		}
		scsi_gate(p, read_submit);
		return;
	}
	/* The initiator's buffer is shorter than the command (overflow): return what fits,
	 * reading only the blocks it reaches. */
	if (p->edtl == 0) {
		p->task->status = MIMO_SCSI_STATUS_GOOD;
		scsi_task_set_transfer(p, p->want, 0);
		scsi_task_done_later(p);
		return;
	}
	p->nblocks = (p->edtl + bs - 1) / bs;
	p->buf = malloc(p->nblocks * bs);
	if (p->buf == NULL) {
		no_memory(p);
		return;
	}
	scsi_gate(p, read_submit);
}

/* --- WRITE ------------------------------------------------------------------------------- */

static void write_submit(struct scsi_task_priv *p);
static void flush_submit(struct scsi_task_priv *p);

static void write_finished(struct scsi_task_priv *p)
{
	if (p->cmd->opcode == MIMO_SCSI_OP_WRITE_VERIFY10 ||
	    p->cmd->opcode == MIMO_SCSI_OP_WRITE_VERIFY12 ||
	    p->cmd->opcode == MIMO_SCSI_OP_WRITE_VERIFY16) {
		/* Read back what was written, comparing when BYTCHK asks. */
		scsi_verify_start(p);
		return;
	}
	finish_good(p, (uint32_t)p->want);
}

static void flush_done(struct mimo_bdev_io *io, bool success, void *arg)
{
	struct scsi_task_priv *p = arg;
	int rc = success ? 0 : mimo_bdev_io_get_status(io);

	mimo_bdev_free_io(io);
	if (mimo_unlikely(rc != 0)) {
		scsi_task_io_failed(p, rc, true, p->lba, flush_submit);
		return;
	}
	write_finished(p);
}

static void flush_submit(struct scsi_task_priv *p)
{
	int rc =
		mimo_bdev_flush_blocks(p->lun->desc, channel(p), p->lba, p->nblocks, flush_done, p);

	if (rc != 0)
		scsi_task_io_failed(p, rc, true, p->lba, flush_submit);
}

static void write_done(struct mimo_bdev_io *io, bool success, void *arg)
{
	struct scsi_task_priv *p = arg;
	int rc = success ? 0 : mimo_bdev_io_get_status(io);

	mimo_bdev_free_io(io);
	if (mimo_unlikely(rc != 0)) {
		scsi_task_io_failed(p, rc, true, p->lba, write_submit);
		return;
	}
	if (p->fua) {
		flush_submit(p);
		return;
	}
	write_finished(p);
}

static void write_submit(struct scsi_task_priv *p)
{
	int rc;

	if (mimo_unlikely(p->aborted)) {
		scsi_task_done(p);
		return;
	}
	rc = mimo_bdev_writev_blocks(p->lun->desc, channel(p), p->iov, p->iovcnt, p->lba,
				     p->nblocks, write_done, p);
	if (mimo_unlikely(rc != 0))
		scsi_task_io_failed(p, rc, true, p->lba, write_submit);
}

/* Whether a write must reach the medium before it completes: FUA, or no write cache. */
static bool needs_flush(const struct scsi_task_priv *p, bool fua)
{
	return p->lun->can_flush &&
	       (fua ||
		!(atomic_load_explicit(&p->lun->mode, memory_order_relaxed) & SCSI_MODE_WCE));
}

void scsi_exec_write(struct scsi_task_priv *p)
{
	if (!decode_checked(p))
		return;
	p->want = p->nblocks * p->lun->block_size;
	if (p->nblocks == 0) {
		scsi_task_good(p);
		return;
	}
	if (!scsi_task_need_data_out(p, p->want))
		return;
	if (mimo_unlikely(scsi_task_sub_iov(p, 0, p->want) != 0)) {
		no_memory(p);
		return;
	}
	p->fua = needs_flush(p, p->byte1 & 0x08);
	scsi_gate(p, write_submit);
}

/* --- VERIFY, WRITE AND VERIFY ---------------------------------------------------------------- */

static void verify_step(struct scsi_task_priv *p);

static uint64_t chunk_blocks(const struct scsi_task_priv *p)
{
	uint64_t c = SCSI_CHUNK_BYTES / p->lun->block_size;

	return c == 0 ? 1 : c;
}

static void miscompare(struct scsi_task_priv *p, uint64_t offset)
{
	scsi_task_sense_info(p, MIMO_SCSI_SENSE_MISCOMPARE, MIMO_SCSI_ASC_MISCOMPARE_DURING_VERIFY,
			     offset);
	scsi_task_done(p);
}

static void verify_read_done(struct mimo_bdev_io *io, bool success, void *arg)
{
	struct scsi_task_priv *p = arg;
	int rc = success ? 0 : mimo_bdev_io_get_status(io);
	uint32_t bs = p->lun->block_size;
	uint64_t n = MIMO_MIN(chunk_blocks(p), p->nblocks - p->done);
	uint8_t bytchk = (p->byte1 >> 1) & 0x03;
	size_t len = n * bs;

	mimo_bdev_free_io(io);
	if (mimo_unlikely(rc != 0)) {
		scsi_task_io_failed(p, rc, false, p->lba + p->done, verify_step);
		return;
	}
	if (bytchk == 1) {
		/* The data-out holds the whole range. */
		int64_t at = scsi_task_compare(p, p->done * bs, p->buf, len);

		if (at >= 0) {
			miscompare(p, p->done * bs + (uint64_t)at);
			return;
		}
	} else if (bytchk == 3) {
		/* The data-out holds one block, which every block must equal. */
		for (uint64_t b = 0; b < n; b++) {
			int64_t at = scsi_task_compare(p, 0, (uint8_t *)p->buf + b * bs, bs);

			if (at >= 0) {
				miscompare(p, (p->done + b) * bs + (uint64_t)at);
				return;
			}
		}
	}
	p->done += n;
	verify_step(p);
}

static void verify_step(struct scsi_task_priv *p)
{
	uint64_t n;
	int rc;

	if (mimo_unlikely(p->aborted)) {
		scsi_task_done(p);
		return;
	}
	if (p->done == p->nblocks) {
		finish_good(p, (uint32_t)p->want);
		return;
	}
	n = MIMO_MIN(chunk_blocks(p), p->nblocks - p->done);
	rc = mimo_bdev_read_blocks(p->lun->desc, channel(p), p->buf, p->lba + p->done, n,
				   verify_read_done, p);
	if (rc != 0)
		scsi_task_io_failed(p, rc, false, p->lba + p->done, verify_step);
}

void scsi_verify_start(struct scsi_task_priv *p)
{
	uint64_t bytes = MIMO_MIN(chunk_blocks(p), p->nblocks) * p->lun->block_size;

	free(p->buf);
	p->buf = malloc(bytes);
	if (p->buf == NULL) {
		scsi_task_sense(p, MIMO_SCSI_SENSE_HARDWARE_ERROR,
				MIMO_SCSI_ASC_INTERNAL_TARGET_FAILURE);
		scsi_task_done_later(p);
		return;
	}
	p->done = 0;
	verify_step(p);
}

void scsi_exec_verify(struct scsi_task_priv *p)
{
	uint8_t bytchk;

	if (!decode_checked(p))
		return;
	bytchk = (p->byte1 >> 1) & 0x03;
	if (bytchk == 2) { /* reserved */
		scsi_task_fail_field(p, 1, 2);
		return;
	}
	p->want = bytchk == 0	? 0
		  : bytchk == 1 ? p->nblocks * p->lun->block_size
				: p->lun->block_size;
	if (p->nblocks == 0) {
		/* Nothing to verify, and no data-out to take (SBC-3 5.33). */
		p->want = 0;
		scsi_task_good(p);
		return;
	}
	if (!scsi_task_need_data_out(p, p->want))
		return;
	scsi_gate(p, scsi_verify_start);
}

void scsi_exec_write_verify(struct scsi_task_priv *p)
{
	uint8_t bytchk;

	if (!decode_checked(p))
		return;
	/* BYTCHK 00b: verify the medium; 01b: compare with the data-out; the rest reserved. */
	bytchk = (p->byte1 >> 1) & 0x03;
	if (bytchk > 1) {
		scsi_task_fail_field(p, 1, 2);
		return;
	}
	p->want = p->nblocks * p->lun->block_size;
	if (p->nblocks == 0) {
		scsi_task_good(p);
		return;
	}
	if (!scsi_task_need_data_out(p, p->want))
		return;
	if (mimo_unlikely(scsi_task_sub_iov(p, 0, p->want) != 0)) {
		no_memory(p);
		return;
	}
	/* Verifying what a cache holds proves nothing: always to the medium first. */
	p->fua = p->lun->can_flush;
	scsi_gate(p, write_submit);
}

/* --- SYNCHRONIZE CACHE --------------------------------------------------------------------- */

static void sync_done(struct mimo_bdev_io *io, bool success, void *arg)
{
	struct scsi_task_priv *p = arg;
	int rc = success ? 0 : mimo_bdev_io_get_status(io);

	mimo_bdev_free_io(io);
	if (rc != 0) {
		scsi_task_io_failed(p, rc, true, p->lba, NULL);
		return;
	}
	finish_good(p, 0);
}

void scsi_exec_sync_cache(struct scsi_task_priv *p)
{
	const uint8_t *cdb = p->task->cdb;
	bool sixteen = cdb[0] == MIMO_SCSI_OP_SYNCHRONIZE_CACHE16;
	uint64_t nb = atomic_load(&p->lun->num_blocks);
	int rc;

	p->lba = sixteen ? scsi_be64(cdb + 2) : scsi_be32(cdb + 2);
	p->nblocks = sixteen ? scsi_be32(cdb + 10) : scsi_be16(cdb + 7);
	if (!scsi_task_range_ok(p, p->lba, p->nblocks))
		return;
	/* 0 blocks: from the LBA to the end. IMMED is accepted: status comes after the flush,
	 * which is later than the initiator asked for but never wrong. */
	if (p->nblocks == 0)
		p->nblocks = nb - p->lba;
	if (!p->lun->can_flush) {
		scsi_task_good(p);
		return;
	}
	rc = mimo_bdev_flush_blocks(p->lun->desc, channel(p), p->lba, p->nblocks, sync_done, p);
	if (rc != 0)
		scsi_task_io_failed(p, rc, true, p->lba, NULL);
}
