/*
 * COMPARE AND WRITE, atomic with respect to the LUN's other reads and writes, and the gate
 * that makes it so.
 *
 * A LUN's tasks run on every reactor its front-ends use, without locks. Every task that
 * touches the medium (READ, VERIFY, WRITE, WRITE AND VERIFY, WRITE SAME, UNMAP) passes a
 * gate: normally one acquire load of lun->frozen and a count on the reactor's own state. A
 * COMPARE AND WRITE freezes the gate (new tasks park on their reactor), then visits every
 * reactor by message and waits until the tasks already through the gate there have
 * completed; only then does it read, compare and write. When the last queued COMPARE AND
 * WRITE finishes, every reactor lets its parked tasks through, in order.
 *
 * Why the visit is enough: a task passes the gate and is counted in one run of its reactor,
 * so the visit (a message to that reactor, sent after the freeze) either sees it counted or
 * runs before it - and then the task sees the freeze, since the message carries it.
 *
 * SBC-3 asks for the compare and the write as one uninterrupted series of actions on those
 * blocks; reads are held too, so that none sees the blocks between the two (or half
 * written: a bdev copies data with no atomicity of its own).
 *
 * COMPARE AND WRITEs queue on lun->caw_queue (a mutex: they are rare) and run one at a time.
 * While one runs nothing is counted anywhere, so the next one needs no visit.
 *
 * This orders the LUN's I/O through this layer; a bdev written by another front-end too
 * (NVMe-oF, FUSE) is outside it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "scsi_internal.h"

/* --- the gate ---------------------------------------------------------------------------- */

void scsi_gate(struct scsi_task_priv *p, scsi_step_fn step)
{
	if (mimo_unlikely(atomic_load_explicit(&p->lun->frozen, memory_order_acquire))) {
		p->resume = step;
		p->parked = true;
		TAILQ_INSERT_TAIL(&p->st->parked, p, wait);
		return;
	}
	p->st->inflight++;
	p->counted = true;
	step(p);
}

static void drained_one(struct scsi_lun *lun);

void scsi_gate_leave(struct scsi_task_priv *p)
{
	struct scsi_lun_reactor *st = p->st;

	p->counted = false;
	if (--st->inflight == 0 && mimo_unlikely(st->drain_notify)) {
		st->drain_notify = false;
		drained_one(p->lun);
	}
}

static struct mimo_reactor *reactor_of(const struct scsi_task_priv *p)
{
	return mimo_reactor_get((uint32_t)(p->st - p->lun->per_reactor));
}

static void post(struct mimo_reactor *r, mimo_msg_fn fn, struct scsi_lun *lun)
{
	/* The message holds the LUN: it may run after the task that sent it has completed. */
	scsi_lun_get(lun);
	scsi_post(r, fn, lun);
}

static void thaw_here(void *arg)
{
	struct scsi_lun *lun = arg;
	struct scsi_lun_reactor *st = &lun->per_reactor[mimo_reactor_index(mimo_reactor_current())];
	TAILQ_HEAD(, scsi_task_priv) q = TAILQ_HEAD_INITIALIZER(q);
	struct scsi_task_priv *p;

	/* Through the gate again: another COMPARE AND WRITE may have frozen it meanwhile. */
	TAILQ_CONCAT(&q, &st->parked, wait);
	while ((p = TAILQ_FIRST(&q)) != NULL) {
		TAILQ_REMOVE(&q, p, wait);
		p->parked = false;
		scsi_gate(p, p->resume);
	}
	scsi_lun_put(lun);
}

/* --- COMPARE AND WRITE ------------------------------------------------------------------- */

static void caw_run(void *arg);

static void caw_go(struct scsi_lun *lun)
{
	struct scsi_task_priv *head;

	pthread_mutex_lock(&lun->caw_lock);
	head = TAILQ_FIRST(&lun->caw_queue);
	pthread_mutex_unlock(&lun->caw_lock);
	scsi_post(reactor_of(head), caw_run, head);
}

static void drained_one(struct scsi_lun *lun)
{
	if (atomic_fetch_sub(&lun->drain_pending, 1) == 1)
		caw_go(lun);
}

static void drain_here(void *arg)
{
	struct scsi_lun *lun = arg;
	struct scsi_lun_reactor *st = &lun->per_reactor[mimo_reactor_index(mimo_reactor_current())];

	if (st->inflight > 0)
		st->drain_notify = true; /* the last of them calls drained_one */
	else
		drained_one(lun);
	scsi_lun_put(lun);
}

static void caw_finish(struct scsi_task_priv *p)
{
	struct scsi_lun *lun = p->lun;
	struct scsi_task_priv *next;

	pthread_mutex_lock(&lun->caw_lock);
	TAILQ_REMOVE(&lun->caw_queue, p, wait);
	p->is_caw = false;
	next = TAILQ_FIRST(&lun->caw_queue);
	if (next == NULL)
		atomic_store(&lun->frozen, false);
	pthread_mutex_unlock(&lun->caw_lock);
	if (next != NULL) {
		scsi_post(reactor_of(next), caw_run, next);
	} else {
		for (uint32_t i = 0; i < lun->nreactors; i++)
			post(mimo_reactor_get(i), thaw_here, lun);
	}
	scsi_task_done(p);
}

static void caw_write_submit(struct scsi_task_priv *p);

static void caw_flushed(struct mimo_bdev_io *io, bool success, void *arg)
{
	struct scsi_task_priv *p = arg;
	int rc = success ? 0 : mimo_bdev_io_get_status(io);

	mimo_bdev_free_io(io);
	if (rc != 0)
		scsi_task_bdev_error(p, rc, true, p->lba);
	else
		scsi_task_set_transfer(p, p->want, (uint32_t)p->want);
	caw_finish(p);
}

