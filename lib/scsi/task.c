/*
 * A task's life: submission (LUN lookup, the checks every command shares, dispatch),
 * data movement between the task's iovecs and the layer, residuals, completion.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "scsi_internal.h"

MIMO_EXPORT void mimo_scsi_task_init(struct mimo_scsi_task *task)
{
	memset(task, 0, sizeof(*task));
}

/* --- completion ------------------------------------------------------------------------------ */

static void release_buffers(struct scsi_task_priv *p)
{
	free(p->buf);
	p->buf = NULL;
	if (p->iov != NULL && p->iov != p->iov_inline && p->iov != p->task->iovs)
		free(p->iov);
	p->iov = NULL;
}

void scsi_task_done(struct scsi_task_priv *p)
{
	struct mimo_scsi_task *t = p->task;
	struct scsi_tmf *tmf = p->tmf;

	release_buffers(p);
	if (p->lun != NULL) {
		struct scsi_lun_reactor *st = p->st;

		if (p->counted)
			scsi_gate_leave(p);
		TAILQ_REMOVE(&st->tasks, p, link);
		if (mimo_unlikely(st->draining) && TAILQ_EMPTY(&st->tasks))
			scsi_lun_release_here(p->lun, st);
	}
	if (mimo_unlikely(p->aborted)) {
		/* SAM-5: a task ended by task management has no sense; the transport decides
		 * whether the initiator hears of it (TASK ABORTED here). */
		t->status = MIMO_SCSI_STATUS_TASK_ABORTED;
		t->sense_len = 0;
		t->data_transferred = 0;
	}
	p->tmf = NULL;
	t->cb(t);
	if (tmf != NULL)
		scsi_tmf_task_done(tmf);
}

static void done_msg(void *arg)
{
	scsi_task_done(arg);
}

void scsi_task_done_later(struct scsi_task_priv *p)
{
	/* Never complete inside mimo_scsi_dev_submit: the front-end would recurse. */
	if (mimo_reactor_post(mimo_reactor_current(), done_msg, p) != 0)
		scsi_task_done(p);
}

/* --- data and residuals ---------------------------------------------------------------------- */

void scsi_task_set_transfer(struct scsi_task_priv *p, uint64_t want, uint32_t moved)
{
	struct mimo_scsi_task *t = p->task;

	t->data_transferred = moved;
	if (want > p->edtl) {
		uint64_t over = want - p->edtl;

		t->residual_kind = MIMO_SCSI_RESIDUAL_OVERFLOW;
		t->residual = over > UINT32_MAX ? UINT32_MAX : (uint32_t)over;
	} else if (moved < p->edtl) {
		t->residual_kind = MIMO_SCSI_RESIDUAL_UNDERFLOW;
		t->residual = p->edtl - moved;
	} else {
		t->residual_kind = MIMO_SCSI_RESIDUAL_NONE;
		t->residual = 0;
	}
}

static void copy_to_iovs(const struct iovec *iov, int iovcnt, const void *buf, size_t len)
{
	const uint8_t *src = buf;

	for (int i = 0; i < iovcnt && len > 0; i++) {
		size_t n = MIMO_MIN(iov[i].iov_len, len);

		memcpy(iov[i].iov_base, src, n);
		src += n;
		len -= n;
	}
}

void scsi_task_gather(struct scsi_task_priv *p, void *buf, size_t off, size_t len)
{
	const struct iovec *iov = p->task->iovs;
	uint8_t *dst = buf;

	for (int i = 0; i < p->task->iovcnt && len > 0; i++) {
		size_t seg = iov[i].iov_len, n;

		if (off >= seg) {
			off -= seg;
			continue;
		}
		n = MIMO_MIN(seg - off, len);
		memcpy(dst, (const uint8_t *)iov[i].iov_base + off, n);
		dst += n;
		len -= n;
		off = 0;
	}
}

