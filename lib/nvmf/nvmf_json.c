/* The target as JSON: nvmf_get_subsystems, nvmf_subsystem_get_controllers,
 * nvmf_get_transports, save_config; and the events the target emits. */
#include <stdio.h>
#include <string.h>

#include "compiler.h"
#include "nvmf_auth.h"
#include "keyring.h"
#include "mimo/events.h"
#include "sock_opts.h"
#include "transport.h"
#include "uuid.h"

void nvmf_emit(const char *type, json_t *payload, const char *ctx)
{
	mimo_event_emit(type, ctx, payload); /* takes the reference */
}

MIMO_EXPORT void mimo_register_nvmf(void)
{
	mimo_event_register_type("nvmf_subsystem_created");
	mimo_event_register_type("nvmf_subsystem_deleted");
	mimo_event_register_type("nvmf_listener_added");
	mimo_event_register_type("nvmf_host_connected");
	mimo_event_register_type("nvmf_host_disconnected");
	nvmf_rpc_register();
	nvmf_tgt_rpc_register();
}

/* SPDK prints NGUID and EUI-64 as upper-case hex without separators. */
static json_t *hex(const uint8_t *b, size_t n)
{
	char s[33];

	for (size_t i = 0; i < n; i++)
		snprintf(s + 2 * i, 3, "%02X", b[i]);
	return json_string(s);
}

static json_t *uuid_json(const uint8_t u[16])
{
	char s[MIMO_UUID_STR_LEN];

	mimo_uuid_format(u, s);
	return json_string(s);
}

static json_t *listen_addr_json(const struct nvmf_port *p)
{
	return json_pack("{s:s, s:s, s:s, s:s}", "trtype", p->addr.trtype, "adrfam", p->addr.adrfam,
			 "traddr", p->addr.traddr, "trsvcid", p->addr.trsvcid);
}

/* A listener in listings: its address, and secure_channel when it is TLS-only. */
static json_t *listener_json(const struct nvmf_port *p)
{
	json_t *o = listen_addr_json(p);

	if (p->secure)
		json_object_set_new(o, "secure_channel", json_true());
	return o;
}

static json_t *ns_json(const struct nvmf_ns *ns, bool config)
{
	json_t *o =
		json_pack("{s:i, s:s}", "nsid", (json_int_t)ns->nsid, "bdev_name", ns->bdev_name);

	if (!config)
		json_object_set_new(o, "name", json_string(ns->bdev_name));
	if (!config || ns->opt_nguid)
		json_object_set_new(o, "nguid", hex(ns->nguid, 16));
	if (!config || ns->opt_uuid)
		json_object_set_new(o, "uuid", uuid_json(ns->uuid));
	if (ns->has_eui64)
		json_object_set_new(o, "eui64", hex(ns->eui64, 8));
	if (ns->subsys->ana_reporting)
		json_object_set_new(o, "anagrpid", json_integer(atomic_load(&ns->anagrpid)));
	if (!ns->auto_visible) {
		json_object_set_new(o, "no_auto_visible", json_true());
		/* The configuration replays nvmf_ns_add_host for each; a listing shows them. */
		if (!config) {
			json_t *hosts = json_array();
			const struct nvmf_host *h;

			TAILQ_FOREACH(h, &ns->visible_hosts, link)
			json_array_append_new(hosts, json_string(h->nqn));
			json_object_set_new(o, "hosts", hosts);
		}
	}
	return o;
}

/* A host as nvmf_get_subsystems shows it (SPDK's {nqn, dhchap_key, dhchap_ctrlr_key}) and
 * nvmf_subsystem_add_host replays it; the failure count only in listings. */
