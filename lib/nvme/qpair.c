/*
 * Queue pairs, transport-independent half: the preallocated command slots, submission, the
 * Fabrics Connect that opens each queue, completion delivery and failure. The transport
 * (qp->ops: tcp.c's PDUs, loop.c's in-process queue) moves them.
 *
 * A slot lives from submission until its callback has run. Completions are not delivered
 * from inside the PDU parser but queued and delivered after it, so a callback may submit
 * again (the common case) without re-entering the receiver.
 */
#include <errno.h>
#include <stdio.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nvme_auth.h"
#include "clock.h"
#include "compiler.h"
#include "log.h"
#include "nvme_internal.h"
#include "tcp.h"

/* PSDT 01b: SGLs, as NVMe over Fabrics requires (SPDK's and Linux's hosts set the same). */
#define PSDT_SGL 0x40

int nvme_cmd_dir(const struct mimo_nvme_cmd *cmd, enum nvme_dir *dir)
{
	uint8_t bits = cmd->opc;

	if (cmd->opc == MIMO_NVME_OPC_FABRIC)
		bits = ((const struct mimo_nvmf_connect_cmd *)cmd)->fctype;
	switch (bits & 3) {
	case 0:
		*dir = DIR_NONE;
		return 0;
	case 1:
		*dir = DIR_H2C;
		return 0;
	case 2:
		*dir = DIR_C2H;
		return 0;
	default:
		return -EINVAL; /* bidirectional: no transport carries it */
	}
}

int nvme_qpair_create(struct mimo_nvme_ctrlr *ctrlr, uint16_t qid, uint32_t entries,
		      struct mimo_nvme_qpair **out)
{
	struct mimo_nvme_qpair *qp;
	int rc;

	if (entries < 2 || entries > 65536)
		return -EINVAL;
	qp = calloc(1, sizeof(*qp));
	if (qp == NULL)
		return -ENOMEM;
	qp->ctrlr = ctrlr;
	qp->ops = ctrlr->trid.trtype == MIMO_NVMF_TRTYPE_LOOP ? &nvme_loop_transport
							      : &nvme_tcp_transport;
	qp->qid = qid;
	qp->num_entries = (uint16_t)(entries > 65535 ? 65535 : entries);
	qp->state = QP_CONNECTING;
	qp->sock.fd = -1;
	qp->icd = qid == 0 ? NVME_ADMIN_ICD : ctrlr->io_icd;
	qp->sqfc_disabled = qid != 0 && ctrlr->opts.disable_sq_flow_control;
	/* One slot stays empty, as in any circular queue: num_entries - 1 commands at most. */
	qp->num_reqs = qp->num_entries - 1u;
	qp->reqs = calloc(qp->num_reqs, sizeof(*qp->reqs));
	if (qp->reqs == NULL) {
		free(qp);
		return -ENOMEM;
	}
	STAILQ_INIT(&qp->free_reqs);
	STAILQ_INIT(&qp->pending);
	STAILQ_INIT(&qp->completed);
	for (uint32_t i = 0; i < qp->num_reqs; i++) {
		struct nvme_req *req = &qp->reqs[i];

		req->qp = qp;
		req->cid = (uint16_t)i;
		STAILQ_INSERT_TAIL(&qp->free_reqs, req, link);
	}
	/* Data never exceeds a command's buffer (checked per PDU); this only bounds nonsense. */
	rc = mimo_tcp_rx_init(&qp->rx, true, 1u << 30);
	if (rc != 0) {
		free(qp->reqs);
		free(qp);
		return rc;
	}
	mimo_tcp_sendq_init(&qp->sq);
	*out = qp;
	return 0;
}

struct nvme_req *nvme_qpair_get_req(struct mimo_nvme_qpair *qp)
{
	struct nvme_req *req = STAILQ_FIRST(&qp->free_reqs);

	if (mimo_likely(req != NULL))
		STAILQ_REMOVE_HEAD(&qp->free_reqs, link);
	return req;
}

static void put_req(struct mimo_nvme_qpair *qp, struct nvme_req *req)
{
	req->active = false;
	/* LIFO: the slot just used is the one warm in cache. */
	STAILQ_INSERT_HEAD(&qp->free_reqs, req, link);
}

