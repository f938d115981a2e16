/*
 * Task management (SAM-5 7): ABORT TASK, ABORT TASK SET, CLEAR TASK SET, LOGICAL UNIT RESET,
 * TARGET RESET and QUERY TASK.
 *
 * A function visits every reactor by message (each keeps its own list of the LUN's tasks),
 * marks the tasks it ends as aborted, and answers once they have all completed. A task
 * parked at the LUN's gate completes at once; one inside the bdev when the bdev answers (a
 * logical unit reset also resets the bdev, which ends I/O a bdev was holding); a loop
 * (WRITE SAME, VERIFY, UNMAP) stops at its next step.
 */
#include <errno.h>
#include <stdlib.h>

#include "scsi_internal.h"

struct scsi_tmf {
	struct mimo_scsi_dev *dev;
	struct scsi_lun *lun;
	enum mimo_scsi_tmf fn;
	uint64_t tag;
	void (*cb)(void *arg, enum mimo_scsi_tmf_response resp);
	void *arg;
	struct mimo_reactor *reactor; /* the caller's: cb runs there */
	_Atomic int sweeps_left;
	_Atomic int pending; /* the sweep phase, the bdev reset, each task waited for */
	atomic_bool found;
	struct scsi_tmf *parent; /* TARGET RESET: the function that waits for this one */
};

static void answer(struct scsi_tmf *tmf, enum mimo_scsi_tmf_response resp);

static void finish(void *arg)
{
	struct scsi_tmf *tmf = arg;
	enum mimo_scsi_tmf_response resp = MIMO_SCSI_TMF_RESP_COMPLETE;

	if (tmf->fn == MIMO_SCSI_TMF_LOGICAL_UNIT_RESET)
		scsi_lun_reset_state(tmf->lun);
	if (tmf->fn == MIMO_SCSI_TMF_QUERY_TASK && atomic_load(&tmf->found))
		resp = MIMO_SCSI_TMF_RESP_SUCCEEDED;
	scsi_lun_put(tmf->lun);
	answer(tmf, resp);
}

static void put(struct scsi_tmf *tmf)
{
	if (atomic_fetch_sub(&tmf->pending, 1) == 1)
		scsi_post(tmf->reactor, finish, tmf);
}

void scsi_tmf_task_done(struct scsi_tmf *tmf)
{
	put(tmf);
}

static void parent_put(struct scsi_tmf *parent)
{
	if (atomic_fetch_sub(&parent->pending, 1) == 1)
		answer(parent, MIMO_SCSI_TMF_RESP_COMPLETE);
}

static void parent_put_msg(void *arg)
{
	parent_put(arg);
}

static void answer(struct scsi_tmf *tmf, enum mimo_scsi_tmf_response resp)
{
	struct scsi_tmf *parent = tmf->parent;

	if (parent != NULL)
		parent_put(parent);
	else
		tmf->cb(tmf->arg, resp);
	free(tmf);
}

static bool matches(const struct scsi_tmf *tmf, const struct scsi_task_priv *p)
{
	if (tmf->fn == MIMO_SCSI_TMF_ABORT_TASK || tmf->fn == MIMO_SCSI_TMF_QUERY_TASK)
		return p->task->tag == tmf->tag;
	return true;
}

static void reset_done(struct mimo_bdev_io *io, bool success, void *arg)
{
	(void)success;
	mimo_bdev_free_io(io);
	put(arg);
}

/* On the caller's reactor, once every reactor has marked its tasks. */
static void after_sweep(void *arg)
{
	struct scsi_tmf *tmf = arg;
	struct scsi_lun *lun = tmf->lun;
	struct scsi_lun_reactor *st = &lun->per_reactor[mimo_reactor_index(mimo_reactor_current())];

	/* A reset of the bdev ends what the bdev holds (an error bdev's pending I/O). Not on
	 * a LUN being removed: its channels are going. */
	if (tmf->fn == MIMO_SCSI_TMF_LOGICAL_UNIT_RESET && !st->draining &&
	    !atomic_load(&lun->removing)) {
		atomic_fetch_add(&tmf->pending, 1);
		if (mimo_bdev_reset(lun->desc, scsi_lun_reactor_channel(lun, st), reset_done,
				    tmf) != 0)
			atomic_fetch_sub(&tmf->pending, 1);
	}
	put(tmf);
}

