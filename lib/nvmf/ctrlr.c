/*
 * Controllers, on the target's reactor: Fabrics Connect (admin and I/O queues), Property Get
 * and Set, the admin command dispatch, Keep Alive and its timer, Asynchronous Event Requests,
 * and teardown once every queue of a controller is gone.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "nvmf_auth.h"
#include "keyring.h"
#include "log.h"
#include "ticks.h"
#include "transport.h"

#define COMP "nvmf"

/* Connect's Invalid Parameters names the offending field: IATTR 1 = in the data. */
#define CONNECT_IPO_CNTLID  16
#define CONNECT_IPO_SUBNQN  256
#define CONNECT_IPO_HOSTNQN 512
#define CONNECT_IPO_QID	    42
#define CONNECT_IPO_SQSIZE  44

static void connect_invalid(struct nvmf_req *req, bool in_data, uint16_t ipo)
{
	nvmf_req_set_status(req, MIMO_NVME_SCT_COMMAND_SPECIFIC,
			    MIMO_NVMF_SC_CONNECT_INVALID_PARAMS);
	req->cpl.cdw0 = ipo | (in_data ? 1u << 16 : 0);
}

void nvmf_ctrlr_emit(const struct nvmf_ctrlr *c, const char *type)
{
	json_t *p = json_pack("{s:s, s:s, s:s, s:s, s:i}", "subnqn", c->subsys->nqn, "hostnqn",
			      c->hostnqn, "traddr", c->traddr, "trsvcid", c->trsvcid, "cntlid",
			      c->cntlid);

	nvmf_emit(type, p, c->subsys->nqn);
}

/* --- keep alive ---------------------------------------------------------------------------- */

static int keep_alive_check(void *arg)
{
	struct nvmf_ctrlr *c = arg;
	uint64_t kato_ticks = (uint64_t)c->kato_ms * mimo_get_ticks_hz() / 1000;

	if (c->disconnecting || mimo_get_ticks() - c->last_keep_alive <= kato_ticks)
		return 0;
	MIMO_WARN(COMP, "%s: controller %u of %s: no keep alive for %u ms; disconnecting",
		  c->subsys->nqn, c->cntlid, c->hostnqn, c->kato_ms);
	nvmf_ctrlr_disconnect(c);
	return 1;
}

/* (Re)arm the timer for kato_ms, rounded up to the 100 ms KAS granularity we report. */
static void keep_alive_arm(struct nvmf_ctrlr *c, uint32_t kato_ms)
{
	const struct mimo_nvmf_transport_opts *o = &c->admin_qp->tt->opts;
	uint32_t unit = o->kas * 100; /* KAS: the granularity the controller reports */

	mimo_poller_unregister(&c->ka_poller);
	if (kato_ms == 0 && c->subsys->subtype == MIMO_NVMF_SUBTYPE_DISCOVERY)
		kato_ms = NVMF_DISC_KATO_MS;
	if (kato_ms != 0 && kato_ms < o->min_kato_ms)
		kato_ms = o->min_kato_ms;
	kato_ms = (uint32_t)(((uint64_t)kato_ms + unit - 1) / unit * unit);
	c->kato_ms = kato_ms;
	c->last_keep_alive = mimo_get_ticks();
	if (kato_ms != 0)
		c->ka_poller = mimo_poller_register(keep_alive_check, c, (uint64_t)kato_ms * 500);
}

/* --- asynchronous events ------------------------------------------------------------------- */

#define AEN_NS_ATTR	(1u << 8)
#define AEN_ANA_CHANGE	(1u << 11)
#define AEN_DISCOVERY	(1u << 31)
#define AER_TYPE_NOTICE 0x2

static void aer_deliver(struct nvmf_ctrlr *c)
{
	while (c->num_aer != 0) {
		struct nvmf_req *req;
		uint32_t cdw0;

		if (c->ns_notice_pending && !c->ns_notice_masked && (c->aen_config & AEN_NS_ATTR)) {
			cdw0 = AER_TYPE_NOTICE | (0x00u << 8) |
			       (MIMO_NVME_LOG_CHANGED_NS_LIST << 16);
			c->ns_notice_pending = false;
			c->ns_notice_masked = true;
		} else if (c->ana_notice_pending && !c->ana_notice_masked &&
			   (c->aen_config & AEN_ANA_CHANGE)) {
			/* Notice 03h: Asymmetric Namespace Access Change. */
			cdw0 = AER_TYPE_NOTICE | (0x03u << 8) | ((uint32_t)MIMO_NVME_LOG_ANA << 16);
			c->ana_notice_pending = false;
			c->ana_notice_masked = true;
		} else if (c->disc_notice_pending && !c->disc_notice_masked &&
			   (c->aen_config & AEN_DISCOVERY)) {
			cdw0 = AER_TYPE_NOTICE | (0xf0u << 8) |
			       ((uint32_t)MIMO_NVME_LOG_DISCOVERY << 16);
			c->disc_notice_pending = false;
			c->disc_notice_masked = true;
		} else {
			return;
		}
		req = c->aer[--c->num_aer];
		req->cpl.cdw0 = cdw0;
		nvmf_req_set_status(req, 0, 0);
		nvmf_req_complete(req);
	}
}