/* Fill in what every command needs: cid, PSDT, the SGL for its data. */
static void prepare(struct nvme_req *req, void *buf, uint32_t len, enum nvme_dir dir,
		    bool in_capsule, mimo_nvme_cmd_cb cb, void *cb_arg)
{
	struct mimo_nvme_cmd *cmd = nvme_req_cmd(req);

	req->cb = cb;
	req->cb_arg = cb_arg;
	req->buf = buf;
	req->len = len;
	req->dir = (uint8_t)dir;
	req->xfer = 0;
	req->r2t_end = 0;
	req->sends = 0;
	req->err_status = 0;
	req->done = false;
	req->short_ok = false;
	req->queued = false;
	req->h2c_queued = false;
	req->active = true;
	req->in_capsule = in_capsule;
	cmd->cid = req->cid;
	cmd->fuse_psdt = (uint8_t)((cmd->fuse_psdt & 3) | PSDT_SGL);
	cmd->dptr.address = 0; /* in-capsule: offset 0 of the capsule's data */
	cmd->dptr.length = len;
	memset(cmd->dptr.reserved, 0, sizeof(cmd->dptr.reserved));
	cmd->dptr.id = in_capsule ? MIMO_NVME_SGL_DATA_BLOCK_OFFSET : MIMO_NVME_SGL_TRANSPORT_DATA;
	req->qp->outstanding++;
}

int nvme_qpair_submit_req(struct nvme_req *req, void *buf, uint32_t len, enum nvme_dir dir,
			  mimo_nvme_cmd_cb cb, void *cb_arg)
{
	struct mimo_nvme_qpair *qp = req->qp;
	uint32_t icd = qp->icd;

	if (mimo_unlikely(qp->state == QP_FAILED)) {
		put_req(qp, req);
		return -ENXIO;
	}
	if (mimo_unlikely(len != 0 && (buf == NULL || dir == DIR_NONE))) {
		put_req(qp, req);
		return -EINVAL;
	}
	/* Fabrics commands take up to 8 KiB in-capsule on any queue (as SPDK's host assumes). */
	if (nvme_req_cmd(req)->opc == MIMO_NVME_OPC_FABRIC)
		icd = NVME_ADMIN_ICD;
	prepare(req, buf, len, dir, dir == DIR_H2C && len != 0 && len <= icd, cb, cb_arg);
	if (mimo_likely(qp->state == QP_READY)) {
		qp->ops->send_req(req);
	} else {
		req->queued = true;
		STAILQ_INSERT_TAIL(&qp->pending, req, link);
	}
	return 0;
}

int nvme_qpair_submit(struct mimo_nvme_qpair *qp, const struct mimo_nvme_cmd *cmd, void *buf,
		      uint32_t len, mimo_nvme_cmd_cb cb, void *cb_arg)
{
	struct nvme_req *req;
	enum nvme_dir dir;

	if (qp->state == QP_FAILED)
		return -ENXIO;
	if (nvme_cmd_dir(cmd, &dir) != 0 || (dir == DIR_NONE && len != 0))
		return -EINVAL;
	req = nvme_qpair_get_req(qp);
	if (req == NULL)
		return -ENOMEM;
	*nvme_req_cmd(req) = *cmd;
	return nvme_qpair_submit_req(req, buf, len, dir, cb, cb_arg);
}

void nvme_req_complete(struct nvme_req *req, const struct mimo_nvme_cpl *cpl)
{
	req->cpl = *cpl;
	req->cpl.cid = req->cid;
	if (req->err_status != 0 && !mimo_nvme_cpl_is_error(cpl))
		req->cpl.status = req->err_status;
	req->done = true;
	/* A PDU of it may still sit in the send queue (a target that answered before taking
	 * all the data): the slot is reused only once the queue has let go of it. */
	if (req->sends == 0)
		STAILQ_INSERT_TAIL(&req->qp->completed, req, link);
}

void nvme_req_sends_done(struct nvme_req *req)
{
	if (--req->sends == 0 && req->done)
		STAILQ_INSERT_TAIL(&req->qp->completed, req, link);
}

int nvme_qpair_connect(struct mimo_nvme_qpair *qp)
{
	return qp->ops->connect(qp);
}

