/*
 * The command table - one row per operation code (and service action), with the CDB bits
 * each may set - and the small commands: TEST UNIT READY, REQUEST SENSE, REPORT LUNS, READ
 * CAPACITY, START STOP UNIT, REPORT SUPPORTED OPERATION CODES and TASK MANAGEMENT FUNCTIONS.
 *
 * The usage bytes are SPC-4's CDB USAGE DATA: a set bit is a bit the command understands.
 * RDPROTECT, WRPROTECT and VRPROTECT are absent (no protection information), as are ANCHOR
 * (ANC_SUP is 0) and the obsolete LBDATA/PBDATA bits, so those CDBs are refused with INVALID
 * FIELD IN CDB, pointing at the bit.
 */
#include <errno.h>
#include <string.h>

#include "scsi_internal.h"

#define LBA4 0xff, 0xff, 0xff, 0xff
#define LBA8 LBA4, LBA4
#define GRP  0x1f /* GROUP NUMBER */

#define CMD(op, len, fl, fn, nm, ...) \
	[op] = { .opcode = (op),      \
		 .cdb_len = (len),    \
		 .flags = (fl),       \
		 .exec = (fn),        \
		 .name = (nm),        \
		 .usage = { (op), __VA_ARGS__ } }

/* The per-opcode flags. */
#define RD   SCSI_CMD_MEDIA
#define WR   (SCSI_CMD_MEDIA | SCSI_CMD_WRITE | SCSI_CMD_DATA_OUT)
#define NOUA SCSI_CMD_NO_UA

static const struct scsi_cmd g_sai16[] = {
	{ .opcode = 0x9e,
	  .sa = MIMO_SCSI_SAI_READ_CAPACITY16,
	  .cdb_len = 16,
	  .flags = SCSI_CMD_SA,
	  .exec = scsi_exec_read_capacity16,
	  .name = "READ CAPACITY(16)",
	  .usage = { 0x9e, 0x10, LBA8, LBA4, 0x01, 0x00 } },
	{ .opcode = 0x9e,
	  .sa = MIMO_SCSI_SAI_GET_LBA_STATUS,
	  .cdb_len = 16,
	  .flags = SCSI_CMD_SA | RD,
	  .exec = scsi_exec_get_lba_status,
	  .name = "GET LBA STATUS",
	  .usage = { 0x9e, 0x12, LBA8, LBA4, 0x00, 0x00 } },
};

static const struct scsi_cmd g_maint_in[] = {
	{ .opcode = 0xa3,
	  .sa = MIMO_SCSI_MI_REPORT_SUPPORTED_OPCODES,
	  .cdb_len = 12,
	  .flags = SCSI_CMD_SA | SCSI_CMD_DEVICE,
	  .exec = scsi_exec_report_supported_opcodes,
	  .name = "REPORT SUPPORTED OPERATION CODES",
	  .usage = { 0xa3, 0x0c, 0x87, 0xff, 0xff, 0xff, LBA4, 0x00, 0x00 } },
	{ .opcode = 0xa3,
	  .sa = MIMO_SCSI_MI_REPORT_SUPPORTED_TMFS,
	  .cdb_len = 12,
	  .flags = SCSI_CMD_SA | SCSI_CMD_DEVICE,
	  .exec = scsi_exec_report_supported_tmfs,
	  .name = "REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS",
	  .usage = { 0xa3, 0x0d, 0x80, 0x00, 0x00, 0x00, LBA4, 0x00, 0x00 } },
};

