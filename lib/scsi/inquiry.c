/*
 * INQUIRY: the standard data and the vital product data pages 00h (supported pages), 80h
 * (unit serial number), 83h (device identification), B0h (block limits), B1h (block device
 * characteristics) and B2h (logical block provisioning).
 *
 * Every identifier derives from the bdev's UUID, so a LUN keeps its identity across restarts
 * (mimo_tgt saves UUIDs with the configuration) and whichever device or LUN number it is
 * exported under.
 */
#include <string.h>

#include "scsi_internal.h"
#include "uuid.h"

#define STD_INQUIRY_LEN 96

/* SPC-4 4.4.1: text fields hold 20h-7Eh, left-aligned, padded with spaces. */
static void put_ascii(uint8_t *dst, size_t len, const char *src)
{
	size_t i = 0;

	for (; src != NULL && src[i] != '\0' && i < len; i++)
		dst[i] = (src[i] >= 0x20 && src[i] <= 0x7e) ? (uint8_t)src[i] : ' ';
	for (; i < len; i++)
		dst[i] = ' ';
}

static size_t standard_data(uint8_t *b, const struct scsi_lun *lun)
{
	memset(b, 0, STD_INQUIRY_LEN);
	/* A LUN that does not exist: peripheral qualifier 011b, device type 1Fh. */
	b[0] = lun != NULL ? 0x00 : 0x7f;
	b[2] = 0x06;		    /* VERSION: SPC-4 */
	b[3] = 0x10 | 0x02;	    /* HISUP, RESPONSE DATA FORMAT 2 */
	b[4] = STD_INQUIRY_LEN - 5; /* ADDITIONAL LENGTH */
	b[7] = 0x02;		    /* CMDQUE */
	put_ascii(b + 8, 8, SCSI_VENDOR);
	put_ascii(b + 16, 16, lun != NULL ? mimo_bdev_get_product_name(lun->bdev) : NULL);
	put_ascii(b + 32, 4, SCSI_REVISION);
	/* Version descriptors: SAM-5, SPC-4, SBC-3 (no version claimed). */
	scsi_put16(b + 58, 0x00a0);
	scsi_put16(b + 60, 0x0460);
	scsi_put16(b + 62, 0x04c0);
	return STD_INQUIRY_LEN;
}

static const uint8_t g_vpd_pages[] = { 0x00, 0x80, 0x83, 0xb0, 0xb1, 0xb2 };

/* The serial number: the UUID's 32 hexadecimal digits. */
static void serial(const struct scsi_lun *lun, char out[33])
{
	static const char hex[] = "0123456789abcdef";

	for (int i = 0; i < 16; i++) {
		out[2 * i] = hex[lun->uuid[i] >> 4];
		out[2 * i + 1] = hex[lun->uuid[i] & 0x0f];
	}
	out[32] = '\0';
}

static size_t designator(uint8_t *b, uint8_t code_set, uint8_t assoc, uint8_t type,
			 const void *value, uint8_t len)
{
	b[0] = code_set;		     /* PROTOCOL IDENTIFIER 0, CODE SET */
	b[1] = (uint8_t)(assoc << 4 | type); /* PIV 0, ASSOCIATION, DESIGNATOR TYPE */
	b[2] = 0;
	b[3] = len;
	memcpy(b + 4, value, len);
	return 4u + len;
}

static size_t device_identification(uint8_t *b, const struct scsi_lun *lun)
{
	uint8_t naa[8], port[4] = { 0, 0, 0, 1 };
	char t10[8 + MIMO_UUID_STR_LEN];
	uint64_t v;
	size_t n = 4;

	/*
	 * NAA 3h (locally assigned): 60 bits of the UUID, both halves folded so that none of
	 * it is lost to the version nibble. mimo owns no IEEE OUI, so NAA 5h/6h are not ours
	 * to use.
	 */
	v = scsi_be64(lun->uuid) ^ scsi_be64(lun->uuid + 8);
	v = (v & 0x0fffffffffffffffULL) | 0x3000000000000000ULL;
	scsi_put64(naa, v);
	n += designator(b + n, 0x1, 0, 0x3, naa, sizeof(naa));
	/* T10 vendor ID: the vendor, then the UUID as text. */
	memcpy(t10, SCSI_VENDOR, 8);
	mimo_uuid_format(lun->uuid, t10 + 8);
	n += designator(b + n, 0x2, 0, 0x1, t10, 8 + MIMO_UUID_STR_LEN - 1);
	/* Relative target port 1: the device has one port. */
	n += designator(b + n, 0x1, 1, 0x4, port, sizeof(port));
	return n;
}

