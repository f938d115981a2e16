/*
 * The host end of the loop transport: a queue pair whose commands go to a target in this
 * process (lib/nvmf/loop.c) through a loop queue (lib/nvme_loop) instead of a socket. The
 * trid names the target's loop listener: "trtype:loop traddr:NAME subnqn:...".
 *
 * What NVMe/TCP does on the wire has its counterpart here: connecting opens the queue (no
 * ICReq: the Fabrics Connect comes first), a command's data is handed over with it, and a
 * read's data comes back with its completion. The target copies both ways, so the caller's
 * buffer is never touched once its callback ran, as over TCP.
 */
#include <errno.h>
#include <string.h>

#include "compiler.h"
#include "log.h"
#include "nvme_loop.h"
#include "tcp.h"

static int loop_connect(struct mimo_nvme_qpair *qp)
{
	const char *name = qp->ctrlr->trid.traddr;
	int rc = nvme_loop_queue_open(name, qp->num_reqs, &qp->loop);

	if (rc != 0) {
		MIMO_ERR(NVME_COMP, "%s: no loop listener \"%s\" in this process: %s",
			 qp->ctrlr->trid.subnqn, name, strerror(-rc));
		return rc;
	}
	qp->sock.fd = qp->loop->ops->fd(qp->loop);
	return nvme_qpair_send_connect(qp);
}

static void loop_send_req(struct nvme_req *req)
{
	struct mimo_nvme_qpair *qp = req->qp;
	int rc;

	rc = qp->loop->ops->submit(qp->loop, req->cid, nvme_req_cmd(req),
				   req->dir == DIR_H2C ? req->buf : NULL, req->len);
	/* Never reached the controller: as a command a TCP target could not take. */
	if (mimo_unlikely(rc != 0))
		nvme_req_complete_status(req, MIMO_NVME_SCT_GENERIC,
					 MIMO_NVME_SC_INTERNAL_DEVICE_ERROR);
}

/* One completion from the target, with a read's data. */
static void reaped(void *arg, uint16_t slot, const struct mimo_nvme_cpl *cqe, const void *data,
		   uint32_t len)
{
	struct mimo_nvme_qpair *qp = arg;
	struct nvme_req *req = slot < qp->num_reqs ? &qp->reqs[slot] : NULL;
	struct mimo_nvme_cpl cpl = *cqe;

	if (req == NULL || !req->active || req->done)
		return; /* aborted meanwhile (the queue failed): nothing waits for it */
	if (cqe->sqhd != 0xffff)
		qp->sq_head = cqe->sqhd;
	if (req->dir == DIR_C2H && data != NULL)
		req->xfer = MIMO_MIN(len, req->len);
	if (req->xfer != 0 && req->dir == DIR_C2H)
		memcpy(req->buf, data, req->xfer);
	/* As over TCP: success with less data than the command asked for is an error. */
	if (req->dir == DIR_C2H && req->xfer != req->len && !mimo_nvme_cpl_is_error(&cpl) &&
	    !req->short_ok)
		cpl.status = (uint16_t)((cqe->status & 1) |
					mimo_nvme_status(MIMO_NVME_SCT_GENERIC,
							 MIMO_NVME_SC_DATA_TRANSFER_ERROR, 0));
	nvme_req_complete(req, &cpl);
}

static void loop_poll(struct mimo_nvme_qpair *qp)
{
	if (qp->loop->ops->reap(qp->loop, reaped, qp) == -ECONNRESET)
		nvme_qpair_fail(qp, -ECONNRESET); /* the target closed the queue */
}

static void loop_flush(struct mimo_nvme_qpair *qp)
{
	(void)qp; /* commands go at submission */
}

static void loop_close(struct mimo_nvme_qpair *qp)
{
	if (qp->loop != NULL)
		qp->loop->ops->release(qp->loop);
	qp->loop = NULL;
	qp->sock.fd = -1;
}

const struct nvme_transport_ops nvme_loop_transport = {
	.connect = loop_connect,
	.send_req = loop_send_req,
	.poll = loop_poll,
	.flush = loop_flush,
	.close = loop_close,
};