static const struct scsi_cmd g_ops[256] = {
	CMD(0x00, 6, RD, scsi_exec_test_unit_ready, "TEST UNIT READY", 0, 0, 0, 0, 0),
	CMD(0x03, 6, NOUA, scsi_exec_request_sense, "REQUEST SENSE", 0x01, 0, 0, 0xff, 0),
	CMD(0x08, 6, RD, scsi_exec_read, "READ(6)", 0x1f, 0xff, 0xff, 0xff, 0),
	CMD(0x0a, 6, WR, scsi_exec_write, "WRITE(6)", 0x1f, 0xff, 0xff, 0xff, 0),
	CMD(0x12, 6, NOUA, scsi_exec_inquiry, "INQUIRY", 0x01, 0xff, 0xff, 0xff, 0),
	CMD(0x15, 6, SCSI_CMD_DATA_OUT, scsi_exec_mode_select, "MODE SELECT(6)", 0x11, 0, 0, 0xff,
	    0),
	CMD(0x1a, 6, 0, scsi_exec_mode_sense, "MODE SENSE(6)", 0x08, 0xff, 0xff, 0xff, 0),
	CMD(0x1b, 6, 0, scsi_exec_start_stop_unit, "START STOP UNIT", 0x01, 0, 0x0f, 0xf7, 0),
	CMD(0x25, 10, 0, scsi_exec_read_capacity10, "READ CAPACITY(10)", 0, LBA4, 0, 0, 0x01, 0),
	CMD(0x28, 10, RD, scsi_exec_read, "READ(10)", 0x1e, LBA4, GRP, 0xff, 0xff, 0),
	CMD(0x2a, 10, WR, scsi_exec_write, "WRITE(10)", 0x1a, LBA4, GRP, 0xff, 0xff, 0),
	CMD(0x2e, 10, WR, scsi_exec_write_verify, "WRITE AND VERIFY(10)", 0x16, LBA4, GRP, 0xff,
	    0xff, 0),
	CMD(0x2f, 10, RD | SCSI_CMD_DATA_OUT, scsi_exec_verify, "VERIFY(10)", 0x16, LBA4, GRP, 0xff,
	    0xff, 0),
	CMD(0x35, 10, RD, scsi_exec_sync_cache, "SYNCHRONIZE CACHE(10)", 0x06, LBA4, GRP, 0xff,
	    0xff, 0),
	CMD(0x41, 10, WR, scsi_exec_write_same, "WRITE SAME(10)", 0x08, LBA4, GRP, 0xff, 0xff, 0),
	CMD(0x42, 10, WR, scsi_exec_unmap, "UNMAP", 0, 0, 0, 0, 0, GRP, 0xff, 0xff, 0),
	CMD(0x55, 10, SCSI_CMD_DATA_OUT, scsi_exec_mode_select, "MODE SELECT(10)", 0x11, 0, 0, 0, 0,
	    0, 0xff, 0xff, 0),
	CMD(0x5a, 10, 0, scsi_exec_mode_sense, "MODE SENSE(10)", 0x18, 0xff, 0xff, 0, 0, 0, 0xff,
	    0xff, 0),
	CMD(0x88, 16, RD, scsi_exec_read, "READ(16)", 0x1e, LBA8, LBA4, GRP, 0),
	CMD(0x89, 16, WR, scsi_exec_compare_and_write, "COMPARE AND WRITE", 0x1a, LBA8, 0, 0, 0,
	    0xff, GRP, 0),
	CMD(0x8a, 16, WR, scsi_exec_write, "WRITE(16)", 0x1a, LBA8, LBA4, GRP, 0),
	CMD(0x8e, 16, WR, scsi_exec_write_verify, "WRITE AND VERIFY(16)", 0x16, LBA8, LBA4, GRP, 0),
	CMD(0x8f, 16, RD | SCSI_CMD_DATA_OUT, scsi_exec_verify, "VERIFY(16)", 0x16, LBA8, LBA4, GRP,
	    0),
	CMD(0x91, 16, RD, scsi_exec_sync_cache, "SYNCHRONIZE CACHE(16)", 0x06, LBA8, LBA4, GRP, 0),
	CMD(0x93, 16, WR, scsi_exec_write_same, "WRITE SAME(16)", 0x09, LBA8, LBA4, GRP, 0),
	[0x9e] = { .opcode = 0x9e,
		   .cdb_len = 16,
		   .flags = SCSI_CMD_SA,
		   .sub = g_sai16,
		   .nsub = MIMO_ARRAY_SIZE(g_sai16) },
	CMD(0xa0, 12, NOUA | SCSI_CMD_DEVICE, scsi_exec_report_luns, "REPORT LUNS", 0, 0xff, 0, 0,
	    0, LBA4, 0, 0),
	[0xa3] = { .opcode = 0xa3,
		   .cdb_len = 12,
		   .flags = SCSI_CMD_SA,
		   .sub = g_maint_in,
		   .nsub = MIMO_ARRAY_SIZE(g_maint_in) },
	CMD(0xa8, 12, RD, scsi_exec_read, "READ(12)", 0x1e, LBA4, LBA4, GRP, 0),
	CMD(0xaa, 12, WR, scsi_exec_write, "WRITE(12)", 0x1a, LBA4, LBA4, GRP, 0),
	CMD(0xae, 12, WR, scsi_exec_write_verify, "WRITE AND VERIFY(12)", 0x16, LBA4, LBA4, GRP, 0),
	CMD(0xaf, 12, RD | SCSI_CMD_DATA_OUT, scsi_exec_verify, "VERIFY(12)", 0x16, LBA4, LBA4, GRP,
	    0),
};