static json_t *host_json(const struct nvmf_host *h, bool config)
{
	json_t *o = json_pack("{s:s}", "nqn", h->nqn);

	if (h->dhchap_key != NULL)
		json_object_set_new(o, "dhchap_key", json_string(mimo_key_name(h->dhchap_key)));
	if (h->dhchap_ctrlr_key != NULL)
		json_object_set_new(o, "dhchap_ctrlr_key",
				    json_string(mimo_key_name(h->dhchap_ctrlr_key)));
	if (h->psk != NULL)
		json_object_set_new(o, "psk", json_string(mimo_key_name(h->psk)));
	if (!config && (h->dhchap_key != NULL || h->auth_failures != 0))
		json_object_set_new(o, "auth_failures", json_integer((json_int_t)h->auth_failures));
	return o;
}

static json_t *subsystem_json(const struct mimo_nvmf_subsystem *s)
{
	const struct nvmf_subsys_listener *l;
	const struct nvmf_host *h;
	json_t *o, *addrs = json_array(), *hosts = json_array();

	TAILQ_FOREACH(l, &s->listeners, link)
	json_array_append_new(addrs, listener_json(l->port));
	TAILQ_FOREACH(h, &s->hosts, link)
	json_array_append_new(hosts, host_json(h, false));
	o = json_pack("{s:s, s:s, s:o, s:b, s:o}", "nqn", s->nqn, "subtype",
		      s->subtype == MIMO_NVMF_SUBTYPE_DISCOVERY ? "Discovery" : "NVMe",
		      "listen_addresses", addrs, "allow_any_host", s->allow_any_host, "hosts",
		      hosts);
	if (s->subtype == MIMO_NVMF_SUBTYPE_NVME) {
		json_t *nss = json_array();

		for (uint32_t id = 1; id <= s->max_nsid; id++) {
			struct nvmf_ns *ns = nvmf_subsystem_get_ns(s, id);

			if (ns != NULL)
				json_array_append_new(nss, ns_json(ns, false));
		}
		json_object_set_new(o, "serial_number", json_string(s->sn));
		json_object_set_new(o, "model_number", json_string(s->mn));
		json_object_set_new(o, "max_namespaces", json_integer(s->max_nsid));
		json_object_set_new(o, "min_cntlid", json_integer(s->min_cntlid));
		json_object_set_new(o, "max_cntlid", json_integer(s->max_cntlid));
		json_object_set_new(o, "namespaces", nss);
	}
	return o;
}

MIMO_EXPORT json_t *mimo_nvmf_tgt_subsystems_json(struct mimo_nvmf_tgt *tgt, const char *nqn)
{
	const struct mimo_nvmf_subsystem *s;
	json_t *a = json_array();

	TAILQ_FOREACH(s, &tgt->subsystems, link)
	{
		if (s->state == NVMF_SUBSYS_DELETING)
			continue;
		if (nqn == NULL || strcmp(nqn, s->nqn) == 0)
			json_array_append_new(a, subsystem_json(s));
	}
	if (nqn != NULL && json_array_size(a) == 0) {
		json_decref(a);
		return NULL;
	}
	return a;
}

/* SPDK's "auth" object of a queue pair: {state, digest, dhgroup}. */
static json_t *auth_json(const struct nvmf_auth *a)
{
	const char *digest = dhchap_hash_name(a->digest), *group = dhchap_dhgroup_name(a->dhgroup);
	bool chosen = a->state != NVMF_AUTH_NEGOTIATE || a->authenticated;

	return json_pack("{s:s, s:s, s:s}", "state", nvmf_auth_state_name(a->state), "digest",
			 chosen && digest != NULL ? digest : "unknown", "dhgroup",
			 chosen && group != NULL ? group : "unknown");
}

MIMO_EXPORT json_t *mimo_nvmf_subsystem_controllers_json(struct mimo_nvmf_subsystem *s)
{
	const struct nvmf_ctrlr *c;
	json_t *a = json_array();

	TAILQ_FOREACH(c, &s->ctrlrs, link)
	{
		json_t *o =
			json_pack("{s:i, s:s, s:o, s:i, s:s, s:s}", "cntlid", c->cntlid, "hostnqn",
				  c->hostnqn, "hostid", uuid_json(c->hostid), "num_io_qpairs",
				  c->num_io_qps, "traddr", c->traddr, "trsvcid", c->trsvcid);

		/* The admin queue's authentication, as SPDK shows a queue pair's. */
		if (c->admin_qp != NULL && c->admin_qp->auth != NULL)
			json_object_set_new(o, "auth", auth_json(c->admin_qp->auth));
		json_array_append_new(a, o);
	}
	return a;
}

