/*
 * MODE SENSE and MODE SELECT (6 and 10): the read-write error recovery (01h), caching (08h)
 * and control (0Ah) pages, alone or all (3Fh), with their current, changeable and default
 * values. What can change: WCE (when the bdev has a cache to flush), D_SENSE and SWP.
 * Nothing is kept across a restart of the daemon, so no page is savable: PS is 0, saved
 * values are SAVING PARAMETERS NOT SUPPORTED and MODE SELECT with SP is refused.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "scsi_internal.h"

enum pc {
	PC_CURRENT,
	PC_CHANGEABLE,
	PC_DEFAULT,
	PC_SAVED
};

uint32_t scsi_lun_default_mode(const struct scsi_lun *lun)
{
	/* Write-back caching where the bdev can flush; write-through (nothing to enable)
	 * where it cannot, since its writes are then as durable as they will get. */
	return lun->can_flush ? SCSI_MODE_WCE : 0;
}

static uint32_t changeable(const struct scsi_lun *lun)
{
	return SCSI_MODE_D_SENSE | SCSI_MODE_SWP | (lun->can_flush ? SCSI_MODE_WCE : 0);
}

/* The page's bytes for these mode bits; changeable: a mask of the bits that may change. */
static size_t build_page(uint8_t *b, uint8_t page, uint32_t mode, bool mask)
{
	switch (page) {
	case 0x01: /* read-write error recovery: nothing to tune, no retries to count */
		memset(b, 0, 12);
		b[0] = 0x01;
		b[1] = 0x0a;
		return 12;
	case 0x08: /* caching */
		memset(b, 0, 20);
		b[0] = 0x08;
		b[1] = 0x12;
		if (mode & SCSI_MODE_WCE)
			b[2] |= 0x04;
		return 20;
	case 0x0a: /* control */
		memset(b, 0, 12);
		b[0] = 0x0a;
		b[1] = 0x0a;
		if (mode & SCSI_MODE_D_SENSE)
			b[2] |= 0x04;
		if (mode & SCSI_MODE_SWP)
			b[4] |= 0x08;
		if (!mask) {
			b[2] |= 0x02;		   /* GLTSD: no log parameters are saved */
			b[3] = 0x10;		   /* QUEUE ALGORITHM MODIFIER 1: unrestricted */
			scsi_put16(b + 8, 0xffff); /* BUSY TIMEOUT PERIOD: unlimited */
		}
		return 12;
	default:
		return 0;
	}
}

static const uint8_t g_pages[] = { 0x01, 0x08, 0x0a };

static bool write_protected(const struct scsi_lun *lun)
{
	return lun->readonly || (atomic_load(&lun->mode) & SCSI_MODE_SWP);
}

