/*
 * The SCSI commands against a LUN on a malloc bdev, on real reactors: each command's data,
 * sense data and residuals, boundary LBAs, zero and odd transfer lengths.
 */
#include "scsi_ut.h"

#define BS     512u
#define BLOCKS 2048u

static struct mimo_scsi_dev *g_dev;

static int setup(void **state)
{
	static const char *const bdevs[] = { "M0" };

	if (ut_setup_reactors(state) != 0)
		return -1;
	assert_int_equal(ut_malloc("M0", BLOCKS, BS), 0);
	g_dev = ut_dev_create("d0", bdevs, NULL, 1);
	ut_clear_ua(g_dev, 0);
	return 0;
}

static int teardown(void **state)
{
	ut_dev_destroy(g_dev);
	assert_int_equal(ut_delete_bdev("M0"), 0);
	return ut_teardown_reactors(state);
}

static uint8_t run_in(struct ut_cmd *c, const uint8_t *cdb, size_t len, void *buf, uint32_t n)
{
	return ut_run(c, g_dev, 0, cdb, len, MIMO_SCSI_DIR_FROM_DEV, buf, n);
}

static uint8_t run_out(struct ut_cmd *c, const uint8_t *cdb, size_t len, void *buf, uint32_t n)
{
	return ut_run(c, g_dev, 0, cdb, len, MIMO_SCSI_DIR_TO_DEV, buf, n);
}

static uint8_t run_none(struct ut_cmd *c, const uint8_t *cdb, size_t len)
{
	return ut_run(c, g_dev, 0, cdb, len, MIMO_SCSI_DIR_NONE, NULL, 0);
}

/* --- INQUIRY --------------------------------------------------------------------------------- */

static void inquiry(struct ut_cmd *c, uint8_t evpd, uint8_t page, uint16_t alloc, uint8_t *buf)
{
	uint8_t cdb[6] = { MIMO_SCSI_OP_INQUIRY,  evpd,		  page,
			   (uint8_t)(alloc >> 8), (uint8_t)alloc, 0 };

	memset(buf, 0xee, alloc);
	ut_prep(c, g_dev, 0, cdb, 6, MIMO_SCSI_DIR_FROM_DEV, buf, alloc, alloc, 1);
	ut_start(c, 0);
	ut_finish(c);
}

static void test_inquiry_standard(void **state)
{
	uint8_t buf[512];
	struct ut_cmd c;

	(void)state;
	inquiry(&c, 0, 0, 260, buf);
	assert_int_equal(c.task.status, MIMO_SCSI_STATUS_GOOD);
	assert_int_equal(c.task.data_transferred, 96);
	assert_int_equal(c.task.residual_kind, MIMO_SCSI_RESIDUAL_UNDERFLOW);
	assert_int_equal(c.task.residual, 260 - 96);
	assert_int_equal(buf[0], 0x00); /* connected direct-access device */
	assert_int_equal(buf[2], 0x06); /* SPC-4 */
	assert_int_equal(buf[3] & 0x0f, 2);
	assert_int_equal(buf[4], 91);
	assert_int_equal(buf[7] & 0x02, 0x02); /* CMDQUE */
	assert_memory_equal(buf + 8, "MIMO    ", 8);
	assert_memory_equal(buf + 16, "Malloc disk     ", 16);
	for (int i = 8; i < 36; i++)
		assert_true(buf[i] >= 0x20 && buf[i] <= 0x7e);
	/* SBC-3 claimed among the version descriptors. */
	assert_int_equal(buf[62] << 8 | buf[63], 0x04c0);
	assert_int_equal(buf[96], 0xee); /* nothing past the data */

	/* Every allocation length from 5 to 255: the data truncated, no error; 511 and 512
	 * give the same bytes (a 16-bit allocation length). */
	for (uint16_t a = 5; a < 256; a++) {
		inquiry(&c, 0, 0, a, buf);
		assert_int_equal(c.task.status, MIMO_SCSI_STATUS_GOOD);
		assert_int_equal(c.task.data_transferred, a < 96 ? a : 96);
	}
	inquiry(&c, 0, 0, 512, buf);
	assert_int_equal(c.task.data_transferred, 96);

	/* A smaller data-in buffer than the allocation length: overflow. */
	{
		uint8_t cdb[6] = { MIMO_SCSI_OP_INQUIRY, 0, 0, 0, 96, 0 };

		ut_prep(&c, g_dev, 0, cdb, 6, MIMO_SCSI_DIR_FROM_DEV, buf, 40, 40, 1);
		ut_start(&c, 0);
		assert_int_equal(ut_finish(&c), MIMO_SCSI_STATUS_GOOD);
		assert_int_equal(c.task.data_transferred, 40);
		assert_int_equal(c.task.residual_kind, MIMO_SCSI_RESIDUAL_OVERFLOW);
		assert_int_equal(c.task.residual, 56);
	}

	/* EVPD 0 with a page code; CMDDT (obsolete); a page that does not exist. */
	inquiry(&c, 0, 1, 255, buf);
	ut_expect_field(&c.task, 2, 7);
	inquiry(&c, 2, 0, 255, buf);
	ut_expect_field(&c.task, 1, 1);
	inquiry(&c, 1, 0x42, 255, buf);
	ut_expect_field(&c.task, 2, 7);
	assert_int_equal(c.task.data_transferred, 0);
	assert_int_equal(c.task.residual_kind, MIMO_SCSI_RESIDUAL_UNDERFLOW);
	assert_int_equal(c.task.residual, 255);
}

static void test_inquiry_vpd(void **state)
{
	uint8_t buf[256], naa[8];
	struct ut_cmd c;
	char serial[33], uuid[37];
	const uint8_t *u = mimo_bdev_get_uuid(mimo_bdev_get_by_name("M0"));
	size_t off;
	int seen = 0;

	(void)state;
	inquiry(&c, 1, 0x00, 255, buf);
	assert_int_equal(c.task.status, MIMO_SCSI_STATUS_GOOD);
	assert_int_equal(buf[1], 0x00);
	assert_int_equal(buf[3], 6);
	assert_memory_equal(buf + 4, ((uint8_t[]){ 0x00, 0x80, 0x83, 0xb0, 0xb1, 0xb2 }), 6);
	assert_int_equal(c.task.data_transferred, 10);
	/* Every page the list names can be read. */
	for (int i = 0; i < 6; i++) {
		uint8_t page = buf[4 + i];
		uint8_t b2[256];
		struct ut_cmd c2;

		inquiry(&c2, 1, page, 255, b2);
		assert_int_equal(c2.task.status, MIMO_SCSI_STATUS_GOOD);
		assert_int_equal(b2[1], page);
		assert_int_equal(c2.task.data_transferred, (b2[2] << 8 | b2[3]) + 4);
	}

	/* Unit serial number: the UUID's hex digits. */
	for (int i = 0; i < 16; i++)
		snprintf(serial + 2 * i, 3, "%02x", u[i]);
	inquiry(&c, 1, 0x80, 255, buf);
	assert_int_equal(buf[3], 32);
	assert_memory_equal(buf + 4, serial, 32);

	/* Device identification: NAA locally assigned from the UUID, T10 vendor ID with the
	 * UUID, relative target port 1. */
	put64(naa, (be64(u) ^ be64(u + 8)) & 0x0fffffffffffffffULL);
	naa[0] |= 0x30;
	snprintf(uuid, sizeof(uuid),
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1],
		 u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14],
		 u[15]);
	inquiry(&c, 1, 0x83, 255, buf);
	for (off = 4; off < 4u + (buf[2] << 8 | buf[3]); off += 4u + buf[off + 3]) {
		uint8_t type = buf[off + 1] & 0x0f, assoc = (buf[off + 1] >> 4) & 3;

		if (type == 3) {
			assert_int_equal(assoc, 0);
			assert_int_equal(buf[off] & 0x0f, 1);
			assert_int_equal(buf[off + 3], 8);
			assert_memory_equal(buf + off + 4, naa, 8);
			seen |= 1;
		} else if (type == 1) {
			assert_int_equal(buf[off] & 0x0f, 2);
			assert_int_equal(buf[off + 3], 44);
			assert_memory_equal(buf + off + 4, "MIMO    ", 8);
			assert_memory_equal(buf + off + 12, uuid, 36);
			seen |= 2;
		} else if (type == 4) {
			assert_int_equal(assoc, 1);
			assert_int_equal(buf[off + 7], 1);
			seen |= 4;
		}
	}
	assert_int_equal(seen, 7);

	/* Block limits: SBC-3's length, unmap limits (malloc unmaps). */
	inquiry(&c, 1, 0xb0, 255, buf);
	assert_int_equal(buf[3], 0x3c);
	assert_int_equal(c.task.data_transferred, 64);
	assert_int_equal(buf[4] & 1, 0); /* WSNZ */
	assert_int_equal(buf[5], 255);	 /* MAXIMUM COMPARE AND WRITE LENGTH */
	assert_int_equal(be32(buf + 20), UINT32_MAX);
	assert_int_equal(be32(buf + 24), 4095);
	/* Block device characteristics: non-rotating. */
	inquiry(&c, 1, 0xb1, 255, buf);
	assert_int_equal(buf[4] << 8 | buf[5], 1);
	/* Logical block provisioning: LBPU, LBPWS, LBPWS10, thin, LBPRZ 0. */
	inquiry(&c, 1, 0xb2, 255, buf);
	assert_int_equal(buf[5], 0xe0);
	assert_int_equal(buf[6] & 0x07, 2);

	/* A LUN that does not exist. */
	{
		uint8_t cdb[6] = { MIMO_SCSI_OP_INQUIRY, 0, 0, 0, 96, 0 };

		assert_int_equal(ut_run(&c, g_dev, 7, cdb, 6, MIMO_SCSI_DIR_FROM_DEV, buf, 96),
				 MIMO_SCSI_STATUS_GOOD);
		assert_int_equal(buf[0], 0x7f);
		cdb[1] = 1;
		assert_int_equal(ut_run(&c, g_dev, 7, cdb, 6, MIMO_SCSI_DIR_FROM_DEV, buf, 96),
				 MIMO_SCSI_STATUS_CHECK_CONDITION);
		ut_expect_sense(&c.task, MIMO_SCSI_SENSE_ILLEGAL_REQUEST,
				MIMO_SCSI_ASC_LUN_NOT_SUPPORTED);
	}
}