static json_t *qpair_json(const struct nvmf_ctrlr *c, const struct nvmf_qpair *qp, uint32_t qid)
{
	const struct nvmf_auth *a = qp->auth;
	char thread[32];
	json_t *o;

	/* The poll group serving it, named as nvmf_get_stats and SPDK name it: set when the
	 * connection arrived on its reactor and never changed, so readable from here. */
	snprintf(thread, sizeof(thread), "nvmf_tgt_poll_group_%03u", qp->group->reactor_index);
	o = json_pack("{s:i, s:i, s:s, s:s, s:s, s:{s:s, s:s}}", "cntlid", c->cntlid, "qid", qid,
		      "state",
		      a != NULL && a->required && !a->authenticated ? "authenticating" : "enabled",
		      "thread", thread, "hostnqn", c->hostnqn, "peer_address", "traddr", qp->traddr,
		      "trsvcid", qp->trsvcid);

	if (c->port != NULL)
		json_object_set_new(o, "listen_address", listen_addr_json(c->port));
	/* mimo's: the socket layer that really serves it (SPDK's has no such key). */
	if (qp->sock_impl != NULL)
		json_object_set_new(o, "sock_impl", json_string(qp->sock_impl));
	if (a != NULL)
		json_object_set_new(o, "auth", auth_json(a));
	return o;
}

/* On the target's reactor: what it knows of each queue (the rest is the queues' reactors'). */
MIMO_EXPORT json_t *mimo_nvmf_subsystem_qpairs_json(struct mimo_nvmf_subsystem *s)
{
	const struct nvmf_ctrlr *c;
	json_t *a = json_array();

	TAILQ_FOREACH(c, &s->ctrlrs, link)
	{
		if (c->admin_qp != NULL)
			json_array_append_new(a, qpair_json(c, c->admin_qp, 0));
		for (uint32_t q = 1; q < c->max_qpairs; q++) {
			if (c->io_qps[q] != NULL)
				json_array_append_new(a, qpair_json(c, c->io_qps[q], q));
		}
	}
	return a;
}

static json_t *transport_json(const struct nvmf_transport *tt, bool config)
{
	const struct mimo_nvmf_transport_opts *o = &tt->opts;
	json_t *j =
		json_pack("{s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:b}", "trtype", tt->ops->name,
			  "max_queue_depth", o->max_queue_depth, "max_io_qpairs_per_ctrlr",
			  o->max_qpairs_per_ctrlr - 1, "in_capsule_data_size",
			  o->in_capsule_data_size, "max_io_size", o->max_io_size, "io_unit_size",
			  o->io_unit_size, "max_aq_depth", o->max_aq_depth, "num_shared_buffers",
			  o->num_shared_buffers, "c2h_success", o->c2h_success);

	/* Shown and saved always, as SPDK does: its default differs from mimo's. */
	json_object_set_new(j, "zcopy", json_boolean(o->zcopy));
	/* SPDK's options mimo implements beyond the basics: shown always, saved when set. */
	if (!config || o->kas != 1)
		json_object_set_new(j, "kas", json_integer(o->kas));
	if (!config || o->min_kato_ms != 0)
		json_object_set_new(j, "min_kato", json_integer(o->min_kato_ms));
	if (!config || o->masked_oncs != 0)
		json_object_set_new(j, "masked_oncs", json_integer(o->masked_oncs));
	if (!config || o->sock_priority != 0)
		json_object_set_new(j, "sock_priority", json_integer(o->sock_priority));
	if (!config || o->acceptor_backlog != 512)
		json_object_set_new(j, "acceptor_backlog", json_integer(o->acceptor_backlog));
	if (o->buf_cache_size != UINT32_MAX)
		json_object_set_new(j, "buf_cache_size", json_integer(o->buf_cache_size));
	if (tt->ops->dump != NULL)
		tt->ops->dump(tt, j, config);
	return j;
}