void nvme_req_complete_status(struct nvme_req *req, uint8_t sct, uint8_t sc)
{
	struct mimo_nvme_cpl cpl = { 0 };

	cpl.sqid = req->qp->qid;
	cpl.sqhd = req->qp->sq_head;
	cpl.status = mimo_nvme_status(sct, sc, 1);
	nvme_req_complete(req, &cpl);
}

static void auth_free(struct mimo_nvme_qpair *qp);

void nvme_qpair_fail(struct mimo_nvme_qpair *qp, int rc)
{
	if (qp->state == QP_FAILED)
		return;
	if (qp->state == QP_READY && rc != -ECANCELED)
		MIMO_WARN(NVME_COMP, "%s: queue %u failed: %s", qp->ctrlr->trid.subnqn, qp->qid,
			  strerror(-rc));
	else
		MIMO_DEBUG(NVME_COMP, "%s: queue %u could not connect: %s", qp->ctrlr->trid.subnqn,
			   qp->qid, strerror(-rc));
	qp->state = QP_FAILED;
	qp->fail_rc = rc;
	if (qp->qid == 0)
		__atomic_store_n(&qp->ctrlr->failed, true, __ATOMIC_RELEASE);
	mimo_tcp_sendq_abort(&qp->sq);
	qp->ops->close(qp);
	STAILQ_INIT(&qp->pending);
	for (uint32_t i = 0; i < qp->num_reqs; i++) {
		struct nvme_req *req = &qp->reqs[i];

		if (req->active && !req->done)
			nvme_req_complete_status(req, MIMO_NVME_SCT_GENERIC,
						 MIMO_NVME_SC_ABORTED_SQ_DELETION);
	}
	/* Nothing reads into or sends from its buffers any more. */
	auth_free(qp);
}

/* Run up to max callbacks (0: all). */
static int deliver(struct mimo_nvme_qpair *qp, uint32_t max)
{
	struct nvme_req *req;
	int n = 0;

	while ((req = STAILQ_FIRST(&qp->completed)) != NULL && (max == 0 || (uint32_t)n < max)) {
		struct mimo_nvme_cpl cpl = req->cpl;
		mimo_nvme_cmd_cb cb = req->cb;
		void *arg = req->cb_arg;

		STAILQ_REMOVE_HEAD(&qp->completed, link);
		qp->outstanding--;
		put_req(qp, req);
		if (cb != NULL)
			cb(arg, &cpl);
		n++;
	}
	return n;
}

/* --- in-band authentication (DH-HMAC-CHAP) ---------------------------------------------------- */

static void send_pending(struct mimo_nvme_qpair *qp);

struct nvme_qp_auth {
	struct nvme_auth a;
	struct mimo_key_material key, ctrl_key;
	struct nvme_auth_params p;
	uint8_t rx[NVME_AUTH_BUF_LEN];
	uint8_t tx[NVME_AUTH_BUF_LEN];
};

static void auth_free(struct mimo_nvme_qpair *qp)
{
	if (qp->auth == NULL)
		return;
	nvme_auth_wipe(&qp->auth->a);
	explicit_bzero(qp->auth, sizeof(*qp->auth));
	free(qp->auth);
	qp->auth = NULL;
}

static struct mimo_ratelimit g_auth_rl;

/* Authenticated: the queue is the caller's. Or not: it fails, saying why (once). */
static void auth_end(struct mimo_nvme_qpair *qp, int rc, const char *why)
{
	struct nvme_qp_auth *x = qp->auth;
	uint64_t skipped;

	if (rc == 0) {
		MIMO_DEBUG(NVME_COMP, "%s: queue %u authenticated (DH-HMAC-CHAP %s/%s%s)",
			   qp->ctrlr->trid.subnqn, qp->qid, dhchap_hash_name(x->a.digest),
			   dhchap_dhgroup_name(x->a.dhgroup),
			   x->p.ctrl_key != NULL ? ", bidirectional" : "");
		auth_free(qp);
		qp->state = QP_READY;
		send_pending(qp);
		return;
	}
	/* A controller can make every queue fail: one line a second at most. */
	if (mimo_ratelimit_allow(&g_auth_rl, 1000000000, &skipped))
		MIMO_ERR(NVME_COMP, "%s: queue %u: DH-HMAC-CHAP authentication failed: %s%s",
			 qp->ctrlr->trid.subnqn, qp->qid, why, skipped ? " (more suppressed)" : "");
	auth_free(qp);
	nvme_qpair_fail(qp, rc);
}