/* --- READ CAPACITY, REPORT LUNS, TEST UNIT READY, REQUEST SENSE ------------------------------ */

static void test_read_capacity(void **state)
{
	uint8_t cdb[16], buf[64];
	struct ut_cmd c;

	(void)state;
	cdb10(cdb, MIMO_SCSI_OP_READ_CAPACITY10, 0, 0, 0);
	assert_int_equal(run_in(&c, cdb, 10, buf, 8), MIMO_SCSI_STATUS_GOOD);
	assert_int_equal(be32(buf), BLOCKS - 1);
	assert_int_equal(be32(buf + 4), BS);
	/* PMI 0 with an LBA is an error. */
	cdb10(cdb, MIMO_SCSI_OP_READ_CAPACITY10, 0, 5, 0);
	run_in(&c, cdb, 10, buf, 8);
	ut_expect_field(&c.task, 2, 7);

	memset(cdb, 0, 16);
	cdb[0] = MIMO_SCSI_OP_SERVICE_ACTION_IN16;
	cdb[1] = MIMO_SCSI_SAI_READ_CAPACITY16;
	put32(cdb + 10, 32);
	assert_int_equal(run_in(&c, cdb, 16, buf, 32), MIMO_SCSI_STATUS_GOOD);
	assert_int_equal(be64(buf), BLOCKS - 1);
	assert_int_equal(be32(buf + 8), BS);
	assert_int_equal(buf[12], 0);	 /* no protection */
	assert_int_equal(buf[13], 0);	 /* one logical block per physical block */
	assert_int_equal(buf[14], 0x80); /* LBPME, LBPRZ 0 */
	/* Allocation lengths 0-15 are not errors. */
	for (uint32_t a = 0; a < 16; a++) {
		put32(cdb + 10, a);
		assert_int_equal(run_in(&c, cdb, 16, buf, a), MIMO_SCSI_STATUS_GOOD);
		assert_int_equal(c.task.data_transferred, a);
	}
	/* An unknown service action of SERVICE ACTION IN(16). */
	cdb[1] = 0x1f;
	run_in(&c, cdb, 16, buf, 32);
	ut_expect_field(&c.task, 1, 4);
}

static void test_report_luns(void **state)
{
	uint8_t cdb[12] = { MIMO_SCSI_OP_REPORT_LUNS }, buf[64];
	struct ut_cmd c;

	(void)state;
	put32(cdb + 6, sizeof(buf));
	memset(buf, 0xee, sizeof(buf));
	assert_int_equal(run_in(&c, cdb, 12, buf, sizeof(buf)), MIMO_SCSI_STATUS_GOOD);
	assert_int_equal(be32(buf), 8);
	assert_int_equal(c.task.data_transferred, 16);
	assert_memory_equal(buf + 8, ((uint8_t[]){ 0, 0, 0, 0, 0, 0, 0, 0 }), 8);
	/* Also from a LUN that does not exist (Linux scans through LUN 0 or any). */
	assert_int_equal(ut_run(&c, g_dev, 9, cdb, 12, MIMO_SCSI_DIR_FROM_DEV, buf, sizeof(buf)),
			 MIMO_SCSI_STATUS_GOOD);
	assert_int_equal(be32(buf), 8);
	/* Well-known LUNs only: none. */
	cdb[2] = 1;
	assert_int_equal(run_in(&c, cdb, 12, buf, sizeof(buf)), MIMO_SCSI_STATUS_GOOD);
	assert_int_equal(be32(buf), 0);
	cdb[2] = 3;
	run_in(&c, cdb, 12, buf, sizeof(buf));
	ut_expect_field(&c.task, 2, 7);
	/* An allocation length under 16. */
	cdb[2] = 0;
	put32(cdb + 6, 15);
	run_in(&c, cdb, 12, buf, 15);
	ut_expect_field(&c.task, 6, 7);
}

static void test_tur_request_sense_opcodes(void **state)
{
	uint8_t cdb[16] = { 0 }, buf[64];
	struct ut_cmd c;

	(void)state;
	assert_int_equal(run_none(&c, cdb, 6), MIMO_SCSI_STATUS_GOOD);
	/* NACA in the control byte: no ACA here. */
	cdb[5] = 0x04;
	run_none(&c, cdb, 6);
	ut_expect_field(&c.task, 5, 2);
	/* Reserved bits of TEST UNIT READY. */
	cdb[5] = 0;
	cdb[3] = 0x10;
	run_none(&c, cdb, 6);
	ut_expect_field(&c.task, 3, 4);

	/* An operation code nobody implements; one to a LUN that does not exist. */
	memset(cdb, 0, 16);
	cdb[0] = 0xc5;
	run_none(&c, cdb, 16);
	ut_expect_sense(&c.task, MIMO_SCSI_SENSE_ILLEGAL_REQUEST, MIMO_SCSI_ASC_INVALID_OPCODE);
	assert_int_equal(c.task.sense_len, 18);
	assert_int_equal(c.task.sense[0], 0x70);
	assert_int_equal(c.task.sense[7], 10);
	cdb[0] = 0;
	assert_int_equal(ut_run(&c, g_dev, 200, cdb, 6, MIMO_SCSI_DIR_NONE, NULL, 0),
			 MIMO_SCSI_STATUS_CHECK_CONDITION);
	ut_expect_sense(&c.task, MIMO_SCSI_SENSE_ILLEGAL_REQUEST, MIMO_SCSI_ASC_LUN_NOT_SUPPORTED);
	assert_int_equal(ut_run(&c, g_dev, 4096, cdb, 6, MIMO_SCSI_DIR_NONE, NULL, 0),
			 MIMO_SCSI_STATUS_CHECK_CONDITION);

	/* REQUEST SENSE: nothing pending; fixed and descriptor formats; truncation. */
	memset(cdb, 0, 16);
	cdb[0] = MIMO_SCSI_OP_REQUEST_SENSE;
	cdb[4] = 252;
	assert_int_equal(run_in(&c, cdb, 6, buf, 252), MIMO_SCSI_STATUS_GOOD);
	assert_int_equal(c.task.data_transferred, 18);
	assert_int_equal(buf[0], 0x70);
	assert_int_equal(buf[2], 0);
	cdb[1] = 1;
	assert_int_equal(run_in(&c, cdb, 6, buf, 252), MIMO_SCSI_STATUS_GOOD);
	assert_int_equal(c.task.data_transferred, 8);
	assert_int_equal(buf[0], 0x72);
	cdb[1] = 0;
	cdb[4] = 4;
	assert_int_equal(run_in(&c, cdb, 6, buf, 4), MIMO_SCSI_STATUS_GOOD);
	assert_int_equal(c.task.data_transferred, 4);
	/* To a LUN that does not exist: its sense says so, with GOOD status. */
	cdb[4] = 18;
	assert_int_equal(ut_run(&c, g_dev, 3, cdb, 6, MIMO_SCSI_DIR_FROM_DEV, buf, 18),
			 MIMO_SCSI_STATUS_GOOD);
	assert_int_equal(buf[2], MIMO_SCSI_SENSE_ILLEGAL_REQUEST);
	assert_int_equal(buf[12], 0x25);
}

static void test_report_supported(void **state)
{
	uint8_t cdb[12] = { MIMO_SCSI_OP_MAINTENANCE_IN, MIMO_SCSI_MI_REPORT_SUPPORTED_OPCODES };
	uint8_t buf[2048];
	struct ut_cmd c;
	uint32_t len;
	int n = 0, have_read10 = 0;

	(void)state;
	put32(cdb + 6, sizeof(buf));
	assert_int_equal(run_in(&c, cdb, 12, buf, sizeof(buf)), MIMO_SCSI_STATUS_GOOD);
	len = be32(buf);
	assert_int_equal(c.task.data_transferred, len + 4);
	assert_int_equal(len % 8, 0);
	for (uint32_t off = 4; off < len + 4; off += 8, n++) {
		/* SERVACTV clear means service action 0; CTDP clear without RCTD. */
		if (!(buf[off + 5] & 1))
			assert_int_equal(buf[off + 2] << 8 | buf[off + 3], 0);
		assert_int_equal(buf[off + 5] & 2, 0);
		if (buf[off] == MIMO_SCSI_OP_READ10) {
			have_read10 = 1;
			assert_int_equal(buf[off + 7], 10);
		}
	}
	assert_true(n >= 30);
	assert_true(have_read10);
	/* With timeouts descriptors. */
	cdb[2] = 0x80;
	assert_int_equal(run_in(&c, cdb, 12, buf, sizeof(buf)), MIMO_SCSI_STATUS_GOOD);
	assert_int_equal(be32(buf) % 20, 0);
	assert_int_equal(buf[4 + 5] & 2, 2);
	assert_int_equal(buf[4 + 8] << 8 | buf[4 + 9], 0x0a);

	/* One command: READ(10) with DPO and FUA in its usage data. */
	cdb[2] = 1;
	cdb[3] = MIMO_SCSI_OP_READ10;
	assert_int_equal(run_in(&c, cdb, 12, buf, sizeof(buf)), MIMO_SCSI_STATUS_GOOD);
	assert_int_equal(buf[1] & 7, 3);
	assert_int_equal(buf[2] << 8 | buf[3], 10);
	assert_int_equal(buf[4], MIMO_SCSI_OP_READ10);
	assert_int_equal(buf[5] & 0x18, 0x18);
	assert_int_equal(buf[5] & 0xe0, 0); /* no RDPROTECT */
	/* Not supported: SUPPORT 001b. */
	cdb[3] = 0xc5;
	assert_int_equal(run_in(&c, cdb, 12, buf, sizeof(buf)), MIMO_SCSI_STATUS_GOOD);
	assert_int_equal(buf[1] & 7, 1);
	/* An opcode with service actions asked as one without, and the reverse. */
	cdb[3] = MIMO_SCSI_OP_SERVICE_ACTION_IN16;
	run_in(&c, cdb, 12, buf, sizeof(buf));
	ut_expect_field(&c.task, 2, 2);
	cdb[2] = 2;
	cdb[5] = MIMO_SCSI_SAI_READ_CAPACITY16;
	assert_int_equal(run_in(&c, cdb, 12, buf, sizeof(buf)), MIMO_SCSI_STATUS_GOOD);
	assert_int_equal(buf[1] & 7, 3);
	assert_int_equal(buf[4], MIMO_SCSI_OP_SERVICE_ACTION_IN16);
	assert_int_equal(buf[5], MIMO_SCSI_SAI_READ_CAPACITY16);
	cdb[3] = MIMO_SCSI_OP_READ10;
	run_in(&c, cdb, 12, buf, sizeof(buf));
	ut_expect_field(&c.task, 2, 2);

	/* REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS. */
	memset(cdb, 0, sizeof(cdb));
	cdb[0] = MIMO_SCSI_OP_MAINTENANCE_IN;
	cdb[1] = MIMO_SCSI_MI_REPORT_SUPPORTED_TMFS;
	put32(cdb + 6, 16);
	assert_int_equal(run_in(&c, cdb, 12, buf, 16), MIMO_SCSI_STATUS_GOOD);
	assert_int_equal(c.task.data_transferred, 4);
	assert_int_equal(buf[0], 0xde);
}