static void changed_ns_add(struct nvmf_ctrlr *c, uint32_t nsid)
{
	if (c->num_changed_ns > NVMF_CHANGED_NS_MAX)
		return;
	for (uint32_t i = 0; i < c->num_changed_ns; i++) {
		if (c->changed_ns[i] == nsid)
			return;
	}
	if (c->num_changed_ns == NVMF_CHANGED_NS_MAX) {
		c->num_changed_ns++; /* overflowed: the log says 0xffffffff */
		return;
	}
	c->changed_ns[c->num_changed_ns++] = nsid;
}

static void ns_notice(struct nvmf_ctrlr *c, uint32_t nsid)
{
	if (c->disconnecting)
		return;
	changed_ns_add(c, nsid);
	c->ns_notice_pending = true;
	aer_deliver(c);
}

/* Only the hosts that see the namespace hear of it (the others never knew it). */
void nvmf_ctrlr_ns_changed(struct mimo_nvmf_subsystem *s, const struct nvmf_ns *ns)
{
	struct nvmf_ctrlr *c;

	TAILQ_FOREACH(c, &s->ctrlrs, link)
	{
		if (nvmf_ctrlr_sees(c, ns))
			ns_notice(c, ns->nsid);
	}
}

void nvmf_ctrlr_set_visible(struct nvmf_ctrlr *c, uint32_t nsid, bool visible)
{
	_Atomic uint64_t *word = &c->visible_ns[(nsid - 1) / 64];
	uint64_t bit = 1ull << ((nsid - 1) % 64), old;

	old = visible ? atomic_fetch_or(word, bit) : atomic_fetch_and(word, ~bit);
	if (((old & bit) != 0) != visible)
		ns_notice(c, nsid);
}

/* A new controller sees the namespaces that are not visible to all where its host is named. */
static void visible_init(struct nvmf_ctrlr *c)
{
	struct mimo_nvmf_subsystem *s = c->subsys;

	for (uint32_t id = 1; id <= s->max_nsid; id++) {
		struct nvmf_ns *ns = nvmf_subsystem_get_ns(s, id);
		struct nvmf_host *h;

		if (ns == NULL || ns->auto_visible)
			continue;
		TAILQ_FOREACH(h, &ns->visible_hosts, link)
		{
			if (strcmp(h->nqn, c->hostnqn) == 0)
				c->visible_ns[(id - 1) / 64] |= 1ull << ((id - 1) % 64);
		}
	}
}

void nvmf_ctrlr_ana_changed(struct nvmf_ctrlr *c, const struct nvmf_subsys_listener *l)
{
	if (c->ana_state == NULL)
		return;
	for (uint32_t g = 0; g < c->subsys->max_nsid; g++)
		atomic_store_explicit(&c->ana_state[g], l->ana_state[g], memory_order_relaxed);
	c->ana_chgcnt = l->ana_chgcnt;
	if (c->disconnecting)
		return;
	c->ana_notice_pending = true;
	aer_deliver(c);
}

void nvmf_ctrlr_discovery_changed(struct nvmf_ctrlr *c)
{
	if (c->disconnecting)
		return;
	c->disc_notice_pending = true;
	aer_deliver(c);
}

/* Called by Get Log Page when the host read a log without Retain Asynchronous Event. */
void nvmf_ctrlr_log_read(struct nvmf_ctrlr *c, uint8_t lid, bool rae)
{
	if (rae)
		return;
	if (lid == MIMO_NVME_LOG_CHANGED_NS_LIST) {
		c->num_changed_ns = 0;
		c->ns_notice_pending = false;
		c->ns_notice_masked = false;
	} else if (lid == MIMO_NVME_LOG_ANA) {
		c->ana_notice_pending = false;
		c->ana_notice_masked = false;
	} else if (lid == MIMO_NVME_LOG_DISCOVERY) {
		c->disc_notice_pending = false;
		c->disc_notice_masked = false;
	}
	aer_deliver(c);
}

static void async_event_request(struct nvmf_req *req)
{
	struct nvmf_ctrlr *c = req->qp->ctrlr;

	if (c->num_aer >= NVMF_NUM_AER) {
		nvmf_req_set_status(req, MIMO_NVME_SCT_COMMAND_SPECIFIC,
				    MIMO_NVME_SC_ASYNC_EVENT_LIMIT);
		nvmf_req_complete(req);
		return;
	}
	c->aer[c->num_aer++] = req;
	aer_deliver(c);
}

