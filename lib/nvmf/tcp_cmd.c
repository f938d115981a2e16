/*
 * NVMe/TCP PDUs on the target side: ICReq, command capsules and their data (in-capsule, or
 * R2T then H2CData), dispatch to the controller or the NVM command set, and responses
 * (C2HData, CapsuleResp). On the queue pair's reactor.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "nvmf_auth.h"
#include "log.h"
#include "nvmf_internal.h"
#include "tcp_internal.h"

#define COMP "nvmf_tcp"

/* --- requests ------------------------------------------------------------------------------ */

static struct nvmf_req *req_get(struct nvmf_qpair *qp)
{
	struct nvmf_req *req;

	if (mimo_unlikely(qp->num_free == 0))
		return NULL;
	req = qp->free_reqs[--qp->num_free];
	req->state = NVMF_REQ_RECV;
	req->data = NULL;
	req->data_len = 0;
	req->h2c_done = 0;
	req->h2c = false;
	req->data_is_large = false;
	req->data_is_malloc = false;
	req->ddgst_error = false;
	req->auth_event = 0;
	req->ns = NULL;
	req->aux = NULL;
	memset(&req->cpl, 0, sizeof(req->cpl));
	qp->outstanding++;
	return req;
}

void nvmf_tcp_req_release(struct nvmf_req *req)
{
	struct nvmf_qpair *qp = req->qp;

	if (req->data_is_large)
		nvmf_tcp_buf_put(qp->pg, req->data);
	else if (req->data_is_malloc)
		free(req->data);
	free(req->aux);
	req->aux = NULL;
	req->data = NULL;
	req->data_is_large = false;
	req->data_is_malloc = false;
	req->state = NVMF_REQ_FREE;
	qp->free_reqs[qp->num_free++] = req;
	qp->outstanding--;
	if (mimo_unlikely(qp->state == NVMF_QP_CLOSING))
		nvmf_tcp_qpair_try_free(qp);
}

static void req_sent(struct mimo_tcp_send *s)
{
	struct nvmf_req *req = (struct nvmf_req *)((char *)s - offsetof(struct nvmf_req, send_rsp));
	struct nvmf_qpair *qp = req->qp;

	nvmf_tcp_req_release(req);
	if (mimo_unlikely(qp->close_after_send) && qp->state != NVMF_QP_CLOSING &&
	    mimo_tcp_sendq_empty(&qp->sq))
		nvmf_tcp_qpair_close(qp);
}

static void req_data_sent(struct mimo_tcp_send *s)
{
	struct nvmf_req *req =
		(struct nvmf_req *)((char *)s - offsetof(struct nvmf_req, send_data));

	req_sent(&req->send_rsp);
}

/* --- responses ----------------------------------------------------------------------------- */

static bool is_fabrics(const struct mimo_nvme_cmd *cmd, uint8_t fctype)
{
	return cmd->opc == MIMO_NVME_OPC_FABRIC &&
	       ((const struct mimo_nvmf_connect_cmd *)cmd)->fctype == fctype;
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
		if (qp->state == NVMF_QP_CLOSING) {
			nvmf_tcp_qpair_leave_ctrlr(qp);
			return;
		}
		/* A queue that must authenticate stays under the connect timeout until it has. */
		if (req->cpl.cdw0 & MIMO_NVMF_CONNECT_AUTHREQ_ATR) {
			qp->state = NVMF_QP_AUTHENTICATING;
			return;
		}
		qp->state = NVMF_QP_RUNNING;
		nvmf_tcp_qpair_connected(qp);
		return;
	}
	if (qp->state == NVMF_QP_CLOSING)
		qp->ctrlr_released = true;
	else
		qp->state = NVMF_QP_AWAIT_CONNECT;
}