/* --- READ / WRITE ------------------------------------------------------------------------------
 */

static void test_read_write(void **state)
{
	static const uint8_t ops[][2] = { { MIMO_SCSI_OP_READ6, MIMO_SCSI_OP_WRITE6 },
					  { MIMO_SCSI_OP_READ10, MIMO_SCSI_OP_WRITE10 },
					  { MIMO_SCSI_OP_READ12, MIMO_SCSI_OP_WRITE12 },
					  { MIMO_SCSI_OP_READ16, MIMO_SCSI_OP_WRITE16 } };
	uint8_t *w = malloc(256 * BS), *r = malloc(256 * BS), cdb[16];
	struct ut_cmd c;

	(void)state;
	for (unsigned v = 0; v < 4; v++) {
		for (uint32_t n = 1; n <= 8; n += 7) {
			uint64_t lbas[] = { 0, 100, BLOCKS - n };

			for (unsigned k = 0; k < 3; k++) {
				uint64_t lba = lbas[k];

				fill(w, n * BS, v * 31 + n + k);
				memset(cdb, 0, 16);
				cdb[0] = ops[v][1];
				if (v == 0) {
					cdb[1] = (uint8_t)(lba >> 16);
					cdb[2] = (uint8_t)(lba >> 8);
					cdb[3] = (uint8_t)lba;
					cdb[4] = (uint8_t)n;
				} else if (v == 1) {
					cdb10(cdb, ops[v][1], 0, (uint32_t)lba, (uint16_t)n);
				} else if (v == 2) {
					cdb12(cdb, ops[v][1], 0, (uint32_t)lba, n);
				} else {
					cdb16(cdb, ops[v][1], 0, lba, n);
				}
				/* Over three iovecs: the layer passes them to the bdev. */
				ut_prep(&c, g_dev, 0, cdb, 16, MIMO_SCSI_DIR_TO_DEV, w, n * BS,
					n * BS, n > 2 ? 3 : 1);
				ut_start(&c, 0);
				assert_int_equal(ut_finish(&c), MIMO_SCSI_STATUS_GOOD);
				assert_int_equal(c.task.data_transferred, n * BS);
				assert_int_equal(c.task.residual_kind, MIMO_SCSI_RESIDUAL_NONE);
				cdb[0] = ops[v][0];
				memset(r, 0, n * BS);
				ut_prep(&c, g_dev, 0, cdb, 16, MIMO_SCSI_DIR_FROM_DEV, r, n * BS,
					n * BS, n > 2 ? 3 : 1);
				ut_start(&c, mimo_reactor_count() - 1);
				assert_int_equal(ut_finish(&c), MIMO_SCSI_STATUS_GOOD);
				assert_memory_equal(r, w, n * BS);
			}
		}
	}

	/* READ(6) with 0 blocks reads 256. */
	memset(cdb, 0, 16);
	cdb[0] = MIMO_SCSI_OP_READ6;
	assert_int_equal(run_in(&c, cdb, 6, r, 256 * BS), MIMO_SCSI_STATUS_GOOD);
	assert_int_equal(c.task.data_transferred, 256 * BS);

	/* 0 blocks: GOOD, nothing moved; past the end: still LBA OUT OF RANGE. */
	cdb10(cdb, MIMO_SCSI_OP_READ10, 0, 0, 0);
	assert_int_equal(run_in(&c, cdb, 10, NULL, 0), MIMO_SCSI_STATUS_GOOD);
	cdb10(cdb, MIMO_SCSI_OP_READ10, 0, BLOCKS, 0);
	assert_int_equal(run_in(&c, cdb, 10, NULL, 0), MIMO_SCSI_STATUS_GOOD);
	cdb10(cdb, MIMO_SCSI_OP_READ10, 0, BLOCKS + 1, 0);
	run_in(&c, cdb, 10, NULL, 0);
	ut_expect_sense(&c.task, MIMO_SCSI_SENSE_ILLEGAL_REQUEST, MIMO_SCSI_ASC_LBA_OUT_OF_RANGE);
	cdb10(cdb, MIMO_SCSI_OP_WRITE10, 0, BLOCKS + 1, 0);
	run_out(&c, cdb, 10, NULL, 0);
	ut_expect_sense(&c.task, MIMO_SCSI_SENSE_ILLEGAL_REQUEST, MIMO_SCSI_ASC_LBA_OUT_OF_RANGE);

	/* Out of range: one past the end, all but one block past, LBA 2^31, 2^64-1. */
	for (uint32_t n = 1; n <= 4; n++) {
		uint64_t bad[] = { BLOCKS + 1 - n, 0x80000000ULL, UINT64_MAX };

		for (unsigned k = 0; k < 3; k++) {
			cdb16(cdb, MIMO_SCSI_OP_READ16, 0, bad[k], n);
			run_in(&c, cdb, 16, r, n * BS);
			ut_expect_sense(&c.task, MIMO_SCSI_SENSE_ILLEGAL_REQUEST,
					MIMO_SCSI_ASC_LBA_OUT_OF_RANGE);
			assert_int_equal(c.task.data_transferred, 0);
			cdb16(cdb, MIMO_SCSI_OP_WRITE16, 0, bad[k], n);
			run_out(&c, cdb, 16, w, n * BS);
			ut_expect_sense(&c.task, MIMO_SCSI_SENSE_ILLEGAL_REQUEST,
					MIMO_SCSI_ASC_LBA_OUT_OF_RANGE);
		}
		cdb16(cdb, MIMO_SCSI_OP_READ16, 0, BLOCKS - 1, n + 1);
		run_in(&c, cdb, 16, r, (n + 1) * BS);
		ut_expect_sense(&c.task, MIMO_SCSI_SENSE_ILLEGAL_REQUEST,
				MIMO_SCSI_ASC_LBA_OUT_OF_RANGE);
	}
	/* The LBA of READ(6) is 21 bits: 1FFFFFh is past this LUN. */
	memset(cdb, 0, 16);
	cdb[0] = MIMO_SCSI_OP_READ6;
	cdb[1] = 0x1f;
	cdb[2] = 0xff;
	cdb[3] = 0xff;
	cdb[4] = 1;
	run_in(&c, cdb, 6, r, BS);
	ut_expect_sense(&c.task, MIMO_SCSI_SENSE_ILLEGAL_REQUEST, MIMO_SCSI_ASC_LBA_OUT_OF_RANGE);

	/* DPO, FUA, FUA_NV are accepted (and FUA flushes); RDPROTECT/WRPROTECT are not. */
	for (uint8_t f = 0; f < 0x20; f += 0x02) {
		if (f & 0x04)
			continue; /* RARC: reads only */
		cdb10(cdb, MIMO_SCSI_OP_WRITE10, f, 7, 1);
		assert_int_equal(run_out(&c, cdb, 10, w, BS), MIMO_SCSI_STATUS_GOOD);
	}
	for (uint8_t f = 0; f < 0x20; f += 0x02) {
		cdb10(cdb, MIMO_SCSI_OP_READ10, f, 7, 1);
		assert_int_equal(run_in(&c, cdb, 10, r, BS), MIMO_SCSI_STATUS_GOOD);
	}
	for (uint8_t p = 1; p < 8; p++) {
		cdb10(cdb, MIMO_SCSI_OP_READ10, (uint8_t)(p << 5), 7, 1);
		run_in(&c, cdb, 10, r, BS);
		ut_expect_field(&c.task, 1, 31 - __builtin_clz(p << 5));
		cdb16(cdb, MIMO_SCSI_OP_WRITE16, (uint8_t)(p << 5), 7, 1);
		run_out(&c, cdb, 16, w, BS);
		ut_expect_field(&c.task, 1, 31 - __builtin_clz(p << 5));
	}
	/* A reserved bit of WRITE(10) (RARC is a read's). */
	cdb10(cdb, MIMO_SCSI_OP_WRITE10, 0x04, 7, 1);
	run_out(&c, cdb, 10, w, BS);
	ut_expect_field(&c.task, 1, 2);
	free(w);
	free(r);
}

