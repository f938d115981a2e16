/*
 * Controllers: bringing one up (admin queue, CAP/VS, CC.EN then CSTS.RDY, Identify, number of
 * queues, asynchronous events, namespaces), what it reports, and taking it down (CC.SHN).
 *
 * Both directions are state machines driven by polling, so a reactor can connect to a target
 * it serves itself: nothing here waits except the _sync-style wrappers.
 */
#include <errno.h>
#include <stdio.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "opts.h"
#include "clock.h"
#include "compiler.h"
#include "dhchap.h"
#include "keyfmt.h"
#include "log.h"
#include "nvme_internal.h"
#include "uuid.h"

#define MS_TO_NS(ms) ((int64_t)(ms)*1000000)

/* CC: NVM command set, 4 KiB pages, round robin; I/O SQ/CQ entries of 64 and 16 bytes. */
#define CC_IOSQES_SHIFT 16
#define CC_IOCQES_SHIFT 20
#define CC_ENABLE	(MIMO_NVME_CC_EN | (6u << CC_IOSQES_SHIFT) | (4u << CC_IOCQES_SHIFT))

/* How long a controller may take to confirm a shutdown before we stop waiting. */
#define SHUTDOWN_MAX_MS 10000

MIMO_EXPORT void mimo_nvme_ctrlr_opts_init(struct mimo_nvme_ctrlr_opts *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->opts_size = sizeof(*opts);
	opts->num_io_queues = 128;
	opts->io_queue_size = 128;
	opts->admin_queue_size = 32;
	opts->keep_alive_timeout_ms = 10000;
	opts->connect_timeout_ms = 10000;
}

MIMO_EXPORT int mimo_nvme_dhchap_key_parse(const char *secret, struct mimo_nvme_dhchap_key *key)
{
	struct mimo_key_material m;
	char err[200];
	int rc;

	memset(key, 0, sizeof(*key));
	if (secret == NULL)
		return -EINVAL;
	rc = mimo_key_parse(secret, strlen(secret), &m, err, sizeof(err));
	if (rc == 0 && m.kind != MIMO_KEY_DHCHAP) {
		snprintf(err, sizeof(err), "a TLS PSK, not a DH-HMAC-CHAP secret (DHHC-1:...)");
		rc = -EINVAL;
	}
	if (rc != 0) {
		MIMO_ERR(NVME_COMP, "DH-HMAC-CHAP key: %s", err);
		mimo_key_material_wipe(&m);
		return rc;
	}
	key->hash = m.hash;
	key->len = m.len;
	memcpy(key->key, m.key, m.len);
	mimo_key_material_wipe(&m);
	return 0;
}

MIMO_EXPORT int mimo_nvme_tls_psk_parse(const char *interchange, struct mimo_nvme_tls_psk *psk)
{
	struct mimo_key_material m;
	char err[200];
	int rc;

	memset(psk, 0, sizeof(*psk));
	if (interchange == NULL)
		return -EINVAL;
	rc = mimo_key_parse(interchange, strlen(interchange), &m, err, sizeof(err));
	if (rc == 0 && m.kind != MIMO_KEY_TLS_PSK) {
		snprintf(err, sizeof(err),
			 "a DH-HMAC-CHAP secret, not a TLS PSK (NVMeTLSkey-1:...)");
		rc = -EINVAL;
	}
	if (rc != 0) {
		MIMO_ERR(NVME_COMP, "TLS PSK: %s", err);
		mimo_key_material_wipe(&m);
		return rc;
	}
	psk->hash = m.hash;
	psk->len = m.len;
	memcpy(psk->key, m.key, m.len);
	mimo_key_material_wipe(&m);
	return 0;
}