static void sweep_here(void *arg)
{
	struct scsi_tmf *tmf = arg;
	struct scsi_lun_reactor *st =
		&tmf->lun->per_reactor[mimo_reactor_index(mimo_reactor_current())];
	struct scsi_task_priv *p;

	TAILQ_FOREACH(p, &st->tasks, link)
	{
		if (!matches(tmf, p))
			continue;
		if (tmf->fn == MIMO_SCSI_TMF_QUERY_TASK) {
			if (!p->aborted)
				atomic_store(&tmf->found, true);
			continue;
		}
		if (p->aborted)
			continue; /* another function ended it and waits for it */
		p->aborted = true;
		p->tmf = tmf;
		atomic_fetch_add(&tmf->pending, 1);
		if (p->parked) {
			TAILQ_REMOVE(&st->parked, p, wait);
			p->parked = false;
			scsi_task_done_later(p);
		}
	}
	if (atomic_fetch_sub(&tmf->sweeps_left, 1) == 1)
		scsi_post(tmf->reactor, after_sweep, tmf);
}

static void answer_later(void *arg)
{
	struct scsi_tmf *tmf = arg;

	answer(tmf, (enum mimo_scsi_tmf_response)tmf->tag);
}

static int start(struct mimo_scsi_dev *dev, enum mimo_scsi_tmf fn, struct scsi_lun *lun,
		 uint64_t tag, struct scsi_tmf *parent,
		 void (*cb)(void *arg, enum mimo_scsi_tmf_response resp), void *arg)
{
	struct scsi_tmf *tmf = calloc(1, sizeof(*tmf));

	if (tmf == NULL)
		return -ENOMEM;
	tmf->dev = dev;
	tmf->fn = fn;
	tmf->tag = tag;
	tmf->cb = cb;
	tmf->arg = arg;
	tmf->parent = parent;
	tmf->reactor = mimo_reactor_current();
	if (lun == NULL) {
		/* Answered without a visit, but never inside the call. */
		tmf->tag = fn > MIMO_SCSI_TMF_QUERY_TASK ? MIMO_SCSI_TMF_RESP_REJECTED
							 : MIMO_SCSI_TMF_RESP_INCORRECT_LUN;
		scsi_post(tmf->reactor, answer_later, tmf);
		return 0;
	}
	/* The function holds the LUN: it may be removed meanwhile. This reactor has not yet
	 * seen the removal's visit, so the LUN is still here (lun.c). */
	scsi_lun_get(lun);
	tmf->lun = lun;
	atomic_init(&tmf->sweeps_left, (int)lun->nreactors);
	atomic_init(&tmf->pending, 1);
	for (uint32_t i = 0; i < lun->nreactors; i++)
		scsi_post(mimo_reactor_get(i), sweep_here, tmf);
	return 0;
}

MIMO_EXPORT int mimo_scsi_dev_task_mgmt(struct mimo_scsi_dev *dev, enum mimo_scsi_tmf fn,
					uint32_t lun_id, uint64_t tag,
					void (*cb)(void *arg, enum mimo_scsi_tmf_response resp),
					void *arg)
{
	struct scsi_lun *lun = NULL;

	if (fn == MIMO_SCSI_TMF_TARGET_RESET) {
		struct scsi_tmf *parent = calloc(1, sizeof(*parent));

		if (parent == NULL)
			return -ENOMEM;
		parent->cb = cb;
		parent->arg = arg;
		atomic_init(&parent->pending, 1);
		for (uint32_t id = 0; id < MIMO_SCSI_MAX_LUNS; id++) {
			struct scsi_lun *l = atomic_load(&dev->luns[id]);

			if (l == NULL)
				continue;
			atomic_fetch_add(&parent->pending, 1);
			if (start(dev, MIMO_SCSI_TMF_LOGICAL_UNIT_RESET, l, 0, parent, NULL,
				  NULL) != 0)
				atomic_fetch_sub(&parent->pending, 1);
		}
		/* The parent's own count goes by message: never answer inside the call. */
		parent->fn = fn;
		parent->reactor = mimo_reactor_current();
		scsi_post(parent->reactor, parent_put_msg, parent);
		return 0;
	}
	if (fn <= MIMO_SCSI_TMF_QUERY_TASK && lun_id < MIMO_SCSI_MAX_LUNS)
		lun = atomic_load(&dev->luns[lun_id]);
	if (fn > MIMO_SCSI_TMF_QUERY_TASK)
		lun = NULL;
	return start(dev, fn, lun, tag, NULL, cb, arg);
}