static void test_residuals(void **state)
{
	uint8_t *w = malloc(8 * BS), *r = malloc(16 * BS), cdb[16];
	struct ut_cmd c;

	(void)state;
	fill(w, 8 * BS, 5);
	ut_write(g_dev, 0, 40, 8, BS, w);

	/* READ one block into 10000 bytes: one block, underflow. */
	cdb10(cdb, MIMO_SCSI_OP_READ10, 0, 40, 1);
	memset(r, 0xee, 16 * BS);
	ut_prep(&c, g_dev, 0, cdb, 10, MIMO_SCSI_DIR_FROM_DEV, r, 10000, 10000, 1);
	ut_start(&c, 0);
	assert_int_equal(ut_finish(&c), MIMO_SCSI_STATUS_GOOD);
	assert_int_equal(c.task.data_transferred, BS);
	assert_int_equal(c.task.residual_kind, MIMO_SCSI_RESIDUAL_UNDERFLOW);
	assert_int_equal(c.task.residual, 10000 - BS);
	assert_memory_equal(r, w, BS);
	assert_int_equal(r[BS], 0xee);

	/* READ one block into 200 bytes: 200 bytes, overflow. */
	memset(r, 0xee, 16 * BS);
	ut_prep(&c, g_dev, 0, cdb, 10, MIMO_SCSI_DIR_FROM_DEV, r, 200, 200, 1);
	ut_start(&c, 0);
	assert_int_equal(ut_finish(&c), MIMO_SCSI_STATUS_GOOD);
	assert_int_equal(c.task.data_transferred, 200);
	assert_int_equal(c.task.residual_kind, MIMO_SCSI_RESIDUAL_OVERFLOW);
	assert_int_equal(c.task.residual, BS - 200);
	assert_memory_equal(r, w, 200);
	assert_int_equal(r[200], 0xee);

	/* READ 3 blocks into 1.5 blocks over two iovecs. */
	cdb10(cdb, MIMO_SCSI_OP_READ10, 0, 40, 3);
	memset(r, 0xee, 16 * BS);
	ut_prep(&c, g_dev, 0, cdb, 10, MIMO_SCSI_DIR_FROM_DEV, r, 3 * BS / 2, 3 * BS / 2, 2);
	ut_start(&c, 0);
	assert_int_equal(ut_finish(&c), MIMO_SCSI_STATUS_GOOD);
	assert_int_equal(c.task.data_transferred, 3 * BS / 2);
	assert_int_equal(c.task.residual, 3 * BS / 2);
	assert_memory_equal(r, w, 3 * BS / 2);

	/* READ with a transfer length of 0 (and no buffer). */
	cdb10(cdb, MIMO_SCSI_OP_READ10, 0, 40, 1);
	ut_prep(&c, g_dev, 0, cdb, 10, MIMO_SCSI_DIR_FROM_DEV, NULL, 0, 0, 1);
	ut_start(&c, 0);
	assert_int_equal(ut_finish(&c), MIMO_SCSI_STATUS_GOOD);
	assert_int_equal(c.task.residual_kind, MIMO_SCSI_RESIDUAL_OVERFLOW);
	assert_int_equal(c.task.residual, BS);

	/* READ flagged as a write by the transport: its data has nowhere to go. */
	ut_prep(&c, g_dev, 0, cdb, 10, MIMO_SCSI_DIR_TO_DEV, r, BS, BS, 1);
	ut_start(&c, 0);
	assert_int_equal(ut_finish(&c), MIMO_SCSI_STATUS_GOOD);
	assert_int_equal(c.task.data_transferred, 0);
	assert_int_equal(c.task.residual_kind, MIMO_SCSI_RESIDUAL_OVERFLOW);

	/* A transfer length larger than the iovecs counts only what they hold. */
	ut_prep(&c, g_dev, 0, cdb, 10, MIMO_SCSI_DIR_FROM_DEV, r, 100, 100, 1);
	c.task.transfer_len = BS;
	ut_start(&c, 0);
	assert_int_equal(ut_finish(&c), MIMO_SCSI_STATUS_GOOD);
	assert_int_equal(c.task.data_transferred, 100);

	/* WRITE two blocks with one block of data: refused, nothing written. */
	memset(r, 'b', 2 * BS);
	cdb10(cdb, MIMO_SCSI_OP_WRITE10, 0, 40, 2);
	ut_prep(&c, g_dev, 0, cdb, 10, MIMO_SCSI_DIR_TO_DEV, r, BS, BS, 1);
	ut_start(&c, 0);
	ut_finish(&c);
	ut_expect_sense(&c.task, MIMO_SCSI_SENSE_ILLEGAL_REQUEST,
			MIMO_SCSI_ASC_INVALID_FIELD_IN_IU);
	assert_int_equal(c.task.residual_kind, MIMO_SCSI_RESIDUAL_OVERFLOW);
	assert_int_equal(c.task.residual, BS);
	ut_read(g_dev, 0, 40, 2, BS, r);
	assert_memory_equal(r, w, 2 * BS);
	/* ...and with 200 bytes, and with none. */
	cdb10(cdb, MIMO_SCSI_OP_WRITE10, 0, 40, 1);
	ut_prep(&c, g_dev, 0, cdb, 10, MIMO_SCSI_DIR_TO_DEV, r, 200, 200, 1);
	ut_start(&c, 0);
	ut_finish(&c);
	ut_expect_sense(&c.task, MIMO_SCSI_SENSE_ILLEGAL_REQUEST,
			MIMO_SCSI_ASC_INVALID_FIELD_IN_IU);
	assert_int_equal(c.task.residual, BS - 200);
	ut_prep(&c, g_dev, 0, cdb, 10, MIMO_SCSI_DIR_TO_DEV, NULL, 0, 0, 1);
	ut_start(&c, 0);
	ut_finish(&c);
	assert_int_equal(c.task.residual, BS);

	/* WRITE one block with two blocks of data: the first is written, underflow. */
	memset(r, 'c', 2 * BS);
	ut_prep(&c, g_dev, 0, cdb, 10, MIMO_SCSI_DIR_TO_DEV, r, 2 * BS, 2 * BS, 1);
	ut_start(&c, 0);
	assert_int_equal(ut_finish(&c), MIMO_SCSI_STATUS_GOOD);
	assert_int_equal(c.task.residual_kind, MIMO_SCSI_RESIDUAL_UNDERFLOW);
	assert_int_equal(c.task.residual, BS);
	ut_read(g_dev, 0, 40, 2, BS, r);
	for (uint32_t i = 0; i < BS; i++)
		assert_int_equal(r[i], 'c');
	assert_memory_equal(r + BS, w + BS, BS);

	/* WRITE with data split unevenly over iovecs, with a larger buffer: trimmed. */
	fill(w, 8 * BS, 9);
	cdb10(cdb, MIMO_SCSI_OP_WRITE10, 0, 40, 3);
	ut_prep(&c, g_dev, 0, cdb, 10, MIMO_SCSI_DIR_TO_DEV, w, 4 * BS - 7, 4 * BS - 7, 5);
	ut_start(&c, 0);
	assert_int_equal(ut_finish(&c), MIMO_SCSI_STATUS_GOOD);
	ut_read(g_dev, 0, 40, 3, BS, r);
	assert_memory_equal(r, w, 3 * BS);
	free(w);
	free(r);
}

/* --- VERIFY, WRITE AND VERIFY, SYNCHRONIZE CACHE ------------------------------------------------
 */