/* The identity and TLS PSK this controller's queues offer (tls.h), from opts.tls_psk. */
static int tls_setup(struct mimo_nvme_ctrlr *ctrlr)
{
	const struct mimo_nvme_tls_psk *k = &ctrlr->opts.tls_psk;
	struct mimo_tls_identity id = { .version = 0 };
	uint8_t retained[MIMO_TLS_PSK_MAX], psk[MIMO_TLS_PSK_MAX];
	char identity[MIMO_TLS_IDENTITY_MAX];
	int rc;

	id.hash = mimo_tls_hash_for_len(k->len);
	if (id.hash == 0 || k->hash > 2) {
		MIMO_ERR(NVME_COMP, "TLS PSK: 32 or 48 bytes, hash 0-2");
		return -EINVAL;
	}
	rc = mimo_tls_retained_psk(k->key, k->len, k->hash, ctrlr->hostnqn, retained);
	if (rc == 0 && mimo_tls_identity_format(identity, sizeof(identity), id.hash, ctrlr->hostnqn,
						ctrlr->trid.subnqn) < 0)
		rc = -EINVAL;
	if (rc == 0)
		rc = mimo_tls_derive_psk(retained, k->len, &id, identity, psk);
	if (rc == 0) {
		ctrlr->tls = mimo_tls_client_ctx_new(identity, psk, k->len, id.hash);
		ctrlr->tls_cipher = mimo_tls_cipher_name(id.hash); /* the only one offered */
		rc = ctrlr->tls != NULL ? 0 : -ENOMEM;
	} else {
		MIMO_ERR(NVME_COMP,
			 "TLS: no identity for host %s and subsystem %s (NQNs too long?)",
			 ctrlr->hostnqn, ctrlr->trid.subnqn);
	}
	explicit_bzero(retained, sizeof(retained));
	explicit_bzero(psk, sizeof(psk));
	return rc;
}

static bool dhchap_key_valid(const struct mimo_nvme_dhchap_key *k)
{
	return k->len == 0 || (k->hash <= MIMO_NVMF_DHCHAP_HASH_SHA512 &&
			       (k->len == 32 || k->len == 48 || k->len == 64));
}

int nvme_ctrlr_check_dhchap(const struct mimo_nvme_ctrlr_opts *o)
{
	if (!dhchap_key_valid(&o->dhchap_key) || !dhchap_key_valid(&o->dhchap_ctrlr_key)) {
		MIMO_ERR(NVME_COMP, "DH-HMAC-CHAP key: hash 0-3 and 32, 48 or 64 bytes");
		return -EINVAL;
	}
	if (o->dhchap_ctrlr_key.len != 0 && o->dhchap_key.len == 0) {
		MIMO_ERR(NVME_COMP, "a DH-HMAC-CHAP controller key needs the host's key too: the "
				    "controller proves itself only to a host that has");
		return -EINVAL;
	}
	if ((o->dhchap_digests & ~DHCHAP_ALL_DIGESTS) != 0 ||
	    (o->dhchap_dhgroups & ~DHCHAP_ALL_DHGROUPS) != 0) {
		MIMO_ERR(NVME_COMP, "DH-HMAC-CHAP digests or groups: unknown identifiers");
		return -EINVAL;
	}
	return 0;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != 0)
			return false;
	return true;
}