/* --- errors -------------------------------------------------------------------------------- */

void nvmf_ctrlr_log_error(struct nvmf_ctrlr *c, struct nvmf_req *req)
{
	struct mimo_nvme_error_log_entry *e;

	/* Newest first in the log: keep a ring indexed by the running count. */
	c->error_count++;
	e = &c->errors[c->error_count % NVMF_ERROR_LOG_ENTRIES];
	memset(e, 0, sizeof(*e));
	e->error_count = c->error_count;
	e->sqid = req->qp->qid;
	e->cid = req->cmd.cid;
	/* The completion's status word as posted: the status field above the phase tag (0). */
	e->status = req->cpl.status & ~1u;
	e->error_location = 0xffff;
	e->nsid = req->cmd.nsid;
	e->trtype = req->qp->tt->ops->trtype;
}

/* --- connect ------------------------------------------------------------------------------- */

static struct nvmf_ctrlr *ctrlr_create(struct mimo_nvmf_subsystem *s, struct nvmf_req *req,
				       const struct mimo_nvmf_connect_data *data)
{
	const struct mimo_nvmf_connect_cmd *cmd = (const void *)&req->cmd;
	struct nvmf_transport *tt = req->qp->tt;
	struct nvmf_ctrlr *c = calloc(1, sizeof(*c));
	uint16_t cntlid = nvmf_subsystem_alloc_cntlid(s);

	if (c == NULL || cntlid == 0) {
		free(c);
		return NULL;
	}
	c->max_qpairs = tt->opts.max_qpairs_per_ctrlr;
	c->io_qps = calloc(c->max_qpairs, sizeof(*c->io_qps));
	c->visible_ns = calloc((s->max_nsid + 63) / 64, sizeof(*c->visible_ns));
	c->subsys = s;
	c->port = nvmf_qpair_port(req->qp);
	if (c->io_qps == NULL || c->visible_ns == NULL || nvmf_ctrlr_ana_init(c) != 0) {
		free(c->io_qps);
		free(c->visible_ns);
		free(c->ana_state);
		free(c);
		return NULL;
	}
	c->subsys = s;
	c->cntlid = cntlid;
	memcpy(c->hostnqn, data->hostnqn, sizeof(c->hostnqn) - 1);
	memcpy(c->hostid, data->hostid, sizeof(c->hostid));
	snprintf(c->traddr, sizeof(c->traddr), "%s", req->qp->traddr);
	snprintf(c->trsvcid, sizeof(c->trsvcid), "%s", req->qp->trsvcid);
	c->port = nvmf_qpair_port(req->qp);
	c->admin_qp = req->qp;
	c->num_io_queues = c->max_qpairs - 1;
	c->aen_config = s->subtype == MIMO_NVMF_SUBTYPE_DISCOVERY ? AEN_DISCOVERY : AEN_NS_ATTR;
	if (s->ana_reporting)
		c->aen_config |= AEN_ANA_CHANGE; /* as SPDK: on until the host turns it off */
	c->vwc_enabled = true;
	c->temp_over = 343; /* 70 °C; the health log reports 298 K */
	c->start_ticks = mimo_get_ticks();
	visible_init(c);
	keep_alive_arm(c, cmd->kato);
	TAILQ_INSERT_TAIL(&s->ctrlrs, c, link);
	nvmf_stats_ctrlr(1);
	return c;
}

/* Log the new controller and tell the event bridge: at Connect, or once its admin queue has
 * authenticated when its host must. */
static void announce(struct nvmf_ctrlr *c, const struct nvmf_auth *a)
{
	c->announced = true;
	if (a != NULL)
		MIMO_INFO(COMP,
			  "%s: host %s connected from %s:%s as controller %u (KATO %u ms), "
			  "authenticated with DH-HMAC-CHAP %s/%s",
			  c->subsys->nqn, c->hostnqn, c->traddr, c->trsvcid, c->cntlid, c->kato_ms,
			  dhchap_hash_name(a->digest), dhchap_dhgroup_name(a->dhgroup));
	else
		MIMO_INFO(COMP, "%s: host %s connected from %s:%s as controller %u (KATO %u ms)",
			  c->subsys->nqn, c->hostnqn, c->traddr, c->trsvcid, c->cntlid, c->kato_ms);
	nvmf_ctrlr_emit(c, "nvmf_host_connected");
}

/* A controller made for a Connect that then failed: never seen by anyone. */
static void ctrlr_destroy_unused(struct nvmf_ctrlr *c)
{
	mimo_poller_unregister(&c->ka_poller);
	TAILQ_REMOVE(&c->subsys->ctrlrs, c, link);
	nvmf_stats_ctrlr(-1);
	free(c->io_qps);
	free(c->visible_ns);
	free(c->ana_state);
	free(c);
}

