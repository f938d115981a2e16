/*
 * Requests, transport-independent: what a command is (admin, Fabrics, I/O), whether the queue
 * pair's state allows it, where it runs (I/O here, admin and Fabrics on the target's reactor),
 * what its completion changes on the queue pair (Connect, Disconnect, authentication), and the
 * retry of I/O the bdev had no resources for. On the queue pair's reactor.
 */
#include <errno.h>
#include <stdlib.h>

#include "log.h"
#include "nvmf_auth.h"
#include "transport.h"

#define COMP "nvmf"

/* --- completion ---------------------------------------------------------------------------- */

/* nvmf_get_stats: a queue pair joined its controller (nvmf_qpair_leave_ctrlr takes it off
 * the current count again). */
static void count_connected(struct nvmf_qpair *qp)
{
	struct nvmf_reactor_stat *st = &qp->tt->tgt->stat[qp->group->reactor_index];

	if (qp->qid == 0) {
		NVMF_STAT_ADD(st->admin_qpairs, 1);
		NVMF_STAT_ADD(st->current_admin_qpairs, 1);
	} else {
		NVMF_STAT_ADD(st->io_qpairs, 1);
		NVMF_STAT_ADD(st->current_io_qpairs, 1);
	}
	qp->stat_counted = true;
	nvmf_qpair_stat_associated(qp);
}

/* The Connect answer came back from the target's reactor: the queue pair joins its
 * controller (or, if it closed meanwhile, leaves it at once). */
static void connect_done(struct nvmf_qpair *qp, struct nvmf_req *req)
{
	const struct mimo_nvmf_connect_cmd *cmd = (const void *)&req->cmd;
	struct nvmf_ctrlr *c = req->aux;

	req->aux = NULL;
	qp->connect_pending = false;
	if (req->cpl.status == 0 && c != NULL) {
		qp->ctrlr = c;
		qp->subsys = c->subsys;
		qp->qid = cmd->qid;
		qp->sqsize = cmd->sqsize;
		qp->sq_fc_disabled = (cmd->cattr & MIMO_NVMF_CATTR_DISABLE_SQ_FLOW_CONTROL) != 0;
		count_connected(qp);
		if (qp->state == NVMF_QP_CLOSING) {
			nvmf_qpair_leave_ctrlr(qp);
			return;
		}
		/* A queue that must authenticate stays under the connect timeout until it has. */
		if (req->cpl.cdw0 & MIMO_NVMF_CONNECT_AUTHREQ_ATR) {
			qp->state = NVMF_QP_AUTHENTICATING;
			return;
		}
		qp->state = NVMF_QP_RUNNING;
		if (qp->tt->ops->qpair_connected != NULL)
			qp->tt->ops->qpair_connected(qp);
		return;
	}
	if (qp->state == NVMF_QP_CLOSING)
		qp->ctrlr_released = true;
	else
		qp->state = NVMF_QP_AWAIT_CONNECT;
}

/* What a Fabrics command's completion changes on its queue pair. */
static void fabrics_done(struct nvmf_qpair *qp, struct nvmf_req *req)
{
	if (nvmf_cmd_is_fabrics(&req->cmd, MIMO_NVMF_FCTYPE_CONNECT)) {
		/* Only the Connect that went to the target's reactor: one refused on the way
		 * (a second Connect on a connected queue) changes nothing about the queue. */
		if (qp->connect_pending)
			connect_done(qp, req);
	} else if (nvmf_cmd_is_fabrics(&req->cmd, MIMO_NVMF_FCTYPE_DISCONNECT)) {
		/* Refused before authentication: the queue stays until it times out. */
		if (req->cpl.status == 0)
			qp->close_after_send = true;
	} else if (req->auth_event == NVMF_AUTH_EV_DONE) {
		/* Authenticated: from the next command on, the queue is the host's. */
		if (qp->state == NVMF_QP_AUTHENTICATING) {
			qp->state = NVMF_QP_RUNNING;
			if (qp->tt->ops->qpair_connected != NULL)
				qp->tt->ops->qpair_connected(qp);
		}
	} else if (req->auth_event == NVMF_AUTH_EV_FAILED) {
		/* Failure1 (or the host's Failure2) goes out, then the queue goes. */
		qp->close_after_send = true;
	}
}