int scsi_task_sub_iov(struct scsi_task_priv *p, size_t off, size_t len)
{
	struct mimo_scsi_task *t = p->task;
	struct iovec *out;
	int n = 0, first = -1;
	size_t skip = off, left = len;

	if (off == 0 && len == p->iov_total) {
		p->iov = t->iovs;
		p->iovcnt = t->iovcnt;
		return 0;
	}
	/* Count the segments [off, off+len) touches. */
	for (int i = 0; i < t->iovcnt && left > 0; i++) {
		size_t seg = t->iovs[i].iov_len;

		if (skip >= seg) {
			skip -= seg;
			continue;
		}
		if (first < 0)
			first = i;
		left -= MIMO_MIN(seg - skip, left);
		skip = 0;
		n++;
	}
	if (left > 0 || n == 0)
		return -EINVAL;
	out = n <= (int)MIMO_ARRAY_SIZE(p->iov_inline) ? p->iov_inline : malloc(n * sizeof(*out));
	if (out == NULL)
		return -ENOMEM;
	skip = off;
	for (int i = 0; i < first; i++)
		skip -= t->iovs[i].iov_len;
	left = len;
	for (int i = 0; i < n; i++) {
		const struct iovec *s = &t->iovs[first + i];
		size_t take = MIMO_MIN(s->iov_len - skip, left);

		out[i].iov_base = (uint8_t *)s->iov_base + skip;
		out[i].iov_len = take;
		left -= take;
		skip = 0;
	}
	if (p->iov != NULL && p->iov != p->iov_inline && p->iov != t->iovs)
		free(p->iov);
	p->iov = out;
	p->iovcnt = n;
	return 0;
}

int64_t scsi_task_compare(struct scsi_task_priv *p, size_t off, const void *buf, size_t len)
{
	const struct iovec *iov = p->task->iovs;
	const uint8_t *b = buf;
	size_t pos = 0;

	for (int i = 0; i < p->task->iovcnt && pos < len; i++) {
		size_t seg = iov[i].iov_len, n;
		const uint8_t *s;

		if (off >= seg) {
			off -= seg;
			continue;
		}
		s = (const uint8_t *)iov[i].iov_base + off;
		n = MIMO_MIN(seg - off, len - pos);
		if (memcmp(s, b + pos, n) != 0) {
			for (size_t j = 0; j < n; j++) {
				if (s[j] != b[pos + j])
					return (int64_t)(pos + j);
			}
		}
		pos += n;
		off = 0;
	}
	return -1;
}

static void retry_msg(void *arg)
{
	struct scsi_task_priv *p = arg;

	if (p->aborted)
		scsi_task_done(p);
	else
		p->resume(p);
}

bool scsi_task_retry(struct scsi_task_priv *p, int rc, scsi_step_fn step)
{
	/* Out of bdev I/Os or module resources: not the initiator's problem, and gone once
	 * the I/Os in flight complete. Try again on the next turn of the reactor. */
	if (rc != -ENOMEM)
		return false;
	p->resume = step;
	return mimo_reactor_post(mimo_reactor_current(), retry_msg, p) == 0;
}

void scsi_task_io_failed(struct scsi_task_priv *p, int rc, bool write, uint64_t lba,
			 scsi_step_fn step)
{
	if (step != NULL && scsi_task_retry(p, rc, step))
		return;
	scsi_task_bdev_error(p, rc, write, lba);
	scsi_task_done_later(p);
}

void scsi_task_data_in(struct scsi_task_priv *p, const void *buf, size_t avail, uint32_t alloc)
{
	uint32_t want = (uint32_t)MIMO_MIN(avail, (size_t)alloc);
	uint32_t moved = MIMO_MIN(want, p->edtl);

	copy_to_iovs(p->task->iovs, p->task->iovcnt, buf, moved);
	p->task->status = MIMO_SCSI_STATUS_GOOD;
	scsi_task_set_transfer(p, want, moved);
	scsi_task_done_later(p);
}

void scsi_task_good(struct scsi_task_priv *p)
{
	p->task->status = MIMO_SCSI_STATUS_GOOD;
	scsi_task_set_transfer(p, 0, 0);
	scsi_task_done_later(p);
}

bool scsi_task_need_data_out(struct scsi_task_priv *p, uint64_t want)
{
	if (mimo_likely(want <= p->edtl))
		return true;
	/* FCP-4's choice (b), which iSCSI and libiscsi's tests accept: transfer nothing, say
	 * which bytes were missing. Writing a truncated block would be worse. */
	scsi_task_sense(p, MIMO_SCSI_SENSE_ILLEGAL_REQUEST, MIMO_SCSI_ASC_INVALID_FIELD_IN_IU);
	scsi_task_set_transfer(p, want, 0);
	scsi_task_done_later(p);
	return false;
}

