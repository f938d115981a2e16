/*
 * NVMe/TCP PDUs on the target side: ICReq, command capsules and their data (in-capsule, or
 * R2T then H2CData), handed to the core (nvmf_req_init, nvmf_req_exec: request.c), and
 * responses (C2HData, CapsuleResp). On the queue pair's reactor.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "tcp_internal.h"

#define COMP "nvmf_tcp"

/* --- requests ------------------------------------------------------------------------------ */

static struct nvmf_tcp_req *req_get(struct nvmf_tcp_qpair *qp)
{
	struct nvmf_tcp_req *req;

	if (mimo_unlikely(qp->num_free == 0))
		return NULL;
	req = qp->free_reqs[--qp->num_free];
	req->state = NVMF_REQ_RECV;
	req->h2c_done = 0;
	req->h2c = false;
	req->data_is_large = false;
	req->data_is_malloc = false;
	req->ddgst_error = false;
	nvmf_req_clear(&req->core);
	qp->core.outstanding++;
	return req;
}

void nvmf_tcp_req_release(struct nvmf_tcp_req *req)
{
	struct nvmf_tcp_qpair *qp = req->qp;

	nvmf_req_zcopy_end(&req->core);
	if (req->data_is_large)
		nvmf_tcp_buf_put(qp->pg, req->core.data);
	else if (req->data_is_malloc)
		free(req->core.data);
	free(req->core.aux);
	req->core.aux = NULL;
	req->core.data = NULL;
	req->data_is_large = false;
	req->data_is_malloc = false;
	req->state = NVMF_REQ_FREE;
	qp->free_reqs[qp->num_free++] = req;
	qp->core.outstanding--;
	if (mimo_unlikely(qp->core.state == NVMF_QP_CLOSING))
		nvmf_qpair_try_free(&qp->core);
}

static void req_sent(struct mimo_tcp_send *s)
{
	struct nvmf_tcp_req *req = mimo_container_of(s, struct nvmf_tcp_req, send_rsp);
	struct nvmf_tcp_qpair *qp = req->qp;

	nvmf_tcp_req_release(req);
	if (mimo_unlikely(qp->core.close_after_send) && qp->core.state != NVMF_QP_CLOSING &&
	    mimo_tcp_sendq_empty(&qp->sq))
		nvmf_tcp_qpair_close(qp);
}

static void req_data_sent(struct mimo_tcp_send *s)
{
	struct nvmf_tcp_req *req = mimo_container_of(s, struct nvmf_tcp_req, send_data);

	req_sent(&req->send_rsp);
}

/* --- responses ----------------------------------------------------------------------------- */