/*
 * A host listed with a DH-HMAC-CHAP key authenticates every queue: the Connect succeeds with
 * AUTHREQ.ATR set, and the queue takes only authentication commands until it has (request.c).
 * False only when the queue's authentication state cannot be allocated.
 */
static bool require_auth(struct nvmf_req *req, struct mimo_nvmf_subsystem *s, const char *hostnqn)
{
	struct nvmf_host *h = nvmf_subsystem_find_host(s, hostnqn);
	struct nvmf_auth *a;

	if (h == NULL || h->dhchap_key == NULL)
		return true;
	a = malloc(sizeof(*a));
	if (a == NULL)
		return false;
	nvmf_auth_init(a);
	a->required = true;
	req->qp->auth = a;
	req->cpl.cdw0 = MIMO_NVMF_CONNECT_AUTHREQ_ATR;
	return true;
}

static struct nvmf_ctrlr *find_ctrlr(struct mimo_nvmf_subsystem *s, uint16_t cntlid)
{
	struct nvmf_ctrlr *c;

	TAILQ_FOREACH(c, &s->ctrlrs, link)
	{
		if (c->cntlid == cntlid)
			return c;
	}
	return NULL;
}

static void connect_admin(struct nvmf_req *req, struct mimo_nvmf_subsystem *s,
			  const struct mimo_nvmf_connect_data *data)
{
	const struct mimo_nvmf_connect_cmd *cmd = (const void *)&req->cmd;
	struct nvmf_ctrlr *c;

	if (cmd->sqsize == 0 || cmd->sqsize >= req->qp->tt->opts.max_aq_depth) {
		connect_invalid(req, false, CONNECT_IPO_SQSIZE);
		return;
	}
	if (data->cntlid != 0xffff) {
		/* The dynamic controller model only: the host must let us pick. */
		connect_invalid(req, true, CONNECT_IPO_CNTLID);
		return;
	}
	c = ctrlr_create(s, req, data);
	if (c == NULL || !require_auth(req, s, data->hostnqn)) {
		if (c != NULL)
			ctrlr_destroy_unused(c);
		nvmf_req_set_status(req, MIMO_NVME_SCT_COMMAND_SPECIFIC,
				    MIMO_NVMF_SC_CONNECT_CTRLR_BUSY);
		return;
	}
	req->aux = c;
	req->cpl.cdw0 |= c->cntlid;
	/* A host that must authenticate is told of once its admin queue has. */
	if (req->qp->auth == NULL)
		announce(c, NULL);
}

static void connect_io(struct nvmf_req *req, struct mimo_nvmf_subsystem *s,
		       const struct mimo_nvmf_connect_data *data)
{
	const struct mimo_nvmf_connect_cmd *cmd = (const void *)&req->cmd;
	struct nvmf_ctrlr *c = find_ctrlr(s, data->cntlid);

	if (c == NULL) {
		connect_invalid(req, true, CONNECT_IPO_CNTLID);
		return;
	}
	if (strncmp(c->hostnqn, data->hostnqn, sizeof(data->hostnqn)) != 0) {
		connect_invalid(req, true, CONNECT_IPO_HOSTNQN);
		return;
	}
	if (memcmp(c->hostid, data->hostid, sizeof(c->hostid)) != 0) {
		connect_invalid(req, true, 0);
		return;
	}
	if (c->disconnecting) {
		nvmf_req_set_status(req, MIMO_NVME_SCT_COMMAND_SPECIFIC,
				    MIMO_NVMF_SC_CONNECT_CTRLR_BUSY);
		return;
	}
	if (!(c->cc & MIMO_NVME_CC_EN) || !(c->csts & MIMO_NVME_CSTS_RDY) ||
	    s->subtype == MIMO_NVMF_SUBTYPE_DISCOVERY) {
		nvmf_req_set_status(req, MIMO_NVME_SCT_GENERIC,
				    MIMO_NVME_SC_COMMAND_SEQUENCE_ERROR);
		return;
	}
	if (cmd->qid >= c->max_qpairs || cmd->qid > c->num_io_queues ||
	    c->io_qps[cmd->qid] != NULL) {
		connect_invalid(req, false, CONNECT_IPO_QID);
		return;
	}
	if (cmd->sqsize == 0 || cmd->sqsize >= req->qp->tt->opts.max_queue_depth) {
		connect_invalid(req, false, CONNECT_IPO_SQSIZE);
		return;
	}
	if (!require_auth(req, s, data->hostnqn)) {
		nvmf_req_set_status(req, MIMO_NVME_SCT_COMMAND_SPECIFIC,
				    MIMO_NVMF_SC_CONNECT_CTRLR_BUSY);
		return;
	}
	c->io_qps[cmd->qid] = req->qp;
	c->num_io_qps++;
	req->aux = c;
	req->cpl.cdw0 |= c->cntlid;
}

