/*
 * The host end of NVMe/TCP: socket, ICReq/ICResp, CapsuleCmd out, CapsuleResp / C2HData /
 * R2T / C2HTermReq in, H2CData for each R2T, H2CTermReq on a protocol error.
 *
 * PDUs are built in the command slot's own buffers and queued; one sendmsg sends every PDU
 * queued since the last flush. The receiver (lib/nvme_tcp) places C2HData straight into the
 * caller's buffer with one readv per poll.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sock_opts.h"
#include "clock.h"
#include "compiler.h"
#include "log.h"
#include "tcp.h"

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

/* Lines a misbehaving controller can cause at any rate: at most one a second each. */
static struct mimo_ratelimit g_ddgst_rl, g_proto_rl, g_term_rl, g_tls_rl;

/* --- sending -------------------------------------------------------------------------------- */

static void capsule_sent(struct mimo_tcp_send *s)
{
	nvme_req_sends_done(container_of(s, struct nvme_req, send));
}

void nvme_tcp_send_req(struct nvme_req *req)
{
	struct mimo_nvme_qpair *qp = req->qp;
	struct mimo_tcp_send *s = &req->send;
	uint32_t dlen = req->in_capsule ? req->len : 0;
	uint32_t front = mimo_tcp_hdr_build(req->hdr, MIMO_NVME_TCP_CAPSULE_CMD, 0, dlen, qp->hdgst,
					    qp->ddgst, qp->cpda);

	mimo_tcp_send_reset(s);
	s->done = capsule_sent;
	mimo_tcp_send_add(s, req->hdr, front);
	if (dlen != 0) {
		mimo_tcp_send_add(s, req->buf, dlen);
		if (qp->ddgst) {
			req->ddgst = mimo_tcp_digest(req->buf, dlen);
			mimo_tcp_send_add(s, &req->ddgst, sizeof(req->ddgst));
		}
	}
	req->sends++;
	mimo_tcp_sendq_push(&qp->sq, s);
}

static void h2c_sent(struct mimo_tcp_send *s);

/* The next H2CData PDU of the current R2T: at most MAXH2CDATA bytes. */
static void send_h2c(struct nvme_req *req)
{
	struct mimo_nvme_qpair *qp = req->qp;
	struct mimo_nvme_tcp_data *d = (struct mimo_nvme_tcp_data *)req->h2c_hdr;
	struct mimo_tcp_send *s = &req->h2c;
	uint32_t chunk = MIMO_MIN(qp->maxh2cdata, req->r2t_end - req->xfer);
	uint8_t flags = req->xfer + chunk == req->r2t_end ? MIMO_NVME_TCP_FLAG_LAST_PDU : 0;
	uint32_t front;

	memset(d, 0, sizeof(*d));
	d->cccid = req->cid;
	d->ttag = req->ttag;
	d->datao = req->xfer;
	d->datal = chunk;
	front = mimo_tcp_hdr_build(d, MIMO_NVME_TCP_H2C_DATA, flags, chunk, qp->hdgst, qp->ddgst,
				   qp->cpda);
	mimo_tcp_send_reset(s);
	s->done = h2c_sent;
	mimo_tcp_send_add(s, d, front);
	mimo_tcp_send_add(s, req->buf + req->xfer, chunk);
	if (qp->ddgst) {
		req->h2c_ddgst = mimo_tcp_digest(req->buf + req->xfer, chunk);
		mimo_tcp_send_add(s, &req->h2c_ddgst, sizeof(req->h2c_ddgst));
	}
	req->xfer += chunk;
	req->sends++;
	req->h2c_queued = true;
	mimo_tcp_sendq_push(&qp->sq, s);
}

/* One header buffer per slot: the next H2CData PDU is built once the last one is out. */
static void h2c_sent(struct mimo_tcp_send *s)
{
	struct nvme_req *req = container_of(s, struct nvme_req, h2c);

	req->h2c_queued = false;
	if (req->qp->state != QP_FAILED && !req->done && req->xfer < req->r2t_end)
		send_h2c(req);
	nvme_req_sends_done(req);
}