const struct scsi_cmd *scsi_cmd_lookup(const uint8_t *cdb, bool *bad_sa)
{
	const struct scsi_cmd *c = &g_ops[cdb[0]];

	if (mimo_likely(c->exec != NULL))
		return c;
	if (c->sub == NULL)
		return NULL;
	for (unsigned i = 0; i < c->nsub; i++) {
		if (c->sub[i].sa == (cdb[1] & 0x1f))
			return &c->sub[i];
	}
	*bad_sa = true;
	return NULL;
}

/* --- simple commands ----------------------------------------------------------------------- */

void scsi_exec_test_unit_ready(struct scsi_task_priv *p)
{
	/* The stopped state was checked with the other media commands. */
	scsi_task_good(p);
}

static void request_sense(struct scsi_task_priv *p, uint8_t key, uint16_t asc)
{
	uint8_t buf[MIMO_SCSI_SENSE_SIZE];
	uint8_t len =
		scsi_build_sense(buf, p->task->cdb[1] & 0x01, key, asc, false, 0, false, NULL);

	scsi_task_data_in(p, buf, len, p->task->cdb[4]);
}

/* The sense data of the current state: a unit attention (which this then clears), a stopped
 * unit, or nothing. Autosense reports every error with its command, so nothing else is
 * kept for REQUEST SENSE. */
void scsi_exec_request_sense(struct scsi_task_priv *p)
{
	uint16_t ua = scsi_lun_take_ua(p->lun);

	if (ua != 0)
		request_sense(p, MIMO_SCSI_SENSE_UNIT_ATTENTION, ua);
	else if (atomic_load(&p->lun->stopped))
		request_sense(p, MIMO_SCSI_SENSE_NOT_READY,
			      MIMO_SCSI_ASC_LUN_NOT_READY_INIT_REQUIRED);
	else
		request_sense(p, MIMO_SCSI_SENSE_NO_SENSE, MIMO_SCSI_ASC_NO_ADDITIONAL_SENSE);
}

void scsi_request_sense_no_lun(struct scsi_task_priv *p)
{
	request_sense(p, MIMO_SCSI_SENSE_ILLEGAL_REQUEST, MIMO_SCSI_ASC_LUN_NOT_SUPPORTED);
}

void scsi_exec_report_luns(struct scsi_task_priv *p)
{
	const uint8_t *cdb = p->task->cdb;
	uint8_t buf[8 + 8 * MIMO_SCSI_MAX_LUNS];
	uint32_t alloc = scsi_be32(cdb + 6), n = 0;
	uint8_t select = cdb[2];

	/* SPC-4: an allocation length under 16 is an error, not a truncation. */
	if (alloc < 16) {
		scsi_task_fail_field(p, 6, 7);
		return;
	}
	/* 00h: every LUN; 01h: the well-known LUNs (there are none); 02h: both. */
	if (select > 0x02) {
		scsi_task_fail_field(p, 2, 7);
		return;
	}
	memset(buf, 0, sizeof(buf));
	for (uint32_t id = 0; id < MIMO_SCSI_MAX_LUNS; id++) {
		struct scsi_lun *lun =
			atomic_load_explicit(&p->dev->luns[id], memory_order_acquire);

		if (lun == NULL)
			continue;
		/* This initiator now knows the inventory (SPC-4: REPORT LUNS clears REPORTED
		 * LUNS DATA HAS CHANGED). */
		atomic_fetch_and(&lun->ua, ~(uint32_t)SCSI_UA_LUNS_CHANGED);
		if (select == 0x01)
			continue;
		/* Peripheral device addressing: bus 0, the LUN in the second byte. */
		buf[8 + 8 * n + 1] = (uint8_t)id;
		n++;
	}
	scsi_put32(buf, 8 * n);
	scsi_task_data_in(p, buf, 8 + 8 * n, alloc);
}