static void caw_written(struct mimo_bdev_io *io, bool success, void *arg)
{
	struct scsi_task_priv *p = arg;
	int rc = success ? 0 : mimo_bdev_io_get_status(io);

	mimo_bdev_free_io(io);
	if (rc == -ENOMEM && scsi_task_retry(p, rc, caw_write_submit))
		return;
	if (rc != 0) {
		scsi_task_bdev_error(p, rc, true, p->lba);
		caw_finish(p);
		return;
	}
	if (p->fua) {
		rc = mimo_bdev_flush_blocks(p->lun->desc, scsi_lun_channel(p), p->lba, p->nblocks,
					    caw_flushed, p);
		if (rc == 0)
			return;
		scsi_task_bdev_error(p, rc, true, p->lba);
		caw_finish(p);
		return;
	}
	scsi_task_set_transfer(p, p->want, (uint32_t)p->want);
	caw_finish(p);
}

static void caw_write_submit(struct scsi_task_priv *p)
{
	int rc = mimo_bdev_writev_blocks(p->lun->desc, scsi_lun_channel(p), p->iov, p->iovcnt,
					 p->lba, p->nblocks, caw_written, p);

	if (rc == -ENOMEM && scsi_task_retry(p, rc, caw_write_submit))
		return;
	if (rc != 0) {
		scsi_task_bdev_error(p, rc, true, p->lba);
		caw_finish(p);
	}
}

static void caw_read_submit(struct scsi_task_priv *p);

static void caw_read_done(struct mimo_bdev_io *io, bool success, void *arg)
{
	struct scsi_task_priv *p = arg;
	int rc = success ? 0 : mimo_bdev_io_get_status(io);
	size_t len = p->nblocks * p->lun->block_size;
	int64_t at;

	mimo_bdev_free_io(io);
	if (rc == -ENOMEM && scsi_task_retry(p, rc, caw_read_submit))
		return;
	if (rc != 0) {
		scsi_task_bdev_error(p, rc, false, p->lba);
		caw_finish(p);
		return;
	}
	/* The first half of the data-out is the verify instance, the second the write. */
	at = scsi_task_compare(p, 0, p->buf, len);
	if (at >= 0) {
		scsi_task_sense_info(p, MIMO_SCSI_SENSE_MISCOMPARE,
				     MIMO_SCSI_ASC_MISCOMPARE_DURING_VERIFY, (uint64_t)at);
		caw_finish(p);
		return;
	}
	if (scsi_task_sub_iov(p, len, len) != 0) {
		scsi_task_sense(p, MIMO_SCSI_SENSE_HARDWARE_ERROR,
				MIMO_SCSI_ASC_INTERNAL_TARGET_FAILURE);
		caw_finish(p);
		return;
	}
	caw_write_submit(p);
}

static void caw_read_submit(struct scsi_task_priv *p)
{
	int rc = mimo_bdev_read_blocks(p->lun->desc, scsi_lun_channel(p), p->buf, p->lba,
				       p->nblocks, caw_read_done, p);

	if (rc == -ENOMEM && scsi_task_retry(p, rc, caw_read_submit))
		return;
	if (rc != 0) {
		scsi_task_bdev_error(p, rc, false, p->lba);
		caw_finish(p);
	}
}

/* Its turn has come: every task through the gate has completed, no other runs. */
static void caw_run(void *arg)
{
	struct scsi_task_priv *p = arg;

	if (p->aborted) {
		caw_finish(p);
		return;
	}
	caw_read_submit(p);
}

void scsi_exec_compare_and_write(struct scsi_task_priv *p)
{
	const uint8_t *cdb = p->task->cdb;
	struct scsi_lun *lun = p->lun;
	bool first;

	p->lba = scsi_be64(cdb + 2);
	p->nblocks = cdb[13];
	if (!scsi_task_range_ok(p, p->lba, p->nblocks))
		return;
	/* 0 blocks: nothing is read, compared or written, and that is not an error. */
	if (p->nblocks == 0) {
		scsi_task_good(p);
		return;
	}
	p->want = 2 * p->nblocks * lun->block_size;
	if (!scsi_task_need_data_out(p, p->want))
		return;
	p->buf = malloc(p->nblocks * lun->block_size);
	if (p->buf == NULL) {
		scsi_task_fail(p, MIMO_SCSI_SENSE_HARDWARE_ERROR,
			       MIMO_SCSI_ASC_INTERNAL_TARGET_FAILURE);
		return;
	}
	p->fua = lun->can_flush &&
		 ((cdb[1] & 0x08) ||
		  !(atomic_load_explicit(&lun->mode, memory_order_relaxed) & SCSI_MODE_WCE));

	pthread_mutex_lock(&lun->caw_lock);
	first = TAILQ_EMPTY(&lun->caw_queue);
	TAILQ_INSERT_TAIL(&lun->caw_queue, p, wait);
	p->is_caw = true;
	if (first)
		atomic_store(&lun->frozen, true);
	pthread_mutex_unlock(&lun->caw_lock);
	if (!first)
		return; /* the one before starts it */
	/* One count per reactor visit and one for this loop, so that the count cannot reach
	 * zero before every visit is sent. */
	atomic_store(&lun->drain_pending, (int)lun->nreactors + 1);
	for (uint32_t i = 0; i < lun->nreactors; i++)
		post(mimo_reactor_get(i), drain_here, lun);
	drained_one(lun);
}