static void test_verify(void **state)
{
	uint8_t *w = malloc(300 * BS), *d = malloc(300 * BS), cdb[16];
	struct ut_cmd c;

	(void)state;
	fill(w, 300 * BS, 3);
	ut_write(g_dev, 0, 1000, 300, BS, w);

	/* BYTCHK 1: the data-out against the medium, over more than one step. */
	memcpy(d, w, 300 * BS);
	cdb10(cdb, MIMO_SCSI_OP_VERIFY10, 0x02, 1000, 300);
	assert_int_equal(run_out(&c, cdb, 10, d, 300 * BS), MIMO_SCSI_STATUS_GOOD);
	cdb16(cdb, MIMO_SCSI_OP_VERIFY16, 0x02, 1000, 300);
	assert_int_equal(run_out(&c, cdb, 16, d, 300 * BS), MIMO_SCSI_STATUS_GOOD);
	cdb12(cdb, MIMO_SCSI_OP_VERIFY12, 0x12, 1000, 300); /* with DPO */
	assert_int_equal(run_out(&c, cdb, 12, d, 300 * BS), MIMO_SCSI_STATUS_GOOD);
	/* A byte that differs: MISCOMPARE, its offset in INFORMATION. */
	for (uint32_t at = 0; at < 300 * BS; at += 300 * BS / 7 + 13) {
		d[at] ^= 'X';
		cdb10(cdb, MIMO_SCSI_OP_VERIFY10, 0x02, 1000, 300);
		run_out(&c, cdb, 10, d, 300 * BS);
		ut_expect_sense(&c.task, MIMO_SCSI_SENSE_MISCOMPARE,
				MIMO_SCSI_ASC_MISCOMPARE_DURING_VERIFY);
		assert_int_equal(c.task.sense[0], 0xf0); /* VALID */
		assert_int_equal(be32(c.task.sense + 3), at);
		/* BYTCHK 0 does not compare. */
		cdb10(cdb, MIMO_SCSI_OP_VERIFY10, 0, 1000, 300);
		assert_int_equal(run_out(&c, cdb, 10, NULL, 0), MIMO_SCSI_STATUS_GOOD);
		d[at] ^= 'X';
	}
	/* BYTCHK 3: one block against every block of the range. */
	memset(w, 'q', 4 * BS);
	ut_write(g_dev, 0, 10, 4, BS, w);
	cdb10(cdb, MIMO_SCSI_OP_VERIFY10, 0x06, 10, 4);
	assert_int_equal(run_out(&c, cdb, 10, w, BS), MIMO_SCSI_STATUS_GOOD);
	w[3 * BS + 17] = 'r';
	ut_write(g_dev, 0, 10, 4, BS, w);
	run_out(&c, cdb, 10, w, BS);
	ut_expect_sense(&c.task, MIMO_SCSI_SENSE_MISCOMPARE,
			MIMO_SCSI_ASC_MISCOMPARE_DURING_VERIFY);
	assert_int_equal(be32(c.task.sense + 3), 3 * BS + 17);
	/* BYTCHK 2 is reserved; VRPROTECT is not supported; 0 blocks; out of range; a
	 * data-out shorter than the range. */
	cdb10(cdb, MIMO_SCSI_OP_VERIFY10, 0x04, 10, 4);
	run_out(&c, cdb, 10, w, 4 * BS);
	ut_expect_field(&c.task, 1, 2);
	cdb10(cdb, MIMO_SCSI_OP_VERIFY10, 0x22, 10, 4);
	run_out(&c, cdb, 10, w, 4 * BS);
	ut_expect_field(&c.task, 1, 5);
	cdb10(cdb, MIMO_SCSI_OP_VERIFY10, 0x02, 10, 0);
	assert_int_equal(run_out(&c, cdb, 10, NULL, 0), MIMO_SCSI_STATUS_GOOD);
	cdb10(cdb, MIMO_SCSI_OP_VERIFY10, 0x02, BLOCKS - 1, 2);
	run_out(&c, cdb, 10, w, 2 * BS);
	ut_expect_sense(&c.task, MIMO_SCSI_SENSE_ILLEGAL_REQUEST, MIMO_SCSI_ASC_LBA_OUT_OF_RANGE);
	cdb10(cdb, MIMO_SCSI_OP_VERIFY10, 0x02, 10, 4);
	run_out(&c, cdb, 10, w, 3 * BS);
	ut_expect_sense(&c.task, MIMO_SCSI_SENSE_ILLEGAL_REQUEST,
			MIMO_SCSI_ASC_INVALID_FIELD_IN_IU);

	/* WRITE AND VERIFY: written, read back, compared with BYTCHK. */
	fill(w, 8 * BS, 77);
	cdb10(cdb, MIMO_SCSI_OP_WRITE_VERIFY10, 0x02, 200, 8);
	assert_int_equal(run_out(&c, cdb, 10, w, 8 * BS), MIMO_SCSI_STATUS_GOOD);
	ut_read(g_dev, 0, 200, 8, BS, d);
	assert_memory_equal(d, w, 8 * BS);
	fill(w, 8 * BS, 78);
	cdb16(cdb, MIMO_SCSI_OP_WRITE_VERIFY16, 0x10, 200, 8);
	assert_int_equal(run_out(&c, cdb, 16, w, 8 * BS), MIMO_SCSI_STATUS_GOOD);
	cdb12(cdb, MIMO_SCSI_OP_WRITE_VERIFY12, 0, 200, 8);
	assert_int_equal(run_out(&c, cdb, 12, w, 8 * BS), MIMO_SCSI_STATUS_GOOD);
	ut_read(g_dev, 0, 200, 8, BS, d);
	assert_memory_equal(d, w, 8 * BS);
	cdb10(cdb, MIMO_SCSI_OP_WRITE_VERIFY10, 0x06, 200, 8);
	run_out(&c, cdb, 10, w, 8 * BS);
	ut_expect_field(&c.task, 1, 2);
	cdb10(cdb, MIMO_SCSI_OP_WRITE_VERIFY10, 0x08, 200, 8); /* FUA is not in it */
	run_out(&c, cdb, 10, w, 8 * BS);
	ut_expect_field(&c.task, 1, 3);

	/* SYNCHRONIZE CACHE: a range, 0 blocks (to the end), out of range. */
	cdb10(cdb, MIMO_SCSI_OP_SYNCHRONIZE_CACHE10, 0, 0, 16);
	assert_int_equal(run_none(&c, cdb, 10), MIMO_SCSI_STATUS_GOOD);
	cdb16(cdb, MIMO_SCSI_OP_SYNCHRONIZE_CACHE16, 0x02, 5, 0);
	assert_int_equal(run_none(&c, cdb, 16), MIMO_SCSI_STATUS_GOOD);
	cdb10(cdb, MIMO_SCSI_OP_SYNCHRONIZE_CACHE10, 0, BLOCKS, 1);
	run_none(&c, cdb, 10);
	ut_expect_sense(&c.task, MIMO_SCSI_SENSE_ILLEGAL_REQUEST, MIMO_SCSI_ASC_LBA_OUT_OF_RANGE);
	free(w);
	free(d);
}

/* --- MODE SENSE / MODE SELECT ------------------------------------------------------------------
 */

static void mode_sense6(struct ut_cmd *c, uint8_t dbd, uint8_t pc, uint8_t page, uint8_t sub,
			uint8_t alloc, uint8_t *buf)
{
	uint8_t cdb[6] = {
		MIMO_SCSI_OP_MODE_SENSE6, dbd, (uint8_t)(pc << 6 | page), sub, alloc, 0
	};

	memset(buf, 0xee, 256);
	run_in(c, cdb, 6, buf, alloc);
}

/* The page with this code in MODE SENSE(6) data, or NULL. */
static const uint8_t *find_page(const uint8_t *buf, uint8_t code)
{
	size_t end = (size_t)buf[0] + 1;

	for (size_t off = 4 + buf[3]; off + 2 <= end; off += 2u + buf[off + 1]) {
		if ((buf[off] & 0x3f) == code)
			return buf + off;
	}
	return NULL;
}

static uint8_t mode_select6(struct ut_cmd *c, uint8_t flags, const uint8_t *page, size_t len)
{
	uint8_t buf[64] = { 0 }, cdb[6] = { MIMO_SCSI_OP_MODE_SELECT6, flags, 0, 0, 0, 0 };

	memcpy(buf + 4, page, len);
	cdb[4] = (uint8_t)(4 + len);
	return run_out(c, cdb, 6, buf, 4 + (uint32_t)len);
}

static void test_mode_sense(void **state)
{
	uint8_t buf[256], cdb[16];
	const uint8_t *pg;
	struct ut_cmd c;

	(void)state;
	mode_sense6(&c, 0, 0, 0x3f, 0, 255, buf);
	assert_int_equal(c.task.status, MIMO_SCSI_STATUS_GOOD);
	assert_int_equal(c.task.data_transferred, buf[0] + 1);
	assert_int_equal(c.task.residual_kind, MIMO_SCSI_RESIDUAL_UNDERFLOW);
	assert_int_equal(buf[2], 0x10); /* DPOFUA, not write-protected */
	assert_int_equal(buf[3], 8);	/* a short block descriptor */
	assert_int_equal(be32(buf + 4), BLOCKS);
	assert_int_equal(be32(buf + 8) & 0xffffff, BS);
	assert_non_null(find_page(buf, 0x01));
	pg = find_page(buf, 0x08);
	assert_non_null(pg);
	assert_int_equal(pg[1], 0x12);
	assert_int_equal(pg[2] & 0x04, 0x04); /* WCE: malloc has a flush */
	pg = find_page(buf, 0x0a);
	assert_non_null(pg);
	assert_int_equal(pg[1], 0x0a);
	assert_int_equal(pg[2] & 0x04, 0); /* D_SENSE */
	assert_int_equal(pg[3] >> 4, 1);   /* QUEUE ALGORITHM MODIFIER */
	assert_int_equal(pg[4] & 0x08, 0); /* SWP */
	/* The control page alone is the same page. */
	{
		uint8_t one[256];

		mode_sense6(&c, 0x08, 0, 0x0a, 0, 255, one);
		assert_int_equal(one[3], 0); /* DBD */
		assert_memory_equal(one + 4, pg, 12);
	}
	/* Four bytes: the header only, no residual overflow. */
	mode_sense6(&c, 0, 0, 0x3f, 0, 4, buf);
	assert_int_equal(c.task.data_transferred, 4);
	assert_int_equal(c.task.residual_kind, MIMO_SCSI_RESIDUAL_NONE);
	/* Changeable: WCE, D_SENSE, SWP. */
	mode_sense6(&c, 0x08, 1, 0x3f, 0xff, 255, buf);
	assert_int_equal(find_page(buf, 0x08)[2], 0x04);
	assert_int_equal(find_page(buf, 0x0a)[2], 0x04);
	assert_int_equal(find_page(buf, 0x0a)[4], 0x08);
	assert_int_equal(find_page(buf, 0x0a)[3], 0x00);
	/* Default values; saved values are not supported. */
	mode_sense6(&c, 0x08, 2, 0x08, 0, 255, buf);
	assert_int_equal(c.task.status, MIMO_SCSI_STATUS_GOOD);
	assert_int_equal(buf[4 + 2] & 0x04, 0x04);
	mode_sense6(&c, 0, 3, 0x3f, 0, 255, buf);
	ut_expect_sense(&c.task, MIMO_SCSI_SENSE_ILLEGAL_REQUEST,
			MIMO_SCSI_ASC_SAVING_PARAMS_NOT_SUPPORTED);
	/* A page or subpage that does not exist. */
	mode_sense6(&c, 0, 0, 0x1c, 0, 255, buf);
	ut_expect_field(&c.task, 2, 5);
	mode_sense6(&c, 0, 0, 0x0a, 1, 255, buf);
	ut_expect_field(&c.task, 3, 7);

	/* MODE SENSE(10) with a long LBA block descriptor. */
	memset(cdb, 0, 16);
	cdb[0] = MIMO_SCSI_OP_MODE_SENSE10;
	cdb[1] = 0x10;
	cdb[2] = 0x08;
	cdb[8] = 255;
	assert_int_equal(run_in(&c, cdb, 10, buf, 255), MIMO_SCSI_STATUS_GOOD);
	assert_int_equal(buf[0] << 8 | buf[1], 8 + 16 + 20 - 2);
	assert_int_equal(buf[4] & 1, 1); /* LONGLBA */
	assert_int_equal(buf[6] << 8 | buf[7], 16);
	assert_int_equal(be64(buf + 8), BLOCKS);
	assert_int_equal(be32(buf + 20), BS);
	assert_int_equal(buf[24], 0x08);
}