void scsi_exec_mode_sense(struct scsi_task_priv *p)
{
	const uint8_t *cdb = p->task->cdb;
	struct scsi_lun *lun = p->lun;
	bool ten = cdb[0] == MIMO_SCSI_OP_MODE_SENSE10;
	bool dbd = cdb[1] & 0x08, llbaa = ten && (cdb[1] & 0x10);
	enum pc pc = cdb[2] >> 6;
	uint8_t page = cdb[2] & 0x3f, subpage = cdb[3];
	uint32_t alloc = ten ? scsi_be16(cdb + 7) : cdb[4];
	uint64_t blocks = atomic_load(&lun->num_blocks);
	uint8_t buf[8 + 16 + 12 + 20 + 12];
	size_t hdr = ten ? 8 : 4, n, bdl = dbd ? 0 : (llbaa ? 16 : 8);
	uint32_t mode;

	if (pc == PC_SAVED) {
		scsi_task_fail(p, MIMO_SCSI_SENSE_ILLEGAL_REQUEST,
			       MIMO_SCSI_ASC_SAVING_PARAMS_NOT_SUPPORTED);
		return;
	}
	/* No page has subpages: subpage 0, or FFh ("all subpages", which are the pages). */
	if (subpage != 0x00 && subpage != 0xff) {
		scsi_task_fail_field(p, 3, 7);
		return;
	}
	mode = pc == PC_CURRENT	     ? atomic_load(&lun->mode)
	       : pc == PC_CHANGEABLE ? changeable(lun)
				     : scsi_lun_default_mode(lun);
	memset(buf, 0, sizeof(buf));
	n = hdr + bdl;
	if (page == 0x3f) {
		for (size_t i = 0; i < sizeof(g_pages); i++)
			n += build_page(buf + n, g_pages[i], mode, pc == PC_CHANGEABLE);
	} else {
		size_t len = build_page(buf + n, page, mode, pc == PC_CHANGEABLE);

		if (len == 0) {
			scsi_task_fail_field(p, 2, 5);
			return;
		}
		n += len;
	}
	/* Header: MEDIUM TYPE 0; DEVICE-SPECIFIC PARAMETER: WP, DPOFUA (FUA is honoured). */
	if (ten) {
		scsi_put16(buf, (uint16_t)(n - 2));
		buf[3] = (write_protected(lun) ? 0x80 : 0) | 0x10;
		buf[4] = llbaa && bdl ? 0x01 : 0; /* LONGLBA */
		scsi_put16(buf + 6, (uint16_t)bdl);
	} else {
		buf[0] = (uint8_t)(n - 1);
		buf[2] = (write_protected(lun) ? 0x80 : 0) | 0x10;
		buf[3] = (uint8_t)bdl;
	}
	if (bdl == 8) {
		/* A capacity beyond 32 bits reads FFFFFFFFh here (SBC-3 6.4.2). */
		scsi_put32(buf + hdr, blocks > UINT32_MAX ? UINT32_MAX : (uint32_t)blocks);
		scsi_put32(buf + hdr + 4, lun->block_size); /* DENSITY CODE 0 in the top byte */
	} else if (bdl == 16) {
		scsi_put64(buf + hdr, blocks);
		scsi_put32(buf + hdr + 12, lun->block_size);
	}
	scsi_task_data_in(p, buf, n, alloc);
}

/* --- MODE SELECT ------------------------------------------------------------------------- */

static void mode_select_flushed(struct mimo_bdev_io *io, bool success, void *arg)
{
	struct scsi_task_priv *p = arg;
	int rc = success ? 0 : mimo_bdev_io_get_status(io);

	mimo_bdev_free_io(io);
	if (rc != 0)
		scsi_task_bdev_error(p, rc, true, 0);
	scsi_task_done(p);
}

static void param_error(struct scsi_task_priv *p, size_t byte, int bit)
{
	scsi_task_invalid_field(p, false, (uint16_t)byte, bit);
	scsi_task_done_later(p);
}

/* Apply one page at buf[off], or fail the task. Returns the page's length, 0 on failure. */
static size_t select_page(struct scsi_task_priv *p, const uint8_t *buf, size_t off, size_t len,
			  uint32_t *mode)
{
	const struct scsi_lun *lun = p->lun;
	uint8_t cur[20], mask[20];
	uint8_t page = buf[off] & 0x3f;
	size_t plen;

	if (len - off < 2) {
		scsi_task_fail(p, MIMO_SCSI_SENSE_ILLEGAL_REQUEST,
			       MIMO_SCSI_ASC_PARAMETER_LIST_LENGTH_ERROR);
		return 0;
	}
	/* SPF: a subpage format page; there are none. */
	if (buf[off] & 0x40) {
		param_error(p, off, 6);
		return 0;
	}
	plen = build_page(cur, page, *mode, false);
	build_page(mask, page, changeable(lun), true);
	if (plen == 0) {
		param_error(p, off, 5);
		return 0;
	}
	if (buf[off + 1] != plen - 2) {
		param_error(p, off + 1, 7);
		return 0;
	}
	if (len - off < plen) {
		scsi_task_fail(p, MIMO_SCSI_SENSE_ILLEGAL_REQUEST,
			       MIMO_SCSI_ASC_PARAMETER_LIST_LENGTH_ERROR);
		return 0;
	}
	/* Every bit that cannot change must be sent as it is (SPC-4 6.11). */
	for (size_t i = 2; i < plen; i++) {
		uint8_t diff = (buf[off + i] ^ cur[i]) & (uint8_t)~mask[i];

		if (diff != 0) {
			param_error(p, off + i, 31 - __builtin_clz(diff));
			return 0;
		}
	}
	if (page == 0x08)
		*mode = (*mode & ~SCSI_MODE_WCE) | ((buf[off + 2] & 0x04) ? SCSI_MODE_WCE : 0);
	if (page == 0x0a) {
		*mode = (*mode & ~SCSI_MODE_D_SENSE) |
			((buf[off + 2] & 0x04) ? SCSI_MODE_D_SENSE : 0);
		*mode = (*mode & ~SCSI_MODE_SWP) | ((buf[off + 4] & 0x08) ? SCSI_MODE_SWP : 0);
	}
	return plen;
}

