/*
 * SPDK's discovery referrals: nvmf_discovery_add_referral, nvmf_discovery_remove_referral,
 * nvmf_discovery_get_referrals. A referral is an entry of every host's discovery log page
 * (discovery.c) pointing to another discovery service (the default subnqn) or to a subsystem
 * elsewhere; adding or removing one is a discovery log change (genctr, notices). save_config
 * writes them after the transports, as SPDK does (nvmf_json.c).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "nvmf_rpc_internal.h"

#define INVALID MIMO_JSONRPC_ERROR_INVALID_PARAMS

struct referral_params {
	char *tgt_name;
	const json_t *address;
	bool secure_channel;
	char *subnqn;
};

#define RP struct referral_params
static const struct mimo_json_decoder add_decoders[] = {
	{ "tgt_name", offsetof(RP, tgt_name), mimo_json_decode_string, true },
	{ "address", offsetof(RP, address), mimo_json_decode_json, false },
	{ "secure_channel", offsetof(RP, secure_channel), mimo_json_decode_bool, true },
	{ "subnqn", offsetof(RP, subnqn), mimo_json_decode_string, true },
};

/* Removal names a referral by address and subnqn only, as SPDK's. */
static const struct mimo_json_decoder remove_decoders[] = {
	{ "tgt_name", offsetof(RP, tgt_name), mimo_json_decode_string, true },
	{ "address", offsetof(RP, address), mimo_json_decode_json, false },
	{ "subnqn", offsetof(RP, subnqn), mimo_json_decode_string, true },
};
#undef RP

static struct nvmf_referral *
find_referral(struct mimo_nvmf_tgt *tgt, const struct mimo_nvmf_listen_addr *a, const char *subnqn)
{
	struct nvmf_referral *r;

	TAILQ_FOREACH(r, &tgt->referrals, link)
	{
		if (strcasecmp(r->addr.adrfam, a->adrfam) == 0 &&
		    strcmp(r->addr.traddr, a->traddr) == 0 &&
		    strcmp(r->addr.trsvcid, a->trsvcid) == 0 && strcmp(r->subnqn, subnqn) == 0)
			return r;
	}
	return NULL;
}

/* The target, address and subsystem NQN a call names; answers errors itself. */
static struct mimo_nvmf_tgt *decode_referral(struct mimo_jsonrpc_request *req,
					     const struct referral_params *p,
					     struct mimo_nvmf_listen_addr *a, const char **subnqn)
{
	struct mimo_nvmf_tgt *tgt = nvmf_rpc_get_tgt(req, p->tgt_name);

	if (tgt == NULL)
		return NULL;
	/* SPDK requires the service ID of a TCP referral (no default port is assumed). */
	if (json_is_object(p->address) && json_object_get(p->address, "trsvcid") == NULL) {
		mimo_jsonrpc_send_error(req, MIMO_JSONRPC_ERROR_INTERNAL_ERROR,
					"Service ID is required.");
		return NULL;
	}
	if (!nvmf_rpc_decode_addr(req, p->address, a))
		return NULL;
	/* rpc.py's shortcut, and SPDK's default: the discovery subsystem. */
	*subnqn = p->subnqn == NULL || strcmp(p->subnqn, "discovery") == 0 ? MIMO_NVMF_DISCOVERY_NQN
									   : p->subnqn;
	if (!nvmf_nqn_is_valid(*subnqn)) {
		mimo_jsonrpc_send_error(req, INVALID, "Invalid subsystem NQN");
		return NULL;
	}
	return tgt;
}