static void test_mode_select(void **state)
{
	uint8_t buf[256], page[20], w[BS], cdb[16];
	struct ut_cmd c;

	(void)state;
	memset(w, 1, sizeof(w));
	/* SWP on: writes are refused, reads are not, MODE SENSE shows WP. */
	mode_sense6(&c, 0x08, 0, 0x0a, 0, 255, buf);
	memcpy(page, buf + 4, 12);
	page[4] |= 0x08;
	assert_int_equal(mode_select6(&c, 0x10, page, 12), MIMO_SCSI_STATUS_GOOD);
	mode_sense6(&c, 0x08, 0, 0x0a, 0, 255, buf);
	assert_int_equal(buf[2] & 0x80, 0x80);
	assert_int_equal(buf[4 + 4] & 0x08, 0x08);
	cdb10(cdb, MIMO_SCSI_OP_WRITE10, 0, 0, 1);
	run_out(&c, cdb, 10, w, BS);
	ut_expect_sense(&c.task, MIMO_SCSI_SENSE_DATA_PROTECT,
			MIMO_SCSI_ASC_SOFTWARE_WRITE_PROTECTED);
	cdb10(cdb, MIMO_SCSI_OP_WRITE_SAME10, 0x08, 0, 1);
	run_out(&c, cdb, 10, NULL, 0); /* write protection first, before the missing data */
	ut_expect_sense(&c.task, MIMO_SCSI_SENSE_DATA_PROTECT,
			MIMO_SCSI_ASC_SOFTWARE_WRITE_PROTECTED);
	cdb10(cdb, MIMO_SCSI_OP_READ10, 0, 0, 1);
	assert_int_equal(run_in(&c, cdb, 10, w, BS), MIMO_SCSI_STATUS_GOOD);
	page[4] &= ~0x08;
	assert_int_equal(mode_select6(&c, 0x10, page, 12), MIMO_SCSI_STATUS_GOOD);
	cdb10(cdb, MIMO_SCSI_OP_WRITE10, 0, 0, 1);
	assert_int_equal(run_out(&c, cdb, 10, w, BS), MIMO_SCSI_STATUS_GOOD);

	/* D_SENSE on: descriptor-format sense with the sense-key specific descriptor. */
	page[2] |= 0x04;
	assert_int_equal(mode_select6(&c, 0x10, page, 12), MIMO_SCSI_STATUS_GOOD);
	cdb16(cdb, MIMO_SCSI_OP_READ16, 0, UINT64_MAX, 1);
	run_in(&c, cdb, 16, w, BS);
	assert_int_equal(c.task.sense[0], 0x72);
	ut_expect_sense(&c.task, MIMO_SCSI_SENSE_ILLEGAL_REQUEST, MIMO_SCSI_ASC_LBA_OUT_OF_RANGE);
	cdb10(cdb, MIMO_SCSI_OP_READ10, 0x20, 0, 1);
	run_in(&c, cdb, 10, w, BS);
	assert_int_equal(c.task.sense[0], 0x72);
	assert_int_equal(c.task.sense_len, 16);
	assert_int_equal(c.task.sense[8], 0x02); /* sense key specific descriptor */
	assert_int_equal(c.task.sense[12], 0xc8 | 5);
	assert_int_equal(c.task.sense[14], 1);
	page[2] &= ~0x04;
	assert_int_equal(mode_select6(&c, 0x10, page, 12), MIMO_SCSI_STATUS_GOOD);

	/* A bit that cannot change (QUEUE ALGORITHM MODIFIER): INVALID FIELD IN PARAMETER
	 * LIST, pointing into the parameter list (C/D 0). */
	page[3] = 0x00;
	mode_select6(&c, 0x10, page, 12);
	ut_expect_sense(&c.task, MIMO_SCSI_SENSE_ILLEGAL_REQUEST,
			MIMO_SCSI_ASC_INVALID_FIELD_IN_PARAM_LIST);
	assert_int_equal(c.task.sense[15], 0x80 | 0x08 | 4);
	assert_int_equal(c.task.sense[16] << 8 | c.task.sense[17], 4 + 3);
	page[3] = 0x10;
	/* A wrong page length; a page that does not exist; SP; PF 0; a list too short. */
	page[1] = 0x0b;
	mode_select6(&c, 0x10, page, 13);
	ut_expect_sense(&c.task, MIMO_SCSI_SENSE_ILLEGAL_REQUEST,
			MIMO_SCSI_ASC_INVALID_FIELD_IN_PARAM_LIST);
	page[1] = 0x0a;
	page[0] = 0x1c;
	mode_select6(&c, 0x10, page, 12);
	ut_expect_sense(&c.task, MIMO_SCSI_SENSE_ILLEGAL_REQUEST,
			MIMO_SCSI_ASC_INVALID_FIELD_IN_PARAM_LIST);
	page[0] = 0x0a;
	mode_select6(&c, 0x11, page, 12);
	ut_expect_field(&c.task, 1, 0);
	mode_select6(&c, 0x00, page, 12);
	ut_expect_field(&c.task, 1, 4);
	mode_select6(&c, 0x10, page, 6);
	ut_expect_sense(&c.task, MIMO_SCSI_SENSE_ILLEGAL_REQUEST,
			MIMO_SCSI_ASC_PARAMETER_LIST_LENGTH_ERROR);

	/* The caching page: WCE off, then on again; a block descriptor that matches. */
	mode_sense6(&c, 0x08, 0, 0x08, 0, 255, buf);
	memcpy(page, buf + 4, 20);
	page[2] &= ~0x04;
	assert_int_equal(mode_select6(&c, 0x10, page, 20), MIMO_SCSI_STATUS_GOOD);
	mode_sense6(&c, 0x08, 0, 0x08, 0, 255, buf);
	assert_int_equal(buf[4 + 2] & 0x04, 0);
	cdb10(cdb, MIMO_SCSI_OP_WRITE10, 0, 0, 1); /* write-through: flushed each time */
	assert_int_equal(run_out(&c, cdb, 10, w, BS), MIMO_SCSI_STATUS_GOOD);
	page[2] |= 0x04;
	{
		uint8_t list[4 + 8 + 20] = { 0, 0, 0, 8 };

		put32(list + 4, 0);
		list[4 + 5] = (uint8_t)(BS >> 16);
		list[4 + 6] = (uint8_t)(BS >> 8);
		list[4 + 7] = (uint8_t)BS;
		memcpy(list + 12, page, 20);
		memset(cdb, 0, 16);
		cdb[0] = MIMO_SCSI_OP_MODE_SELECT6;
		cdb[1] = 0x10;
		cdb[4] = sizeof(list);
		assert_int_equal(run_out(&c, cdb, 6, list, sizeof(list)), MIMO_SCSI_STATUS_GOOD);
		/* A block length that is not the LUN's. */
		list[4 + 6] ^= 0x10;
		run_out(&c, cdb, 6, list, sizeof(list));
		ut_expect_sense(&c.task, MIMO_SCSI_SENSE_ILLEGAL_REQUEST,
				MIMO_SCSI_ASC_INVALID_FIELD_IN_PARAM_LIST);
	}
	/* Parameter list length 0: nothing to do. */
	memset(cdb, 0, 16);
	cdb[0] = MIMO_SCSI_OP_MODE_SELECT10;
	cdb[1] = 0x10;
	assert_int_equal(run_none(&c, cdb, 10), MIMO_SCSI_STATUS_GOOD);
}

/* --- START STOP UNIT ----------------------------------------------------------------------------
 */

