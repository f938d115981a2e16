/* The discovery log page: one record per (subsystem the host may use, port it listens on),
 * then one per referral (nvmf_discovery_add_referral: another discovery service, or a
 * subsystem elsewhere, that every host is pointed to). */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "transport.h"

static void fill_entry(struct mimo_nvmf_discovery_entry *e, const struct mimo_nvmf_subsystem *s,
		       const struct nvmf_port *port)
{
	memset(e, 0, sizeof(*e));
	e->trtype = port->tt->ops->trtype;
	e->adrfam = strcasecmp(port->addr.adrfam, "IPv6") == 0	 ? MIMO_NVMF_ADRFAM_IPV6
		    : strcasecmp(port->addr.adrfam, "loop") == 0 ? MIMO_NVMF_ADRFAM_LOOP
								 : MIMO_NVMF_ADRFAM_IPV4;
	e->subtype = s->subtype;
	/* TREQ: secure channel required (01b) on a secure port, else not specified; SQ flow
	 * control may be disabled (bit 2). */
	e->treq = (uint8_t)((1u << 2) | (port->secure ? 1u : 0u));
	e->portid = port->portid;
	e->cntlid = 0xffff; /* dynamic controller model */
	e->asqsz = (uint16_t)port->tt->opts.max_aq_depth;
	/* Address fields are space-padded ASCII in NVMe over Fabrics. */
	memset(e->trsvcid, ' ', sizeof(e->trsvcid));
	memcpy(e->trsvcid, port->addr.trsvcid, strnlen(port->addr.trsvcid, sizeof(e->trsvcid)));
	memset(e->traddr, ' ', sizeof(e->traddr));
	memcpy(e->traddr, port->addr.traddr, strnlen(port->addr.traddr, sizeof(e->traddr)));
	snprintf(e->subnqn, sizeof(e->subnqn), "%s", s->nqn);
	/* TSAS: its layout is the transport's (TCP: the security type). */
	if (port->tt->ops->listener_discover != NULL)
		port->tt->ops->listener_discover(port, e);
}

/* A referral's entry, as SPDK makes it: the discovery subtype when it names a discovery
 * subsystem, TREQ saying whether a secure channel is required (01b) or not (10b), no port ID,
 * the dynamic controller model. */
static void fill_referral(struct mimo_nvmf_discovery_entry *e, const struct nvmf_referral *r)
{
	memset(e, 0, sizeof(*e));
	e->trtype = MIMO_NVMF_TRTYPE_TCP;
	e->adrfam = strcasecmp(r->addr.adrfam, "IPv6") == 0 ? MIMO_NVMF_ADRFAM_IPV6
							    : MIMO_NVMF_ADRFAM_IPV4;
	e->subtype = strcmp(r->subnqn, MIMO_NVMF_DISCOVERY_NQN) == 0 ? MIMO_NVMF_SUBTYPE_DISCOVERY
								     : MIMO_NVMF_SUBTYPE_NVME;
	e->treq = r->secure_channel ? 1 : 2;
	e->cntlid = 0xffff;
	memset(e->trsvcid, ' ', sizeof(e->trsvcid));
	memcpy(e->trsvcid, r->addr.trsvcid, strnlen(r->addr.trsvcid, sizeof(e->trsvcid)));
	memset(e->traddr, ' ', sizeof(e->traddr));
	memcpy(e->traddr, r->addr.traddr, strnlen(r->addr.traddr, sizeof(e->traddr)));
	snprintf(e->subnqn, sizeof(e->subnqn), "%s", r->subnqn);
}

void *nvmf_discovery_log(struct mimo_nvmf_tgt *tgt, const char *hostnqn, size_t *len)
{
	struct mimo_nvmf_discovery_log *log;
	const struct mimo_nvmf_subsystem *s;
	const struct nvmf_referral *r;
	uint64_t n = 0, i = 0;

	TAILQ_FOREACH(s, &tgt->subsystems, link)
	{
		const struct nvmf_subsys_listener *l;

		if (s->subtype != MIMO_NVMF_SUBTYPE_NVME || s->state == NVMF_SUBSYS_DELETING ||
		    !mimo_nvmf_subsystem_host_allowed(s, hostnqn))
			continue;
		TAILQ_FOREACH(l, &s->listeners, link)
		n++;
	}
	TAILQ_FOREACH(r, &tgt->referrals, link)
	n++;
	log = calloc(1, sizeof(*log) + n * sizeof(log->entries[0]));
	if (log == NULL)
		return NULL;
	log->genctr = tgt->discovery_genctr;
	log->numrec = n;
	TAILQ_FOREACH(s, &tgt->subsystems, link)
	{
		const struct nvmf_subsys_listener *l;

		if (s->subtype != MIMO_NVMF_SUBTYPE_NVME || s->state == NVMF_SUBSYS_DELETING ||
		    !mimo_nvmf_subsystem_host_allowed(s, hostnqn))
			continue;
		TAILQ_FOREACH(l, &s->listeners, link)
		fill_entry(&log->entries[i++], s, l->port);
	}
	TAILQ_FOREACH(r, &tgt->referrals, link)
	fill_referral(&log->entries[i++], r);
	*len = sizeof(*log) + n * sizeof(log->entries[0]);
	return log;
}