void scsi_exec_mode_select(struct scsi_task_priv *p)
{
	const uint8_t *cdb = p->task->cdb;
	struct scsi_lun *lun = p->lun;
	bool ten = cdb[0] == MIMO_SCSI_OP_MODE_SELECT10;
	size_t len = ten ? scsi_be16(cdb + 7) : cdb[4], hdr = ten ? 8 : 4, bdl, off;
	uint32_t old, mode;
	uint8_t *buf;
	int rc;

	/* SP: nothing is savable. PF 0 would be a vendor-specific page format. */
	if (cdb[1] & 0x01) {
		scsi_task_fail_field(p, 1, 0);
		return;
	}
	if (len == 0) {
		scsi_task_good(p);
		return;
	}
	if (!(cdb[1] & 0x10)) {
		scsi_task_fail_field(p, 1, 4);
		return;
	}
	if (!scsi_task_need_data_out(p, len))
		return;
	if (len < hdr) {
		scsi_task_fail(p, MIMO_SCSI_SENSE_ILLEGAL_REQUEST,
			       MIMO_SCSI_ASC_PARAMETER_LIST_LENGTH_ERROR);
		return;
	}
	buf = malloc(len);
	if (buf == NULL) {
		scsi_task_fail(p, MIMO_SCSI_SENSE_HARDWARE_ERROR,
			       MIMO_SCSI_ASC_INTERNAL_TARGET_FAILURE);
		return;
	}
	p->buf = buf;
	scsi_task_gather(p, buf, 0, len);
	bdl = ten ? scsi_be16(buf + 6) : buf[3];
	/* A block descriptor may come, but cannot change the format. */
	if (bdl != 0) {
		bool longlba = ten && (buf[4] & 0x01);
		uint64_t blocks = atomic_load(&lun->num_blocks), nb;
		uint32_t bs;

		if (bdl != (longlba ? 16u : 8u)) {
			param_error(p, ten ? 6 : 3, 7);
			return;
		}
		if (len < hdr + bdl) {
			scsi_task_fail(p, MIMO_SCSI_SENSE_ILLEGAL_REQUEST,
				       MIMO_SCSI_ASC_PARAMETER_LIST_LENGTH_ERROR);
			return;
		}
		nb = longlba ? scsi_be64(buf + hdr) : scsi_be32(buf + hdr);
		bs = longlba ? scsi_be32(buf + hdr + 12) : scsi_be24(buf + hdr + 5);
		if (nb != 0 && nb != (longlba ? blocks : MIMO_MIN(blocks, (uint64_t)UINT32_MAX))) {
			param_error(p, hdr, 7);
			return;
		}
		if (bs != lun->block_size) {
			param_error(p, hdr + (longlba ? 12 : 5), 7);
			return;
		}
	}
	old = atomic_load(&lun->mode);
	mode = old;
	for (off = hdr + bdl; off < len;) {
		size_t plen = select_page(p, buf, off, len, &mode);

		if (plen == 0)
			return;
		off += plen;
	}
	atomic_store(&lun->mode, mode);
	/* Turning the write cache off: what it holds goes to the medium now. */
	if ((old & SCSI_MODE_WCE) && !(mode & SCSI_MODE_WCE) && lun->can_flush) {
		rc = mimo_bdev_flush_blocks(lun->desc, scsi_lun_channel(p), 0,
					    atomic_load(&lun->num_blocks), mode_select_flushed, p);
		if (rc == 0)
			return;
		scsi_task_bdev_error(p, rc, true, 0);
		scsi_task_done_later(p);
		return;
	}
	scsi_task_good(p);
}