static uint64_t capacity(const struct scsi_task_priv *p)
{
	return atomic_load_explicit(&p->lun->num_blocks, memory_order_relaxed);
}

void scsi_exec_read_capacity10(struct scsi_task_priv *p)
{
	const uint8_t *cdb = p->task->cdb;
	uint64_t last = capacity(p) - 1;
	uint8_t buf[8];

	/* With PMI 0 the LOGICAL BLOCK ADDRESS must be 0 (SBC-3 5.15). */
	if (!(cdb[8] & 0x01) && scsi_be32(cdb + 2) != 0) {
		scsi_task_fail_field(p, 2, 7);
		return;
	}
	/* Too large for 32 bits: FFFFFFFFh sends the initiator to READ CAPACITY(16). */
	scsi_put32(buf, last > UINT32_MAX ? UINT32_MAX : (uint32_t)last);
	scsi_put32(buf + 4, p->lun->block_size);
	scsi_task_data_in(p, buf, sizeof(buf), sizeof(buf));
}

void scsi_exec_read_capacity16(struct scsi_task_priv *p)
{
	const uint8_t *cdb = p->task->cdb;
	uint8_t buf[32];

	if (!(cdb[14] & 0x01) && scsi_be64(cdb + 2) != 0) {
		scsi_task_fail_field(p, 2, 7);
		return;
	}
	memset(buf, 0, sizeof(buf));
	scsi_put64(buf, capacity(p) - 1);
	scsi_put32(buf + 8, p->lun->block_size);
	/* No protection information, one logical block per physical block. LBPME when the bdev
	 * can unmap. LBPRZ stays 0: bdevs do not promise zeroes after an unmap. */
	if (p->lun->can_unmap)
		buf[14] = 0x80;
	scsi_task_data_in(p, buf, sizeof(buf), scsi_be32(cdb + 10));
}

static void stopped_flushed(struct mimo_bdev_io *io, bool success, void *arg)
{
	struct scsi_task_priv *p = arg;
	int rc = success ? 0 : mimo_bdev_io_get_status(io);

	mimo_bdev_free_io(io);
	if (rc != 0) {
		scsi_task_bdev_error(p, rc, true, 0);
	} else {
		atomic_store(&p->lun->stopped, true);
		p->task->status = MIMO_SCSI_STATUS_GOOD;
	}
	scsi_task_done(p);
}

void scsi_exec_start_stop_unit(struct scsi_task_priv *p)
{
	const uint8_t *cdb = p->task->cdb;
	uint8_t pc = cdb[4] >> 4;
	int rc;

	switch (pc) {
	case 0x0: /* START_VALID: the START bit decides */
		break;
	case 0x1: /* ACTIVE, IDLE, STANDBY, LU_CONTROL, FORCE_IDLE_0, FORCE_STANDBY_0: */
	case 0x2: /* there are no power conditions to enter, and the unit stays as it is */
	case 0x3:
	case 0x7:
	case 0xa:
	case 0xb:
		scsi_task_good(p);
		return;
	default:
		scsi_task_fail_field(p, 4, 7);
		return;
	}
	/* LOEJ has nothing to load or eject (the medium is not removable). */
	if (cdb[4] & 0x01) {
		atomic_store(&p->lun->stopped, false);
		scsi_task_good(p);
		return;
	}
	/* Stopping writes the cache back first, unless NO_FLUSH. */
	if ((cdb[4] & 0x04) || !p->lun->can_flush) {
		atomic_store(&p->lun->stopped, true);
		scsi_task_good(p);
		return;
	}
	rc = mimo_bdev_flush_blocks(p->lun->desc, scsi_lun_channel(p), 0,
				    atomic_load(&p->lun->num_blocks), stopped_flushed, p);
	if (rc != 0) {
		scsi_task_bdev_error(p, rc, true, 0);
		scsi_task_done_later(p);
	}
}

/* --- REPORT SUPPORTED OPERATION CODES / TASK MANAGEMENT FUNCTIONS -------------------------- */

/* A command timeouts descriptor (SPC-4 6.35.4): no timeouts are specified. */
static size_t put_timeouts(uint8_t *b)
{
	memset(b, 0, 12);
	scsi_put16(b, 0x0a);
	return 12;
}