static void ctl_sent(struct mimo_tcp_send *s)
{
	container_of(s, struct mimo_nvme_qpair, ctl_send)->ctl_queued = false;
}

/* The queue's own PDU (ICReq, H2CTermReq), n bytes in ctl_buf. */
static void push_ctl(struct mimo_nvme_qpair *qp, uint32_t n)
{
	mimo_tcp_send_reset(&qp->ctl_send);
	qp->ctl_send.done = ctl_sent;
	mimo_tcp_send_add(&qp->ctl_send, qp->ctl_buf, n);
	qp->ctl_queued = true;
	mimo_tcp_sendq_push(&qp->sq, &qp->ctl_send);
}

void nvme_tcp_flush(struct mimo_nvme_qpair *qp)
{
	int rc = mimo_tcp_sendq_flush(&qp->sq, &qp->sock);

	if (rc < 0)
		nvme_qpair_fail(qp, rc == -EPIPE ? -ECONNRESET : rc);
}

/* A protocol error in what the controller sent: tell it why, then drop the connection. */
static void send_term_req(struct mimo_nvme_qpair *qp)
{
	const void *eh;
	uint32_t elen = mimo_tcp_rx_error_hdr(&qp->rx, &eh), n;
	uint64_t skipped;

	if (mimo_ratelimit_allow(&g_proto_rl, 1000000000, &skipped))
		MIMO_ERR(NVME_COMP,
			 "%s: queue %u: bad %s PDU from the controller (FES %u, FEI %u)%s",
			 qp->ctrlr->trid.subnqn, qp->qid,
			 mimo_tcp_pdu_name(qp->rx.pdu.hdr.ch.pdu_type), qp->rx.fes, qp->rx.fei,
			 skipped ? " (more suppressed)" : "");
	if (qp->ctl_queued)
		return; /* the ICReq is still going out: no room for a TermReq, just close */
	n = mimo_tcp_term_req_build(qp->ctl_buf, MIMO_NVME_TCP_H2C_TERM_REQ, qp->rx.fes, qp->rx.fei,
				    eh, elen);
	push_ctl(qp, n);
	/* Best effort: whatever the socket takes now. */
	(void)mimo_tcp_sendq_flush(&qp->sq, &qp->sock);
}

/* --- receiving ------------------------------------------------------------------------------ */

static struct nvme_req *lookup(struct mimo_nvme_qpair *qp, uint16_t cid)
{
	struct nvme_req *req;

	if (mimo_unlikely(cid >= qp->num_reqs))
		return NULL;
	req = &qp->reqs[cid];
	return req->active && !req->done && !req->queued ? req : NULL;
}

static int on_header(void *ctx, struct mimo_tcp_rx_pdu *pdu, uint32_t *fei)
{
	struct mimo_nvme_qpair *qp = ctx;
	uint8_t type = pdu->hdr.ch.pdu_type;
	const struct mimo_nvme_tcp_data *d;
	struct nvme_req *req;

	if (type == MIMO_NVME_TCP_C2H_TERM_REQ)
		return 0; /* its data (the offending header) lands in the receiver's scratch */
	if ((type == MIMO_NVME_TCP_IC_RESP) != (qp->state == QP_IC)) {
		*fei = 0;
		return MIMO_NVME_TCP_FES_PDU_SEQUENCE_ERROR;
	}
	if (type != MIMO_NVME_TCP_C2H_DATA)
		return 0;
	d = &pdu->hdr.data;
	req = lookup(qp, d->cccid);
	if (req == NULL || req->dir != DIR_C2H) {
		*fei = offsetof(struct mimo_nvme_tcp_data, cccid);
		return MIMO_NVME_TCP_FES_INVALID_HEADER_FIELD;
	}
	if (d->datal == 0 || d->datal != pdu->data_len) {
		*fei = offsetof(struct mimo_nvme_tcp_data, datal);
		return MIMO_NVME_TCP_FES_INVALID_HEADER_FIELD;
	}
	/* Data of a command arrives in order; nothing beyond its buffer. */
	if (d->datao != req->xfer) {
		*fei = offsetof(struct mimo_nvme_tcp_data, datao);
		return MIMO_NVME_TCP_FES_INVALID_HEADER_FIELD;
	}
	if (d->datal > req->len - req->xfer)
		return MIMO_NVME_TCP_FES_DATA_OUT_OF_RANGE;
	if ((pdu->hdr.ch.flags & MIMO_NVME_TCP_FLAG_SUCCESS) &&
	    !(pdu->hdr.ch.flags & MIMO_NVME_TCP_FLAG_LAST_PDU)) {
		*fei = offsetof(struct mimo_nvme_tcp_ch, flags);
		return MIMO_NVME_TCP_FES_INVALID_HEADER_FIELD;
	}
	pdu->data = req->buf + d->datao;
	pdu->arg = req;
	return 0;
}