/*
 * The secure channel and the Connect must agree (host policy, whatever the transport). A
 * queue that came through a secure channel holds the host and subsystem its key was found by
 * (TCP: the TLS PSK identity): the Connect must be that host's, for that subsystem, which
 * must still give the host a PSK. And a host given a PSK connects through a secure channel
 * only: its name without one is refused (anyone can send a name; only it has the key).
 */
static bool secure_channel_ok(struct nvmf_req *req, const struct mimo_nvmf_subsystem *s,
			      const struct mimo_nvmf_connect_data *d)
{
	const struct nvmf_qpair *qp = req->qp;
	const struct nvmf_host *h = nvmf_subsystem_find_host(s, d->hostnqn);

	if (qp->secure_hostnqn == NULL) {
		if (h == NULL || h->psk == NULL)
			return true;
		MIMO_WARN(COMP,
			  "%s: host %s has a PSK and must connect over TLS (a secure listener); "
			  "refusing its connection without TLS from %s:%s (%s)",
			  s->nqn, d->hostnqn, qp->traddr, qp->trsvcid, qp->tt->ops->name);
		nvmf_req_set_status(req, MIMO_NVME_SCT_COMMAND_SPECIFIC,
				    MIMO_NVMF_SC_CONNECT_INVALID_HOST);
		return false;
	}
	if (strcmp(qp->secure_subnqn, s->nqn) != 0) {
		MIMO_WARN(COMP, "connect from %s:%s to %s over TLS with the PSK of subsystem %s",
			  qp->traddr, qp->trsvcid, s->nqn, qp->secure_subnqn);
		connect_invalid(req, true, CONNECT_IPO_SUBNQN);
		return false;
	}
	if (strcmp(qp->secure_hostnqn, d->hostnqn) != 0 || h == NULL || h->psk == NULL) {
		MIMO_WARN(COMP, "%s: connect from %s:%s as host %s over TLS with %s", s->nqn,
			  qp->traddr, qp->trsvcid, d->hostnqn,
			  strcmp(qp->secure_hostnqn, d->hostnqn) != 0
				  ? "another host's PSK"
				  : "a PSK the host no longer has");
		nvmf_req_set_status(req, MIMO_NVME_SCT_COMMAND_SPECIFIC,
				    MIMO_NVMF_SC_CONNECT_INVALID_HOST);
		return false;
	}
	return true;
}

void nvmf_ctrlr_connect(struct nvmf_req *req)
{
	const struct mimo_nvmf_connect_cmd *cmd = (const void *)&req->cmd;
	struct mimo_nvmf_tgt *tgt = req->qp->tt->tgt;
	struct mimo_nvmf_connect_data data;
	struct mimo_nvmf_subsystem *s;
	struct nvmf_port *port;

	nvmf_req_set_status(req, 0, 0);
	if (req->data_len < sizeof(data)) {
		nvmf_req_set_status(req, MIMO_NVME_SCT_GENERIC,
				    MIMO_NVME_SC_DATA_SGL_LENGTH_INVALID);
		goto out;
	}
	if (cmd->recfmt != 0) {
		nvmf_req_set_status(req, MIMO_NVME_SCT_COMMAND_SPECIFIC,
				    MIMO_NVMF_SC_CONNECT_INCOMPATIBLE);
		goto out;
	}
	memcpy(&data, req->data, sizeof(data));
	if (strnlen(data.subnqn, sizeof(data.subnqn)) > MIMO_NVMF_NQN_MAX_LEN) {
		connect_invalid(req, true, CONNECT_IPO_SUBNQN);
		goto out;
	}
	if (strnlen(data.hostnqn, sizeof(data.hostnqn)) > MIMO_NVMF_NQN_MAX_LEN) {
		connect_invalid(req, true, CONNECT_IPO_HOSTNQN);
		goto out;
	}
	s = mimo_nvmf_tgt_find_subsystem(tgt, data.subnqn);
	port = nvmf_qpair_port(req->qp);
	/* Unknown, stopped, or not listening where the host came in: all look alike to it. */
	if (s == NULL || s->state != NVMF_SUBSYS_ACTIVE || port == NULL ||
	    !nvmf_subsystem_listens_on(s, port)) {
		MIMO_WARN(COMP, "connect from %s:%s to %s: no such subsystem on this port",
			  req->qp->traddr, req->qp->trsvcid, data.subnqn);
		connect_invalid(req, true, CONNECT_IPO_SUBNQN);
		goto out;
	}
	if (!mimo_nvmf_subsystem_host_allowed(s, data.hostnqn)) {
		MIMO_WARN(COMP, "%s: host %s is not allowed", s->nqn, data.hostnqn);
		nvmf_req_set_status(req, MIMO_NVME_SCT_COMMAND_SPECIFIC,
				    MIMO_NVMF_SC_CONNECT_INVALID_HOST);
		goto out;
	}
	if (!secure_channel_ok(req, s, &data))
		goto out;
	if (cmd->qid == 0)
		connect_admin(req, s, &data);
	else
		connect_io(req, s, &data);
out:
	nvmf_req_complete(req);
}