/* Authentication Send (len bytes of tx) or Receive (into rx, zeroed). */
static int auth_submit(struct mimo_nvme_qpair *qp, uint8_t fctype, uint32_t len,
		       mimo_nvme_cmd_cb cb)
{
	struct nvme_req *req = nvme_qpair_get_req(qp);
	struct mimo_nvmf_auth_cmd *c;
	bool send = fctype == MIMO_NVMF_FCTYPE_AUTH_SEND;

	if (req == NULL)
		return -ENOMEM;
	c = (struct mimo_nvmf_auth_cmd *)nvme_req_cmd(req);
	memset(c, 0, sizeof(*c));
	c->opc = MIMO_NVME_OPC_FABRIC;
	c->fctype = fctype;
	c->secp = MIMO_NVMF_AUTH_SECP;
	c->spsp0 = MIMO_NVMF_AUTH_SPSP0;
	c->spsp1 = MIMO_NVMF_AUTH_SPSP1;
	c->tl_al = len;
	if (!send)
		memset(qp->auth->rx, 0, len);
	prepare(req, send ? qp->auth->tx : qp->auth->rx, len, send ? DIR_H2C : DIR_C2H, send, cb,
		qp);
	req->short_ok = !send;
	qp->deadline_ns = mimo_now_ns() + (int64_t)qp->ctrlr->opts.connect_timeout_ms * 1000000;
	qp->ops->send_req(req);
	return 0;
}

/* The controller answered an Authentication command with an error status (not a message). */
static bool auth_status_failed(struct mimo_nvme_qpair *qp, const struct mimo_nvme_cpl *cpl,
			       const char *step)
{
	char why[96];

	if (qp->state != QP_AUTH)
		return true; /* failed meanwhile */
	if (!mimo_nvme_cpl_is_error(cpl))
		return false;
	snprintf(why, sizeof(why), "%s: the controller answered sct %u sc 0x%02x", step,
		 mimo_nvme_status_sct(cpl->status), mimo_nvme_status_sc(cpl->status));
	auth_end(qp, -EPROTO, why);
	return true;
}

static void auth_failure2_sent(void *arg, const struct mimo_nvme_cpl *cpl)
{
	struct mimo_nvme_qpair *qp = arg;

	(void)cpl;
	if (qp->state == QP_AUTH)
		auth_end(qp, -EACCES, qp->auth->a.why);
}

/* A result of the state machine that ends the transaction: Failure2 out first, or not. */
static void auth_stop(struct mimo_nvme_qpair *qp, enum nvme_auth_result res, uint32_t len)
{
	char why[160];

	if (res == NVME_AUTH_FAILURE2) {
		if (auth_submit(qp, MIMO_NVMF_FCTYPE_AUTH_SEND, len, auth_failure2_sent) != 0)
			auth_end(qp, -EACCES, qp->auth->a.why);
		return;
	}
	snprintf(why, sizeof(why), "%s: %s", qp->auth->a.why,
		 nvme_auth_reason_name(qp->auth->a.reason));
	auth_end(qp, -EACCES, why);
}

static void auth_success2_sent(void *arg, const struct mimo_nvme_cpl *cpl)
{
	struct mimo_nvme_qpair *qp = arg;

	if (!auth_status_failed(qp, cpl, "DH-HMAC-CHAP_Success2"))
		auth_end(qp, 0, NULL);
}

static void auth_success1(void *arg, const struct mimo_nvme_cpl *cpl)
{
	struct mimo_nvme_qpair *qp = arg;
	struct nvme_qp_auth *x = qp->auth;
	enum nvme_auth_result res;
	uint32_t len = 0;

	if (auth_status_failed(qp, cpl, "receiving DH-HMAC-CHAP_Success1"))
		return;
	res = nvme_auth_success1(&x->a, &x->p, x->rx, NVME_AUTH_BUF_LEN, x->tx, &len);
	if (res != NVME_AUTH_DONE)
		auth_stop(qp, res, len);
	else if (len == 0)
		auth_end(qp, 0, NULL);
	else if (auth_submit(qp, MIMO_NVMF_FCTYPE_AUTH_SEND, len, auth_success2_sent) != 0)
		auth_end(qp, -ENOMEM, "no command slot");
}