static int on_icresp(struct mimo_nvme_qpair *qp, const struct mimo_nvme_tcp_ic *ic, uint32_t *fei)
{
	uint8_t asked = (uint8_t)((qp->ctrlr->opts.header_digest ? 1 : 0) |
				  (qp->ctrlr->opts.data_digest ? 2 : 0));

	if (ic->pfv != 0) {
		*fei = offsetof(struct mimo_nvme_tcp_ic, pfv);
		return MIMO_NVME_TCP_FES_INVALID_HEADER_FIELD;
	}
	if (ic->pda > 31) {
		*fei = offsetof(struct mimo_nvme_tcp_ic, pda);
		return MIMO_NVME_TCP_FES_INVALID_HEADER_FIELD;
	}
	/* The controller enables what the host asked for and it supports, nothing more. */
	if ((ic->dgst & ~asked) != 0) {
		*fei = offsetof(struct mimo_nvme_tcp_ic, dgst);
		return MIMO_NVME_TCP_FES_INVALID_HEADER_FIELD;
	}
	if (ic->maxr2t_or_maxh2cdata < 4096 || ic->maxr2t_or_maxh2cdata % 4 != 0) {
		*fei = offsetof(struct mimo_nvme_tcp_ic, maxr2t_or_maxh2cdata);
		return MIMO_NVME_TCP_FES_INVALID_HEADER_FIELD;
	}
	if (ic->dgst != asked)
		MIMO_WARN(NVME_COMP, "%s: the controller declined %s digests",
			  qp->ctrlr->trid.subnqn, (asked & ~ic->dgst) == 1 ? "header" : "data");
	qp->hdgst = qp->rx.hdgst = (ic->dgst & 1) != 0;
	qp->ddgst = qp->rx.ddgst = (ic->dgst & 2) != 0;
	qp->cpda = ic->pda;
	qp->maxh2cdata = ic->maxr2t_or_maxh2cdata;
	return nvme_qpair_send_connect(qp) == 0 ? 0 : -ENOMEM;
}

static int on_r2t(struct mimo_nvme_qpair *qp, const struct mimo_nvme_tcp_r2t *r2t, uint32_t *fei)
{
	struct nvme_req *req = lookup(qp, r2t->cccid);

	if (req == NULL || req->dir != DIR_H2C || req->in_capsule) {
		*fei = offsetof(struct mimo_nvme_tcp_r2t, cccid);
		return MIMO_NVME_TCP_FES_INVALID_HEADER_FIELD;
	}
	/* MAXR2T 0: one R2T at a time per command, covering data not yet sent. Data still in
	 * our send queue cannot have reached the controller: an R2T now is out of turn (and
	 * would need the PDU buffer that data still occupies). */
	if (req->xfer < req->r2t_end || req->h2c_queued) {
		*fei = 0;
		return MIMO_NVME_TCP_FES_PDU_SEQUENCE_ERROR;
	}
	if (r2t->r2to != req->xfer) {
		*fei = offsetof(struct mimo_nvme_tcp_r2t, r2to);
		return MIMO_NVME_TCP_FES_INVALID_HEADER_FIELD;
	}
	if (r2t->r2tl == 0 || r2t->r2tl > req->len - req->xfer)
		return MIMO_NVME_TCP_FES_DATA_OUT_OF_RANGE;
	req->ttag = r2t->ttag;
	req->r2t_end = r2t->r2to + r2t->r2tl;
	send_h2c(req);
	return 0;
}

