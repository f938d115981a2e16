/*
 * SPDK's net_interface_add_ip_address, net_interface_delete_ip_address and net_get_interfaces
 * (and their first names, add_ip_address, delete_ip_address and get_interfaces, which py-spdk's
 * VhostTgt calls). SPDK removed these in 20.10; mimo keeps them for the clients written
 * against them. Error codes and messages follow SPDK's.
 */
#include <errno.h>
#include <string.h>

#include "compiler.h"
#include "net_interface.h"
#include "mimo/jsonrpc.h"

struct addr_params {
	int32_t ifc_index;
	char *ip_address;
};

static const struct mimo_json_decoder addr_decoders[] = {
	{ "ifc_index", offsetof(struct addr_params, ifc_index), mimo_json_decode_int32, false },
	{ "ip_address", offsetof(struct addr_params, ip_address), mimo_json_decode_string, false },
};

static void answer(struct mimo_jsonrpc_request *req, const struct addr_params *p, int rc, bool add)
{
	switch (rc) {
	case 0:
		mimo_jsonrpc_send_bool(req, true);
		break;
	case -ENODEV:
		mimo_jsonrpc_send_error(req, MIMO_JSONRPC_ERROR_INVALID_STATE,
					"Interface %d not available", p->ifc_index);
		break;
	case -EADDRINUSE:
	case -ENXIO:
		mimo_jsonrpc_send_error(req, MIMO_JSONRPC_ERROR_INVALID_PARAMS,
					add ? "IP address %s is already added to interface %d"
					    : "IP address %s is not found in interface %d",
					p->ip_address, p->ifc_index);
		break;
	case -EINVAL:
		mimo_jsonrpc_send_error(req, MIMO_JSONRPC_ERROR_INVALID_PARAMS,
					"'%s' is not an IPv4 address", p->ip_address);
		break;
	default:
		mimo_jsonrpc_send_error(req, MIMO_JSONRPC_ERROR_INTERNAL_ERROR, "%s",
					strerror(-rc));
	}
}

static void addr_rpc(struct mimo_jsonrpc_request *req, const json_t *params, bool add)
{
	struct addr_params p = { 0 };

	if (!mimo_rpc_decode(req, params, addr_decoders, MIMO_COUNTOF(addr_decoders), &p))
		return;
	answer(req, &p,
	       add ? mimo_net_addr_add(p.ifc_index, p.ip_address)
		   : mimo_net_addr_delete(p.ifc_index, p.ip_address),
	       add);
	mimo_json_decode_free(addr_decoders, MIMO_COUNTOF(addr_decoders), &p);
}

static void rpc_net_interface_add_ip_address(struct mimo_jsonrpc_request *req, const json_t *params)
{
	addr_rpc(req, params, true);
}

static void rpc_net_interface_delete_ip_address(struct mimo_jsonrpc_request *req,
						const json_t *params)
{
	addr_rpc(req, params, false);
}

static void rpc_net_get_interfaces(struct mimo_jsonrpc_request *req, const json_t *params)
{
	json_t *list;
	int err = 0;

	if (!mimo_rpc_no_params(req, params))
		return;
	list = mimo_net_interfaces(&err);
	if (list == NULL)
		mimo_jsonrpc_send_error(req, MIMO_JSONRPC_ERROR_INTERNAL_ERROR, "%s",
					strerror(-err));
	else
		mimo_jsonrpc_send_result(req, list);
}

static const struct mimo_rpc_method g_rpcs[] = {
	{ "net_interface_add_ip_address", rpc_net_interface_add_ip_address, MIMO_RPC_RUNTIME },
	{ "net_interface_delete_ip_address", rpc_net_interface_delete_ip_address,
	  MIMO_RPC_RUNTIME },
	{ "net_get_interfaces", rpc_net_get_interfaces, MIMO_RPC_RUNTIME },
	{ "add_ip_address", rpc_net_interface_add_ip_address, MIMO_RPC_RUNTIME,
	  "net_interface_add_ip_address" },
	{ "delete_ip_address", rpc_net_interface_delete_ip_address, MIMO_RPC_RUNTIME,
	  "net_interface_delete_ip_address" },
	{ "get_interfaces", rpc_net_get_interfaces, MIMO_RPC_RUNTIME, "net_get_interfaces" },
};

MIMO_EXPORT void mimo_register_net(void)
{
	mimo_rpc_register_methods(g_rpcs, MIMO_COUNTOF(g_rpcs));
}