static void respond(struct nvmf_req *req)
{
	struct nvmf_qpair *qp = req->qp;

	if (mimo_unlikely(req->cmd.opc == MIMO_NVME_OPC_FABRIC))
		fabrics_done(qp, req);
	/* NVMe commands of I/O queues (not their Connect). */
	if (mimo_likely(qp->qid != 0 && req->cmd.opc != MIMO_NVME_OPC_FABRIC)) {
		struct nvmf_reactor_stat *st = &qp->tt->tgt->stat[qp->group->reactor_index];

		NVMF_STAT_ADD(st->completed_nvme_io, 1);
		if (mimo_unlikely((req->cpl.status >> 1) != 0))
			NVMF_STAT_ADD(st->failed_nvme_io, 1);
	}
	req->cpl.cid = req->cmd.cid;
	req->cpl.sqid = qp->qid;
	req->cpl.sqhd = qp->sqhd;
	qp->tt->ops->queue_response(req);
}

static void complete_msg(void *arg)
{
	respond(arg);
}

void nvmf_req_complete(struct nvmf_req *req)
{
	struct mimo_reactor *r = req->qp->group->reactor;

	if (mimo_likely(mimo_reactor_current() == r))
		respond(req);
	else
		nvmf_msg(r, complete_msg, req);
}

void nvmf_req_fail(struct nvmf_req *req, uint8_t sct, uint8_t sc)
{
	nvmf_req_set_status(req, sct, sc);
	respond(req);
}

/* --- dispatch ------------------------------------------------------------------------------ */

int nvmf_req_init(struct nvmf_req *req, bool damaged)
{
	struct nvmf_qpair *qp = req->qp;
	const struct mimo_nvme_cmd *cmd = &req->cmd;
	uint8_t dir = nvmf_cmd_xfer_dir(cmd);

	if (qp->sqsize != 0)
		qp->sqhd = qp->sqhd >= qp->sqsize ? 0 : (uint16_t)(qp->sqhd + 1);
	if (mimo_unlikely(damaged)) {
		nvmf_req_fail(req, MIMO_NVME_SCT_GENERIC, MIMO_NVME_SC_TRANSIENT_TRANSPORT_ERROR);
		return -1;
	}
	if (mimo_unlikely(qp->state != NVMF_QP_RUNNING)) {
		if (qp->state == NVMF_QP_AUTHENTICATING) {
			/* Nothing but authentication until it succeeded. */
			if (!nvmf_cmd_is_fabrics(cmd, MIMO_NVMF_FCTYPE_AUTH_SEND) &&
			    !nvmf_cmd_is_fabrics(cmd, MIMO_NVMF_FCTYPE_AUTH_RECV)) {
				nvmf_req_fail(req, MIMO_NVME_SCT_COMMAND_SPECIFIC,
					      MIMO_NVMF_SC_AUTH_REQUIRED);
				return -1;
			}
		} else if (!nvmf_cmd_is_fabrics(cmd, MIMO_NVMF_FCTYPE_CONNECT)) {
			/* Nothing but Connect until Connect succeeded. */
			nvmf_req_fail(req, MIMO_NVME_SCT_GENERIC,
				      MIMO_NVME_SC_COMMAND_SEQUENCE_ERROR);
			return -1;
		}
	}
	if (mimo_unlikely((cmd->opc != MIMO_NVME_OPC_FABRIC && (cmd->fuse_psdt & 3) != 0) ||
			  dir == 3)) {
		/* Fused commands are not supported; nor is data both ways. */
		nvmf_req_fail(req, MIMO_NVME_SCT_GENERIC, MIMO_NVME_SC_INVALID_FIELD);
		return -1;
	}
	return dir;
}

static void to_tgt(struct nvmf_req *req, mimo_msg_fn fn)
{
	struct mimo_nvmf_tgt *tgt = req->qp->tt->tgt;

	if (mimo_reactor_current() == tgt->reactor)
		fn(req);
	else
		nvmf_msg(tgt->reactor, fn, req);
}

static void admin_msg(void *arg)
{
	nvmf_ctrlr_process_admin(arg);
}

static void fabrics_msg(void *arg)
{
	nvmf_ctrlr_process_fabrics(arg);
}

static void connect_msg(void *arg)
{
	nvmf_ctrlr_connect(arg);
}

static void auth_msg(void *arg)
{
	nvmf_ctrlr_process_auth(arg);
}

