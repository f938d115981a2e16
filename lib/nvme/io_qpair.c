/* I/O queue pairs as the public API shows them: allocation (queue IDs under the controller's
 * lock, since any thread may ask), connection in the background, processing, release. */
#include <errno.h>
#include <stddef.h>

#include "opts.h"
#include "clock.h"
#include "compiler.h"
#include "nvme_internal.h"

static void release_qid(struct mimo_nvme_ctrlr *ctrlr, uint16_t qid)
{
	if (ctrlr->qid_used != NULL && qid <= ctrlr->num_io_queues)
		ctrlr->qid_used[qid] = 0;
}

MIMO_EXPORT int mimo_nvme_ctrlr_alloc_io_qpair(struct mimo_nvme_ctrlr *ctrlr,
					       const struct mimo_nvme_io_qpair_opts *opts,
					       struct mimo_nvme_qpair **out)
{
	struct mimo_nvme_io_qpair_opts o = { .opts_size = sizeof(o) };
	uint32_t entries = ctrlr->io_queue_size;
	struct mimo_nvme_qpair *qp;
	uint16_t qid = 0;
	int rc;

	if (mimo_opts_copy(&o, sizeof(o), opts) != 0)
		return -EINVAL;
	if (o.io_queue_size != 0)
		entries = MIMO_MIN(o.io_queue_size, (uint32_t)(ctrlr->cap & 0xffff) + 1);
	if (entries < 2)
		entries = 2;
	/* Round robin from the last one handed out: a queue ID just released may still be
	 * known to the target while it tears that connection down. */
	pthread_mutex_lock(&ctrlr->lock);
	for (uint32_t i = 0; ctrlr->qid_used != NULL && i < ctrlr->num_io_queues; i++) {
		uint32_t q = (ctrlr->last_qid + i) % ctrlr->num_io_queues + 1;

		if (!ctrlr->qid_used[q]) {
			ctrlr->qid_used[q] = 1;
			ctrlr->last_qid = q;
			qid = (uint16_t)q;
			break;
		}
	}
	pthread_mutex_unlock(&ctrlr->lock);
	if (qid == 0)
		return -ENOSPC;
	rc = nvme_qpair_create(ctrlr, qid, entries, &qp);
	if (rc == 0) {
		int crc = nvme_qpair_connect(qp);

		/* Connecting is the queue's business: an immediate refusal shows as a failed
		 * queue (wait_connected, process_completions), like a later one. */
		if (crc != 0)
			nvme_qpair_fail(qp, crc);
	}
	pthread_mutex_lock(&ctrlr->lock);
	if (rc != 0)
		release_qid(ctrlr, qid);
	else
		TAILQ_INSERT_TAIL(&ctrlr->io_qpairs, qp, link);
	pthread_mutex_unlock(&ctrlr->lock);
	if (rc == 0)
		*out = qp;
	return rc;
}

MIMO_EXPORT int mimo_nvme_qpair_wait_connected(struct mimo_nvme_qpair *qp, uint32_t timeout_ms)
{
	int64_t deadline = mimo_now_ns() + (int64_t)timeout_ms * 1000000;

	for (;;) {
		if (qp->state == QP_READY)
			return 0;
		if (qp->state == QP_FAILED)
			return qp->fail_rc != 0 ? qp->fail_rc : -ENXIO;
		if (mimo_now_ns() > deadline)
			return -ETIMEDOUT;
		(void)nvme_qpair_process(qp, 0);
		if (qp->state != QP_READY && qp->state != QP_FAILED)
			nvme_qpair_wait_io(qp, 1);
	}
}

MIMO_EXPORT bool mimo_nvme_qpair_is_connected(const struct mimo_nvme_qpair *qp)
{
	return qp->state == QP_READY;
}

MIMO_EXPORT void mimo_nvme_ctrlr_free_io_qpair(struct mimo_nvme_qpair *qp)
{
	struct mimo_nvme_ctrlr *ctrlr;

	if (qp == NULL || qp->free_pending)
		return; /* freed already, from inside a callback: it goes when the loop unwinds */
	ctrlr = qp->ctrlr;
	pthread_mutex_lock(&ctrlr->lock);
	TAILQ_REMOVE(&ctrlr->io_qpairs, qp, link);
	release_qid(ctrlr, qp->qid);
	pthread_mutex_unlock(&ctrlr->lock);
	nvme_qpair_destroy(qp);
}

MIMO_EXPORT int mimo_nvme_qpair_process_completions(struct mimo_nvme_qpair *qp, uint32_t max)
{
	return nvme_qpair_process(qp, max);
}

MIMO_EXPORT uint32_t mimo_nvme_qpair_outstanding(const struct mimo_nvme_qpair *qp)
{
	return qp->outstanding;
}
