/*
 * SPDK's read-only views of the target: nvmf_subsystem_get_listeners (a subsystem's listeners
 * and, with ANA reporting, each one's state per ANA group) and nvmf_get_stats (each reactor's
 * queue pair and command counters, as SPDK shows its poll groups). And SPDK's mDNS pull
 * registration methods, which mimo refuses: it has no mDNS responder.
 */
#include <errno.h>
#include <stdio.h>

#include "nvmf_rpc_internal.h"
#include "ticks.h"
#include "transport.h"

struct listeners_params {
	char *nqn;
	char *tgt_name;
};

static const struct mimo_json_decoder listeners_decoders[] = {
	{ "nqn", offsetof(struct listeners_params, nqn), mimo_json_decode_string, false },
	{ "tgt_name", offsetof(struct listeners_params, tgt_name), mimo_json_decode_string, true },
};

static json_t *listener_json(const struct mimo_nvmf_subsystem *s,
			     const struct nvmf_subsys_listener *l)
{
	const struct nvmf_port *p = l->port;
	json_t *o =
		json_pack("{s:{s:s, s:s, s:s, s:s}}", "address", "trtype", p->addr.trtype, "adrfam",
			  p->addr.adrfam, "traddr", p->addr.traddr, "trsvcid", p->addr.trsvcid);

	/* SPDK lists every ANA group a namespace may be in (1 to max_namespaces). */
	if (s->ana_reporting) {
		json_t *a = json_array();

		for (uint32_t g = 1; g <= s->max_nsid; g++)
			json_array_append_new(
				a, json_pack("{s:I, s:s}", "ana_group", (json_int_t)g, "ana_state",
					     nvmf_ana_state_name(l->ana_state[g - 1])));
		json_object_set_new(o, "ana_states", a);
	}
	return o;
}

static void rpc_nvmf_subsystem_get_listeners(struct mimo_jsonrpc_request *req, const json_t *params)
{
	struct listeners_params p = { 0 };
	struct mimo_nvmf_subsystem *s;

	if (!mimo_rpc_decode(req, params, listeners_decoders, MIMO_COUNTOF(listeners_decoders), &p))
		return;
	s = nvmf_rpc_get_subsys(req, p.tgt_name, p.nqn);
	if (s != NULL) {
		const struct nvmf_subsys_listener *l;
		json_t *a = json_array();

		TAILQ_FOREACH(l, &s->listeners, link)
		json_array_append_new(a, listener_json(s, l));
		mimo_jsonrpc_send_result(req, a);
	}
	mimo_json_decode_free(listeners_decoders, MIMO_COUNTOF(listeners_decoders), &p);
}

struct tgt_params {
	char *tgt_name;
};

static const struct mimo_json_decoder tgt_decoders[] = {
	{ "tgt_name", offsetof(struct tgt_params, tgt_name), mimo_json_decode_string, true },
};

#define LOAD(x) atomic_load_explicit(&(x), memory_order_relaxed)

/* One reactor's counters, named as SPDK names its poll group threads. */
static json_t *poll_group_json(struct mimo_nvmf_tgt *tgt, uint32_t idx)
{
	struct nvmf_reactor_stat *st = &tgt->stat[idx];
	const struct nvmf_transport *tt;
	json_t *trs = json_array();
	char name[32];

	snprintf(name, sizeof(name), "nvmf_tgt_poll_group_%03u", idx);
	TAILQ_FOREACH(tt, &tgt->transports, link)
	json_array_append_new(trs, json_pack("{s:s}", "trtype", tt->ops->name));
	return json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o}", "name", name,
			 "admin_qpairs", (json_int_t)LOAD(st->admin_qpairs), "io_qpairs",
			 (json_int_t)LOAD(st->io_qpairs), "current_admin_qpairs",
			 (json_int_t)LOAD(st->current_admin_qpairs), "current_io_qpairs",
			 (json_int_t)LOAD(st->current_io_qpairs), "current_unassociated_qpairs",
			 (json_int_t)LOAD(st->current_unassociated_qpairs), "pending_bdev_io",
			 (json_int_t)LOAD(st->pending_bdev_io), "completed_nvme_io",
			 (json_int_t)LOAD(st->completed_nvme_io), "transports", trs);
}

static void rpc_nvmf_get_stats(struct mimo_jsonrpc_request *req, const json_t *params)
{
	struct tgt_params p = { 0 };
	struct mimo_nvmf_tgt *tgt;

	if (!mimo_rpc_decode(req, params, tgt_decoders, MIMO_COUNTOF(tgt_decoders), &p))
		return;
	tgt = nvmf_rpc_get_tgt(req, p.tgt_name);
	if (tgt != NULL) {
		json_t *groups = json_array();

		/* Every reactor that serves the target's queue pairs has a poll group. */
		for (uint32_t i = 0; i < NVMF_MAX_REACTORS; i++) {
			if (tgt->opts.reactor_mask & (1ull << i))
				json_array_append_new(groups, poll_group_json(tgt, i));
		}
		mimo_jsonrpc_send_result(req, json_pack("{s:I, s:o}", "tick_rate",
							(json_int_t)mimo_get_ticks_hz(),
							"poll_groups", groups));
	}
	mimo_json_decode_free(tgt_decoders, MIMO_COUNTOF(tgt_decoders), &p);
}

/* SPDK publishes a pull registration request for its discovery controller through Avahi;
 * mimo has no mDNS responder, so a host finds its discovery controller by address. */
static void rpc_nvmf_mdns_prr(struct mimo_jsonrpc_request *req, const json_t *params)
{
	struct tgt_params p = { 0 };

	if (!mimo_rpc_decode(req, params, tgt_decoders, MIMO_COUNTOF(tgt_decoders), &p))
		return;
	if (nvmf_rpc_get_tgt(req, p.tgt_name) != NULL)
		mimo_jsonrpc_send_error(req, -EOPNOTSUPP,
					"mDNS pull registration requests are not supported: mimo "
					"has no mDNS responder; hosts reach the discovery "
					"controller at its listen address (nvme discover -a)");
	mimo_json_decode_free(tgt_decoders, MIMO_COUNTOF(tgt_decoders), &p);
}

static const struct mimo_rpc_method g_rpcs[] = {
	{ "nvmf_subsystem_get_listeners", rpc_nvmf_subsystem_get_listeners, MIMO_RPC_RUNTIME },
	{ "nvmf_get_stats", rpc_nvmf_get_stats, MIMO_RPC_RUNTIME },
	{ "nvmf_publish_mdns_prr", rpc_nvmf_mdns_prr, MIMO_RPC_RUNTIME },
	{ "nvmf_stop_mdns_prr", rpc_nvmf_mdns_prr, MIMO_RPC_RUNTIME },
};

void nvmf_info_rpc_register(void)
{
	mimo_rpc_register_methods(g_rpcs, MIMO_COUNTOF(g_rpcs));
}