static int resolve(struct mimo_nvme_ctrlr *ctrlr)
{
	struct addrinfo hints = { 0 }, *res = NULL;
	int rc;

	hints.ai_family = ctrlr->trid.adrfam == MIMO_NVMF_ADRFAM_IPV6 ? AF_INET6 : AF_INET;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	rc = getaddrinfo(ctrlr->trid.traddr, ctrlr->trid.trsvcid, &hints, &res);
	if (rc != 0 || res == NULL) {
		MIMO_ERR(NVME_COMP, "cannot resolve %s port %s: %s", ctrlr->trid.traddr,
			 ctrlr->trid.trsvcid, gai_strerror(rc));
		return rc == EAI_MEMORY ? -ENOMEM : -EINVAL;
	}
	memcpy(&ctrlr->addr, res->ai_addr, res->ai_addrlen);
	ctrlr->addrlen = res->ai_addrlen;
	freeaddrinfo(res);
	if (ctrlr->trid.hostaddr[0] == '\0')
		return 0;
	/* The local address to connect from: numeric, of the target's family, any port. */
	hints.ai_flags = AI_NUMERICHOST | AI_PASSIVE;
	res = NULL;
	rc = getaddrinfo(ctrlr->trid.hostaddr, "0", &hints, &res);
	if (rc != 0 || res == NULL) {
		MIMO_ERR(NVME_COMP, "hostaddr %s is not a local %s address", ctrlr->trid.hostaddr,
			 hints.ai_family == AF_INET6 ? "IPv6" : "IPv4");
		return -EINVAL;
	}
	memcpy(&ctrlr->src, res->ai_addr, res->ai_addrlen);
	ctrlr->src_len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

/* The loop transport has no PDUs and no socket: what protects those is refused, not ignored. */
static int loop_opts_check(const struct mimo_nvme_trid *trid, const struct mimo_nvme_ctrlr_opts *o)
{
	if (o->header_digest || o->data_digest) {
		MIMO_ERR(NVME_COMP,
			 "%s: digests protect NVMe/TCP PDUs; the loop transport has none",
			 trid->subnqn);
		return -EINVAL;
	}
	if (o->tls_psk.len != 0) {
		MIMO_ERR(NVME_COMP,
			 "%s: a TLS PSK secures an NVMe/TCP connection (secure channel); the loop "
			 "transport has no connection to secure",
			 trid->subnqn);
		return -EINVAL;
	}
	return 0;
}

int nvme_ctrlr_alloc(const struct mimo_nvme_trid *trid, const struct mimo_nvme_ctrlr_opts *opts,
		     struct mimo_nvme_ctrlr **out)
{
	static const char uuid_prefix[] = "nqn.2014-08.org.nvmexpress:uuid:";
	struct mimo_nvme_ctrlr *ctrlr;
	struct mimo_nvme_ctrlr_opts o;
	int rc;

	if (trid == NULL || trid->subnqn[0] == '\0' ||
	    (trid->trtype == MIMO_NVMF_TRTYPE_TCP ? trid->traddr[0] == '\0'
						  : trid->trtype != MIMO_NVMF_TRTYPE_LOOP))
		return -EINVAL;
	mimo_nvme_ctrlr_opts_init(&o);
	if (mimo_opts_copy(&o, sizeof(o), opts) != 0)
		return -EINVAL;
	if (trid->trtype == MIMO_NVMF_TRTYPE_LOOP && loop_opts_check(trid, &o) != 0) {
		explicit_bzero(&o, sizeof(o));
		return -EINVAL;
	}
	if (o.admin_queue_size < 2 || o.admin_queue_size > 4096 || o.io_queue_size < 2 ||
	    o.io_queue_size > 65536 || o.num_io_queues == 0 || o.num_io_queues > 65535)
		return -EINVAL;
	if (o.connect_timeout_ms == 0)
		o.connect_timeout_ms = 10000;
	rc = nvme_ctrlr_check_dhchap(&o);
	if (rc != 0) {
		explicit_bzero(&o, sizeof(o));
		return rc;
	}
	ctrlr = calloc(1, sizeof(*ctrlr));
	if (ctrlr == NULL)
		return -ENOMEM;
	ctrlr->trid = *trid;
	ctrlr->trid.trsvcid[sizeof(ctrlr->trid.trsvcid) - 1] = '\0';
	if (ctrlr->trid.trsvcid[0] == '\0')
		snprintf(ctrlr->trid.trsvcid, sizeof(ctrlr->trid.trsvcid), "4420");
	ctrlr->opts = o;
	/* Identity: the options' NQN, else the trid's, else one made from the host ID. */
	if (o.hostnqn[0] != '\0')
		snprintf(ctrlr->hostnqn, sizeof(ctrlr->hostnqn), "%s", o.hostnqn);
	else if (trid->hostnqn[0] != '\0')
		snprintf(ctrlr->hostnqn, sizeof(ctrlr->hostnqn), "%s", trid->hostnqn);
	if (!all_zero(o.hostid, sizeof(o.hostid)))
		memcpy(ctrlr->hostid, o.hostid, sizeof(ctrlr->hostid));
	else if (strncmp(ctrlr->hostnqn, uuid_prefix, sizeof(uuid_prefix) - 1) != 0 ||
		 mimo_uuid_parse(ctrlr->hostnqn + sizeof(uuid_prefix) - 1, ctrlr->hostid) != 0)
		nvme_default_hostid(ctrlr->hostid); /* a UUID NQN names its own host ID */
	if (ctrlr->hostnqn[0] == '\0')
		nvme_hostnqn_from_hostid(ctrlr->hostid, ctrlr->hostnqn, sizeof(ctrlr->hostnqn));
	ctrlr->is_discovery = strcmp(trid->subnqn, MIMO_NVMF_DISCOVERY_NQN) == 0;
	ctrlr->max_xfer = UINT32_MAX;
	pthread_mutex_init(&ctrlr->lock, NULL);
	TAILQ_INIT(&ctrlr->io_qpairs);
	ctrlr->aer_log = calloc(1, 4096);
	rc = ctrlr->aer_log == NULL			  ? -ENOMEM
	     : ctrlr->trid.trtype == MIMO_NVMF_TRTYPE_TCP ? resolve(ctrlr)
							  : 0;
	if (rc == 0 && o.tls_psk.len != 0)
		rc = tls_setup(ctrlr); /* TCP only: loop_opts_check refused a PSK */
	explicit_bzero(&o, sizeof(o)); /* the secrets: ctrlr->opts has them */
	if (rc != 0) {
		nvme_ctrlr_free(ctrlr);
		return rc;
	}
	*out = ctrlr;
	return 0;
}

void nvme_ctrlr_free(struct mimo_nvme_ctrlr *ctrlr)
{
	struct mimo_nvme_qpair *qp;

	if (ctrlr == NULL || ctrlr->free_pending)
		return;
	ctrlr->detaching = true;
	if (ctrlr->admin_depth > 0) {
		/* From inside an admin callback: the loop running it still holds the admin queue
		 * and the internal callbacks still use the controller. The outermost admin
		 * process call frees it; until then it is failed. */
		ctrlr->free_pending = true;
		if (ctrlr->adminq != NULL)
			nvme_qpair_fail(ctrlr->adminq, -ECANCELED);
		return;
	}
	pthread_mutex_lock(&ctrlr->lock);
	while ((qp = TAILQ_FIRST(&ctrlr->io_qpairs)) != NULL) {
		TAILQ_REMOVE(&ctrlr->io_qpairs, qp, link);
		pthread_mutex_unlock(&ctrlr->lock);
		nvme_qpair_destroy(qp);
		pthread_mutex_lock(&ctrlr->lock);
	}
	pthread_mutex_unlock(&ctrlr->lock);
	/* The admin queue's internal callbacks (AERs, a scan) still see a whole controller. */
	nvme_qpair_destroy(ctrlr->adminq);
	ctrlr->adminq = NULL;
	nvme_ns_free_all(ctrlr);
	pthread_mutex_destroy(&ctrlr->lock);
	free(ctrlr->qid_used);
	free(ctrlr->aer_log);
	mimo_tls_ctx_free(ctrlr->tls);
	explicit_bzero(&ctrlr->opts, sizeof(ctrlr->opts)); /* the secrets */
	free(ctrlr);
}

/* --- connecting ------------------------------------------------------------------------------ */

enum connect_step {
	CS_ADMINQ, /* TCP, ICReq, Fabrics Connect of the admin queue */
	CS_CAP,
	CS_VS,
	CS_CC,
	CS_RDY,
	CS_IDENTIFY,
	CS_NUM_QUEUES,
	CS_AER,
	CS_NS,
	CS_DONE,
};

static const char *const g_step_names[] = { "connecting the admin queue",
					    "reading CAP",
					    "reading VS",
					    "enabling (CC.EN)",
					    "waiting for CSTS.RDY",
					    "Identify Controller",
					    "Set Features Number of Queues",
					    "configuring asynchronous events",
					    "scanning namespaces",
					    "done" };

struct mimo_nvme_connect_ctx {
	struct mimo_nvme_ctrlr *ctrlr;
	enum connect_step step;
	int rc;
	bool busy; /* the step's command is outstanding */
	int64_t deadline_ns;
	int64_t rdy_deadline_ns;
	int64_t next_poll_ns;
};

static void next_step(struct mimo_nvme_connect_ctx *ctx, enum connect_step step)
{
	ctx->step = step;
	ctx->busy = false;
	ctx->deadline_ns = mimo_now_ns() + MS_TO_NS(ctx->ctrlr->opts.connect_timeout_ms);
}

static void step_fail(struct mimo_nvme_connect_ctx *ctx, int rc, const struct mimo_nvme_cpl *cpl)
{
	if (cpl != NULL)
		MIMO_ERR(NVME_COMP, "%s: %s failed: sct %u sc 0x%02x", ctx->ctrlr->trid.subnqn,
			 g_step_names[ctx->step], mimo_nvme_status_sct(cpl->status),
			 mimo_nvme_status_sc(cpl->status));
	ctx->busy = false;
	if (ctx->rc == 0)
		ctx->rc = rc;
}

static uint32_t compute_max_xfer(const struct mimo_nvme_ctrlr *ctrlr)
{
	uint64_t mps_min = 1ull << (12 + ((ctrlr->cap >> 48) & 0xf));
	uint64_t max;

	if (ctrlr->cdata.mdts == 0)
		return UINT32_MAX; /* no limit */
	max = ctrlr->cdata.mdts >= 20 ? UINT64_MAX : mps_min << ctrlr->cdata.mdts;
	return max > UINT32_MAX ? UINT32_MAX : (uint32_t)max;
}

static void step_done(void *arg, const struct mimo_nvme_cpl *cpl)
{
	struct mimo_nvme_connect_ctx *ctx = arg;
	struct mimo_nvme_ctrlr *ctrlr = ctx->ctrlr;
	bool err = mimo_nvme_cpl_is_error(cpl);

	if (ctx->rc != 0)
		return;
	switch (ctx->step) {
	case CS_CAP:
		if (err)
			return step_fail(ctx, -EPROTO, cpl);
		ctrlr->cap = cpl->cdw0 | (uint64_t)cpl->cdw1 << 32;
		next_step(ctx, CS_VS);
		return;
	case CS_VS:
		if (err)
			return step_fail(ctx, -EPROTO, cpl);
		ctrlr->vs = cpl->cdw0;
		next_step(ctx, CS_CC);
		return;
	case CS_CC: {
		/* CAP.TO: the worst case to become ready, in 500 ms units. */
		uint64_t to_ms = ((ctrlr->cap >> 24) & 0xff) * 500;

		if (err)
			return step_fail(ctx, -EPROTO, cpl);
		next_step(ctx, CS_RDY);
		ctx->rdy_deadline_ns = mimo_now_ns() + MS_TO_NS(to_ms < 500 ? 500 : to_ms);
		return;
	}
	case CS_RDY:
		if (err)
			return step_fail(ctx, -EPROTO, cpl);
		if (cpl->cdw0 & MIMO_NVME_CSTS_CFS) {
			MIMO_ERR(NVME_COMP, "%s: controller fatal status", ctrlr->trid.subnqn);
			return step_fail(ctx, -EIO, NULL);
		}
		if (cpl->cdw0 & MIMO_NVME_CSTS_RDY) {
			next_step(ctx, CS_IDENTIFY);
		} else {
			ctx->busy = false; /* read CSTS again in a millisecond */
			ctx->next_poll_ns = mimo_now_ns() + 1000000;
		}
		return;
	case CS_IDENTIFY:
		if (err)
			return step_fail(ctx, -EPROTO, cpl);
		if (ctrlr->cdata.cntrltype == 2)
			ctrlr->is_discovery = true;
		ctrlr->max_xfer = compute_max_xfer(ctrlr);
		ctrlr->io_icd = ctrlr->cdata.ioccsz >= 4 ? ctrlr->cdata.ioccsz * 16 - 64 : 0;
		ctrlr->io_queue_size =
			MIMO_MIN(ctrlr->opts.io_queue_size, (uint32_t)(ctrlr->cap & 0xffff) + 1);
		if (ctrlr->io_queue_size < 2)
			ctrlr->io_queue_size = 2;
		next_step(ctx, ctrlr->is_discovery ? CS_AER : CS_NUM_QUEUES);
		return;
	case CS_NUM_QUEUES: {
		uint32_t nsqa = (cpl->cdw0 & 0xffff) + 1, ncqa = (cpl->cdw0 >> 16) + 1;

		if (err)
			return step_fail(ctx, -EPROTO, cpl);
		ctrlr->num_io_queues = MIMO_MIN(MIMO_MIN(nsqa, ncqa), ctrlr->opts.num_io_queues);
		ctrlr->qid_used = calloc(ctrlr->num_io_queues + 1, 1);
		if (ctrlr->qid_used == NULL)
			return step_fail(ctx, -ENOMEM, NULL);
		next_step(ctx, CS_AER);
		return;
	}
	default:
		return;
	}
}

static void scan_done(void *arg, int rc)
{
	struct mimo_nvme_connect_ctx *ctx = arg;

	if (rc != 0) {
		MIMO_ERR(NVME_COMP, "%s: namespace scan failed: %s", ctx->ctrlr->trid.subnqn,
			 strerror(-rc));
		step_fail(ctx, rc, NULL);
		return;
	}
	next_step(ctx, CS_DONE);
}

/* Issue the current step's command when none is outstanding. */
static void advance(struct mimo_nvme_connect_ctx *ctx)
{
	struct mimo_nvme_ctrlr *ctrlr = ctx->ctrlr;
	int rc = 0;

	while (ctx->rc == 0 && !ctx->busy && ctx->step != CS_DONE) {
		enum connect_step step = ctx->step;

		switch (step) {
		case CS_ADMINQ:
			if (ctrlr->adminq->state != QP_READY)
				return;
			next_step(ctx, CS_CAP);
			continue;
		case CS_CAP:
			rc = nvme_prop_get(ctrlr, MIMO_NVME_REG_CAP, 1, step_done, ctx);
			break;
		case CS_VS:
			rc = nvme_prop_get(ctrlr, MIMO_NVME_REG_VS, 0, step_done, ctx);
			break;
		case CS_CC:
			ctrlr->cc = CC_ENABLE;
			rc = nvme_prop_set(ctrlr, MIMO_NVME_REG_CC, 0, ctrlr->cc, step_done, ctx);
			break;
		case CS_RDY:
			if (mimo_now_ns() < ctx->next_poll_ns)
				return;
			rc = nvme_prop_get(ctrlr, MIMO_NVME_REG_CSTS, 0, step_done, ctx);
			break;
		case CS_IDENTIFY:
			rc = mimo_nvme_ctrlr_cmd_identify(ctrlr, MIMO_NVME_CNS_CTRLR, 0,
							  &ctrlr->cdata, sizeof(ctrlr->cdata),
							  step_done, ctx);
			break;
		case CS_NUM_QUEUES: {
			uint32_t n = ctrlr->opts.num_io_queues - 1; /* 0's based */

			rc = mimo_nvme_ctrlr_cmd_set_feature(ctrlr, MIMO_NVME_FEAT_NUMBER_OF_QUEUES,
							     n | n << 16, 0, NULL, 0, step_done,
							     ctx);
			break;
		}
		case CS_AER:
			nvme_ctrlr_start_aers(ctrlr);
			next_step(ctx, ctrlr->is_discovery ? CS_DONE : CS_NS);
			continue;
		case CS_NS:
			ctx->busy = true;
			rc = nvme_ns_scan(ctrlr, scan_done, ctx);
			if (rc != 0)
				ctx->busy = false;
			break;
		default:
			return;
		}
		if (rc != 0) {
			MIMO_ERR(NVME_COMP, "%s: %s: cannot submit: %s", ctrlr->trid.subnqn,
				 g_step_names[step], strerror(-rc));
			step_fail(ctx, rc, NULL);
			return;
		}
		if (ctx->step == step)
			ctx->busy = true;
	}
}

MIMO_EXPORT int mimo_nvme_connect_async(const struct mimo_nvme_trid *trid,
					const struct mimo_nvme_ctrlr_opts *opts,
					struct mimo_nvme_connect_ctx **out)
{
	struct mimo_nvme_connect_ctx *ctx;
	struct mimo_nvme_ctrlr *ctrlr;
	int rc;

	rc = nvme_ctrlr_alloc(trid, opts, &ctrlr);
	if (rc != 0)
		return rc;
	rc = nvme_qpair_create(ctrlr, 0, ctrlr->opts.admin_queue_size, &ctrlr->adminq);
	if (rc == 0)
		rc = nvme_qpair_connect(ctrlr->adminq);
	ctx = rc == 0 ? calloc(1, sizeof(*ctx)) : NULL;
	if (ctx == NULL) {
		nvme_ctrlr_free(ctrlr);
		return rc != 0 ? rc : -ENOMEM;
	}
	ctx->ctrlr = ctrlr;
	next_step(ctx, CS_ADMINQ);
	*out = ctx;
	return 0;
}

MIMO_EXPORT int mimo_nvme_connect_poll(struct mimo_nvme_connect_ctx *ctx,
				       struct mimo_nvme_ctrlr **out)
{
	struct mimo_nvme_ctrlr *ctrlr = ctx->ctrlr;
	int rc;

	bool freed = false;

	advance(ctx);
	(void)nvme_admin_process(ctrlr, &freed);
	advance(ctx);
	if (ctx->rc == 0 && ctrlr->adminq->state == QP_FAILED)
		ctx->rc = ctrlr->adminq->fail_rc != 0 ? ctrlr->adminq->fail_rc : -ECONNRESET;
	if (ctx->rc == 0 && ctx->step != CS_DONE) {
		int64_t now = mimo_now_ns();

		if (now > ctx->deadline_ns &&
		    !(ctx->step == CS_RDY && now < ctx->rdy_deadline_ns)) {
			MIMO_ERR(NVME_COMP, "%s: timed out %s", ctrlr->trid.subnqn,
				 g_step_names[ctx->step]);
			ctx->rc = -ETIMEDOUT;
		} else {
			return -EAGAIN;
		}
	}
	rc = ctx->rc;
	if (rc == 0) {
		nvme_ctrlr_start_keep_alive(ctrlr);
		__atomic_store_n(&ctrlr->ready, true, __ATOMIC_RELEASE);
		MIMO_DEBUG(NVME_COMP, "%s: connected, cntlid %u, %u I/O queue(s)",
			   ctrlr->trid.subnqn, ctrlr->cntlid, ctrlr->num_io_queues);
		*out = ctrlr;
	} else {
		nvme_ctrlr_free(ctrlr);
	}
	free(ctx);
	return rc;
}

MIMO_EXPORT void mimo_nvme_connect_abort(struct mimo_nvme_connect_ctx *ctx)
{
	if (ctx == NULL)
		return;
	ctx->rc = -ECANCELED;
	nvme_ctrlr_free(ctx->ctrlr);
	free(ctx);
}

MIMO_EXPORT int mimo_nvme_connect(const struct mimo_nvme_trid *trid,
				  const struct mimo_nvme_ctrlr_opts *opts,
				  struct mimo_nvme_ctrlr **ctrlr)
{
	struct mimo_nvme_connect_ctx *ctx;
	int rc = mimo_nvme_connect_async(trid, opts, &ctx);

	if (rc != 0)
		return rc;
	for (;;) {
		struct mimo_nvme_qpair *adminq = ctx->ctrlr->adminq;

		rc = mimo_nvme_connect_poll(ctx, ctrlr);
		if (rc != -EAGAIN)
			return rc;
		nvme_qpair_wait_io(adminq, 1);
	}
}

/* --- detaching ------------------------------------------------------------------------------- */

enum detach_step {
	DS_SHN,	 /* Property Set CC.SHN = normal */
	DS_SHST, /* Property Get CSTS until SHST = complete */
	DS_DONE,
};

struct mimo_nvme_detach_ctx {
	struct mimo_nvme_ctrlr *ctrlr;
	enum detach_step step;
	bool busy;
	int rc;
	int64_t deadline_ns;
	int64_t next_poll_ns;
};

static void detach_done_cb(void *arg, const struct mimo_nvme_cpl *cpl)
{
	struct mimo_nvme_detach_ctx *ctx = arg;

	ctx->busy = false;
	if (mimo_nvme_cpl_is_error(cpl)) {
		ctx->rc = -EIO;
		ctx->step = DS_DONE;
		return;
	}
	if (ctx->step == DS_SHN) {
		ctx->step = DS_SHST;
		return;
	}
	if (((cpl->cdw0 >> MIMO_NVME_CSTS_SHST_SHIFT) & 3) == MIMO_NVME_SHST_COMPLETE)
		ctx->step = DS_DONE;
	else
		ctx->next_poll_ns = mimo_now_ns() + 1000000;
}

MIMO_EXPORT int mimo_nvme_detach_async(struct mimo_nvme_ctrlr *ctrlr,
				       struct mimo_nvme_detach_ctx **out)
{
	struct mimo_nvme_detach_ctx *ctx;
	struct mimo_nvme_qpair *qp;
	uint32_t ms;

	if (ctrlr == NULL)
		return -EINVAL;
	ctx = calloc(1, sizeof(*ctx));
	if (ctx == NULL)
		return -ENOMEM;
	ctx->ctrlr = ctrlr;
	ctrlr->detaching = true;
	/* I/O queues first: a controller shutting down aborts what they hold anyway. */
	pthread_mutex_lock(&ctrlr->lock);
	while ((qp = TAILQ_FIRST(&ctrlr->io_qpairs)) != NULL) {
		TAILQ_REMOVE(&ctrlr->io_qpairs, qp, link);
		pthread_mutex_unlock(&ctrlr->lock);
		nvme_qpair_destroy(qp);
		pthread_mutex_lock(&ctrlr->lock);
	}
	pthread_mutex_unlock(&ctrlr->lock);
	ms = ctrlr->cdata.rtd3e != 0 ? ctrlr->cdata.rtd3e / 1000 + 1 : SHUTDOWN_MAX_MS;
	ctx->deadline_ns = mimo_now_ns() + MS_TO_NS(MIMO_MIN(ms, (uint32_t)SHUTDOWN_MAX_MS));
	ctx->step = ctrlr->adminq->state == QP_READY ? DS_SHN : DS_DONE;
	*out = ctx;
	return 0;
}

MIMO_EXPORT int mimo_nvme_detach_poll(struct mimo_nvme_detach_ctx *ctx)
{
	struct mimo_nvme_ctrlr *ctrlr = ctx->ctrlr;
	int rc = 0;

	if (ctx->step == DS_SHN && !ctx->busy) {
		uint32_t cc = (ctrlr->cc & ~(3u << MIMO_NVME_CC_SHN_SHIFT)) |
			      (1u << MIMO_NVME_CC_SHN_SHIFT); /* normal shutdown */

		rc = nvme_prop_set(ctrlr, MIMO_NVME_REG_CC, 0, cc, detach_done_cb, ctx);
		ctx->busy = rc == 0;
	} else if (ctx->step == DS_SHST && !ctx->busy && mimo_now_ns() >= ctx->next_poll_ns) {
		rc = nvme_prop_get(ctrlr, MIMO_NVME_REG_CSTS, 0, detach_done_cb, ctx);
		ctx->busy = rc == 0;
	}
	if (rc != 0) {
		ctx->rc = rc;
		ctx->step = DS_DONE;
	}
	if (ctx->step != DS_DONE) {
		bool freed = false;

		if (nvme_admin_process(ctrlr, &freed) == -ENXIO && freed) {
			/* A callback of ours detached it a second time: that one freed it. */
			free(ctx);
			return 0;
		} else if (ctrlr->adminq->state == QP_FAILED) {
			ctx->rc = -ENXIO;
			ctx->step = DS_DONE;
		} else if (mimo_now_ns() > ctx->deadline_ns) {
			MIMO_WARN(NVME_COMP, "%s: the controller did not confirm its shutdown",
				  ctrlr->trid.subnqn);
			ctx->rc = -ETIMEDOUT;
			ctx->step = DS_DONE;
		}
	}
	if (ctx->step != DS_DONE)
		return -EAGAIN;
	rc = ctx->rc;
	nvme_ctrlr_free(ctrlr);
	free(ctx);
	/* A controller whose connection was already gone is detached all the same. */
	return rc == -ENXIO ? 0 : rc;
}

MIMO_EXPORT int mimo_nvme_detach(struct mimo_nvme_ctrlr *ctrlr)
{
	struct mimo_nvme_detach_ctx *ctx;
	int rc = mimo_nvme_detach_async(ctrlr, &ctx);

	if (rc != 0) {
		nvme_ctrlr_free(ctrlr);
		return rc;
	}
	for (;;) {
		struct mimo_nvme_qpair *adminq = ctrlr->adminq;

		rc = mimo_nvme_detach_poll(ctx);
		if (rc != -EAGAIN)
			return rc;
		nvme_qpair_wait_io(adminq, 1);
	}
}

/* --- what the controller reports ------------------------------------------------------------ */

MIMO_EXPORT const struct mimo_nvme_trid *mimo_nvme_ctrlr_get_trid(const struct mimo_nvme_ctrlr *c)
{
	return &c->trid;
}

MIMO_EXPORT const struct mimo_nvme_ctrlr_data *
mimo_nvme_ctrlr_get_data(const struct mimo_nvme_ctrlr *c)
{
	return &c->cdata;
}

MIMO_EXPORT uint64_t mimo_nvme_ctrlr_get_cap(const struct mimo_nvme_ctrlr *c)
{
	return c->cap;
}

MIMO_EXPORT const char *mimo_nvme_ctrlr_get_tls_cipher(const struct mimo_nvme_ctrlr *c)
{
	return c->tls_cipher;
}

MIMO_EXPORT uint32_t mimo_nvme_ctrlr_get_vs(const struct mimo_nvme_ctrlr *c)
{
	return c->vs;
}

MIMO_EXPORT uint32_t mimo_nvme_ctrlr_get_num_io_queues(const struct mimo_nvme_ctrlr *c)
{
	return c->num_io_queues;
}

MIMO_EXPORT uint32_t mimo_nvme_ctrlr_get_max_xfer_size(const struct mimo_nvme_ctrlr *c)
{
	return c->max_xfer;
}

MIMO_EXPORT bool mimo_nvme_ctrlr_is_discovery(const struct mimo_nvme_ctrlr *c)
{
	return c->is_discovery;
}

MIMO_EXPORT void mimo_nvme_ctrlr_disconnect(struct mimo_nvme_ctrlr *c)
{
	/* -ECANCELED: asked for, not an error worth a warning. */
	nvme_qpair_fail(c->adminq, -ECANCELED);
}

MIMO_EXPORT bool mimo_nvme_ctrlr_is_connected(const struct mimo_nvme_ctrlr *c)
{
	/* Any thread: the admin queue's own state belongs to the admin thread. */
	return __atomic_load_n(&c->ready, __ATOMIC_ACQUIRE) &&
	       !__atomic_load_n(&c->failed, __ATOMIC_ACQUIRE);
}