static void rpc_nvmf_discovery_add_referral(struct mimo_jsonrpc_request *req, const json_t *params)
{
	struct referral_params p = { 0 };
	struct mimo_nvmf_listen_addr a;
	struct mimo_nvmf_tgt *tgt;
	struct nvmf_referral *r;
	const char *subnqn;

	if (!mimo_rpc_decode(req, params, add_decoders, MIMO_COUNTOF(add_decoders), &p))
		return;
	tgt = decode_referral(req, &p, &a, &subnqn);
	if (tgt == NULL)
		goto out;
	/* One that exists already: nothing to do, as SPDK. */
	if (find_referral(tgt, &a, subnqn) != NULL) {
		mimo_jsonrpc_send_bool(req, true);
		goto out;
	}
	r = calloc(1, sizeof(*r));
	if (r == NULL) {
		mimo_jsonrpc_send_errno(req, -ENOMEM);
		goto out;
	}
	r->addr = a;
	snprintf(r->subnqn, sizeof(r->subnqn), "%s", subnqn);
	r->secure_channel = p.secure_channel;
	TAILQ_INSERT_TAIL(&tgt->referrals, r, link);
	nvmf_tgt_discovery_changed(tgt);
	mimo_jsonrpc_send_bool(req, true);
out:
	mimo_json_decode_free(add_decoders, MIMO_COUNTOF(add_decoders), &p);
}

static void rpc_nvmf_discovery_remove_referral(struct mimo_jsonrpc_request *req,
					       const json_t *params)
{
	struct referral_params p = { 0 };
	struct mimo_nvmf_listen_addr a;
	struct mimo_nvmf_tgt *tgt;
	struct nvmf_referral *r;
	const char *subnqn;

	if (!mimo_rpc_decode(req, params, remove_decoders, MIMO_COUNTOF(remove_decoders), &p))
		return;
	tgt = decode_referral(req, &p, &a, &subnqn);
	if (tgt == NULL)
		goto out;
	r = find_referral(tgt, &a, subnqn);
	if (r == NULL) {
		mimo_jsonrpc_send_error(req, MIMO_JSONRPC_ERROR_INTERNAL_ERROR,
					"Unable to remove a referral: none to %s:%s for %s",
					a.traddr, a.trsvcid, subnqn);
		goto out;
	}
	TAILQ_REMOVE(&tgt->referrals, r, link);
	free(r);
	nvmf_tgt_discovery_changed(tgt);
	mimo_jsonrpc_send_bool(req, true);
out:
	mimo_json_decode_free(remove_decoders, MIMO_COUNTOF(remove_decoders), &p);
}

/* SPDK's shape, which save_config's nvmf_discovery_add_referral replays. */
json_t *nvmf_referral_json(const struct nvmf_referral *r)
{
	return json_pack("{s:{s:s, s:s, s:s, s:s}, s:b, s:s}", "address", "trtype", r->addr.trtype,
			 "adrfam", r->addr.adrfam, "traddr", r->addr.traddr, "trsvcid",
			 r->addr.trsvcid, "secure_channel", r->secure_channel, "subnqn", r->subnqn);
}

struct get_params {
	char *tgt_name;
};

static const struct mimo_json_decoder get_decoders[] = {
	{ "tgt_name", offsetof(struct get_params, tgt_name), mimo_json_decode_string, true },
};

static void rpc_nvmf_discovery_get_referrals(struct mimo_jsonrpc_request *req, const json_t *params)
{
	struct get_params p = { 0 };
	struct mimo_nvmf_tgt *tgt;

	if (!mimo_rpc_decode(req, params, get_decoders, MIMO_COUNTOF(get_decoders), &p))
		return;
	tgt = nvmf_rpc_get_tgt(req, p.tgt_name);
	if (tgt != NULL) {
		const struct nvmf_referral *r;
		json_t *a = json_array();

		TAILQ_FOREACH(r, &tgt->referrals, link)
		json_array_append_new(a, nvmf_referral_json(r));
		mimo_jsonrpc_send_result(req, a);
	}
	mimo_json_decode_free(get_decoders, MIMO_COUNTOF(get_decoders), &p);
}

static const struct mimo_rpc_method g_rpcs[] = {
	{ "nvmf_discovery_add_referral", rpc_nvmf_discovery_add_referral, MIMO_RPC_RUNTIME },
	{ "nvmf_discovery_remove_referral", rpc_nvmf_discovery_remove_referral, MIMO_RPC_RUNTIME },
	{ "nvmf_discovery_get_referrals", rpc_nvmf_discovery_get_referrals, MIMO_RPC_RUNTIME },
};

void nvmf_referral_rpc_register(void)
{
	mimo_rpc_register_methods(g_rpcs, MIMO_COUNTOF(g_rpcs));
}