static int on_pdu(void *ctx, struct mimo_tcp_rx_pdu *pdu, uint32_t *fei)
{
	struct mimo_nvme_qpair *qp = ctx;
	struct nvme_req *req;

	switch (pdu->hdr.ch.pdu_type) {
	case MIMO_NVME_TCP_CAPSULE_RESP: {
		const struct mimo_nvme_cpl *cqe = &pdu->hdr.rsp.cqe;

		req = lookup(qp, cqe->cid);
		if (req == NULL) {
			*fei = offsetof(struct mimo_nvme_tcp_rsp, cqe.cid);
			return MIMO_NVME_TCP_FES_INVALID_HEADER_FIELD;
		}
		if (cqe->sqhd != 0xffff)
			qp->sq_head = cqe->sqhd;
		/* Success with less data than the command asked for: the buffer holds stale
		 * bytes past what arrived, so the command did not do what it says. */
		if (mimo_unlikely(req->dir == DIR_C2H && req->xfer != req->len) &&
		    !mimo_nvme_cpl_is_error(cqe) && !req->short_ok) {
			struct mimo_nvme_cpl cpl = *cqe;

			cpl.status =
				(uint16_t)((cqe->status & 1) |
					   mimo_nvme_status(MIMO_NVME_SCT_GENERIC,
							    MIMO_NVME_SC_DATA_TRANSFER_ERROR, 0));
			nvme_req_complete(req, &cpl);
			return 0;
		}
		nvme_req_complete(req, cqe);
		return 0;
	}
	case MIMO_NVME_TCP_C2H_DATA:
		req = pdu->arg;
		if (mimo_unlikely(!pdu->ddgst_ok)) {
			uint64_t skipped;

			if (mimo_ratelimit_allow(&g_ddgst_rl, 1000000000, &skipped))
				MIMO_ERR(NVME_COMP, "%s: queue %u: data digest error (cid %u)%s",
					 qp->ctrlr->trid.subnqn, qp->qid, req->cid,
					 skipped ? " (more suppressed)" : "");
			req->err_status = mimo_nvme_status(MIMO_NVME_SCT_GENERIC,
							   MIMO_NVME_SC_DATA_TRANSFER_ERROR, 0);
		}
		req->xfer += pdu->data_len;
		if (pdu->hdr.ch.flags & MIMO_NVME_TCP_FLAG_SUCCESS) {
			/* The target's word that the command succeeded: no response follows. */
			struct mimo_nvme_cpl cpl = { 0 };

			cpl.sqid = qp->qid;
			cpl.sqhd = qp->sq_head;
			if (req->xfer != req->len && !req->short_ok)
				cpl.status = mimo_nvme_status(MIMO_NVME_SCT_GENERIC,
							      MIMO_NVME_SC_DATA_TRANSFER_ERROR, 0);
			nvme_req_complete(req, &cpl);
		}
		return 0;
	case MIMO_NVME_TCP_R2T:
		return on_r2t(qp, &pdu->hdr.r2t, fei);
	case MIMO_NVME_TCP_IC_RESP:
		return on_icresp(qp, &pdu->hdr.ic, fei);
	case MIMO_NVME_TCP_C2H_TERM_REQ: {
		uint64_t skipped;

		if (mimo_ratelimit_allow(&g_term_rl, 1000000000, &skipped))
			MIMO_ERR(
				NVME_COMP,
				"%s: queue %u: the controller terminated the connection (FES %u)%s",
				qp->ctrlr->trid.subnqn, qp->qid, pdu->hdr.term.fes,
				skipped ? " (more suppressed)" : "");
		return -ECONNRESET;
	}
	default:
		*fei = 0;
		return MIMO_NVME_TCP_FES_INVALID_HEADER_FIELD;
	}
}