MIMO_EXPORT json_t *mimo_nvmf_tgt_transports_json(struct mimo_nvmf_tgt *tgt)
{
	const struct nvmf_transport *tt;
	json_t *a = json_array();

	TAILQ_FOREACH(tt, &tgt->transports, link)
	json_array_append_new(a, transport_json(tt, false));
	return a;
}

static void add_call(json_t *config, const char *method, json_t *params)
{
	json_array_append_new(config, json_pack("{s:s, s:o}", "method", method, "params", params));
}

/* The transports an RPC can re-create (not loop: in-process only). False when there is none:
 * then nothing else is saved either (nothing could reach a subsystem). */
static bool transports_config(const struct mimo_nvmf_tgt *tgt, json_t *config)
{
	const struct nvmf_transport *tt;
	bool any = false;

	TAILQ_FOREACH(tt, &tgt->transports, link)
	{
		if (!tt->ops->in_config)
			continue;
		add_call(config, "nvmf_create_transport", transport_json(tt, true));
		any = true;
	}
	return any;
}

/* A listener's ANA states that are not the default (optimized), as the calls that set them:
 * one for every group when they are all the same, else one per group. SPDK's save_config
 * leaves them out (a restart makes every path optimized again); mimo keeps them. */
static void ana_config(json_t *config, const struct mimo_nvmf_subsystem *s,
		       const struct nvmf_subsys_listener *l)
{
	bool same = true;

	if (l->ana_state == NULL)
		return;
	for (uint32_t g = 1; g < s->max_nsid; g++)
		same = same && l->ana_state[g] == l->ana_state[0];
	for (uint32_t g = 1; g <= s->max_nsid; g++) {
		json_t *p;

		if (l->ana_state[g - 1] == MIMO_NVME_ANA_OPTIMIZED)
			continue;
		p = json_pack("{s:s, s:o, s:s}", "nqn", s->nqn, "listen_address",
			      listen_addr_json(l->port), "ana_state",
			      nvmf_ana_state_name(l->ana_state[g - 1]));
		if (!same)
			json_object_set_new(p, "anagrpid", json_integer(g));
		add_call(config, "nvmf_subsystem_listener_set_ana_state", p);
		if (same)
			return;
	}
}