/* --- in-band authentication ---------------------------------------------------------------- */

static struct mimo_ratelimit g_unlisted_rl;

/* The queue's ID as the controller knows it (qp->qid belongs to the queue's reactor). */
static uint16_t qid_of(const struct nvmf_ctrlr *c, const struct nvmf_qpair *qp)
{
	for (uint32_t q = 1; qp != c->admin_qp && q < c->max_qpairs; q++) {
		if (c->io_qps[q] == qp)
			return (uint16_t)q;
	}
	return 0;
}

static int auth_get_key(void *arg, bool ctrlr, struct mimo_key_material *out)
{
	struct nvmf_ctrlr *c = arg;
	struct nvmf_host *h = nvmf_subsystem_find_host(c->subsys, c->hostnqn);
	struct mimo_key *k = h == NULL ? NULL : ctrlr ? h->dhchap_ctrlr_key : h->dhchap_key;

	return k != NULL ? mimo_key_get_material(k, out) : -ENOKEY;
}

/* Counted always; logged once per host until it authenticates again, so a host that retries
 * with a wrong key does not flood the log (the count shows in nvmf_get_subsystems). */
static void auth_failed(struct nvmf_ctrlr *c, const struct nvmf_qpair *qp, const char *why)
{
	struct nvmf_host *h = nvmf_subsystem_find_host(c->subsys, c->hostnqn);
	uint64_t suppressed = 0;

	if (h != NULL) {
		h->auth_failures++;
		if (h->failure_logged)
			return;
		h->failure_logged = true;
	} else if (!mimo_ratelimit_allow(&g_unlisted_rl, 1000000000LL, &suppressed)) {
		return;
	}
	MIMO_WARN(COMP, "%s: host %s (%s:%s) failed to authenticate queue %u: %s%s", c->subsys->nqn,
		  c->hostnqn, c->traddr, c->trsvcid, qid_of(c, qp), why,
		  h != NULL ? "; its further failures are counted, not logged, until it "
			      "authenticates"
			    : "");
}

static void auth_succeeded(struct nvmf_ctrlr *c, const struct nvmf_qpair *qp, bool again)
{
	struct nvmf_host *h = nvmf_subsystem_find_host(c->subsys, c->hostnqn);

	if (h != NULL)
		h->failure_logged = false;
	if (qp == c->admin_qp && !c->announced)
		announce(c, qp->auth);
	else
		MIMO_DEBUG(COMP, "%s: host %s %sauthenticated queue %u (%s/%s)", c->subsys->nqn,
			   c->hostnqn, again ? "re-" : "", qid_of(c, qp),
			   dhchap_hash_name(qp->auth->digest),
			   dhchap_dhgroup_name(qp->auth->dhgroup));
}

/* Authentication Send / Receive, on any queue of the controller. */
void nvmf_ctrlr_process_auth(struct nvmf_req *req)
{
	const struct mimo_nvmf_auth_cmd *cmd = (const void *)&req->cmd;
	struct nvmf_qpair *qp = req->qp;
	struct nvmf_ctrlr *c = qp->ctrlr;
	struct mimo_nvmf_tgt *tgt = c->subsys->tgt;
	struct nvmf_auth_params p = {
		.hostnqn = c->hostnqn,
		.subnqn = c->subsys->nqn,
		.digests = tgt->dhchap_digests,
		.dhgroups = tgt->dhchap_dhgroups,
		.get_key = auth_get_key,
		.arg = c,
		.seqnum = &tgt->auth_seqnum,
	};
	enum nvmf_auth_event ev;
	bool again;

	nvmf_req_set_status(req, 0, 0);
	if (qp == c->admin_qp)
		c->last_keep_alive = mimo_get_ticks();
	if (cmd->secp != MIMO_NVMF_AUTH_SECP || cmd->spsp0 != MIMO_NVMF_AUTH_SPSP0 ||
	    cmd->spsp1 != MIMO_NVMF_AUTH_SPSP1 || cmd->tl_al == 0 || cmd->tl_al != req->data_len) {
		nvmf_req_set_status(req, MIMO_NVME_SCT_GENERIC, MIMO_NVME_SC_INVALID_FIELD);
		goto out;
	}
	if (qp->auth == NULL) {
		/* The host authenticates though the target does not ask it to (it wants the
		 * controller to prove itself): the same transaction, nothing required. */
		qp->auth = malloc(sizeof(*qp->auth));
		if (qp->auth == NULL) {
			nvmf_req_set_status(req, MIMO_NVME_SCT_GENERIC,
					    MIMO_NVME_SC_INTERNAL_DEVICE_ERROR);
			goto out;
		}
		nvmf_auth_init(qp->auth);
	}
	again = qp->auth->authenticated;
	if (cmd->fctype == MIMO_NVMF_FCTYPE_AUTH_RECV) {
		uint32_t len;

		/* The whole buffer goes back, zero past the message, as the Linux target does. */
		memset(req->data, 0, req->data_len);
		ev = nvmf_auth_recv(qp->auth, &p, req->data, req->data_len, &len);
		if (len == 0)
			nvmf_req_set_status(req, MIMO_NVME_SCT_GENERIC, MIMO_NVME_SC_INVALID_FIELD);
	} else {
		ev = nvmf_auth_send(qp->auth, &p, req->data, req->data_len);
	}
	req->auth_event = (uint8_t)ev;
	if (ev == NVMF_AUTH_EV_DONE)
		auth_succeeded(c, qp, again);
	else if (ev == NVMF_AUTH_EV_FAILED)
		auth_failed(c, qp, qp->auth->why != NULL ? qp->auth->why : "failed");
out:
	nvmf_req_complete(req);
}