static const struct mimo_tcp_rx_ops g_rx_ops = {
	.on_header = on_header,
	.on_pdu = on_pdu,
};

static void rx_error(struct mimo_nvme_qpair *qp, int rc)
{
	if (rc == -EPROTO && qp->rx.fes != 0 && qp->state != QP_FAILED)
		send_term_req(qp);
	nvme_qpair_fail(qp, rc);
}

/* --- connecting ----------------------------------------------------------------------------- */

static void send_icreq(struct mimo_nvme_qpair *qp)
{
	struct mimo_nvme_tcp_ic *ic = (struct mimo_nvme_tcp_ic *)qp->ctl_buf;
	uint32_t n;

	memset(ic, 0, sizeof(*ic));
	ic->pfv = 0;
	ic->pda = 0; /* HPDA 0: data right after the header */
	ic->dgst = (uint8_t)((qp->ctrlr->opts.header_digest ? 1 : 0) |
			     (qp->ctrlr->opts.data_digest ? 2 : 0));
	ic->maxr2t_or_maxh2cdata = 0; /* MAXR2T 0's based: one R2T per command */
	n = mimo_tcp_hdr_build(ic, MIMO_NVME_TCP_IC_REQ, 0, 0, false, false, 0);
	push_ctl(qp, n);
	qp->state = QP_IC;
	qp->deadline_ns = mimo_now_ns() + (int64_t)qp->ctrlr->opts.connect_timeout_ms * 1000000;
}