MIMO_EXPORT json_t *mimo_nvmf_tgt_config_json(struct mimo_nvmf_tgt *tgt)
{
	json_t *config = json_array();
	const struct mimo_nvmf_subsystem *s;

	/* SPDK writes nvmf_set_config first; mimo only when it changes something, so that a
	 * default configuration stays what it was. */
	if (tgt->dhchap_digests != DHCHAP_ALL_DIGESTS ||
	    tgt->dhchap_dhgroups != DHCHAP_ALL_DHGROUPS) {
		json_t *d = json_array(), *g = json_array();

		for (uint8_t i = 0; i < 32; i++) {
			if ((tgt->dhchap_digests & (1u << i)) && dhchap_hash_name(i) != NULL)
				json_array_append_new(d, json_string(dhchap_hash_name(i)));
			if ((tgt->dhchap_dhgroups & (1u << i)) && dhchap_dhgroup_name(i) != NULL)
				json_array_append_new(g, json_string(dhchap_dhgroup_name(i)));
		}
		add_call(config, "nvmf_set_config",
			 json_pack("{s:o, s:o}", "dhchap_digests", d, "dhchap_dhgroups", g));
	}
	/* Start-up methods, as SPDK writes them, when they change something. */
	if (tgt->opts.max_subsystems != 1024)
		add_call(
			config, "nvmf_set_max_subsystems",
			json_pack("{s:I}", "max_subsystems", (json_int_t)tgt->opts.max_subsystems));
	if (tgt->crdt[0] != 0 || tgt->crdt[1] != 0 || tgt->crdt[2] != 0)
		add_call(config, "nvmf_set_crdt",
			 json_pack("{s:i, s:i, s:i}", "crdt1", tgt->crdt[0], "crdt2", tgt->crdt[1],
				   "crdt3", tgt->crdt[2]));
	if (!transports_config(tgt, config))
		return config;
	/* Referrals after the transports, as SPDK writes them. */
	{
		const struct nvmf_referral *r;

		TAILQ_FOREACH(r, &tgt->referrals, link)
		add_call(config, "nvmf_discovery_add_referral", nvmf_referral_json(r));
	}
	TAILQ_FOREACH(s, &tgt->subsystems, link)
	{
		const struct nvmf_subsys_listener *l;
		const struct nvmf_host *h;

		if (s->state == NVMF_SUBSYS_DELETING)
			continue;
		if (s->subtype == MIMO_NVMF_SUBTYPE_NVME) {
			json_t *p = json_pack("{s:s, s:b, s:s, s:s, s:i, s:i, s:i}", "nqn", s->nqn,
					      "allow_any_host", s->allow_any_host, "serial_number",
					      s->sn, "model_number", s->mn, "max_namespaces",
					      s->max_nsid, "min_cntlid", s->min_cntlid,
					      "max_cntlid", s->max_cntlid);

			if (s->dmrsl != 0)
				json_object_set_new(p, "dmrsl", json_integer(s->dmrsl));
			if (s->wzsl != 0)
				json_object_set_new(p, "wzsl", json_integer(s->wzsl));
			if (s->ana_reporting)
				json_object_set_new(p, "ana_reporting", json_true());
			add_call(config, "nvmf_create_subsystem", p);
		}
		TAILQ_FOREACH(h, &s->hosts, link)
		{
			json_t *p = host_json(h, true);

			json_object_set(p, "host", json_object_get(p, "nqn"));
			json_object_set_new(p, "nqn", json_string(s->nqn));
			add_call(config, "nvmf_subsystem_add_host", p);
		}
		for (uint32_t id = 1; id <= s->max_nsid; id++) {
			struct nvmf_ns *ns = nvmf_subsystem_get_ns(s, id);

			const struct nvmf_host *vh;

			if (ns == NULL)
				continue;
			add_call(config, "nvmf_subsystem_add_ns",
				 json_pack("{s:s, s:o}", "nqn", s->nqn, "namespace",
					   ns_json(ns, true)));
			TAILQ_FOREACH(vh, &ns->visible_hosts, link)
			add_call(config, "nvmf_ns_add_host",
				 json_pack("{s:s, s:i, s:s}", "nqn", s->nqn, "nsid",
					   (json_int_t)ns->nsid, "host", vh->nqn));
		}
		TAILQ_FOREACH(l, &s->listeners, link)
		{
			json_t *p;

			if (!l->port->tt->ops->in_config)
				continue;
			p = json_pack("{s:s, s:o}", "nqn", s->nqn, "listen_address",
				      listen_addr_json(l->port));
			if (l->port->secure)
				json_object_set_new(p, "secure_channel", json_true());
			/* When the listener named one, or when it followed a default that
			 * sock_set_default_impl (at run time, mimo's) has changed since: else the
			 * default decides, as saved. */
			if (l->port->sock_impl != MIMO_NVMF_SOCK_IMPL_DEFAULT)
				json_object_set_new(
					p, "sock_impl",
					json_string(l->port->sock_impl == MIMO_NVMF_SOCK_IMPL_URING
							    ? "uring"
							    : "posix"));
			else if (!l->port->secure &&
				 l->port->default_impl != (uint8_t)mimo_sock_get_default_impl())
				json_object_set_new(
					p, "sock_impl",
					json_string(mimo_sock_impl_name(
						(enum mimo_sock_impl)l->port->default_impl)));
			add_call(config, "nvmf_subsystem_add_listener", p);
			ana_config(config, s, l);
		}
	}
	return config;
}
