/*
 * SPDK's start-up options of the NVMe-oF target, which its save_config writes before any
 * transport: nvmf_set_max_subsystems and nvmf_set_crdt. Like SPDK, they apply to the default
 * target ("nvmf_tgt" in mimo_tgt, created before the RPC server answers) and may only be
 * called before framework_start_init.
 */
#include <errno.h>

#include "nvmf_internal.h"
#include "mimo/jsonrpc.h"
#include "mimo/nvmf.h"

#define INVALID MIMO_JSONRPC_ERROR_INVALID_PARAMS

static struct mimo_nvmf_tgt *default_tgt(struct mimo_jsonrpc_request *req)
{
	struct mimo_nvmf_tgt *tgt = mimo_nvmf_tgt_find(NULL);

	if (tgt == NULL)
		mimo_jsonrpc_send_error(req, MIMO_JSONRPC_ERROR_INTERNAL_ERROR,
					"No default NVMf target found");
	return tgt;
}

struct max_subsystems {
	uint32_t max_subsystems;
};

static const struct mimo_json_decoder max_subsystems_decoders[] = {
	{ "max_subsystems", offsetof(struct max_subsystems, max_subsystems),
	  mimo_json_decode_uint32, false },
};

static void rpc_nvmf_set_max_subsystems(struct mimo_jsonrpc_request *req, const json_t *params)
{
	struct max_subsystems p = { 0 };
	struct mimo_nvmf_tgt *tgt;
	int rc;

	if (!mimo_rpc_decode(req, params, max_subsystems_decoders,
			     MIMO_COUNTOF(max_subsystems_decoders), &p))
		return;
	tgt = default_tgt(req);
	if (tgt == NULL)
		return;
	rc = mimo_nvmf_tgt_set_max_subsystems(tgt, p.max_subsystems);
	if (rc == -EBUSY)
		mimo_jsonrpc_send_error(req, INVALID,
					"nvmf_set_max_subsystems: %u is fewer than the subsystems "
					"there are (with the discovery subsystem)",
					p.max_subsystems);
	else if (rc != 0)
		mimo_jsonrpc_send_errno(req, rc);
	else
		mimo_jsonrpc_send_bool(req, true);
}

struct crdt {
	uint16_t crdt[3];
};

static const struct mimo_json_decoder crdt_decoders[] = {
	{ "crdt1", offsetof(struct crdt, crdt[0]), mimo_json_decode_uint16, true },
	{ "crdt2", offsetof(struct crdt, crdt[1]), mimo_json_decode_uint16, true },
	{ "crdt3", offsetof(struct crdt, crdt[2]), mimo_json_decode_uint16, true },
};

/* As SPDK: the three times are set together, those left out to 0. */
static void rpc_nvmf_set_crdt(struct mimo_jsonrpc_request *req, const json_t *params)
{
	struct crdt p = { { 0 } };
	struct mimo_nvmf_tgt *tgt;

	if (!mimo_rpc_decode(req, params, crdt_decoders, MIMO_COUNTOF(crdt_decoders), &p))
		return;
	tgt = default_tgt(req);
	if (tgt == NULL)
		return;
	mimo_nvmf_tgt_set_crdt(tgt, p.crdt);
	mimo_jsonrpc_send_bool(req, true);
}

/* SPDK's state masks: before framework_start_init only. */
static const struct mimo_rpc_method g_rpcs[] = {
	{ "nvmf_set_max_subsystems", rpc_nvmf_set_max_subsystems, MIMO_RPC_STARTUP },
	{ "nvmf_set_crdt", rpc_nvmf_set_crdt, MIMO_RPC_STARTUP },
};

void nvmf_tgt_rpc_register(void)
{
	mimo_rpc_register_methods(g_rpcs, MIMO_COUNTOF(g_rpcs));
}