static int tcp_connect(struct mimo_nvme_qpair *qp)
{
	struct mimo_nvme_ctrlr *ctrlr = qp->ctrlr;
	int one = 1, fd;

	fd = socket(ctrlr->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
	if (fd < 0)
		return -errno;
	/* Small PDUs (responses, R2Ts, 4 KiB writes) must not wait for Nagle. */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if ((ctrlr->trid.priority != 0 &&
	     setsockopt(fd, SOL_SOCKET, SO_PRIORITY, &ctrlr->trid.priority,
			sizeof(ctrlr->trid.priority)) != 0) ||
	    (ctrlr->src_len != 0 &&
	     bind(fd, (const struct sockaddr *)&ctrlr->src, ctrlr->src_len) != 0)) {
		int rc = -errno;

		close(fd);
		return rc;
	}
	/* sock_impl_set_options of "ssl" for a connection that will carry TLS, of "posix" for
	 * the others; the sizes before connect(), so the window scale follows them. */
	mimo_sock_apply_buffers(fd, ctrlr->tls != NULL ? MIMO_SOCK_IMPL_SSL : MIMO_SOCK_IMPL_POSIX);
	if (connect(fd, (const struct sockaddr *)&ctrlr->addr, ctrlr->addrlen) != 0 &&
	    errno != EINPROGRESS) {
		int rc = -errno;

		close(fd);
		return rc;
	}
	mimo_sock_apply_connected(fd,
				  ctrlr->tls != NULL ? MIMO_SOCK_IMPL_SSL : MIMO_SOCK_IMPL_POSIX);
	qp->sock.fd = fd;
	qp->state = QP_CONNECTING;
	qp->deadline_ns = mimo_now_ns() + (int64_t)ctrlr->opts.connect_timeout_ms * 1000000;
	return 0;
}

int nvme_qpair_start_fd(struct mimo_nvme_qpair *qp, int fd)
{
	qp->sock.fd = fd;
	send_icreq(qp);
	return 0;
}

/* The controller has a PSK: TLS 1.3 first, then ICReq inside the channel. No fallback. */
static void tls_progress(struct mimo_nvme_qpair *qp)
{
	struct mimo_nvme_ctrlr *ctrlr = qp->ctrlr;
	uint64_t skipped;
	bool want_write;
	int rc = mimo_tls_handshake(qp->handshake, &want_write);

	if (rc == -EAGAIN)
		return;
	if (rc != 0) {
		if (mimo_ratelimit_allow(&g_tls_rl, 1000000000, &skipped))
			MIMO_ERR(NVME_COMP, "%s: queue %u: TLS with %s:%s: %s%s",
				 ctrlr->trid.subnqn, qp->qid, ctrlr->trid.traddr,
				 ctrlr->trid.trsvcid, mimo_tls_error(qp->handshake),
				 skipped ? " (more suppressed)" : "");
		nvme_qpair_fail(qp, rc);
		return;
	}
	qp->sock.tls = qp->handshake;
	qp->handshake = NULL;
	send_icreq(qp);
}

/* The TCP connection came up (or did not): then ICReq. */
static void connect_progress(struct mimo_nvme_qpair *qp)
{
	struct pollfd p = { .fd = qp->sock.fd, .events = POLLOUT };
	socklen_t len = sizeof(int);
	int err = 0;

	if (poll(&p, 1, 0) <= 0)
		return;
	if (getsockopt(qp->sock.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
		err = errno;
	if (err != 0) {
		nvme_qpair_fail(qp, -err);
		return;
	}
	if (qp->ctrlr->tls == NULL) {
		send_icreq(qp);
		return;
	}
	qp->handshake = mimo_tls_new(qp->ctrlr->tls, qp->sock.fd, NULL, NULL);
	if (qp->handshake == NULL) {
		nvme_qpair_fail(qp, -ENOMEM);
		return;
	}
	qp->state = QP_TLS;
	tls_progress(qp);
}

void nvme_tcp_poll(struct mimo_nvme_qpair *qp)
{
	int rc;

	if (mimo_unlikely(qp->state == QP_CONNECTING || qp->state == QP_TLS)) {
		if (qp->state == QP_CONNECTING)
			connect_progress(qp);
		else
			tls_progress(qp);
		if (qp->state != QP_IC)
			return;
	}
	if (!mimo_tcp_sendq_empty(&qp->sq)) {
		nvme_tcp_flush(qp);
		if (qp->state == QP_FAILED)
			return;
	}
	rc = mimo_tcp_rx_read(&qp->rx, &qp->sock, &g_rx_ops, qp);
	if (mimo_unlikely(rc < 0)) {
		rx_error(qp, rc);
		return;
	}
	/* While connecting: the Fabrics Connect after ICResp. Once ready, the process call
	 * flushes after delivering completions anyway (H2CData for R2Ts that came in, what the
	 * callbacks submitted): one sendmsg, not two. */
	if (qp->state != QP_READY && qp->state != QP_FAILED && !mimo_tcp_sendq_empty(&qp->sq))
		nvme_tcp_flush(qp);
}

void nvme_tcp_feed(struct mimo_nvme_qpair *qp, const void *data, size_t len)
{
	int rc = mimo_tcp_rx_feed(&qp->rx, data, len, &g_rx_ops, qp);

	if (rc < 0) {
		rx_error(qp, rc);
		return;
	}
	/* As nvme_tcp_poll: once ready, the process call's flush sends it. */
	if (qp->state != QP_READY && qp->state != QP_FAILED && !mimo_tcp_sendq_empty(&qp->sq))
		nvme_tcp_flush(qp);
}

void nvme_tcp_close(struct mimo_nvme_qpair *qp)
{
	mimo_tls_free(qp->handshake);
	qp->handshake = NULL;
	mimo_tls_free(qp->sock.tls);
	qp->sock.tls = NULL;
	if (qp->sock.fd >= 0) {
		close(qp->sock.fd);
		qp->sock.fd = -1;
	}
}

const struct nvme_transport_ops nvme_tcp_transport = {
	.connect = tcp_connect,
	.send_req = nvme_tcp_send_req,
	.poll = nvme_tcp_poll,
	.flush = nvme_tcp_flush,
	.close = nvme_tcp_close,
};