static void exec_fabrics(struct nvmf_req *req)
{
	struct nvmf_qpair *qp = req->qp;

	switch (((const struct mimo_nvmf_connect_cmd *)&req->cmd)->fctype) {
	case MIMO_NVMF_FCTYPE_CONNECT:
		if (qp->state != NVMF_QP_AWAIT_CONNECT) {
			nvmf_req_fail(req, MIMO_NVME_SCT_GENERIC,
				      MIMO_NVME_SC_COMMAND_SEQUENCE_ERROR);
			return;
		}
		qp->state = NVMF_QP_CONNECTING;
		qp->connect_pending = true;
		to_tgt(req, connect_msg);
		return;
	case MIMO_NVMF_FCTYPE_PROPERTY_GET:
	case MIMO_NVMF_FCTYPE_PROPERTY_SET:
		if (qp->qid != 0) {
			nvmf_req_fail(req, MIMO_NVME_SCT_GENERIC, MIMO_NVME_SC_INVALID_FIELD);
			return;
		}
		to_tgt(req, fabrics_msg);
		return;
	case MIMO_NVMF_FCTYPE_AUTH_SEND:
	case MIMO_NVMF_FCTYPE_AUTH_RECV:
		/* On any queue, once connected (keys and the state live on the target's
		 * reactor, as the controller does). */
		to_tgt(req, auth_msg);
		return;
	case MIMO_NVMF_FCTYPE_DISCONNECT:
		nvmf_req_fail(req, 0, 0);
		return;
	default:
		nvmf_req_fail(req, MIMO_NVME_SCT_GENERIC, MIMO_NVME_SC_INVALID_OPCODE);
		return;
	}
}

void nvmf_req_exec(struct nvmf_req *req)
{
	if (mimo_likely(req->cmd.opc != MIMO_NVME_OPC_FABRIC)) {
		if (mimo_likely(req->qp->qid != 0))
			nvmf_io_exec(req);
		else
			to_tgt(req, admin_msg);
		return;
	}
	exec_fabrics(req);
}

/* --- retry --------------------------------------------------------------------------------- */

static int retry_poll(void *arg)
{
	struct nvmf_poll_group *pg = arg;
	STAILQ_HEAD(, nvmf_req) now = STAILQ_HEAD_INITIALIZER(now);
	struct nvmf_req *req;
	int work = 0;

	/* What fails again this turn waits for the next one. */
	STAILQ_CONCAT(&now, &pg->retry);
	while ((req = STAILQ_FIRST(&now)) != NULL) {
		STAILQ_REMOVE_HEAD(&now, link);
		nvmf_io_exec(req);
		work++;
	}
	if (STAILQ_EMPTY(&pg->retry))
		mimo_poller_unregister(&pg->retry_poller);
	return work;
}

void nvmf_req_retry_later(struct nvmf_req *req)
{
	struct nvmf_poll_group *pg = req->qp->group;

	if (pg->retry_poller == NULL) {
		pg->retry_poller = mimo_poller_register(retry_poll, pg, 0);
		if (pg->retry_poller == NULL) {
			nvmf_req_fail(req, MIMO_NVME_SCT_GENERIC,
				      MIMO_NVME_SC_INTERNAL_DEVICE_ERROR);
			return;
		}
	}
	STAILQ_INSERT_TAIL(&pg->retry, req, link);
	NVMF_STAT_ADD(pg->tt->tgt->stat[pg->reactor_index].pending_bdev_io, 1);
}

void nvmf_qpair_drop_retries(struct nvmf_qpair *qp)
{
	struct nvmf_poll_group *pg = qp->group;
	struct nvmf_req *req, *next;

	for (req = STAILQ_FIRST(&pg->retry); req != NULL; req = next) {
		next = STAILQ_NEXT(req, link);
		if (req->qp != qp)
			continue;
		STAILQ_REMOVE(&pg->retry, req, nvmf_req, link);
		/* The queue pair is closing: the transport releases it without a response. */
		nvmf_req_fail(req, MIMO_NVME_SCT_GENERIC, MIMO_NVME_SC_ABORTED_SQ_DELETION);
	}
}

void nvmf_poll_group_init(struct nvmf_poll_group *pg, struct nvmf_transport *tt)
{
	pg->tt = tt;
	pg->reactor = mimo_reactor_current();
	pg->reactor_index = mimo_reactor_index(pg->reactor);
	STAILQ_INIT(&pg->retry);
	pg->retry_poller = NULL;
}

void nvmf_poll_group_fini(struct nvmf_poll_group *pg)
{
	/* Its queue pairs are gone, and their retries with them. */
	mimo_poller_unregister(&pg->retry_poller);
}