bool scsi_task_write_allowed(struct scsi_task_priv *p)
{
	struct scsi_lun *lun = p->lun;

	if (mimo_unlikely(lun->readonly)) {
		scsi_task_fail(p, MIMO_SCSI_SENSE_DATA_PROTECT, MIMO_SCSI_ASC_WRITE_PROTECTED);
		return false;
	}
	if (mimo_unlikely(atomic_load_explicit(&lun->mode, memory_order_relaxed) & SCSI_MODE_SWP)) {
		scsi_task_fail(p, MIMO_SCSI_SENSE_DATA_PROTECT,
			       MIMO_SCSI_ASC_SOFTWARE_WRITE_PROTECTED);
		return false;
	}
	return true;
}

bool scsi_task_range_ok(struct scsi_task_priv *p, uint64_t lba, uint64_t n)
{
	uint64_t nb = atomic_load_explicit(&p->lun->num_blocks, memory_order_relaxed);

	if (mimo_likely(lba <= nb && n <= nb - lba))
		return true;
	scsi_task_fail_lba(p);
	return false;
}

/* --- submission ------------------------------------------------------------------------------ */

/*
 * Reserved bits (and fields this layer does not implement, such as RDPROTECT) set in the CDB
 * are refused with INVALID FIELD IN CDB, pointing at the byte and the highest bit at fault.
 * The control byte's NACA bit asks for ACA, which is not supported; its other bits are
 * obsolete or vendor-specific and are ignored, as are the bytes past the command's length.
 *
 * The check runs on every task, so it is two 64-bit words: the usage data OR the bits a
 * command of that length may have anyway (g_len_allow) OR the service action's bits.
 */
static const uint8_t g_len_allow[17][16] = {
	[6] = { 0, 0, 0, 0, 0, 0xfb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff },
	[10] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xfb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff },
	[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xfb, 0xff, 0xff, 0xff, 0xff },
	[16] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xfb },
};
static const uint8_t g_sa_allow[16] = { 0, 0x1f };

static inline uint64_t word(const uint8_t *b)
{
	uint64_t v;

	memcpy(&v, b, sizeof(v));
	return v;
}

static bool cdb_ok(struct scsi_task_priv *p)
{
	const struct scsi_cmd *cmd = p->cmd;
	const uint8_t *cdb = p->task->cdb, *len = g_len_allow[cmd->cdb_len];
	uint64_t sa_lo = (cmd->flags & SCSI_CMD_SA) ? word(g_sa_allow) : 0;
	uint64_t bad = (word(cdb) & ~(word(cmd->usage) | word(len) | sa_lo)) |
		       (word(cdb + 8) & ~(word(cmd->usage + 8) | word(len + 8)));

	if (mimo_likely(bad == 0))
		return true;
	for (unsigned i = 1; i < cmd->cdb_len; i++) {
		uint8_t b = cdb[i] & (uint8_t) ~(cmd->usage[i] | len[i] |
						 g_sa_allow[i] * !!(cmd->flags & SCSI_CMD_SA));

		if (b != 0) {
			scsi_task_fail_field(p, (uint16_t)i, 31 - __builtin_clz(b));
			return false;
		}
	}
	return true; /* not reached: bad had a bit in one of the bytes */
}

static const uint16_t g_ua_asc[] = {
	MIMO_SCSI_ASC_POWER_ON_OCCURRED,       MIMO_SCSI_ASC_BUS_DEVICE_RESET_OCCURRED,
	MIMO_SCSI_ASC_CAPACITY_DATA_CHANGED,   MIMO_SCSI_ASC_REPORTED_LUNS_DATA_CHANGED,
	MIMO_SCSI_ASC_MODE_PARAMETERS_CHANGED,
};

/* Take the highest-precedence pending unit attention of the LUN (0: none). Each condition is
 * reported once, to whichever command takes it first. */
uint16_t scsi_lun_take_ua(struct scsi_lun *lun)
{
	uint32_t ua = atomic_load_explicit(&lun->ua, memory_order_relaxed);

	while (ua != 0) {
		uint32_t bit = ua & -ua;

		if (atomic_fetch_and(&lun->ua, ~bit) & bit)
			return g_ua_asc[__builtin_ctz(bit)];
		ua = atomic_load_explicit(&lun->ua, memory_order_relaxed);
	}
	return 0;
}