static void test_start_stop(void **state)
{
	uint8_t cdb[16] = { 0 }, buf[BS];
	struct ut_cmd c;

	(void)state;
	cdb[0] = MIMO_SCSI_OP_START_STOP_UNIT;
	assert_int_equal(run_none(&c, cdb, 6), MIMO_SCSI_STATUS_GOOD); /* stop */
	memset(cdb, 0, 16);
	run_none(&c, cdb, 6);
	ut_expect_sense(&c.task, MIMO_SCSI_SENSE_NOT_READY,
			MIMO_SCSI_ASC_LUN_NOT_READY_INIT_REQUIRED);
	cdb10(cdb, MIMO_SCSI_OP_READ10, 0, 0, 1);
	run_in(&c, cdb, 10, buf, BS);
	ut_expect_sense(&c.task, MIMO_SCSI_SENSE_NOT_READY,
			MIMO_SCSI_ASC_LUN_NOT_READY_INIT_REQUIRED);
	/* INQUIRY and READ CAPACITY still answer; REQUEST SENSE says why. */
	cdb10(cdb, MIMO_SCSI_OP_READ_CAPACITY10, 0, 0, 0);
	assert_int_equal(run_in(&c, cdb, 10, buf, 8), MIMO_SCSI_STATUS_GOOD);
	memset(cdb, 0, 16);
	cdb[0] = MIMO_SCSI_OP_REQUEST_SENSE;
	cdb[4] = 18;
	assert_int_equal(run_in(&c, cdb, 6, buf, 18), MIMO_SCSI_STATUS_GOOD);
	assert_int_equal(buf[2], MIMO_SCSI_SENSE_NOT_READY);
	assert_int_equal(buf[12] << 8 | buf[13], MIMO_SCSI_ASC_LUN_NOT_READY_INIT_REQUIRED);
	/* Power conditions are accepted and change nothing; reserved ones are not. */
	memset(cdb, 0, 16);
	cdb[0] = MIMO_SCSI_OP_START_STOP_UNIT;
	cdb[4] = 0x20;
	assert_int_equal(run_none(&c, cdb, 6), MIMO_SCSI_STATUS_GOOD);
	cdb[4] = 0x50;
	run_none(&c, cdb, 6);
	ut_expect_field(&c.task, 4, 7);
	/* Start (with IMMED), and the unit answers again. */
	cdb[1] = 1;
	cdb[4] = 0x01;
	assert_int_equal(run_none(&c, cdb, 6), MIMO_SCSI_STATUS_GOOD);
	memset(cdb, 0, 16);
	assert_int_equal(run_none(&c, cdb, 6), MIMO_SCSI_STATUS_GOOD);
	/* Stop without flushing, start again. */
	cdb[0] = MIMO_SCSI_OP_START_STOP_UNIT;
	cdb[4] = 0x04;
	assert_int_equal(run_none(&c, cdb, 6), MIMO_SCSI_STATUS_GOOD);
	cdb[4] = 0x03; /* LOEJ + START: nothing to load */
	assert_int_equal(run_none(&c, cdb, 6), MIMO_SCSI_STATUS_GOOD);
	memset(cdb, 0, 16);
	assert_int_equal(run_none(&c, cdb, 6), MIMO_SCSI_STATUS_GOOD);
}

/* --- UNMAP, WRITE SAME, GET LBA STATUS ----------------------------------------------------------
 */

static bool zeroes(const uint8_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (b[i] != 0)
			return false;
	}
	return true;
}

static uint8_t unmap(struct ut_cmd *c, const uint64_t (*ranges)[2], unsigned n, uint32_t len)
{
	uint8_t list[8 + 16 * 300] = { 0 }, cdb[10] = { MIMO_SCSI_OP_UNMAP };

	list[0] = (uint8_t)((6 + 16 * n) >> 8);
	list[1] = (uint8_t)(6 + 16 * n);
	list[2] = (uint8_t)((16 * n) >> 8);
	list[3] = (uint8_t)(16 * n);
	for (unsigned i = 0; i < n; i++) {
		put64(list + 8 + 16 * i, ranges[i][0]);
		put32(list + 8 + 16 * i + 8, (uint32_t)ranges[i][1]);
	}
	if (len == 0)
		len = 8 + 16 * n;
	cdb[7] = (uint8_t)(len >> 8);
	cdb[8] = (uint8_t)len;
	return run_out(c, cdb, 10, list, len);
}

static void test_unmap(void **state)
{
	uint8_t *w = malloc(64 * BS), *r = malloc(64 * BS);
	struct ut_cmd c;

	(void)state;
	fill(w, 64 * BS, 11);
	ut_write(g_dev, 0, 300, 64, BS, w);
	{
		const uint64_t ranges[][2] = { { 300, 8 }, { 320, 0 }, { 330, 4 } };

		assert_int_equal(unmap(&c, ranges, 3, 0), MIMO_SCSI_STATUS_GOOD);
	}
	ut_read(g_dev, 0, 300, 64, BS, r);
	assert_true(zeroes(r, 8 * BS)); /* malloc reads zeroes where it unmapped */
	assert_memory_equal(r + 8 * BS, w + 8 * BS, 22 * BS);
	assert_true(zeroes(r + 30 * BS, 4 * BS));
	assert_memory_equal(r + 34 * BS, w + 34 * BS, 30 * BS);

	/* One range out of range: nothing is unmapped. */
	ut_write(g_dev, 0, 300, 64, BS, w);
	{
		const uint64_t ranges[][2] = { { 300, 8 }, { BLOCKS - 2, 3 } };

		unmap(&c, ranges, 2, 0);
		ut_expect_sense(&c.task, MIMO_SCSI_SENSE_ILLEGAL_REQUEST,
				MIMO_SCSI_ASC_LBA_OUT_OF_RANGE);
	}
	ut_read(g_dev, 0, 300, 64, BS, r);
	assert_memory_equal(r, w, 64 * BS);
	/* 0 blocks anywhere in range, at the end, and no descriptors at all. */
	{
		const uint64_t ranges[][2] = { { 0, 0 }, { BLOCKS, 0 } };

		assert_int_equal(unmap(&c, ranges, 2, 0), MIMO_SCSI_STATUS_GOOD);
		assert_int_equal(unmap(&c, ranges, 0, 0), MIMO_SCSI_STATUS_GOOD);
		/* A parameter list of 0 bytes, of 4 (too short), and one whose last
		 * descriptor is cut (ignored). */
		assert_int_equal(unmap(&c, ranges, 0, 0), MIMO_SCSI_STATUS_GOOD);
		unmap(&c, ranges, 1, 4);
		ut_expect_sense(&c.task, MIMO_SCSI_SENSE_ILLEGAL_REQUEST,
				MIMO_SCSI_ASC_PARAMETER_LIST_LENGTH_ERROR);
	}
	{
		static uint64_t many[300][2];

		for (int i = 0; i < 300; i++) {
			many[i][0] = 300 + (uint64_t)(i % 64);
			many[i][1] = 1;
		}
		assert_int_equal(unmap(&c, (const uint64_t(*)[2])many, 300, 0),
				 MIMO_SCSI_STATUS_GOOD);
		ut_read(g_dev, 0, 300, 64, BS, r);
		assert_true(zeroes(r, 64 * BS));
	}
	/* ANCHOR: not supported (ANC_SUP 0). */
	{
		uint8_t cdb[10] = { MIMO_SCSI_OP_UNMAP, 0x01 };

		run_out(&c, cdb, 10, NULL, 0);
		ut_expect_field(&c.task, 1, 0);
	}
	free(w);
	free(r);
}

static void test_write_same(void **state)
{
	uint8_t *w = malloc(300 * BS), *r = malloc(300 * BS), blk[BS], cdb[16];
	struct ut_cmd c;

	(void)state;
	/* 1-300 blocks of a pattern (more than one 128 KiB step), read back. */
	for (uint32_t n = 1; n <= 300; n += n < 8 ? 1 : 73) {
		fill(blk, BS, n);
		cdb10(cdb, MIMO_SCSI_OP_WRITE_SAME10, 0, 500, (uint16_t)n);
		assert_int_equal(run_out(&c, cdb, 10, blk, BS), MIMO_SCSI_STATUS_GOOD);
		ut_read(g_dev, 0, 500, n, BS, r);
		for (uint32_t i = 0; i < n; i++)
			assert_memory_equal(r + i * BS, blk, BS);
	}
	/* Zeroes, with and without UNMAP; WRITE SAME(16) with NDOB. */
	fill(w, 300 * BS, 4);
	ut_write(g_dev, 0, 500, 300, BS, w);
	memset(blk, 0, BS);
	cdb10(cdb, MIMO_SCSI_OP_WRITE_SAME10, 0x08, 500, 10);
	assert_int_equal(run_out(&c, cdb, 10, blk, BS), MIMO_SCSI_STATUS_GOOD);
	cdb16(cdb, MIMO_SCSI_OP_WRITE_SAME16, 0, 520, 10);
	assert_int_equal(run_out(&c, cdb, 16, blk, BS), MIMO_SCSI_STATUS_GOOD);
	cdb16(cdb, MIMO_SCSI_OP_WRITE_SAME16, 0x09, 540, 10);
	assert_int_equal(run_out(&c, cdb, 16, NULL, 0), MIMO_SCSI_STATUS_GOOD);
	ut_read(g_dev, 0, 500, 60, BS, r);
	assert_true(zeroes(r, 10 * BS));
	assert_memory_equal(r + 10 * BS, w + 10 * BS, 10 * BS);
	assert_true(zeroes(r + 20 * BS, 10 * BS));
	assert_memory_equal(r + 30 * BS, w + 30 * BS, 10 * BS);
	assert_true(zeroes(r + 40 * BS, 10 * BS));
	/* UNMAP with data that is not zeroes writes the data. */
	fill(blk, BS, 99);
	cdb16(cdb, MIMO_SCSI_OP_WRITE_SAME16, 0x08, 560, 3);
	assert_int_equal(run_out(&c, cdb, 16, blk, BS), MIMO_SCSI_STATUS_GOOD);
	ut_read(g_dev, 0, 560, 3, BS, r);
	assert_memory_equal(r + 2 * BS, blk, BS);

	/* 0 blocks: to the end of the LUN. */
	cdb10(cdb, MIMO_SCSI_OP_WRITE_SAME10, 0, BLOCKS - 5, 0);
	assert_int_equal(run_out(&c, cdb, 10, blk, BS), MIMO_SCSI_STATUS_GOOD);
	ut_read(g_dev, 0, BLOCKS - 5, 5, BS, r);
	assert_memory_equal(r + 4 * BS, blk, BS);
	cdb10(cdb, MIMO_SCSI_OP_WRITE_SAME10, 0, BLOCKS, 0);
	assert_int_equal(run_out(&c, cdb, 10, blk, BS), MIMO_SCSI_STATUS_GOOD);
	/* Out of range; ANCHOR; WRPROTECT; LBDATA (obsolete); no data-out. */
	cdb10(cdb, MIMO_SCSI_OP_WRITE_SAME10, 0, BLOCKS + 1, 0);
	run_out(&c, cdb, 10, blk, BS);
	ut_expect_sense(&c.task, MIMO_SCSI_SENSE_ILLEGAL_REQUEST, MIMO_SCSI_ASC_LBA_OUT_OF_RANGE);
	cdb10(cdb, MIMO_SCSI_OP_WRITE_SAME10, 0, BLOCKS - 1, 2);
	run_out(&c, cdb, 10, blk, BS);
	ut_expect_sense(&c.task, MIMO_SCSI_SENSE_ILLEGAL_REQUEST, MIMO_SCSI_ASC_LBA_OUT_OF_RANGE);
	cdb10(cdb, MIMO_SCSI_OP_WRITE_SAME10, 0x18, 0, 1);
	run_out(&c, cdb, 10, blk, BS);
	ut_expect_field(&c.task, 1, 4);
	cdb10(cdb, MIMO_SCSI_OP_WRITE_SAME10, 0x20, 0, 1);
	run_out(&c, cdb, 10, blk, BS);
	ut_expect_field(&c.task, 1, 5);
	cdb10(cdb, MIMO_SCSI_OP_WRITE_SAME10, 0x02, 0, 1);
	run_out(&c, cdb, 10, blk, BS);
	ut_expect_field(&c.task, 1, 1);
	cdb10(cdb, MIMO_SCSI_OP_WRITE_SAME10, 0, 0, 1);
	run_out(&c, cdb, 10, blk, BS / 2);
	ut_expect_sense(&c.task, MIMO_SCSI_SENSE_ILLEGAL_REQUEST,
			MIMO_SCSI_ASC_INVALID_FIELD_IN_IU);

	/* GET LBA STATUS: one descriptor to the end, mapped or unknown. */
	memset(cdb, 0, 16);
	cdb[0] = MIMO_SCSI_OP_SERVICE_ACTION_IN16;
	cdb[1] = MIMO_SCSI_SAI_GET_LBA_STATUS;
	put64(cdb + 2, 100);
	put32(cdb + 10, 24);
	assert_int_equal(run_in(&c, cdb, 16, r, 24), MIMO_SCSI_STATUS_GOOD);
	assert_int_equal(be32(r), 20);
	assert_int_equal(be64(r + 8), 100);
	assert_int_equal(be32(r + 16), BLOCKS - 100);
	assert_int_equal(r[20] & 0x0f, 0);
	put64(cdb + 2, BLOCKS - 1);
	assert_int_equal(run_in(&c, cdb, 16, r, 24), MIMO_SCSI_STATUS_GOOD);
	assert_int_equal(be32(r + 16), 1);
	put64(cdb + 2, BLOCKS);
	run_in(&c, cdb, 16, r, 24);
	ut_expect_sense(&c.task, MIMO_SCSI_SENSE_ILLEGAL_REQUEST, MIMO_SCSI_ASC_LBA_OUT_OF_RANGE);
	put64(cdb + 2, UINT64_MAX);
	run_in(&c, cdb, 16, r, 24);
	ut_expect_sense(&c.task, MIMO_SCSI_SENSE_ILLEGAL_REQUEST, MIMO_SCSI_ASC_LBA_OUT_OF_RANGE);
	free(w);
	free(r);
}

