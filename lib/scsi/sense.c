/*
 * Sense data (SPC-4 4.5): fixed format (70h, 18 bytes) unless the LUN's control mode page
 * has D_SENSE set, then descriptor format (72h) with an information descriptor and a
 * sense-key specific descriptor when there is something to put in them.
 */
#include <errno.h>
#include <string.h>

#include "scsi_internal.h"

uint8_t scsi_build_sense(uint8_t *out, bool desc, uint8_t key, uint16_t asc, bool info_valid,
			 uint64_t info, bool sks_valid, const uint8_t sks[3])
{
	memset(out, 0, MIMO_SCSI_SENSE_SIZE);
	if (!desc) {
		/* The fixed format's INFORMATION field has 4 bytes: a larger value is not valid
		 * there (SPC-4 4.5.3), and VALID stays 0. */
		bool fits = info_valid && info <= UINT32_MAX;

		out[0] = 0x70 | (fits ? 0x80 : 0);
		out[2] = key & 0x0f;
		if (fits)
			scsi_put32(out + 3, (uint32_t)info);
		out[7] = MIMO_SCSI_FIXED_SENSE_LEN - 8;
		out[12] = (uint8_t)(asc >> 8);
		out[13] = (uint8_t)asc;
		if (sks_valid)
			memcpy(out + 15, sks, 3);
		return MIMO_SCSI_FIXED_SENSE_LEN;
	}
	uint8_t n = 8;

	out[0] = 0x72;
	out[1] = key & 0x0f;
	out[2] = (uint8_t)(asc >> 8);
	out[3] = (uint8_t)asc;
	if (info_valid) {
		out[n] = 0x00; /* information descriptor */
		out[n + 1] = 0x0a;
		out[n + 2] = 0x80; /* VALID */
		scsi_put64(out + n + 4, info);
		n += 12;
	}
	if (sks_valid) {
		out[n] = 0x02; /* sense key specific descriptor */
		out[n + 1] = 0x06;
		memcpy(out + n + 4, sks, 3);
		n += 8;
	}
	out[7] = n - 8;
	return n;
}

static bool want_desc(const struct scsi_task_priv *p)
{
	return p->lun != NULL &&
	       (atomic_load_explicit(&p->lun->mode, memory_order_relaxed) & SCSI_MODE_D_SENSE);
}

static void set_check(struct scsi_task_priv *p, uint8_t key, uint16_t asc, bool info_valid,
		      uint64_t info, bool sks_valid, const uint8_t sks[3])
{
	struct mimo_scsi_task *t = p->task;

	t->status = MIMO_SCSI_STATUS_CHECK_CONDITION;
	t->sense_len = scsi_build_sense(t->sense, want_desc(p), key, asc, info_valid, info,
					sks_valid, sks);
	/* Nothing of a failed command reaches the initiator. */
	scsi_task_set_transfer(p, 0, 0);
}

void scsi_task_sense(struct scsi_task_priv *p, uint8_t key, uint16_t asc)
{
	set_check(p, key, asc, false, 0, false, NULL);
}

void scsi_task_sense_info(struct scsi_task_priv *p, uint8_t key, uint16_t asc, uint64_t info)
{
	set_check(p, key, asc, true, info, false, NULL);
}

void scsi_task_invalid_field(struct scsi_task_priv *p, bool cd, uint16_t byte, int bit)
{
	uint8_t sks[3];

	/* SKSV, C/D (the error is in the CDB, not the parameter list), BPV + bit pointer. */
	sks[0] = 0x80 | (cd ? 0x40 : 0) | (bit >= 0 ? 0x08 | (bit & 7) : 0);
	scsi_put16(sks + 1, byte);
	set_check(p, MIMO_SCSI_SENSE_ILLEGAL_REQUEST,
		  cd ? MIMO_SCSI_ASC_INVALID_FIELD_IN_CDB
		     : MIMO_SCSI_ASC_INVALID_FIELD_IN_PARAM_LIST,
		  false, 0, true, sks);
}

void scsi_task_fail(struct scsi_task_priv *p, uint8_t key, uint16_t asc)
{
	scsi_task_sense(p, key, asc);
	scsi_task_done_later(p);
}

void scsi_task_fail_field(struct scsi_task_priv *p, uint16_t byte, int bit)
{
	scsi_task_invalid_field(p, true, byte, bit);
	scsi_task_done_later(p);
}

void scsi_task_fail_lba(struct scsi_task_priv *p)
{
	scsi_task_fail(p, MIMO_SCSI_SENSE_ILLEGAL_REQUEST, MIMO_SCSI_ASC_LBA_OUT_OF_RANGE);
}

void scsi_task_bdev_error(struct scsi_task_priv *p, int rc, bool write, uint64_t lba)
{
	switch (rc) {
	case -EBADF:
		scsi_task_sense(p, MIMO_SCSI_SENSE_DATA_PROTECT, MIMO_SCSI_ASC_WRITE_PROTECTED);
		break;
	case -ENODEV: /* the bdev is going away */
		scsi_task_sense(p, MIMO_SCSI_SENSE_ILLEGAL_REQUEST,
				MIMO_SCSI_ASC_LUN_NOT_SUPPORTED);
		break;
	case -EINVAL: /* the capacity shrank under the command */
		scsi_task_sense(p, MIMO_SCSI_SENSE_ILLEGAL_REQUEST, MIMO_SCSI_ASC_LBA_OUT_OF_RANGE);
		break;
	case -ENOTSUP:
		scsi_task_sense(p, MIMO_SCSI_SENSE_ILLEGAL_REQUEST, MIMO_SCSI_ASC_INVALID_OPCODE);
		break;
	default:
		/* The device failed the I/O: a medium error, at the first block of the I/O (the
		 * bdev does not say which block failed). */
		scsi_task_sense_info(p, MIMO_SCSI_SENSE_MEDIUM_ERROR,
				     write ? MIMO_SCSI_ASC_WRITE_ERROR
					   : MIMO_SCSI_ASC_UNRECOVERED_READ_ERROR,
				     lba);
		break;
	}
}