static void submit_no_lun(struct scsi_task_priv *p)
{
	const struct scsi_cmd *cmd = p->cmd;

	if (cmd != NULL && (cmd->flags & SCSI_CMD_DEVICE)) {
		if (cdb_ok(p))
			cmd->exec(p);
	} else if (cmd != NULL && cmd->opcode == MIMO_SCSI_OP_INQUIRY) {
		if (cdb_ok(p))
			scsi_inquiry_no_lun(p);
	} else if (cmd != NULL && cmd->opcode == MIMO_SCSI_OP_REQUEST_SENSE) {
		if (cdb_ok(p))
			scsi_request_sense_no_lun(p);
	} else {
		scsi_task_fail(p, MIMO_SCSI_SENSE_ILLEGAL_REQUEST, MIMO_SCSI_ASC_LUN_NOT_SUPPORTED);
	}
}

MIMO_EXPORT void mimo_scsi_dev_submit(struct mimo_scsi_dev *dev, struct mimo_scsi_task *task)
{
	struct scsi_task_priv *p = scsi_priv(task);
	const struct scsi_cmd *cmd;
	struct scsi_lun *lun = NULL;
	bool bad_sa = false, out;
	uint64_t total = 0;
	uint16_t ua;

	memset(p, 0, offsetof(struct scsi_task_priv, iov_inline));
	p->task = task;
	p->dev = dev;
	task->status = MIMO_SCSI_STATUS_GOOD;
	task->sense_len = 0;
	task->data_transferred = 0;
	task->residual_kind = MIMO_SCSI_RESIDUAL_NONE;
	task->residual = 0;

	cmd = scsi_cmd_lookup(task->cdb, &bad_sa);
	p->cmd = cmd;
	for (int i = 0; i < task->iovcnt; i++)
		total += task->iovs[i].iov_len;
	p->iov_total = total;
	/* The transfer length counts only in the direction the command moves data: a READ
	 * flagged as a write by the transport has nowhere to put its data. */
	out = cmd != NULL && (cmd->flags & SCSI_CMD_DATA_OUT);
	if (task->dir == (out ? MIMO_SCSI_DIR_TO_DEV : MIMO_SCSI_DIR_FROM_DEV))
		p->edtl = (uint32_t)MIMO_MIN((uint64_t)task->transfer_len, total);

	if (task->lun < MIMO_SCSI_MAX_LUNS)
		lun = atomic_load_explicit(&dev->luns[task->lun], memory_order_acquire);
	if (lun == NULL) {
		submit_no_lun(p);
		return;
	}
	p->lun = lun;
	p->st = &lun->per_reactor[mimo_reactor_index(mimo_reactor_current())];
	TAILQ_INSERT_TAIL(&p->st->tasks, p, link);
	/* Before the unit attentions: a change it finds is reported with them, in order. */
	scsi_lun_check_capacity(lun);

	if (mimo_unlikely(atomic_load_explicit(&lun->ua, memory_order_relaxed) != 0) &&
	    (cmd == NULL || !(cmd->flags & SCSI_CMD_NO_UA)) && (ua = scsi_lun_take_ua(lun)) != 0) {
		scsi_task_fail(p, MIMO_SCSI_SENSE_UNIT_ATTENTION, ua);
		return;
	}
	if (mimo_unlikely(cmd == NULL)) {
		/* A known operation code with an unknown service action: the service action
		 * field is at fault (SPC-4 lets either be reported; libiscsi accepts both). */
		if (bad_sa)
			scsi_task_fail_field(p, 1, 4);
		else
			scsi_task_fail(p, MIMO_SCSI_SENSE_ILLEGAL_REQUEST,
				       MIMO_SCSI_ASC_INVALID_OPCODE);
		return;
	}
	if (!cdb_ok(p))
		return;
	if (mimo_unlikely(cmd->flags & SCSI_CMD_MEDIA) &&
	    mimo_unlikely(atomic_load_explicit(&lun->stopped, memory_order_relaxed))) {
		scsi_task_fail(p, MIMO_SCSI_SENSE_NOT_READY,
			       MIMO_SCSI_ASC_LUN_NOT_READY_INIT_REQUIRED);
		return;
	}
	if ((cmd->flags & SCSI_CMD_WRITE) && !scsi_task_write_allowed(p))
		return;
	cmd->exec(p);
}