static void auth_reply_sent(void *arg, const struct mimo_nvme_cpl *cpl)
{
	struct mimo_nvme_qpair *qp = arg;

	if (auth_status_failed(qp, cpl, "DH-HMAC-CHAP_Reply"))
		return;
	if (auth_submit(qp, MIMO_NVMF_FCTYPE_AUTH_RECV, NVME_AUTH_BUF_LEN, auth_success1) != 0)
		auth_end(qp, -ENOMEM, "no command slot");
}

static void auth_challenge(void *arg, const struct mimo_nvme_cpl *cpl)
{
	struct mimo_nvme_qpair *qp = arg;
	struct nvme_qp_auth *x = qp->auth;
	enum nvme_auth_result res;
	uint32_t len = 0;

	if (auth_status_failed(qp, cpl, "receiving DH-HMAC-CHAP_Challenge"))
		return;
	res = nvme_auth_challenge(&x->a, &x->p, x->rx, NVME_AUTH_BUF_LEN, x->tx, &len);
	if (res != NVME_AUTH_NEXT)
		auth_stop(qp, res, len);
	else if (auth_submit(qp, MIMO_NVMF_FCTYPE_AUTH_SEND, len, auth_reply_sent) != 0)
		auth_end(qp, -ENOMEM, "no command slot");
}

static void auth_negotiate_sent(void *arg, const struct mimo_nvme_cpl *cpl)
{
	struct mimo_nvme_qpair *qp = arg;

	if (auth_status_failed(qp, cpl, "AUTH_Negotiate"))
		return;
	if (auth_submit(qp, MIMO_NVMF_FCTYPE_AUTH_RECV, NVME_AUTH_BUF_LEN, auth_challenge) != 0)
		auth_end(qp, -ENOMEM, "no command slot");
}

static void key_material(const struct mimo_nvme_dhchap_key *k, struct mimo_key_material *m)
{
	memset(m, 0, sizeof(*m));
	m->kind = MIMO_KEY_DHCHAP;
	m->hash = k->hash;
	m->len = k->len;
	memcpy(m->key, k->key, sizeof(m->key));
}

/* Connect succeeded and asked for authentication (cdw0's AUTHREQ), or our options ask the
 * controller to prove itself: run the transaction before anything else uses the queue. */
static void auth_start(struct mimo_nvme_qpair *qp, uint32_t cdw0)
{
	struct mimo_nvme_ctrlr *ctrlr = qp->ctrlr;
	const struct mimo_nvme_ctrlr_opts *o = &ctrlr->opts;
	struct nvme_qp_auth *x;
	uint32_t len;
	uint16_t tid;

	qp->state = QP_AUTH;
	if (cdw0 & MIMO_NVMF_CONNECT_AUTHREQ_ASCR) {
		auth_end(qp, -EOPNOTSUPP,
			 "the controller requires a secure channel (TLS) with it, which this host "
			 "does not do");
		return;
	}
	if (o->dhchap_key.len == 0) {
		auth_end(qp, -ENOKEY,
			 "the controller requires authentication and no key was given (the host's "
			 "DH-HMAC-CHAP secret, --dhchap-key)");
		return;
	}
	x = calloc(1, sizeof(*x));
	if (x == NULL) {
		auth_end(qp, -ENOMEM, "out of memory");
		return;
	}
	qp->auth = x;
	key_material(&o->dhchap_key, &x->key);
	x->p.key = &x->key;
	if (o->dhchap_ctrlr_key.len != 0) {
		key_material(&o->dhchap_ctrlr_key, &x->ctrl_key);
		x->p.ctrl_key = &x->ctrl_key;
		x->p.seqnum = __atomic_add_fetch(&ctrlr->auth_seqnum, 1, __ATOMIC_RELAXED);
	}
	x->p.hostnqn = ctrlr->hostnqn;
	x->p.subnqn = ctrlr->trid.subnqn;
	x->p.digests = o->dhchap_digests != 0 ? o->dhchap_digests : DHCHAP_ALL_DIGESTS;
	x->p.dhgroups = o->dhchap_dhgroups != 0 ? o->dhchap_dhgroups : DHCHAP_ALL_DHGROUPS;
	tid = __atomic_fetch_add(&ctrlr->auth_tid, 1, __ATOMIC_RELAXED);
	len = nvme_auth_negotiate(&x->a, &x->p, tid, x->tx);
	if (auth_submit(qp, MIMO_NVMF_FCTYPE_AUTH_SEND, len, auth_negotiate_sent) != 0)
		auth_end(qp, -ENOMEM, "no command slot");
}