/* --- properties ---------------------------------------------------------------------------- */

static void property_get(struct nvmf_req *req, struct nvmf_ctrlr *c)
{
	const struct mimo_nvmf_prop_cmd *cmd = (const void *)&req->cmd;
	bool eight = (cmd->attrib & 7) == 1;
	uint64_t v;

	switch (cmd->ofst) {
	case MIMO_NVME_REG_CAP:
		v = nvmf_ctrlr_cap(c);
		if (!eight) {
			nvmf_req_set_status(req, 0, MIMO_NVME_SC_INVALID_FIELD);
			return;
		}
		break;
	case MIMO_NVME_REG_VS:
		v = 0x00010300; /* 1.3 */
		break;
	case MIMO_NVME_REG_CC:
		v = c->cc;
		break;
	case MIMO_NVME_REG_CSTS:
		v = c->csts;
		break;
	default:
		nvmf_req_set_status(req, 0, MIMO_NVME_SC_INVALID_FIELD);
		return;
	}
	if (eight && cmd->ofst != MIMO_NVME_REG_CAP) {
		nvmf_req_set_status(req, 0, MIMO_NVME_SC_INVALID_FIELD);
		return;
	}
	req->cpl.cdw0 = (uint32_t)v;
	req->cpl.cdw1 = (uint32_t)(v >> 32);
}

static void property_set(struct nvmf_req *req, struct nvmf_ctrlr *c)
{
	const struct mimo_nvmf_prop_cmd *cmd = (const void *)&req->cmd;
	uint32_t cc = (uint32_t)cmd->value, shn;

	if (cmd->ofst != MIMO_NVME_REG_CC || (cmd->attrib & 7) != 0) {
		nvmf_req_set_status(req, 0, MIMO_NVME_SC_INVALID_FIELD);
		return;
	}
	shn = (cc >> MIMO_NVME_CC_SHN_SHIFT) & 3;
	if ((cc & MIMO_NVME_CC_EN) && !(c->cc & MIMO_NVME_CC_EN)) {
		c->csts |= MIMO_NVME_CSTS_RDY;
	} else if (!(cc & MIMO_NVME_CC_EN) && (c->cc & MIMO_NVME_CC_EN)) {
		/* A reset: the host reconnects its I/O queues afterwards. */
		c->csts &= ~(MIMO_NVME_CSTS_RDY | (3u << MIMO_NVME_CSTS_SHST_SHIFT));
		for (uint32_t q = 1; q < c->max_qpairs; q++) {
			if (c->io_qps[q] != NULL)
				nvmf_qpair_disconnect(c->io_qps[q]);
		}
	}
	if (shn != 0) {
		/* Nothing is cached here: the shutdown is complete at once. */
		c->csts &= ~(3u << MIMO_NVME_CSTS_SHST_SHIFT);
		c->csts |= MIMO_NVME_SHST_COMPLETE << MIMO_NVME_CSTS_SHST_SHIFT;
	} else {
		c->csts &= ~(3u << MIMO_NVME_CSTS_SHST_SHIFT);
	}
	c->cc = cc;
}

/* Property Get/Set on the admin queue (Connect and Disconnect never come here). */
void nvmf_ctrlr_process_fabrics(struct nvmf_req *req)
{
	const struct mimo_nvmf_prop_cmd *cmd = (const void *)&req->cmd;
	struct nvmf_ctrlr *c = req->qp->ctrlr;

	nvmf_req_set_status(req, 0, 0);
	if (cmd->fctype == MIMO_NVMF_FCTYPE_PROPERTY_GET)
		property_get(req, c);
	else if (cmd->fctype == MIMO_NVMF_FCTYPE_PROPERTY_SET)
		property_set(req, c);
	else
		nvmf_req_set_status(req, 0, MIMO_NVME_SC_INVALID_OPCODE);
	nvmf_req_complete(req);
}

/* --- admin commands ------------------------------------------------------------------------ */

