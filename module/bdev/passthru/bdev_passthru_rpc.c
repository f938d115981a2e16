/* bdev_passthru_create / bdev_passthru_delete, with SPDK's parameters and answers. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bdev_passthru.h"
#include "bdev_rpc.h"
#include "mimo/jsonrpc.h"

struct pt_create {
	char *base_bdev_name;
	char *name;
	char *uuid;
};

static const struct mimo_json_decoder create_decoders[] = {
	{ "base_bdev_name", offsetof(struct pt_create, base_bdev_name), mimo_json_decode_string,
	  false },
	{ "name", offsetof(struct pt_create, name), mimo_json_decode_string, false },
	{ "uuid", offsetof(struct pt_create, uuid), mimo_json_decode_string, true },
};

static void rpc_bdev_passthru_create(struct mimo_jsonrpc_request *req, const json_t *params)
{
	struct pt_create p = { 0 };
	uint8_t uuid_buf[16];
	const uint8_t *uuid;
	int rc;

	if (!mimo_rpc_decode(req, params, create_decoders, MIMO_COUNTOF(create_decoders), &p))
		return;
	if (bdev_rpc_uuid(req, p.uuid, uuid_buf, &uuid)) {
		rc = bdev_passthru_create(p.base_bdev_name, p.name, uuid);
		if (rc == -ENODEV)
			/* SPDK would wait for the base to appear; mimo examines no new bdevs. */
			mimo_jsonrpc_send_error(
				req, -ENODEV,
				"No such device: base bdev %s does not exist (mimo "
				"creates a passthru bdev only over an existing bdev)",
				p.base_bdev_name);
		else if (rc == -EPERM)
			mimo_jsonrpc_send_error(req, -EPERM,
						"Operation not permitted: %s is already claimed",
						p.base_bdev_name);
		else if (rc != 0)
			mimo_jsonrpc_send_errno(req, rc);
		else
			mimo_jsonrpc_send_result(req, json_string(p.name));
	}
	mimo_json_decode_free(create_decoders, MIMO_COUNTOF(create_decoders), &p);
}

static void rpc_bdev_passthru_delete(struct mimo_jsonrpc_request *req, const json_t *params)
{
	bdev_rpc_delete_params(req, params, &g_passthru_module);
}

static const struct mimo_rpc_method g_rpcs[] = {
	{ "bdev_passthru_create", rpc_bdev_passthru_create, MIMO_RPC_RUNTIME },
	{ "bdev_passthru_delete", rpc_bdev_passthru_delete, MIMO_RPC_RUNTIME },
};

void bdev_passthru_rpc_register(void)
{
	mimo_rpc_register_methods(g_rpcs, MIMO_COUNTOF(g_rpcs));
}