/* The core's completion hook: C2HData (for a read) and CapsuleResp, queued for the flush. */
void nvmf_tcp_queue_response(struct nvmf_req *core)
{
	struct nvmf_tcp_req *req = nvmf_tcp_req(core);
	struct nvmf_tcp_qpair *qp = req->qp;
	struct mimo_nvme_tcp_rsp *rsp = (struct mimo_nvme_tcp_rsp *)req->rsp_hdr;
	uint32_t front;

	if (mimo_unlikely(qp->core.state == NVMF_QP_CLOSING)) {
		nvmf_tcp_req_release(req);
		return;
	}
	req->state = NVMF_REQ_SENDING;
	if (!req->h2c && core->data_len != 0 && core->cpl.status == 0) {
		struct mimo_nvme_tcp_data *d = (struct mimo_nvme_tcp_data *)req->data_hdr;
		bool success = qp->core.sq_fc_disabled && qp->tt->core.opts.c2h_success &&
			       core->cpl.cdw0 == 0 && core->cpl.cdw1 == 0;
		uint8_t flags =
			MIMO_NVME_TCP_FLAG_LAST_PDU | (success ? MIMO_NVME_TCP_FLAG_SUCCESS : 0);

		memset(d, 0, sizeof(*d));
		d->cccid = core->cmd.cid;
		d->datal = core->data_len;
		front = mimo_tcp_hdr_build(d, MIMO_NVME_TCP_C2H_DATA, flags, core->data_len,
					   qp->hdgst, qp->ddgst, qp->hpda);
		mimo_tcp_send_reset(&req->send_data);
		mimo_tcp_send_add(&req->send_data, d, front);
		mimo_tcp_send_add(&req->send_data, core->data, core->data_len);
		if (qp->ddgst) {
			req->ddgst = mimo_tcp_digest(core->data, core->data_len);
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
	rsp->cqe = core->cpl;
	front = mimo_tcp_hdr_build(rsp, MIMO_NVME_TCP_CAPSULE_RESP, 0, 0, qp->hdgst, false, 0);
	mimo_tcp_send_reset(&req->send_rsp);
	mimo_tcp_send_add(&req->send_rsp, rsp, front);
	req->send_rsp.done = req_sent;
	mimo_tcp_sendq_push(&qp->sq, &req->send_rsp);
	nvmf_tcp_qpair_kick(qp);
}

/* Done with here, on the queue pair's reactor: what TCP found wrong (SGL, length, digest). */
static void finish(struct nvmf_tcp_req *req, uint8_t sct, uint8_t sc)
{
	nvmf_req_fail(&req->core, sct, sc);
}

/* The command and its data are in: the core runs it. */
static void exec(struct nvmf_tcp_req *req)
{
	req->state = NVMF_REQ_EXEC;
	nvmf_req_exec(&req->core);
}

static void send_r2t(struct nvmf_tcp_req *req)
{
	struct nvmf_tcp_qpair *qp = req->qp;
	struct mimo_nvme_tcp_r2t *r = (struct mimo_nvme_tcp_r2t *)req->data_hdr;
	uint32_t front;

	memset(r, 0, sizeof(*r));
	r->cccid = req->core.cmd.cid;
	r->ttag = req->ttag;
	r->r2to = 0;
	r->r2tl = req->core.data_len; /* one R2T for the whole transfer */
	front = mimo_tcp_hdr_build(r, MIMO_NVME_TCP_R2T, 0, 0, qp->hdgst, false, 0);
	mimo_tcp_send_reset(&req->send_data);
	mimo_tcp_send_add(&req->send_data, r, front);
	req->send_data.done = NULL;
	req->state = NVMF_REQ_R2T;
	mimo_tcp_sendq_push(&qp->sq, &req->send_data);
	nvmf_tcp_qpair_kick(qp);
}

/* The request has its buffer: fetch the data (R2T) or run it. */
static void data_ready(struct nvmf_tcp_req *req)
{
	if (req->h2c && req->h2c_done < req->core.data_len)
		send_r2t(req);
	else
		exec(req);
}

void nvmf_tcp_req_got_buf(struct nvmf_tcp_req *req, void *buf)
{
	req->core.data = buf;
	req->data_is_large = true;
	data_ready(req);
}

/* A whole capsule arrived (icd_len bytes of in-capsule data already in req->data). */
static void capsule_start(struct nvmf_tcp_req *req, uint32_t icd_len)
{
	struct nvmf_tcp_qpair *qp = req->qp;
	const struct mimo_nvme_sgl *sgl = &req->core.cmd.dptr;
	int dir = nvmf_req_init(&req->core, req->ddgst_error);
	uint32_t len;

	if (dir <= 0) {
		if (dir == 0)
			exec(req);
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
			memmove(req->core.data, req->core.data + sgl->address, len);
		req->core.data_len = len;
		req->h2c_done = len;
		exec(req);
		return;
	}
	if (mimo_unlikely(sgl->id != MIMO_NVME_SGL_TRANSPORT_DATA || icd_len != 0)) {
		finish(req, MIMO_NVME_SCT_GENERIC, MIMO_NVME_SC_SGL_DESCRIPTOR_TYPE_INVALID);
		return;
	}
	if (mimo_unlikely(len > qp->tt->core.opts.max_io_size)) {
		finish(req, MIMO_NVME_SCT_GENERIC, MIMO_NVME_SC_DATA_SGL_LENGTH_INVALID);
		return;
	}
	req->core.data_len = len;
	if (len == 0) {
		exec(req);
		return;
	}
	if (!req->h2c && !qp->ddgst && nvmf_req_zcopy_possible(&req->core)) {
		/*
		 * A read from a bdev in memory: C2HData goes out from the bdev's memory (sendmsg
		 * copies it into the socket once, or OpenSSL into a record), with no buffer here
		 * and no copy into one. Not with a data digest: the digest would be computed
		 * ahead of a send that a racing write to the same blocks could change under it.
		 */
		req->core.zcopy = true;
		exec(req);
		return;
	}
	if (req->h2c && !qp->ddgst && nvmf_req_zcopy_write_start(&req->core)) {
		/* A write to a bdev in memory: the R2T asks for data that H2CData then brings
		 * straight into the bdev (nvmf_req_zcopy_write_start checked the command first;
		 * no data digest, as for in-capsule data: on_header's icd_zcopy says why). */
		data_ready(req);
		return;
	}
	if (len <= qp->tt->inline_size) {
		req->core.data = req->inline_buf;
	} else if (qp->core.qid == 0) {
		/* Admin data (a large log page): rare, so from the heap. */
		req->core.data = calloc(1, len);
		if (req->core.data == NULL) {
			finish(req, MIMO_NVME_SCT_GENERIC, MIMO_NVME_SC_INTERNAL_DEVICE_ERROR);
			return;
		}
		req->data_is_malloc = true;
	} else {
		req->core.data = nvmf_tcp_buf_get(qp->pg);
		if (req->core.data == NULL) {
			req->state = NVMF_REQ_NEED_BUF;
			STAILQ_INSERT_TAIL(&qp->pg->buf_waiters, req, link);
			return;
		}
		req->data_is_large = true;
	}
	data_ready(req);
}

/* --- ICReq --------------------------------------------------------------------------------- */

static int icreq(struct nvmf_tcp_qpair *qp, const struct mimo_nvme_tcp_ic *req, uint32_t *fei)
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
		MIMO_ERR(COMP, "%s:%s: out of memory for a new queue pair", qp->core.traddr,
			 qp->core.trsvcid);
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
	qp->core.state = NVMF_QP_AWAIT_CONNECT;
	MIMO_DEBUG(COMP, "%s:%s: ICReq hpda %u, digests %s/%s", qp->core.traddr, qp->core.trsvcid,
		   qp->hpda, qp->hdgst ? "header" : "-", qp->ddgst ? "data" : "-");
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

	if (nvmf_cmd_xfer_dir(cmd) == 0)
		return true;
	return sgl->id == MIMO_NVME_SGL_DATA_BLOCK_OFFSET &&
	       (uint64_t)icd_len > sgl->address + (uint64_t)sgl->length;
}

/*
 * Whether a Write's in-capsule data may go straight into the bdev's memory. Decided here, on
 * the header, because the data follows at once (often in the same read): only for an SGL that
 * names exactly this data, and without a data digest - a digest is checked once the data is
 * in, and damaged data in the bdev could not be taken back (the write fails with a Transient
 * Transport Error and the host retries, expecting the blocks untouched). The core checks
 * the command itself (nvmf_req_zcopy_write_start), so that capsule_start cannot refuse it
 * after its data landed.
 */
static bool icd_zcopy(struct nvmf_tcp_qpair *qp, struct nvmf_tcp_req *req, uint32_t icd_len)
{
	const struct mimo_nvme_sgl *sgl = &req->core.cmd.dptr;

	if (qp->ddgst || sgl->id != MIMO_NVME_SGL_DATA_BLOCK_OFFSET || sgl->address != 0 ||
	    sgl->length != icd_len)
		return false;
	req->core.data_len = icd_len;
	return nvmf_req_zcopy_write_start(&req->core);
}

static int on_header(void *ctx, struct mimo_tcp_rx_pdu *pdu, uint32_t *fei)
{
	struct nvmf_tcp_qpair *qp = ctx;
	uint8_t type = pdu->hdr.ch.pdu_type;

	if (type == MIMO_NVME_TCP_IC_REQ) {
		if (qp->core.state != NVMF_QP_AWAIT_IC)
			return MIMO_NVME_TCP_FES_PDU_SEQUENCE_ERROR;
		return 0;
	}
	if (type == MIMO_NVME_TCP_H2C_TERM_REQ)
		return 0;
	if (mimo_unlikely(qp->core.state == NVMF_QP_AWAIT_IC))
		return MIMO_NVME_TCP_FES_PDU_SEQUENCE_ERROR;
	if (type == MIMO_NVME_TCP_CAPSULE_CMD) {
		struct nvmf_tcp_req *req = req_get(qp);
		uint32_t limit =
			qp->core.qid == 0 ? NVMF_ADMIN_ICD : qp->tt->core.opts.in_capsule_data_size;

		if (mimo_unlikely(req == NULL)) {
			/* More commands than the queue holds. */
			MIMO_WARN(COMP, "%s:%s: queue %u overflowed (%u entries)", qp->core.traddr,
				  qp->core.trsvcid, qp->core.qid, qp->num_reqs);
			return MIMO_NVME_TCP_FES_PDU_SEQUENCE_ERROR;
		}
		memcpy(&req->core.cmd, &pdu->hdr.cmd.sqe, sizeof(req->core.cmd));
		pdu->arg = req;
		if (pdu->data_len == 0)
			return 0;
		if (mimo_unlikely(pdu->data_len > limit)) {
			nvmf_tcp_req_release(req);
			return MIMO_NVME_TCP_FES_DATA_LIMIT_EXCEEDED;
		}
		if (mimo_unlikely(icd_beyond_sgl(&req->core.cmd, pdu->data_len))) {
			/* Bytes no command asked for: the host and we disagree on the stream. */
			nvmf_tcp_req_release(req);
			*fei = offsetof(struct mimo_nvme_tcp_ch, plen);
			return MIMO_NVME_TCP_FES_DATA_OUT_OF_RANGE;
		}
		if (icd_zcopy(qp, req, pdu->data_len)) {
			/* req->core.data is the bdev's memory */
			pdu->data_cold = true;
		} else if (pdu->data_len <= qp->tt->inline_size) {
			req->core.data = req->inline_buf;
		} else {
			req->core.data = malloc(pdu->data_len);
			if (req->core.data == NULL) {
				nvmf_tcp_req_release(req);
				return MIMO_NVME_TCP_FES_DATA_LIMIT_EXCEEDED;
			}
			req->data_is_malloc = true;
		}
		pdu->data = req->core.data;
		return 0;
	}
	if (type == MIMO_NVME_TCP_H2C_DATA) {
		const struct mimo_nvme_tcp_data *h = &pdu->hdr.data;
		struct nvmf_tcp_req *req;

		if (h->ttag == 0 || h->ttag > qp->num_reqs ||
		    qp->reqs[h->ttag - 1].state != NVMF_REQ_R2T) {
			*fei = offsetof(struct mimo_nvme_tcp_data, ttag);
			return MIMO_NVME_TCP_FES_INVALID_HEADER_FIELD;
		}
		req = &qp->reqs[h->ttag - 1];
		if (h->cccid != req->core.cmd.cid) {
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
		    h->datal > req->core.data_len - req->h2c_done)
			return MIMO_NVME_TCP_FES_DATA_OUT_OF_RANGE;
		pdu->data = req->core.data + h->datao;
		pdu->data_cold = req->core.zcopy_io != NULL; /* landing in the bdev */
		pdu->arg = req;
		return 0;
	}
	*fei = offsetof(struct mimo_nvme_tcp_ch, pdu_type);
	return MIMO_NVME_TCP_FES_INVALID_HEADER_FIELD;
}

static int on_pdu(void *ctx, struct mimo_tcp_rx_pdu *pdu, uint32_t *fei)
{
	struct nvmf_tcp_qpair *qp = ctx;
	struct nvmf_tcp_req *req = pdu->arg;

	switch (pdu->hdr.ch.pdu_type) {
	case MIMO_NVME_TCP_CAPSULE_CMD:
		req->ddgst_error = !pdu->ddgst_ok;
		capsule_start(req, pdu->data_len);
		break;
	case MIMO_NVME_TCP_H2C_DATA:
		req->h2c_done += pdu->data_len;
		if (!pdu->ddgst_ok)
			req->ddgst_error = true;
		if (req->h2c_done == req->core.data_len) {
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
		MIMO_WARN(COMP, "%s:%s: the host terminated the connection (FES %u)",
			  qp->core.traddr, qp->core.trsvcid, pdu->hdr.term.fes);
		return -ECONNRESET;
	default:
		break;
	}
	/* A Disconnect, or an error, may have closed the queue pair: stop reading. */
	return qp->core.state == NVMF_QP_CLOSING ? -ECONNRESET : 0;
}

const struct mimo_tcp_rx_ops nvmf_tcp_rx_ops = { on_header, on_pdu };