static size_t put_descriptor(uint8_t *b, const struct scsi_cmd *c, bool rctd)
{
	bool sa = c->flags & SCSI_CMD_SA;

	memset(b, 0, 8);
	b[0] = c->opcode;
	scsi_put16(b + 2, sa ? c->sa : 0);
	b[5] = (rctd ? 0x02 : 0) | (sa ? 0x01 : 0); /* CTDP, SERVACTV */
	scsi_put16(b + 6, c->cdb_len);
	return 8 + (rctd ? put_timeouts(b + 8) : 0);
}

static void report_one(struct scsi_task_priv *p, const struct scsi_cmd *c, bool rctd,
		       uint32_t alloc)
{
	uint8_t buf[4 + 16 + 12];
	size_t n = 4;

	memset(buf, 0, sizeof(buf));
	buf[1] = rctd ? 0x80 : 0;
	if (c == NULL) {
		buf[1] |= 0x01; /* SUPPORT 001b: not supported */
	} else {
		buf[1] |= 0x03; /* SUPPORT 011b: supported as the standard says */
		scsi_put16(buf + 2, c->cdb_len);
		memcpy(buf + 4, c->usage, c->cdb_len);
		n += c->cdb_len;
		if (rctd)
			n += put_timeouts(buf + n);
	}
	scsi_task_data_in(p, buf, n, alloc);
}

/* What this LUN has: UNMAP only where the bdev unmaps (LBPU). */
static bool offered(const struct scsi_task_priv *p, const struct scsi_cmd *c)
{
	return c->exec != NULL &&
	       (c->exec != scsi_exec_unmap || p->lun == NULL || p->lun->can_unmap);
}

static const struct scsi_cmd *find_sa(const struct scsi_cmd *c, uint16_t sa)
{
	for (unsigned i = 0; i < c->nsub; i++) {
		if (c->sub[i].sa == sa)
			return &c->sub[i];
	}
	return NULL;
}

void scsi_exec_report_supported_opcodes(struct scsi_task_priv *p)
{
	const uint8_t *cdb = p->task->cdb;
	bool rctd = cdb[2] & 0x80;
	const struct scsi_cmd *c = &g_ops[cdb[3]];
	uint16_t sa = scsi_be16(cdb + 4);
	uint32_t alloc = scsi_be32(cdb + 6);
	uint8_t buf[4 + 64 * 20];
	size_t n = 4;

	switch (cdb[2] & 0x07) {
	case 0: /* all commands */
		for (unsigned op = 0; op < 256; op++) {
			const struct scsi_cmd *e = &g_ops[op];

			if (offered(p, e))
				n += put_descriptor(buf + n, e, rctd);
			for (unsigned i = 0; i < e->nsub; i++)
				n += put_descriptor(buf + n, &e->sub[i], rctd);
		}
		scsi_put32(buf, (uint32_t)(n - 4));
		scsi_task_data_in(p, buf, n, alloc);
		return;
	case 1: /* one operation code without service actions */
		if (c->sub != NULL) {
			scsi_task_fail_field(p, 2, 2);
			return;
		}
		report_one(p, offered(p, c) ? c : NULL, rctd, alloc);
		return;
	case 2: /* one operation code and service action */
		if (c->sub == NULL) {
			scsi_task_fail_field(p, 2, 2);
			return;
		}
		report_one(p, find_sa(c, sa), rctd, alloc);
		return;
	case 3: /* either: a service action is only meaningful where the opcode has them */
		if (c->sub != NULL)
			report_one(p, find_sa(c, sa), rctd, alloc);
		else
			report_one(p, offered(p, c) && sa == 0 ? c : NULL, rctd, alloc);
		return;
	default:
		scsi_task_fail_field(p, 2, 2);
		return;
	}
}

void scsi_exec_report_supported_tmfs(struct scsi_task_priv *p)
{
	const uint8_t *cdb = p->task->cdb;
	bool repd = cdb[2] & 0x80;
	uint8_t buf[16];

	memset(buf, 0, sizeof(buf));
	/* ABORT TASK, ABORT TASK SET, CLEAR TASK SET, LOGICAL UNIT RESET, QUERY TASK, TARGET
	 * RESET (mimo/scsi.h's functions). */
	buf[0] = 0x80 | 0x40 | 0x10 | 0x08 | 0x04 | 0x02;
	if (repd)
		buf[3] = 0x0c;
	scsi_task_data_in(p, buf, repd ? 16 : 4, scsi_be32(cdb + 6));
}