/* --- Fabrics Connect ------------------------------------------------------------------------ */

static void send_pending(struct mimo_nvme_qpair *qp)
{
	struct nvme_req *req;

	while ((req = STAILQ_FIRST(&qp->pending)) != NULL) {
		STAILQ_REMOVE_HEAD(&qp->pending, link);
		req->queued = false;
		qp->ops->send_req(req);
	}
}

int nvme_connect_status_errno(const struct mimo_nvme_cpl *cpl)
{
	uint8_t sct = mimo_nvme_status_sct(cpl->status), sc = mimo_nvme_status_sc(cpl->status);

	if (sct == MIMO_NVME_SCT_COMMAND_SPECIFIC) {
		if (sc == MIMO_NVMF_SC_CONNECT_INVALID_HOST)
			return -EACCES;
		if (sc == MIMO_NVMF_SC_CONNECT_INVALID_PARAMS) {
			uint16_t ipo = (uint16_t)(cpl->cdw0 & 0xffff);
			uint8_t iattr = (uint8_t)(cpl->cdw0 >> 16);

			/* Invalid attribute in the connect data: which field decides. */
			if (iattr == 1 && ipo == offsetof(struct mimo_nvmf_connect_data, subnqn))
				return -ENOENT;
			if (iattr == 1 && ipo == offsetof(struct mimo_nvmf_connect_data, hostnqn))
				return -EACCES;
			return -EINVAL;
		}
		if (sc == MIMO_NVMF_SC_CONNECT_CTRLR_BUSY)
			return -EBUSY;
	}
	return -EPROTO;
}

static void connect_done(void *arg, const struct mimo_nvme_cpl *cpl)
{
	struct mimo_nvme_qpair *qp = arg;

	if (qp->state != QP_FABRIC)
		return; /* failed meanwhile: fail_rc already says why */
	if (mimo_nvme_cpl_is_error(cpl)) {
		int rc = nvme_connect_status_errno(cpl);

		MIMO_DEBUG(NVME_COMP, "%s: Connect of queue %u refused (sct %u sc 0x%x)",
			   qp->ctrlr->trid.subnqn, qp->qid, mimo_nvme_status_sct(cpl->status),
			   mimo_nvme_status_sc(cpl->status));
		nvme_qpair_fail(qp, rc);
		return;
	}
	if (qp->qid == 0)
		qp->ctrlr->cntlid = (uint16_t)(cpl->cdw0 & 0xffff);
	qp->sq_head = cpl->sqhd;
	if ((cpl->cdw0 & (MIMO_NVMF_CONNECT_AUTHREQ_ATR | MIMO_NVMF_CONNECT_AUTHREQ_ASCR)) ||
	    qp->ctrlr->opts.dhchap_ctrlr_key.len != 0) {
		auth_start(qp, cpl->cdw0);
		return;
	}
	qp->state = QP_READY;
	send_pending(qp);
}

/* ICResp accepted (tcp.c): open the queue with a Fabrics Connect, its data in-capsule. */
int nvme_qpair_send_connect(struct mimo_nvme_qpair *qp)
{
	struct mimo_nvme_ctrlr *ctrlr = qp->ctrlr;
	struct mimo_nvmf_connect_data *d = &qp->connect_data;
	struct nvme_req *req = nvme_qpair_get_req(qp);
	struct mimo_nvmf_connect_cmd *c;

	if (req == NULL)
		return -ENOMEM;
	c = (struct mimo_nvmf_connect_cmd *)nvme_req_cmd(req);
	memset(c, 0, sizeof(*c));
	c->opc = MIMO_NVME_OPC_FABRIC;
	c->fctype = MIMO_NVMF_FCTYPE_CONNECT;
	c->recfmt = 0;
	c->qid = qp->qid;
	c->sqsize = (uint16_t)(qp->num_entries - 1); /* 0's based */
	c->cattr = qp->sqfc_disabled ? MIMO_NVMF_CATTR_DISABLE_SQ_FLOW_CONTROL : 0;
	c->kato = qp->qid == 0 ? ctrlr->opts.keep_alive_timeout_ms : 0;
	memset(d, 0, sizeof(*d));
	memcpy(d->hostid, ctrlr->hostid, sizeof(d->hostid));
	d->cntlid = qp->qid == 0 ? 0xffff : ctrlr->cntlid; /* 0xffff: any (dynamic model) */
	snprintf(d->subnqn, sizeof(d->subnqn), "%s", ctrlr->trid.subnqn);
	snprintf(d->hostnqn, sizeof(d->hostnqn), "%s", ctrlr->hostnqn);
	qp->state = QP_FABRIC;
	qp->deadline_ns = mimo_now_ns() + (int64_t)ctrlr->opts.connect_timeout_ms * 1000000;
	prepare(req, d, sizeof(*d), DIR_H2C, true, connect_done, qp);
	qp->ops->send_req(req);
	return 0;
}

