/* bdev_split_create / bdev_split_delete, with SPDK's parameters, answers and errors. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bdev_split.h"
#include "mimo/jsonrpc.h"

struct split_create {
	char *base_bdev;
	uint32_t split_count;
	uint64_t split_size_mb;
};

static const struct mimo_json_decoder create_decoders[] = {
	{ "base_bdev", offsetof(struct split_create, base_bdev), mimo_json_decode_string, false },
	{ "split_count", offsetof(struct split_create, split_count), mimo_json_decode_uint32,
	  false },
	{ "split_size_mb", offsetof(struct split_create, split_size_mb), mimo_json_decode_uint64,
	  true },
};

static void rpc_bdev_split_create(struct mimo_jsonrpc_request *req, const json_t *params)
{
	struct split_create p = { 0 };
	int rc;

	if (!mimo_rpc_decode(req, params, create_decoders, MIMO_COUNTOF(create_decoders), &p))
		return;
	rc = bdev_split_create(p.base_bdev, p.split_count, p.split_size_mb);
	if (rc == -ENODEV)
		/* SPDK keeps the configuration until such a bdev appears; mimo examines no new
		 * bdevs, so the base must exist now. */
		mimo_jsonrpc_send_error(req, MIMO_JSONRPC_ERROR_INVALID_PARAMS,
					"Failed to create %u split bdevs from '%s': No such device "
					"(mimo splits only an existing bdev: create it first)",
					p.split_count, p.base_bdev);
	else if (rc != 0)
		mimo_jsonrpc_send_error(req, MIMO_JSONRPC_ERROR_INVALID_PARAMS,
					"Failed to create %u split bdevs from '%s': %s",
					p.split_count, p.base_bdev, strerror(-rc));
	else
		mimo_jsonrpc_send_result(req, bdev_split_part_names(p.base_bdev));
	mimo_json_decode_free(create_decoders, MIMO_COUNTOF(create_decoders), &p);
}

struct split_delete {
	char *base_bdev;
};

static const struct mimo_json_decoder delete_decoders[] = {
	{ "base_bdev", offsetof(struct split_delete, base_bdev), mimo_json_decode_string, false },
};

static void rpc_bdev_split_delete(struct mimo_jsonrpc_request *req, const json_t *params)
{
	struct split_delete p = { 0 };
	int rc;

	if (!mimo_rpc_decode(req, params, delete_decoders, MIMO_COUNTOF(delete_decoders), &p))
		return;
	rc = bdev_split_delete(p.base_bdev);
	if (rc != 0)
		mimo_jsonrpc_send_error(req, MIMO_JSONRPC_ERROR_INVALID_PARAMS, "%s",
					strerror(-rc));
	else
		mimo_jsonrpc_send_bool(req, true);
	mimo_json_decode_free(delete_decoders, MIMO_COUNTOF(delete_decoders), &p);
}

static const struct mimo_rpc_method g_rpcs[] = {
	{ "bdev_split_create", rpc_bdev_split_create, MIMO_RPC_RUNTIME },
	{ "bdev_split_delete", rpc_bdev_split_delete, MIMO_RPC_RUNTIME },
};

void bdev_split_rpc_register(void)
{
	mimo_rpc_register_methods(g_rpcs, MIMO_COUNTOF(g_rpcs));
}
