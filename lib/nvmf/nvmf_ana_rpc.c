/*
 * SPDK's Asymmetric Namespace Access methods: nvmf_subsystem_listener_set_ana_state (a path's
 * state for one ANA group or all) and nvmf_subsystem_set_ns_ana_group (the group a namespace
 * is in). The subsystem must have been created with ana_reporting; ana.c does the work.
 */
#include <errno.h>
#include <string.h>

#include "nvmf_rpc_internal.h"
#include "transport.h"

#define INVALID MIMO_JSONRPC_ERROR_INVALID_PARAMS

struct set_ana_state_params {
	char *nqn;
	char *tgt_name;
	const json_t *addr;
	char *ana_state;
	uint32_t anagrpid;
};

#define SP struct set_ana_state_params
static const struct mimo_json_decoder set_ana_state_decoders[] = {
	{ "nqn", offsetof(SP, nqn), mimo_json_decode_string, false },
	{ "tgt_name", offsetof(SP, tgt_name), mimo_json_decode_string, true },
	{ "listen_address", offsetof(SP, addr), mimo_json_decode_json, false },
	{ "ana_state", offsetof(SP, ana_state), mimo_json_decode_string, false },
	{ "anagrpid", offsetof(SP, anagrpid), mimo_json_decode_uint32, true },
};
#undef SP

static void rpc_nvmf_subsystem_listener_set_ana_state(struct mimo_jsonrpc_request *req,
						      const json_t *params)
{
	struct set_ana_state_params p = { 0 };
	struct mimo_nvmf_listen_addr a;
	struct mimo_nvmf_subsystem *s;
	struct nvmf_transport *tt;
	uint8_t state;
	int rc;

	if (!mimo_rpc_decode(req, params, set_ana_state_decoders,
			     MIMO_COUNTOF(set_ana_state_decoders), &p))
		return;
	s = nvmf_rpc_get_subsys(req, p.tgt_name, p.nqn);
	if (s == NULL || !nvmf_rpc_decode_addr(req, p.addr, &a))
		goto out;
	state = nvmf_ana_state_parse(p.ana_state);
	if (state == 0) {
		mimo_jsonrpc_send_error(req, INVALID,
					"ana_state '%s': optimized, non_optimized or inaccessible",
					p.ana_state);
		goto out;
	}
	if (!s->ana_reporting) {
		mimo_jsonrpc_send_error(req, INVALID,
					"%s: ANA reporting is disabled (nvmf_create_subsystem "
					"--ana-reporting)",
					s->nqn);
		goto out;
	}
	if (p.anagrpid > s->max_nsid) {
		mimo_jsonrpc_send_error(req, INVALID,
					"anagrpid %u: ANA groups are 1 to %u (max_namespaces)",
					p.anagrpid, s->max_nsid);
		goto out;
	}
	tt = nvmf_tgt_find_transport(s->tgt, a.trtype);
	rc = nvmf_subsystem_set_ana_state(s, tt != NULL ? nvmf_port_find(tt, &a) : NULL, state,
					  p.anagrpid);
	if (rc == -ENOENT)
		mimo_jsonrpc_send_error(req, INVALID, "%s has no listener %s:%s", s->nqn, a.traddr,
					a.trsvcid);
	else if (rc != 0)
		mimo_jsonrpc_send_errno(req, rc);
	else
		mimo_jsonrpc_send_bool(req, true);
out:
	mimo_json_decode_free(set_ana_state_decoders, MIMO_COUNTOF(set_ana_state_decoders), &p);
}

struct set_ns_ana_group_params {
	char *nqn;
	char *tgt_name;
	uint32_t nsid;
	uint32_t anagrpid;
};

#define GP struct set_ns_ana_group_params
static const struct mimo_json_decoder set_ns_ana_group_decoders[] = {
	{ "nqn", offsetof(GP, nqn), mimo_json_decode_string, false },
	{ "nsid", offsetof(GP, nsid), mimo_json_decode_uint32, false },
	{ "anagrpid", offsetof(GP, anagrpid), mimo_json_decode_uint32, false },
	{ "tgt_name", offsetof(GP, tgt_name), mimo_json_decode_string, true },
};
#undef GP

static void rpc_nvmf_subsystem_set_ns_ana_group(struct mimo_jsonrpc_request *req,
						const json_t *params)
{
	struct set_ns_ana_group_params p = { 0 };
	struct mimo_nvmf_subsystem *s;
	int rc;

	if (!mimo_rpc_decode(req, params, set_ns_ana_group_decoders,
			     MIMO_COUNTOF(set_ns_ana_group_decoders), &p))
		return;
	s = nvmf_rpc_get_subsys(req, p.tgt_name, p.nqn);
	if (s == NULL)
		goto out;
	rc = nvmf_subsystem_set_ns_ana_group(s, p.nsid, p.anagrpid);
	if (rc == -ENOENT)
		mimo_jsonrpc_send_error(req, INVALID, "%s has no namespace %u", s->nqn, p.nsid);
	else if (rc != 0)
		mimo_jsonrpc_send_error(req, INVALID,
					"anagrpid %u: ANA groups are 1 to %u (max_namespaces)",
					p.anagrpid, s->max_nsid);
	else
		mimo_jsonrpc_send_bool(req, true);
out:
	mimo_json_decode_free(set_ns_ana_group_decoders, MIMO_COUNTOF(set_ns_ana_group_decoders),
			      &p);
}

static const struct mimo_rpc_method g_rpcs[] = {
	{ "nvmf_subsystem_listener_set_ana_state", rpc_nvmf_subsystem_listener_set_ana_state,
	  MIMO_RPC_RUNTIME },
	{ "nvmf_subsystem_set_ns_ana_group", rpc_nvmf_subsystem_set_ns_ana_group,
	  MIMO_RPC_RUNTIME },
};

void nvmf_ana_rpc_register(void)
{
	mimo_rpc_register_methods(g_rpcs, MIMO_COUNTOF(g_rpcs));
}