static size_t block_limits(uint8_t *b, const struct scsi_lun *lun)
{
	memset(b + 4, 0, 60);
	b[4] = 0;		    /* WSNZ 0: WRITE SAME with 0 blocks runs to the last LBA */
	b[5] = SCSI_MAX_CAW_BLOCKS; /* MAXIMUM COMPARE AND WRITE LENGTH */
	/* MAXIMUM and OPTIMAL TRANSFER LENGTH 0: no limit of the layer's; the front-end's
	 * transport has its own. */
	if (lun->can_unmap) {
		scsi_put32(b + 20, UINT32_MAX); /* MAXIMUM UNMAP LBA COUNT: no limit */
		scsi_put32(b + 24, SCSI_MAX_UNMAP_DESCRIPTORS);
	}
	/* MAXIMUM WRITE SAME LENGTH 0: no limit (the layer writes in steps). */
	return 64;
}

static size_t vpd_page(uint8_t *b, const struct scsi_lun *lun, uint8_t page)
{
	size_t n;

	b[0] = 0x00;
	b[1] = page;
	b[2] = 0;
	switch (page) {
	case 0x00:
		memcpy(b + 4, g_vpd_pages, sizeof(g_vpd_pages));
		n = 4 + sizeof(g_vpd_pages);
		break;
	case 0x80: {
		char s[33];

		serial(lun, s);
		memcpy(b + 4, s, 32);
		n = 4 + 32;
		break;
	}
	case 0x83:
		n = device_identification(b, lun);
		break;
	case 0xb0:
		n = block_limits(b, lun);
		break;
	case 0xb1:
		memset(b + 4, 0, 60);
		scsi_put16(b + 4, 0x0001); /* MEDIUM ROTATION RATE: non-rotating medium */
		n = 64;
		break;
	case 0xb2:
		memset(b + 4, 0, 4);
		if (lun->can_unmap) {
			b[5] = 0x80 | 0x40 | 0x20; /* LBPU, LBPWS, LBPWS10; LBPRZ 0 */
			b[6] = 0x02;		   /* PROVISIONING TYPE: thin */
		}
		n = 8;
		break;
	default:
		return 0;
	}
	scsi_put16(b + 2, (uint16_t)(n - 4));
	return n;
}

void scsi_exec_inquiry(struct scsi_task_priv *p)
{
	const uint8_t *cdb = p->task->cdb;
	uint32_t alloc = scsi_be16(cdb + 3);
	uint8_t buf[256];
	size_t n;

	if (!(cdb[1] & 0x01)) {
		/* EVPD 0 with a page code is an error (SPC-4 6.6.1). */
		if (cdb[2] != 0) {
			scsi_task_fail_field(p, 2, 7);
			return;
		}
		n = standard_data(buf, p->lun);
	} else {
		n = vpd_page(buf, p->lun, cdb[2]);
		if (n == 0) {
			scsi_task_fail_field(p, 2, 7);
			return;
		}
	}
	scsi_task_data_in(p, buf, n, alloc);
}

void scsi_inquiry_no_lun(struct scsi_task_priv *p)
{
	const uint8_t *cdb = p->task->cdb;
	uint8_t buf[STD_INQUIRY_LEN];

	/* Only the standard data exists for a LUN that does not: no VPD pages to describe. */
	if (cdb[1] & 0x01) {
		scsi_task_fail(p, MIMO_SCSI_SENSE_ILLEGAL_REQUEST, MIMO_SCSI_ASC_LUN_NOT_SUPPORTED);
		return;
	}
	if (cdb[2] != 0) {
		scsi_task_fail_field(p, 2, 7);
		return;
	}
	scsi_task_data_in(p, buf, standard_data(buf, NULL), scsi_be16(cdb + 3));
}