/* --- processing ----------------------------------------------------------------------------- */

/* The memory goes: every aborted command's callback has run (they may not free it again:
 * free_pending is set). */
static void release(struct mimo_nvme_qpair *qp)
{
	qp->depth++;
	deliver(qp, 0);
	mimo_tcp_rx_fini(&qp->rx);
	free(qp->reqs);
	free(qp);
}

/* The end of a process call: a queue freed by one of its callbacks goes now. */
static int leave(struct mimo_nvme_qpair *qp, int rc)
{
	if (--qp->depth == 0 && qp->free_pending) {
		release(qp);
		return -ENXIO;
	}
	return rc;
}

static int finish(struct mimo_nvme_qpair *qp, uint32_t max)
{
	int n;

	/* A failed queue hands back every aborted command at once: nothing else will. */
	if (qp->state == QP_FAILED) {
		deliver(qp, 0);
		return -ENXIO;
	}
	n = deliver(qp, max);
	/* What the callbacks submitted leaves now, not a poll later. */
	if ((qp->state == QP_READY || qp->state == QP_AUTH) && !mimo_tcp_sendq_empty(&qp->sq))
		qp->ops->flush(qp);
	return qp->state == QP_FAILED ? -ENXIO : n;
}

int nvme_qpair_process(struct mimo_nvme_qpair *qp, uint32_t max)
{
	qp->depth++;
	if (mimo_unlikely(qp->state != QP_READY) && qp->state != QP_FAILED &&
	    mimo_now_ns() > qp->deadline_ns)
		nvme_qpair_fail(qp, -ETIMEDOUT);
	/* A lost controller (its admin queue failed or timed out) takes its I/O queues with it:
	 * what they hold completes aborted instead of waiting for a target that is gone. */
	if (mimo_unlikely(qp->qid != 0 && qp->state != QP_FAILED &&
			  __atomic_load_n(&qp->ctrlr->failed, __ATOMIC_ACQUIRE)))
		nvme_qpair_fail(qp, -ENOTCONN);
	if (mimo_likely(qp->state != QP_FAILED))
		qp->ops->poll(qp);
	return leave(qp, finish(qp, max));
}

int nvme_qpair_feed(struct mimo_nvme_qpair *qp, const void *data, size_t len)
{
	qp->depth++;
	if (qp->state != QP_FAILED)
		nvme_tcp_feed(qp, data, len);
	return leave(qp, finish(qp, 0));
}

void nvme_qpair_wait_io(struct mimo_nvme_qpair *qp, int timeout_ms)
{
	struct pollfd p = { .fd = qp->sock.fd, .events = POLLIN };

	if (qp->sock.fd < 0 || qp->state == QP_FAILED || !STAILQ_EMPTY(&qp->completed))
		return;
	if (qp->state == QP_CONNECTING || qp->state == QP_TLS || !mimo_tcp_sendq_empty(&qp->sq))
		p.events |= POLLOUT;
	(void)poll(&p, 1, timeout_ms);
}

void nvme_qpair_destroy(struct mimo_nvme_qpair *qp)
{
	if (qp == NULL || qp->free_pending)
		return;
	qp->free_pending = true;
	nvme_qpair_fail(qp, -ECANCELED); /* closed on purpose: nothing to warn about */
	/* Called from one of its callbacks: the loop running them still walks this queue. */
	if (qp->depth > 0)
		return;
	release(qp);
}