/* --- COMPARE AND WRITE ---------------------------------------------------------------------------
 */

static void caw_cdb(uint8_t *cdb, uint8_t flags, uint64_t lba, uint8_t n)
{
	memset(cdb, 0, 16);
	cdb[0] = MIMO_SCSI_OP_COMPARE_AND_WRITE;
	cdb[1] = flags;
	put64(cdb + 2, lba);
	cdb[13] = n;
}

static void test_compare_and_write(void **state)
{
	uint8_t *buf = malloc(2 * 255 * BS), *r = malloc(255 * BS), cdb[16];
	struct ut_cmd c;

	(void)state;
	for (uint32_t n = 1; n <= 255; n += n < 4 ? 1 : 50) {
		uint64_t lba = n % 2 ? 0 : BLOCKS - n;

		memset(buf, 'A', n * BS);
		ut_write(g_dev, 0, lba, n, BS, buf);
		memset(buf + n * BS, 'B', n * BS);
		caw_cdb(cdb, n == 2 ? 0x18 : 0, lba, (uint8_t)n); /* DPO and FUA once */
		assert_int_equal(run_out(&c, cdb, 16, buf, 2 * n * BS), MIMO_SCSI_STATUS_GOOD);
		ut_read(g_dev, 0, lba, n, BS, r);
		assert_memory_equal(r, buf + n * BS, n * BS);
		/* Again: the medium now holds 'B', not 'A'. A miscompare changes nothing and
		 * says where (the offset in the data-out). */
		run_out(&c, cdb, 16, buf, 2 * n * BS);
		ut_expect_sense(&c.task, MIMO_SCSI_SENSE_MISCOMPARE,
				MIMO_SCSI_ASC_MISCOMPARE_DURING_VERIFY);
		assert_int_equal(c.task.sense[0], 0xf0);
		assert_int_equal(be32(c.task.sense + 3), 0);
		ut_read(g_dev, 0, lba, n, BS, r);
		assert_memory_equal(r, buf + n * BS, n * BS);
	}
	/* A miscompare at every offset of one block. */
	memset(buf, 'B', 2 * BS);
	ut_write(g_dev, 0, 9, 1, BS, buf);
	for (uint32_t at = 0; at < BS; at += 37) {
		memset(buf, 'B', BS);
		buf[at] = 'Z';
		memset(buf + BS, 'C', BS);
		caw_cdb(cdb, 0, 9, 1);
		run_out(&c, cdb, 16, buf, 2 * BS);
		ut_expect_sense(&c.task, MIMO_SCSI_SENSE_MISCOMPARE,
				MIMO_SCSI_ASC_MISCOMPARE_DURING_VERIFY);
		assert_int_equal(be32(c.task.sense + 3), at);
	}
	/* 0 blocks; out of range; data-out not twice the blocks; WRPROTECT. */
	caw_cdb(cdb, 0, 0, 0);
	assert_int_equal(run_out(&c, cdb, 16, NULL, 0), MIMO_SCSI_STATUS_GOOD);
	caw_cdb(cdb, 0, BLOCKS - 1, 2);
	run_out(&c, cdb, 16, buf, 4 * BS);
	ut_expect_sense(&c.task, MIMO_SCSI_SENSE_ILLEGAL_REQUEST, MIMO_SCSI_ASC_LBA_OUT_OF_RANGE);
	caw_cdb(cdb, 0, 9, 2);
	run_out(&c, cdb, 16, buf, 3 * BS);
	ut_expect_sense(&c.task, MIMO_SCSI_SENSE_ILLEGAL_REQUEST,
			MIMO_SCSI_ASC_INVALID_FIELD_IN_IU);
	caw_cdb(cdb, 0x20, 9, 1);
	run_out(&c, cdb, 16, buf, 2 * BS);
	ut_expect_field(&c.task, 1, 5);
	free(buf);
	free(r);
}

/* --- scsi_get_devices
 * ----------------------------------------------------------------------------- */

struct local_call {
	json_t *req, *resp;
	sem_t sem;
};

static void local_done(void *arg, json_t *resp)
{
	struct local_call *l = arg;

	l->resp = resp;
	sem_post(&l->sem);
}

static void local_msg(void *arg)
{
	struct local_call *l = arg;
	json_t *req = l->req;

	/* The call borrows the request; it is let go here, on the reactor, where the server
	 * dropped its own reference (jansson's counts are invisible to ThreadSanitizer). */
	if (mimo_jsonrpc_call_local(req, local_done, l) != 0)
		abort();
	json_decref(req);
}

static json_t *rpc(const char *method)
{
	struct local_call l = { 0 };
	json_t *result;

	sem_init(&l.sem, 0, 0);
	l.req = json_pack("{s:s, s:s, s:i}", "jsonrpc", "2.0", "method", method, "id", 1);
	mimo_rpc_set_state(MIMO_RPC_RUNTIME);
	assert_int_equal(mimo_reactor_send_msg(mimo_reactor_get(0), local_msg, &l), 0);
	ut_wait(&l.sem);
	result = json_deep_copy(json_object_get(l.resp, "result"));
	json_decref(l.resp);
	return result;
}

static void test_rpc(void **state)
{
	json_t *r = rpc("scsi_get_devices"), *d, *l;

	(void)state;
	assert_true(json_is_array(r));
	assert_int_equal(json_array_size(r), 1);
	d = json_array_get(r, 0);
	assert_string_equal(json_string_value(json_object_get(d, "device_name")), "d0");
	assert_int_equal(json_integer_value(json_object_get(d, "id")), mimo_scsi_dev_get_id(g_dev));
	l = json_array_get(json_object_get(d, "luns"), 0);
	assert_int_equal(json_integer_value(json_object_get(l, "id")), 0);
	assert_string_equal(json_string_value(json_object_get(l, "bdev_name")), "M0");
	json_decref(r);
	r = rpc("get_luns");
	assert_string_equal(json_string_value(json_object_get(json_array_get(r, 0), "name")), "M0");
	assert_true(json_is_true(json_object_get(json_array_get(r, 0), "claimed")));
	json_decref(r);
	assert_ptr_equal(mimo_scsi_dev_find("d0"), g_dev);
	assert_null(mimo_scsi_dev_find("nope"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_inquiry_standard),
		cmocka_unit_test(test_inquiry_vpd),
		cmocka_unit_test(test_read_capacity),
		cmocka_unit_test(test_report_luns),
		cmocka_unit_test(test_tur_request_sense_opcodes),
		cmocka_unit_test(test_report_supported),
		cmocka_unit_test(test_read_write),
		cmocka_unit_test(test_residuals),
		cmocka_unit_test(test_verify),
		cmocka_unit_test(test_mode_sense),
		cmocka_unit_test(test_mode_select),
		cmocka_unit_test(test_start_stop),
		cmocka_unit_test(test_unmap),
		cmocka_unit_test(test_write_same),
		cmocka_unit_test(test_compare_and_write),
		cmocka_unit_test(test_rpc),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