static void set_kato(struct nvmf_ctrlr *c, uint32_t kato_ms)
{
	keep_alive_arm(c, kato_ms);
}

void nvmf_ctrlr_process_admin(struct nvmf_req *req)
{
	struct nvmf_ctrlr *c = req->qp->ctrlr;
	bool disc = c->subsys->subtype == MIMO_NVMF_SUBTYPE_DISCOVERY;
	uint8_t opc = req->cmd.opc;

	nvmf_req_set_status(req, 0, 0);
	c->last_keep_alive = mimo_get_ticks();
	switch (opc) {
	case MIMO_NVME_OPC_IDENTIFY:
		nvmf_admin_identify(req);
		break;
	case MIMO_NVME_OPC_GET_LOG_PAGE:
		nvmf_admin_get_log_page(req);
		break;
	case MIMO_NVME_OPC_GET_FEATURES:
		nvmf_admin_get_features(req);
		break;
	case MIMO_NVME_OPC_SET_FEATURES:
		nvmf_admin_set_features(req);
		if (req->cpl.status == 0 &&
		    (req->cmd.cdw10 & 0xff) == MIMO_NVME_FEAT_KEEP_ALIVE_TIMER)
			set_kato(c, req->cmd.cdw11);
		break;
	case MIMO_NVME_OPC_KEEP_ALIVE:
		break;
	case MIMO_NVME_OPC_ASYNC_EVENT_REQ:
		async_event_request(req);
		return;
	case MIMO_NVME_OPC_ABORT:
		/* Commands here finish in microseconds; none is ever found to abort. */
		if (disc) {
			nvmf_req_set_status(req, 0, MIMO_NVME_SC_INVALID_OPCODE);
			break;
		}
		req->cpl.cdw0 = 1;
		break;
	default:
		nvmf_req_set_status(req, 0, MIMO_NVME_SC_INVALID_OPCODE);
		break;
	}
	if (req->cpl.status != 0)
		nvmf_ctrlr_log_error(c, req);
	nvmf_req_complete(req);
}

/* --- teardown ------------------------------------------------------------------------------ */

static void ctrlr_free(struct nvmf_ctrlr *c)
{
	struct mimo_nvmf_subsystem *s = c->subsys;

	MIMO_INFO(COMP, "%s: controller %u of %s is gone", s->nqn, c->cntlid, c->hostnqn);
	if (c->announced)
		nvmf_ctrlr_emit(c, "nvmf_host_disconnected");
	mimo_poller_unregister(&c->ka_poller);
	TAILQ_REMOVE(&s->ctrlrs, c, link);
	nvmf_stats_ctrlr(-1);
	free(c->io_qps);
	free(c->ana_state);
	free(c->visible_ns);
	free(c);
	nvmf_subsystem_ctrlr_gone(s);
}

void nvmf_ctrlr_disconnect(struct nvmf_ctrlr *c)
{
	if (c->disconnecting)
		return;
	c->disconnecting = true;
	mimo_poller_unregister(&c->ka_poller);
	if (c->admin_qp != NULL)
		nvmf_qpair_disconnect(c->admin_qp);
	for (uint32_t q = 1; q < c->max_qpairs; q++) {
		if (c->io_qps[q] != NULL)
			nvmf_qpair_disconnect(c->io_qps[q]);
	}
}

void nvmf_ctrlr_qpair_gone(struct nvmf_ctrlr *c, struct nvmf_qpair *qp)
{
	if (qp->auth != NULL) {
		/* Closed before it authenticated (timed out, or the host gave up): a failure,
		 * unless one was already counted for it. */
		if (qp->auth->required && !qp->auth->authenticated &&
		    qp->auth->state != NVMF_AUTH_FAILED)
			auth_failed(
				c, qp,
				qp->auth->state == NVMF_AUTH_NEGOTIATE
					? "the queue closed before it authenticated (no "
					  "authentication started)"
					: "the queue closed before its authentication finished");
		nvmf_auth_fini(qp->auth);
		free(qp->auth);
		qp->auth = NULL;
	}
	if (qp == c->admin_qp) {
		/* The admin queue is the controller: the rest follows it. */
		c->admin_qp = NULL;
		while (c->num_aer != 0) {
			struct nvmf_req *req = c->aer[--c->num_aer];

			nvmf_req_set_status(req, 0, MIMO_NVME_SC_ABORTED_SQ_DELETION);
			nvmf_req_complete(req);
		}
		nvmf_ctrlr_disconnect(c);
	} else if (qp->qid < c->max_qpairs && c->io_qps[qp->qid] == qp) {
		c->io_qps[qp->qid] = NULL;
		c->num_io_qps--;
	}
	nvmf_qpair_ctrlr_released(qp);
	if (c->admin_qp == NULL && c->num_io_qps == 0)
		ctrlr_free(c);
}