static void queue_response(struct nvmf_req *req)
{
	struct nvmf_qpair *qp = req->qp;
	struct mimo_nvme_tcp_rsp *rsp = (struct mimo_nvme_tcp_rsp *)req->rsp_hdr;
	uint32_t front;

	if (mimo_unlikely(req->cmd.opc == MIMO_NVME_OPC_FABRIC)) {
		if (is_fabrics(&req->cmd, MIMO_NVMF_FCTYPE_CONNECT)) {
			connect_done(qp, req);
		} else if (is_fabrics(&req->cmd, MIMO_NVMF_FCTYPE_DISCONNECT)) {
			/* Refused before authentication: the queue stays until it times out. */
			if (req->cpl.status == 0)
				qp->close_after_send = true;
		} else if (req->auth_event == NVMF_AUTH_EV_DONE) {
			/* Authenticated: from the next command on, the queue is the host's. */
			if (qp->state == NVMF_QP_AUTHENTICATING) {
				qp->state = NVMF_QP_RUNNING;
				nvmf_tcp_qpair_connected(qp);
			}
		} else if (req->auth_event == NVMF_AUTH_EV_FAILED) {
			/* Failure1 (or the host's Failure2) goes out, then the queue goes. */
			qp->close_after_send = true;
		}
	}
	if (mimo_unlikely(qp->state == NVMF_QP_CLOSING)) {
		nvmf_tcp_req_release(req);
		return;
	}
	req->state = NVMF_REQ_SENDING;
	req->cpl.cid = req->cmd.cid;
	req->cpl.sqid = qp->qid;
	req->cpl.sqhd = qp->sqhd;
	if (!req->h2c && req->data_len != 0 && req->cpl.status == 0) {
		struct mimo_nvme_tcp_data *d = (struct mimo_nvme_tcp_data *)req->data_hdr;
		bool success = qp->sq_fc_disabled && qp->tt->opts.c2h_success &&
			       req->cpl.cdw0 == 0 && req->cpl.cdw1 == 0;
		uint8_t flags =
			MIMO_NVME_TCP_FLAG_LAST_PDU | (success ? MIMO_NVME_TCP_FLAG_SUCCESS : 0);

		memset(d, 0, sizeof(*d));
		d->cccid = req->cmd.cid;
		d->datal = req->data_len;
		front = mimo_tcp_hdr_build(d, MIMO_NVME_TCP_C2H_DATA, flags, req->data_len,
					   qp->hdgst, qp->ddgst, qp->hpda);
		mimo_tcp_send_reset(&req->send_data);
		mimo_tcp_send_add(&req->send_data, d, front);
		mimo_tcp_send_add(&req->send_data, req->data, req->data_len);
		if (qp->ddgst) {
			req->ddgst = mimo_tcp_digest(req->data, req->data_len);
			mimo_tcp_send_add(&req->send_data, &req->ddgst, sizeof(req->ddgst));
		}
		req->send_data.done = success ? req_data_sent : NULL;
		mimo_tcp_sendq_push(&qp->sq, &req->send_data);
		if (success) {
			nvmf_tcp_qpair_kick(qp);
			return;
		}
	}
	memset(rsp, 0, sizeof(rsp->ch));
	rsp->cqe = req->cpl;
	front = mimo_tcp_hdr_build(rsp, MIMO_NVME_TCP_CAPSULE_RESP, 0, 0, qp->hdgst, false, 0);
	mimo_tcp_send_reset(&req->send_rsp);
	mimo_tcp_send_add(&req->send_rsp, rsp, front);
	req->send_rsp.done = req_sent;
	mimo_tcp_sendq_push(&qp->sq, &req->send_rsp);
	nvmf_tcp_qpair_kick(qp);
}

static void complete_msg(void *arg)
{
	queue_response(arg);
}

void nvmf_req_complete(struct nvmf_req *req)
{
	struct mimo_reactor *r = req->qp->pg->reactor;

	if (mimo_likely(mimo_reactor_current() == r))
		queue_response(req);
	else
		nvmf_msg(r, complete_msg, req);
}

static void finish(struct nvmf_req *req, uint8_t sct, uint8_t sc)
{
	nvmf_req_set_status(req, sct, sc);
	queue_response(req);
}

/* --- execution ----------------------------------------------------------------------------- */

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

static void exec(struct nvmf_req *req)
{
	struct nvmf_qpair *qp = req->qp;
	const struct mimo_nvme_cmd *cmd = &req->cmd;

	req->state = NVMF_REQ_EXEC;
	if (mimo_likely(cmd->opc != MIMO_NVME_OPC_FABRIC)) {
		if (mimo_likely(qp->qid != 0))
			nvmf_io_exec(req);
		else
			to_tgt(req, admin_msg);
		return;
	}
	switch (((const struct mimo_nvmf_connect_cmd *)cmd)->fctype) {
	case MIMO_NVMF_FCTYPE_CONNECT:
		if (qp->state != NVMF_QP_AWAIT_CONNECT) {
			finish(req, MIMO_NVME_SCT_GENERIC, MIMO_NVME_SC_COMMAND_SEQUENCE_ERROR);
			return;
		}
		qp->state = NVMF_QP_CONNECTING;
		qp->connect_pending = true;
		to_tgt(req, connect_msg);
		return;
	case MIMO_NVMF_FCTYPE_PROPERTY_GET:
	case MIMO_NVMF_FCTYPE_PROPERTY_SET:
		if (qp->qid != 0) {
			finish(req, MIMO_NVME_SCT_GENERIC, MIMO_NVME_SC_INVALID_FIELD);
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
		finish(req, 0, 0);
		return;
	default:
		finish(req, MIMO_NVME_SCT_GENERIC, MIMO_NVME_SC_INVALID_OPCODE);
		return;
	}
}

static void send_r2t(struct nvmf_req *req)
{
	struct nvmf_qpair *qp = req->qp;
	struct mimo_nvme_tcp_r2t *r = (struct mimo_nvme_tcp_r2t *)req->data_hdr;
	uint32_t front;

	memset(r, 0, sizeof(*r));
	r->cccid = req->cmd.cid;
	r->ttag = req->ttag;
	r->r2to = 0;
	r->r2tl = req->data_len; /* one R2T for the whole transfer */
	front = mimo_tcp_hdr_build(r, MIMO_NVME_TCP_R2T, 0, 0, qp->hdgst, false, 0);
	mimo_tcp_send_reset(&req->send_data);
	mimo_tcp_send_add(&req->send_data, r, front);
	req->send_data.done = NULL;
	req->state = NVMF_REQ_R2T;
	mimo_tcp_sendq_push(&qp->sq, &req->send_data);
	nvmf_tcp_qpair_kick(qp);
}

/* The request has its buffer: fetch the data (R2T) or run it. */
static void data_ready(struct nvmf_req *req)
{
	if (req->h2c && req->h2c_done < req->data_len)
		send_r2t(req);
	else
		exec(req);
}

void nvmf_tcp_req_got_buf(struct nvmf_req *req, void *buf)
{
	req->data = buf;
	req->data_is_large = true;
	data_ready(req);
}

/* 1: host to controller, 2: controller to host, 0: none (3, both, is invalid). */
static uint8_t xfer_dir(const struct mimo_nvme_cmd *cmd)
{
	if (cmd->opc == MIMO_NVME_OPC_FABRIC)
		return ((const struct mimo_nvmf_connect_cmd *)cmd)->fctype & 3;
	return cmd->opc & 3;
}

/* A whole capsule arrived (icd_len bytes of in-capsule data already in req->data). */
static void capsule_start(struct nvmf_req *req, uint32_t icd_len)
{
	struct nvmf_qpair *qp = req->qp;
	const struct mimo_nvme_cmd *cmd = &req->cmd;
	const struct mimo_nvme_sgl *sgl = &cmd->dptr;
	uint8_t dir = xfer_dir(cmd);
	uint32_t len;

	if (qp->sqsize != 0)
		qp->sqhd = qp->sqhd >= qp->sqsize ? 0 : (uint16_t)(qp->sqhd + 1);
	if (mimo_unlikely(req->ddgst_error)) {
		finish(req, MIMO_NVME_SCT_GENERIC, MIMO_NVME_SC_TRANSIENT_TRANSPORT_ERROR);
		return;
	}
	if (mimo_unlikely(qp->state != NVMF_QP_RUNNING)) {
		if (qp->state == NVMF_QP_AUTHENTICATING) {
			/* Nothing but authentication until it succeeded. */
			if (!is_fabrics(cmd, MIMO_NVMF_FCTYPE_AUTH_SEND) &&
			    !is_fabrics(cmd, MIMO_NVMF_FCTYPE_AUTH_RECV)) {
				finish(req, MIMO_NVME_SCT_COMMAND_SPECIFIC,
				       MIMO_NVMF_SC_AUTH_REQUIRED);
				return;
			}
		} else if (!is_fabrics(cmd, MIMO_NVMF_FCTYPE_CONNECT)) {
			/* Nothing but Connect until Connect succeeded. */
			finish(req, MIMO_NVME_SCT_GENERIC, MIMO_NVME_SC_COMMAND_SEQUENCE_ERROR);
			return;
		}
	}
	if (mimo_unlikely(cmd->opc != MIMO_NVME_OPC_FABRIC && (cmd->fuse_psdt & 3) != 0)) {
		finish(req, MIMO_NVME_SCT_GENERIC, MIMO_NVME_SC_INVALID_FIELD);
		return;
	}
	if (dir == 0) {
		exec(req);
		return;
	}
	if (mimo_unlikely(dir == 3)) {
		finish(req, MIMO_NVME_SCT_GENERIC, MIMO_NVME_SC_INVALID_FIELD);
		return;
	}
	req->h2c = dir == 1;
	len = sgl->length;
	if (sgl->id == MIMO_NVME_SGL_DATA_BLOCK_OFFSET) {
		/* In-capsule data: the SGL's address is an offset into it. */
		if (!req->h2c) {
			finish(req, MIMO_NVME_SCT_GENERIC,
			       MIMO_NVME_SC_SGL_DESCRIPTOR_TYPE_INVALID);
			return;
		}
		if (sgl->address > icd_len || len > icd_len - sgl->address) {
			finish(req, MIMO_NVME_SCT_GENERIC,
			       sgl->address > icd_len ? MIMO_NVME_SC_INVALID_SGL_OFFSET
						      : MIMO_NVME_SC_DATA_SGL_LENGTH_INVALID);
			return;
		}
		if (sgl->address != 0)
			memmove(req->data, req->data + sgl->address, len);
		req->data_len = len;
		req->h2c_done = len;
		exec(req);
		return;
	}
	if (mimo_unlikely(sgl->id != MIMO_NVME_SGL_TRANSPORT_DATA || icd_len != 0)) {
		finish(req, MIMO_NVME_SCT_GENERIC, MIMO_NVME_SC_SGL_DESCRIPTOR_TYPE_INVALID);
		return;
	}
	if (mimo_unlikely(len > qp->tt->opts.max_io_size)) {
		finish(req, MIMO_NVME_SCT_GENERIC, MIMO_NVME_SC_DATA_SGL_LENGTH_INVALID);
		return;
	}
	req->data_len = len;
	if (len == 0) {
		exec(req);
		return;
	}
	if (len <= qp->tt->inline_size) {
		req->data = req->inline_buf;
	} else if (qp->qid == 0) {
		/* Admin data (a large log page): rare, so from the heap. */
		req->data = calloc(1, len);
		if (req->data == NULL) {
			finish(req, MIMO_NVME_SCT_GENERIC, MIMO_NVME_SC_INTERNAL_DEVICE_ERROR);
			return;
		}
		req->data_is_malloc = true;
	} else {
		req->data = nvmf_tcp_buf_get(qp->pg);
		if (req->data == NULL) {
			req->state = NVMF_REQ_NEED_BUF;
			STAILQ_INSERT_TAIL(&qp->pg->buf_waiters, req, link);
			return;
		}
		req->data_is_large = true;
	}
	data_ready(req);
}

int nvmf_req_alloc_admin_data(struct nvmf_req *req, uint32_t len)
{
	req->data = calloc(1, len);
	if (req->data == NULL)
		return -ENOMEM;
	req->data_is_malloc = true;
	req->data_len = len;
	return 0;
}

/* --- ICReq --------------------------------------------------------------------------------- */

static int icreq(struct nvmf_qpair *qp, const struct mimo_nvme_tcp_ic *req, uint32_t *fei)
{
	struct mimo_nvme_tcp_ic *resp = (struct mimo_nvme_tcp_ic *)qp->ctl_hdr;

	if (req->pfv != 0) {
		*fei = offsetof(struct mimo_nvme_tcp_ic, pfv);
		return MIMO_NVME_TCP_FES_UNSUPPORTED_PARAM;
	}
	if (req->pda > 31) {
		*fei = offsetof(struct mimo_nvme_tcp_ic, pda);
		return MIMO_NVME_TCP_FES_INVALID_HEADER_FIELD;
	}
	/* Only now is the connection worth its requests (tcp.c: qpair_create). */
	if (nvmf_tcp_qpair_alloc_reqs(qp) != 0) {
		MIMO_ERR(COMP, "%s:%s: out of memory for a new queue pair", qp->traddr,
			 qp->trsvcid);
		return -ENOMEM;
	}
	qp->hpda = req->pda;
	qp->hdgst = (req->dgst & 1) != 0;
	qp->ddgst = (req->dgst & 2) != 0;
	memset(resp, 0, sizeof(*resp));
	resp->ch.pdu_type = MIMO_NVME_TCP_IC_RESP;
	resp->ch.hlen = sizeof(*resp);
	resp->ch.plen = sizeof(*resp);
	resp->pfv = 0;
	resp->pda = 0; /* CPDA: no padding before data the host sends */
	resp->dgst = req->dgst & 3;
	resp->maxr2t_or_maxh2cdata = qp->maxh2cdata;
	mimo_tcp_send_reset(&qp->send_ctl);
	mimo_tcp_send_add(&qp->send_ctl, resp, sizeof(*resp));
	qp->send_ctl.done = NULL;
	mimo_tcp_sendq_push(&qp->sq, &qp->send_ctl);
	nvmf_tcp_qpair_kick(qp);
	/* Every PDU after the ICReq carries the digests just agreed. */
	qp->rx.hdgst = qp->hdgst;
	qp->rx.ddgst = qp->ddgst;
	qp->state = NVMF_QP_AWAIT_CONNECT;
	MIMO_DEBUG(COMP, "%s:%s: ICReq hpda %u, digests %s/%s", qp->traddr, qp->trsvcid, qp->hpda,
		   qp->hdgst ? "header" : "-", qp->ddgst ? "data" : "-");
	return 0;
}

/* --- receive callbacks --------------------------------------------------------------------- */

/*
 * In-capsule data longer than what the command's SGL describes (offset + length), or any
 * in-capsule data for a command that moves none: the host's framing and ours disagree, which
 * is a fatal transport error (as the Linux target, which reads only the SGL's length and then
 * finds garbage where the next PDU should start).
 */
static bool icd_beyond_sgl(const struct mimo_nvme_cmd *cmd, uint32_t icd_len)
{
	const struct mimo_nvme_sgl *sgl = &cmd->dptr;

	if (xfer_dir(cmd) == 0)
		return true;
	return sgl->id == MIMO_NVME_SGL_DATA_BLOCK_OFFSET &&
	       (uint64_t)icd_len > sgl->address + (uint64_t)sgl->length;
}

static int on_header(void *ctx, struct mimo_tcp_rx_pdu *pdu, uint32_t *fei)
{
	struct nvmf_qpair *qp = ctx;
	uint8_t type = pdu->hdr.ch.pdu_type;

	if (type == MIMO_NVME_TCP_IC_REQ) {
		if (qp->state != NVMF_QP_AWAIT_IC)
			return MIMO_NVME_TCP_FES_PDU_SEQUENCE_ERROR;
		return 0;
	}
	if (type == MIMO_NVME_TCP_H2C_TERM_REQ)
		return 0;
	if (mimo_unlikely(qp->state == NVMF_QP_AWAIT_IC))
		return MIMO_NVME_TCP_FES_PDU_SEQUENCE_ERROR;
	if (type == MIMO_NVME_TCP_CAPSULE_CMD) {
		struct nvmf_req *req = req_get(qp);
		uint32_t limit = qp->qid == 0 ? NVMF_ADMIN_ICD : qp->tt->opts.in_capsule_data_size;

		if (mimo_unlikely(req == NULL)) {
			/* More commands than the queue holds. */
			MIMO_WARN(COMP, "%s:%s: queue %u overflowed (%u entries)", qp->traddr,
				  qp->trsvcid, qp->qid, qp->num_reqs);
			return MIMO_NVME_TCP_FES_PDU_SEQUENCE_ERROR;
		}
		memcpy(&req->cmd, &pdu->hdr.cmd.sqe, sizeof(req->cmd));
		pdu->arg = req;
		if (pdu->data_len == 0)
			return 0;
		if (mimo_unlikely(pdu->data_len > limit)) {
			nvmf_tcp_req_release(req);
			return MIMO_NVME_TCP_FES_DATA_LIMIT_EXCEEDED;
		}
		if (mimo_unlikely(icd_beyond_sgl(&req->cmd, pdu->data_len))) {
			/* Bytes no command asked for: the host and we disagree on the stream. */
			nvmf_tcp_req_release(req);
			*fei = offsetof(struct mimo_nvme_tcp_ch, plen);
			return MIMO_NVME_TCP_FES_DATA_OUT_OF_RANGE;
		}
		if (pdu->data_len <= qp->tt->inline_size) {
			req->data = req->inline_buf;
		} else {
			req->data = malloc(pdu->data_len);
			if (req->data == NULL) {
				nvmf_tcp_req_release(req);
				return MIMO_NVME_TCP_FES_DATA_LIMIT_EXCEEDED;
			}
			req->data_is_malloc = true;
		}
		pdu->data = req->data;
		return 0;
	}
	if (type == MIMO_NVME_TCP_H2C_DATA) {
		const struct mimo_nvme_tcp_data *h = &pdu->hdr.data;
		struct nvmf_req *req;

		if (h->ttag == 0 || h->ttag > qp->num_reqs ||
		    qp->reqs[h->ttag - 1].state != NVMF_REQ_R2T) {
			*fei = offsetof(struct mimo_nvme_tcp_data, ttag);
			return MIMO_NVME_TCP_FES_INVALID_HEADER_FIELD;
		}
		req = &qp->reqs[h->ttag - 1];
		if (h->cccid != req->cmd.cid) {
			*fei = offsetof(struct mimo_nvme_tcp_data, cccid);
			return MIMO_NVME_TCP_FES_INVALID_HEADER_FIELD;
		}
		if (h->datal != pdu->data_len) {
			*fei = offsetof(struct mimo_nvme_tcp_data, datal);
			return MIMO_NVME_TCP_FES_INVALID_HEADER_FIELD;
		}
		if (h->datal > qp->maxh2cdata)
			return MIMO_NVME_TCP_FES_DATA_LIMIT_EXCEEDED;
		if (h->datao != req->h2c_done || h->datal == 0 ||
		    h->datal > req->data_len - req->h2c_done)
			return MIMO_NVME_TCP_FES_DATA_OUT_OF_RANGE;
		pdu->data = req->data + h->datao;
		pdu->arg = req;
		return 0;
	}
	*fei = offsetof(struct mimo_nvme_tcp_ch, pdu_type);
	return MIMO_NVME_TCP_FES_INVALID_HEADER_FIELD;
}

static int on_pdu(void *ctx, struct mimo_tcp_rx_pdu *pdu, uint32_t *fei)
{
	struct nvmf_qpair *qp = ctx;
	struct nvmf_req *req = pdu->arg;

	switch (pdu->hdr.ch.pdu_type) {
	case MIMO_NVME_TCP_CAPSULE_CMD:
		req->ddgst_error = !pdu->ddgst_ok;
		capsule_start(req, pdu->data_len);
		break;
	case MIMO_NVME_TCP_H2C_DATA:
		req->h2c_done += pdu->data_len;
		if (!pdu->ddgst_ok)
			req->ddgst_error = true;
		if (req->h2c_done == req->data_len) {
			if (req->ddgst_error)
				finish(req, MIMO_NVME_SCT_GENERIC,
				       MIMO_NVME_SC_TRANSIENT_TRANSPORT_ERROR);
			else
				exec(req);
		} else if (pdu->hdr.ch.flags & MIMO_NVME_TCP_FLAG_LAST_PDU) {
			/* The host says that was all, and it was not. */
			return MIMO_NVME_TCP_FES_PDU_SEQUENCE_ERROR;
		}
		break;
	case MIMO_NVME_TCP_IC_REQ:
		return icreq(qp, &pdu->hdr.ic, fei);
	case MIMO_NVME_TCP_H2C_TERM_REQ:
		MIMO_WARN(COMP, "%s:%s: the host terminated the connection (FES %u)", qp->traddr,
			  qp->trsvcid, pdu->hdr.term.fes);
		return -ECONNRESET;
	default:
		break;
	}
	/* A Disconnect, or an error, may have closed the queue pair: stop reading. */
	return qp->state == NVMF_QP_CLOSING ? -ECONNRESET : 0;
}

const struct mimo_tcp_rx_ops nvmf_tcp_rx_ops = { on_header, on_pdu };
